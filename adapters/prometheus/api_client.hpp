#pragma once
/// @file Client for the Prometheus HTTP API (/api/v1/query, /api/v1/series), also spoken by
/// Thanos, Mimir and VictoriaMetrics.
///
/// @par Thread safety
/// Safe for concurrent use from any executor. Owns no connections itself: it borrows the
/// http_client passed in, which must outlive it.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "adapters/http_client/http_client.hpp"
#include "server/core/label_selector.hpp"

namespace gma::adapters::prometheus {

namespace net = boost::asio;

/// One element of an instant vector, or a scalar (with no labels).
struct sample {
  core::label_map labels;
  double timestamp = 0;  ///< Unix seconds
  std::string value;     ///< as Prometheus printed it: "87.5", "NaN", "+Inf"
};

enum class request_verb { get, post };

class api_client {
 public:
  /// `registry` receives gma_prometheus_* request counters and latency histograms.
  api_client(http_client::http_client& http, request_verb verb,
             std::chrono::milliseconds query_timeout, ::prometheus::Registry& registry);

  /// Instant query. The timeout is both sent as `timeout=` and enforced locally (plus a small
  /// margin for the network). errc::backend_unavailable, errc::backend_error on failure.
  net::awaitable<result<std::vector<sample>>> async_query(std::string promql);

  /// /api/v1/series for the given selectors since `start`; each element is a label set.
  net::awaitable<result<std::vector<core::label_map>>> async_series(
      std::vector<std::string> matches, std::chrono::system_clock::time_point start);

  /// When Prometheus last answered successfully; epoch if never.
  std::chrono::steady_clock::time_point last_success() const noexcept;

 private:
  net::awaitable<result<std::string>> async_call(const char* endpoint_label, std::string path,
                                                 std::string params, request_verb verb);

  http_client::http_client& http_;
  request_verb verb_;
  std::chrono::milliseconds query_timeout_;
  ::prometheus::Family<::prometheus::Counter>& requests_;
  ::prometheus::Family<::prometheus::Counter>& errors_;
  ::prometheus::Family<::prometheus::Histogram>& latency_;
  std::atomic<std::chrono::steady_clock::rep> last_success_{0};
};

}  // namespace gma::adapters::prometheus
