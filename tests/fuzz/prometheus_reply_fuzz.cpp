// Fuzz target: answers of the Prometheus HTTP API (adapters/prometheus/api_client's
// classify_reply, decode_query_data and decode_series_data: everything between the body
// received and the samples or series used). An input that starts with three digits and a
// newline ("503\n{...}") gives the HTTP status, otherwise it is 200. Each sample value then
// goes through quantity::from_sample, as the provider does. Invariants beyond not crashing:
// a success is a 2xx with an object holding "data"; a failure has a detail and a backend error
// code; a decoded vector has one sample per element.

#include <algorithm>

#include "adapters/prometheus/api_client.hpp"
#include "server/core/json_access.hpp"
#include "server/core/quantity.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace gma;
using namespace gma::adapters::prometheus;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view body = fuzz::as_text(data, size);
  unsigned status = 200;
  if (body.size() >= 4 && body[3] == '\n' &&
      std::all_of(body.begin(), body.begin() + 3, [](char c) { return c >= '0' && c <= '9'; })) {
    status = static_cast<unsigned>(std::stoul(std::string(body.substr(0, 3))));
    body.remove_prefix(4);
  }
  fuzz::guarded([&] {
    nlohmann::json doc;
    const auto failed = classify_reply(status, body, doc);
    if (failed) {
      GMA_FUZZ_CHECK(!failed->detail.empty() && failed->reason != nullptr, "a failure says why");
      GMA_FUZZ_CHECK(
          failed->code == errc::backend_error || failed->code == errc::backend_unavailable,
          "a failed answer is a backend error");
      return;
    }
    GMA_FUZZ_CHECK(status >= 200 && status < 300, "a success with HTTP " + std::to_string(status));
    GMA_FUZZ_CHECK(doc.is_object() && doc.contains("data"), "a success without data");
    const nlohmann::json& answer = doc["data"];
    if (const auto samples = decode_query_data(answer, "fuzz")) {
      const bool vector = answer.is_object() && answer.contains("result") &&
                          answer["result"].is_array() &&
                          core::string_at(answer, "resultType") == "vector";
      if (vector)
        GMA_FUZZ_CHECK(samples->size() == answer["result"].size(),
                       "a vector of " + std::to_string(answer["result"].size()) + " gave " +
                           std::to_string(samples->size()) + " samples");
      for (const auto& s : *samples) (void)core::quantity::from_sample(s.value);
    }
    if (const auto series = decode_series_data(answer, "fuzz"))
      GMA_FUZZ_CHECK(series->size() == answer.size(), "series lost");
  });
  return 0;
}
