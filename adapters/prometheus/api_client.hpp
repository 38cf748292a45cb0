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

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/http_client/http_client.hpp"
#include "server/core/json_stream.hpp"
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

/// Query parameters that only some backends understand. Prometheus, VictoriaMetrics and Mimir
/// ignore them; a backend that refuses them by name (Google Cloud Managed Service for
/// Prometheus: 400 `Unknown name "partial_response"`) is sent them no more (see api_client).
struct backend_parameters {
  /// Thanos' `partial_response` (backends.md section 3): true to accept an answer missing the
  /// data of unreachable stores, false to have Thanos fail the query instead; unset sends
  /// nothing, and Thanos applies its own `--query.partial-response` (default true).
  std::optional<bool> partial_response;
};

/// Why an answer of the Prometheus API is not a result: the error code it becomes, the
/// self-metric reason, and the words for the log.
struct reply_failure {
  errc code;
  const char* reason;
  std::string detail;
  /// Prometheus answered, whole, with something we cannot use (a result type we do not serve,
  /// an answer over a bound): it is up and accepts us, as with a verdict on the query.
  bool answered = false;
};

/// A series' name and label names: all discovery needs from it.
using series_shape = std::pair<std::string, std::vector<std::string>>;

/// What one /api/v1/series answer comes to.
struct series_summary {
  std::set<series_shape> shapes;  ///< distinct (name, sorted label names) of named series
  std::uint64_t series = 0;       ///< series read, named or not
  std::uint64_t bytes = 0;        ///< of the body
};

/// Bounds on one /api/v1/series answer, which is read as it arrives (memory follows the
/// distinct shapes, not the answer's size) and may be of any size within them.
struct series_limits {
  std::uint64_t max_reply_bytes = std::uint64_t{1} << 30;
  std::size_t max_shapes = 10000;
  /// From connect to the answer's last byte.
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
};

// The decoding of answers, apart from the I/O so that it can be tested and fuzzed
// (tests/fuzz/prometheus_reply_fuzz.cpp). Pure; they never throw.

/// An answer decoded, or why it is not usable.
template <class T>
using decoded = boost::system::result<T, reply_failure>;

/// What reading any answer as it arrives needs besides its reader: its status and size, its
/// start (for the log line of an answer that is not JSON) and the parse.
class reply_stream {
 public:
  reply_stream(unsigned status, core::json_reader& reader) : status_(status), parser_(reader) {}

  /// The next piece; false once reading can stop: an answer that is not JSON is read only as
  /// far as its log line shows it.
  bool feed(std::string_view piece);
  /// After the last piece: whether the body was one whole JSON value.
  bool finish();
  unsigned status() const noexcept { return status_; }
  std::uint64_t bytes() const noexcept { return bytes_; }
  const std::string& body_start() const noexcept { return body_start_; }

 private:
  unsigned status_;
  std::uint64_t bytes_ = 0;
  std::string body_start_;
  core::json_push_parser parser_;
  bool parsed_ = true;
};

class query_reply_reader;

/// Reads an /api/v1/query answer piece by piece into samples (no document is built): the
/// samples of a vector or scalar, or why the answer is not one.
class query_reader {
 public:
  query_reader(unsigned status, std::uint64_t max_reply_bytes);
  ~query_reader();
  query_reader(const query_reader&) = delete;
  query_reader& operator=(const query_reader&) = delete;

  /// The next piece of the body; false once reading can stop (finish() says why).
  bool feed(std::string_view piece);
  decoded<std::vector<sample>> finish();
  std::uint64_t bytes() const noexcept { return stream_.bytes(); }
  /// The answer's top-level `warnings` (Thanos' partial answers, PromQL annotations), each cut
  /// to 500 bytes, at most 10; after finish().
  const std::vector<std::string>& warnings() const noexcept;

 private:
  std::uint64_t max_reply_bytes_;
  bool too_large_ = false;
  std::unique_ptr<query_reply_reader> reader_;
  reply_stream stream_;
};

/// query_reader over a whole body.
decoded<std::vector<sample>> decode_query_reply(unsigned status, std::string_view body);

