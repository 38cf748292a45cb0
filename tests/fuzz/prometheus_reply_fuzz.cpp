// Fuzz target: answers of the Prometheus HTTP API (adapters/prometheus/api_client's
// decode_query_reply and series_reader: everything between the body received and the samples
// or series shapes used). An input that starts with three digits and a newline ("503\n{...}")
// gives the HTTP status, otherwise it is 200. Each sample value then goes through
// quantity::from_sample, as the provider does. Invariants beyond not crashing:
// - a failure has a detail and a backend error code; a success is a 2xx;
// - a decoded vector has one sample per element of the document's result;
// - the streaming series reader, fed in pieces of any size, finds the same shapes as the
//   document-based reading (tests/support/series_oracle.hpp) whenever the latter succeeds.

#include <algorithm>
#include <set>

#include "adapters/prometheus/api_client.hpp"
#include "server/core/quantity.hpp"
#include "tests/fuzz/fuzz_check.hpp"
#include "tests/support/series_oracle.hpp"

using namespace gma;
using namespace gma::adapters::prometheus;

namespace {

/// Nesting of a document: the streaming reader refuses more than 64 levels, the document
/// parser has no bound, so deeper texts are not compared.
std::size_t nesting(const nlohmann::json& j) {
  std::size_t deepest = 0;
  if (j.is_structured())
    for (const auto& child : j) deepest = std::max(deepest, nesting(child));
  return j.is_structured() ? deepest + 1 : 0;
}

/// Whether some object repeats a key: a document keeps the last value, the streaming readers
/// may keep either (both are valid readings), so such texts are not compared.
bool has_duplicate_keys(std::string_view body) {
  std::vector<std::set<std::string>> open_objects;
  bool duplicate = false;
  const nlohmann::json::parser_callback_t note = [&](int, nlohmann::json::parse_event_t event,
                                                     nlohmann::json& parsed) {
    if (event == nlohmann::json::parse_event_t::object_start) open_objects.emplace_back();
    if (event == nlohmann::json::parse_event_t::object_end && !open_objects.empty())
      open_objects.pop_back();
    if (event == nlohmann::json::parse_event_t::key && !open_objects.empty() &&
        parsed.is_string() && !open_objects.back().insert(parsed.get<std::string>()).second)
      duplicate = true;
    return true;
  };
  (void)nlohmann::json::parse(body, note, false);
  return duplicate;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view body = fuzz::as_text(data, size);
  unsigned status = 200;
  if (body.size() >= 4 && body[3] == '\n' &&
      std::all_of(body.begin(), body.begin() + 3, [](char c) { return c >= '0' && c <= '9'; })) {
    status = static_cast<unsigned>(std::stoul(std::string(body.substr(0, 3))));
    body.remove_prefix(4);
  }
  fuzz::guarded([&] {
    const auto samples = decode_query_reply(status, body);
    if (!samples) {
      GMA_FUZZ_CHECK(!samples.error().detail.empty() && samples.error().reason != nullptr,
                     "a failure says why");
      GMA_FUZZ_CHECK(samples.error().code == errc::backend_error ||
                         samples.error().code == errc::backend_unavailable,
                     "a failed answer is a backend error");
    } else {
      GMA_FUZZ_CHECK(status >= 200 && status < 300,
                     "a success with HTTP " + std::to_string(status));
      const auto doc = nlohmann::json::parse(body, nullptr, false);
      GMA_FUZZ_CHECK(doc.is_object() && doc.contains("data"), "a success without data");
      const auto& answer = doc["data"];
      const bool vector = answer.is_object() && answer.contains("result") &&
                          answer["result"].is_array() && answer.contains("resultType") &&
                          answer["resultType"] == "vector";
      if (vector && !has_duplicate_keys(body))
        GMA_FUZZ_CHECK(samples->size() == answer["result"].size(),
                       "a vector of " + std::to_string(answer["result"].size()) + " gave " +
                           std::to_string(samples->size()) + " samples");
      for (const auto& s : *samples) (void)core::quantity::from_sample(s.value);
    }
    if (status != 200) return;
    const auto expected = testing::series_shapes_by_document(body);
    // nlohmann skips a UTF-8 byte-order mark and ends its input at a NUL byte, boost::json
    // refuses both: no Prometheus sends either.
    if (!expected || body.starts_with("\xEF\xBB\xBF") || body.find('\0') != body.npos ||
        nesting(nlohmann::json::parse(body)) > 60 || has_duplicate_keys(body))
      return;
    const std::size_t piece = 1 + (size % 13);
    const auto streamed = testing::series_shapes_by_stream(body, piece);
    GMA_FUZZ_CHECK(streamed.has_value() && *streamed == *expected,
                   "the streaming series reader disagrees with the document (pieces of " +
                       std::to_string(piece) + ")");
  });
  return 0;
}
