#pragma once
// The old, document-based reading of an /api/v1/series answer, kept as the oracle that the
// streaming series_reader is checked against (unit tests and the prometheus_reply fuzz
// target): parse the whole body, then reduce each series to its name and label names.

#include <nlohmann/json.hpp>

#include <optional>
#include <set>
#include <string_view>

#include "adapters/prometheus/api_client.hpp"

namespace gma::testing {

/// The shapes of a successful series answer's `data`; nullopt when the body is not a success
/// holding a list.
inline std::optional<std::set<adapters::prometheus::series_shape>> series_shapes_by_document(
    std::string_view body) {
  const auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("status") ||
      doc["status"] != "success" || !doc.contains("data") || !doc["data"].is_array())
    return std::nullopt;
  std::set<adapters::prometheus::series_shape> shapes;
  for (const auto& series : doc["data"]) {
    if (!series.is_object()) continue;
    const auto name = series.find("__name__");
    if (name == series.end() || !name->is_string()) continue;
    std::vector<std::string> label_names;
    for (const auto& [k, v] : series.items())
      if (k != "__name__" && v.is_string()) label_names.push_back(k);
    shapes.insert({name->get<std::string>(), std::move(label_names)});
  }
  return shapes;
}

/// The streaming reader's shapes for `body` fed in pieces of `piece` bytes; nullopt when it
/// does not decode as a success.
inline std::optional<std::set<adapters::prometheus::series_shape>> series_shapes_by_stream(
    std::string_view body, std::size_t piece, adapters::prometheus::series_limits limits = {}) {
  adapters::prometheus::series_reader reader(200, limits);
  for (std::size_t at = 0; at < body.size(); at += piece)
    if (!reader.feed(body.substr(at, piece))) break;
  auto summary = reader.finish();
  if (!summary) return std::nullopt;
  return std::move(summary->shapes);
}

}  // namespace gma::testing