class series_reply_reader;

/// Reads an /api/v1/series answer piece by piece, straight into its distinct shapes.
class series_reader {
 public:
  series_reader(unsigned status, series_limits limits);
  ~series_reader();
  series_reader(const series_reader&) = delete;
  series_reader& operator=(const series_reader&) = delete;

  /// The next piece of the body; false once reading can stop (finish() says why).
  bool feed(std::string_view piece);
  /// After the last piece: the shapes, or why the answer is not usable.
  decoded<series_summary> finish();

 private:
  series_limits limits_;
  std::unique_ptr<series_reply_reader> reader_;
  reply_stream stream_;
};

class api_client {
 public:
  /// `registry` receives gma_prometheus_* request counters and latency histograms.
  /// `parameters` are added to every /api/v1/query and /api/v1/series request until the
  /// backend refuses one of them by name (a 400 whose body names it): that request is sent
  /// again without them, and so is every later one; logged once.
  api_client(http_client::transport& http, request_verb verb,
             std::chrono::milliseconds query_timeout, ::prometheus::Registry& registry,
             backend_parameters parameters = {});

  /// Instant query. The timeout is both sent as `timeout=` and enforced locally (plus a small
  /// margin for the network). errc::backend_unavailable, errc::backend_error on failure, logged
  /// with `context` (the rule's file:line), the HTTP status, Prometheus' errorType and error
  /// (or the start of a body that is not JSON).
  /// `reply_bytes` receives the size of the answer, so that the caller can give memory back
  /// after a large one (core::trim_heap_after). `failure`, when given, receives why a query
  /// failed (Prometheus' errorType and error, or the transport's reason). A query the backend
  /// refuses (400, 422: bad_data, execution, a query frontend's limits) is logged with the
  /// backend's message and the query. `warnings`, when given, receives the answer's
  /// `warnings` (the answer is served all the same).
  net::awaitable<result<std::vector<sample>>> async_query(
      std::string promql, std::string context, std::size_t& reply_bytes,
      reply_failure* failure = nullptr, std::vector<std::string>* warnings = nullptr);

  /// /api/v1/series for the given selectors since `start`, read as it arrives into distinct
  /// shapes within `limits`. Errors as async_query; `failure` receives why (reason "limit"
  /// for an answer over a bound).
  net::awaitable<result<series_summary>> async_series(std::vector<std::string> matches,
                                                      std::chrono::system_clock::time_point start,
                                                      series_limits limits, std::string context,
                                                      std::optional<reply_failure>& failure);

  /// Whether Prometheus is usable, for readiness: it answered (a result, or an error about the
  /// query itself) within `window`, and its latest answer was not a refusal of our credentials
  /// (401, 403, 407). The reason names the last failure.
  core::health_check health(std::chrono::steady_clock::duration window) const;

  /// Prometheus' URL, for log lines.
  std::string where() const { return http_.target().url(); }

 private:
  /// The request for `endpoint` ("query", "series") with form `params`, by verb_.
  http_client::outgoing_request make_request(const char* endpoint, std::string params) const;
  /// Counts and times an answer, records it for health(), and logs a failure.
  void account(const char* endpoint_label, std::chrono::steady_clock::time_point started,
               unsigned status, const std::optional<reply_failure>& failed,
               const std::string& context, std::string_view promql = {});
  /// The parameters of backend_parameters, as `&name=value`; empty once the backend refused.
  std::string backend_params() const;
  /// Whether `failed` (HTTP `status`) is the backend refusing a parameter of backend_params()
  /// that the request carried: a 400 naming it. Logs it the first time and stops sending them.
  bool refused_backend_params(const std::string& sent, unsigned status,
                              const reply_failure& failed);
  /// Records an answer for health(): `usable` when Prometheus answered and accepted us.
  void record(bool usable, bool refused_credentials, std::string problem);

  http_client::transport& http_;
  request_verb verb_;
  std::chrono::milliseconds query_timeout_;
  backend_parameters parameters_;
  std::atomic<bool> backend_params_refused_{false};  ///< set once; read by every request
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
