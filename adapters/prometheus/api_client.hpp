#pragma once
/// @file Client for the Prometheus HTTP API (/api/v1/query, /api/v1/series), also spoken by
/// Thanos, Mimir and VictoriaMetrics.
///
/// @par Thread safety
/// Safe for concurrent use from any executor. Owns no connections itself: it borrows the
/// transport passed in (the http_client in production, a fake in tests), which must outlive
/// it.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/http_client/http_client.hpp"
#include "server/core/label_selector.hpp"
#include "server/core/provider.hpp"

namespace gma::adapters::prometheus {

namespace net = boost::asio;

/// One element of an instant vector, or a scalar (with no labels).
struct sample {
  core::label_map labels;
  double timestamp = 0;  ///< Unix seconds
  std::string value;     ///< as Prometheus printed it: "87.5", "NaN", "+Inf"
};

enum class request_verb { get, post };

/// Why an answer of the Prometheus API is not a result: the error code it becomes, the
/// self-metric reason, and the words for the log.
struct reply_failure {
  errc code;
  const char* reason;
  std::string detail;
};

// The decoding of an answer, apart from the I/O so that it can be tested and fuzzed
// (tests/fuzz/prometheus_reply_fuzz.cpp). Pure functions; they never throw.

/// Classifies an answer by HTTP status and body: nullopt for a success, whose envelope is left
/// in `doc` (an object holding "data").
std::optional<reply_failure> classify_reply(unsigned status, std::string_view body,
                                            nlohmann::json& doc);

/// The samples of a successful /api/v1/query answer's `data` (a vector or a scalar);
/// errc::backend_error, logged with `context`, for anything else.
result<std::vector<sample>> decode_query_data(const nlohmann::json& data,
                                              const std::string& context);

/// The label sets of a successful /api/v1/series answer's `data` (string labels only);
/// errc::backend_error, logged with `context`, when it is not a list.
result<std::vector<core::label_map>> decode_series_data(const nlohmann::json& data,
                                                        const std::string& context);

class api_client {
 public:
  /// `registry` receives gma_prometheus_* request counters and latency histograms.
  api_client(http_client::transport& http, request_verb verb,
             std::chrono::milliseconds query_timeout, ::prometheus::Registry& registry);

  /// Instant query. The timeout is both sent as `timeout=` and enforced locally (plus a small
  /// margin for the network). errc::backend_unavailable, errc::backend_error on failure, logged
  /// with `context` (the rule's file:line), the HTTP status, Prometheus' errorType and error
  /// (or the start of a body that is not JSON).
  /// `reply_bytes` receives the size of the answer, so that the caller can give memory back
  /// after a large one (core::trim_heap_after).
  net::awaitable<result<std::vector<sample>>> async_query(std::string promql, std::string context,
                                                          std::size_t& reply_bytes);

  /// /api/v1/series for the given selectors since `start`; each element is a label set. Errors
  /// as async_query.
  net::awaitable<result<std::vector<core::label_map>>> async_series(
      std::vector<std::string> matches, std::chrono::system_clock::time_point start,
      std::string context, std::size_t& reply_bytes);

  /// Whether Prometheus is usable, for readiness: it answered (a result, or an error about the
  /// query itself) within `window`, and its latest answer was not a refusal of our credentials
  /// (401, 403, 407). The reason names the last failure.
  core::health_check health(std::chrono::steady_clock::duration window) const;

 private:
  /// Sends one API request and returns the `data` of a successful answer; `reply_bytes`
  /// receives the size of the answer's body.
  net::awaitable<result<nlohmann::json>> async_call(const char* endpoint_label, std::string path,
                                                    std::string params, const std::string& context,
                                                    std::size_t& reply_bytes);
  /// Records an answer for health(): `usable` when Prometheus answered and accepted us.
  void record(bool usable, bool refused_credentials, std::string problem);

  http_client::transport& http_;
  request_verb verb_;
  std::chrono::milliseconds query_timeout_;
  ::prometheus::Family<::prometheus::Counter>& requests_;
  ::prometheus::Family<::prometheus::Counter>& errors_;
  ::prometheus::Family<::prometheus::Histogram>& latency_;
  ::prometheus::Gauge& up_;  ///< 1 while the last answer was usable, as /readyz/prometheus
  mutable std::mutex mutex_;
  std::chrono::steady_clock::time_point last_usable_{};  // guarded by mutex_
  bool refused_credentials_ = false;                     // guarded by mutex_
  std::string last_problem_;                             // guarded by mutex_
};

}  // namespace gma::adapters::prometheus
