#include "adapters/prometheus/api_client.hpp"

#include "server/core/log.hpp"
#include "server/core/strings.hpp"

namespace gma::adapters::prometheus {

using http_client::url_encode;

namespace {

using clock = std::chrono::steady_clock;
// Time for the answer to travel back after Prometheus gives up at `timeout=`.
constexpr auto kNetworkMargin = std::chrono::milliseconds(500);
// A query answer larger than this is refused: a rule asks for one namespace's objects, and
// 64 MiB is about 200,000 samples.
constexpr std::uint64_t kMaxQueryReplyBytes = 64 << 20;
// How much of an answer that is not Prometheus' own a log line shows.
constexpr std::size_t kBodyStartBytes = 200;
// How many of an answer's warnings are kept, and how much of each.
constexpr std::size_t kMaxWarnings = 10;
constexpr std::size_t kWarningBytes = 500;

std::string format_unix(std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  return std::to_string(ms / 1000) + "." + std::to_string(1000 + ms % 1000).substr(1);
}

}  // namespace

api_client::api_client(http_client::transport& http, request_verb verb,
                       std::chrono::milliseconds query_timeout, ::prometheus::Registry& registry,
                       backend_parameters parameters)
    : http_(http),
      verb_(verb),
      query_timeout_(query_timeout),
      parameters_(parameters),
      requests_(::prometheus::BuildCounter()
                    .Name("gma_prometheus_requests_total")
                    .Help("Requests sent to the Prometheus HTTP API, by endpoint.")
                    .Register(registry)),
      errors_(::prometheus::BuildCounter()
                  .Name("gma_prometheus_request_errors_total")
                  .Help("Prometheus API requests that failed, by endpoint and reason.")
                  .Register(registry)),
      latency_(::prometheus::BuildHistogram()
                   .Name("gma_prometheus_request_duration_seconds")
                   .Help("Latency of Prometheus API requests, by endpoint.")
                   .Register(registry)),
      up_(::prometheus::BuildGauge()
              .Name("gma_prometheus_up")
              .Help("1 while Prometheus' last answer was usable (a result, or a verdict on the "
                    "query itself), else 0.")
              .Register(registry)
              .Add({})) {}

namespace {

bool refuses_credentials(unsigned status) {
  return status == 401 || status == 403 || status == 407;
}

}  // namespace

/// What classifies an answer: its HTTP status and envelope.
struct envelope {
  bool json = false;   ///< the body is a JSON object
  std::string status;  ///< "success", "error"
  std::string error_type;
  std::string error;
  bool has_data = false;
  std::vector<std::string> warnings;  ///< the first kMaxWarnings, each cut to kWarningBytes
};

namespace {

/// An answer that is not a result, classified by HTTP status and envelope; nullopt for a
/// success. `body_start` is the start of the body, for answers that are not Prometheus' own.
std::optional<reply_failure> classify(unsigned status, const envelope& e,
                                      std::string_view body_start) {
  const bool success =
      status >= 200 && status < 300 && e.json && e.status == "success" && e.has_data;
  if (success) return std::nullopt;
  std::string detail = "HTTP " + std::to_string(status);
  const bool prometheus_error = e.json && e.status == "error";
  if (prometheus_error) {
    detail += ", errorType " + e.error_type + ": " + core::printable(e.error, 500);
  } else {
    // Not Prometheus' own error (a proxy's page, AWS' {"message":...}, problem+json): its
    // start says why.
    detail += e.json ? ": " : ", not JSON: ";
    detail += core::printable(body_start, kBodyStartBytes);
  }
  // 5xx is an outage: from a proxy in front of Prometheus whatever its body (a 503 page while
  // Prometheus restarts), Prometheus' own 503 (errorType timeout), VictoriaMetrics' (errorType
  // "503"). Prometheus judges the query itself with 400 bad_data and 422 execution.
  if (status >= 500)
    return reply_failure{errc::backend_unavailable,
                         status == 503 && prometheus_error ? "api_error" : "http_status", detail};
  if (e.error_type == "timeout" || e.error_type == "unavailable")
    return reply_failure{errc::backend_unavailable, "api_error", detail};
  return reply_failure{errc::backend_error, e.json ? "api_error" : "not_json", detail};
}

reply_failure unusable(std::string detail) {
  return reply_failure{errc::backend_error, "unusable", std::move(detail), true};
}

/// Reads the envelope of an answer; derived readers read its `data`.
class envelope_reader : public core::json_reader {
 public:
  envelope result;

 protected:
  bool on_enter(bool array) override {
    if (depth() == 1) {
      result.json = !array;
    } else if (depth() == 2 && key_at(1) == "data") {
      result.has_data = true;
    }
    return true;
  }
  bool on_string(std::string_view value) override {
    // Thanos (and Prometheus since 2.45 for annotations) answer 200 with "warnings":["..."].
    if (depth() == 2 && key_at(1) == "warnings" && array_at(2)) {
      if (result.warnings.size() < kMaxWarnings)
        result.warnings.emplace_back(value.substr(0, kWarningBytes));
      return true;
    }
    if (depth() != 1) return true;
    const auto key = key_at(1);
    if (key == "status") {
      result.status.assign(value.substr(0, 100));
    } else if (key == "errorType") {
      result.error_type.assign(value.substr(0, 100));
    } else if (key == "error") {
      result.error.assign(value.substr(0, 1000));
    } else if (key == "data") {
      result.has_data = true;
    }
    return true;
  }
  // Not virtual calls: a derived reader's on_other has its own meaning for numbers.
  bool on_number(double) override { return envelope_reader::on_other(); }
  bool on_other() override {
    if (at(1, "data")) result.has_data = true;
    return true;
  }
};

}  // namespace

/// An /api/v1/query answer: the envelope, resultType, and `result` read as either form (a
/// vector's sample objects or a scalar's pair), judged by resultType at the end since JSON
/// members come in any order.
class query_reply_reader final : public envelope_reader {
 public:
  std::string result_type;
  bool result_is_array = false;
  std::vector<sample> samples;      ///< the objects of `result`
  bool plain_items = false;         ///< `result` holds values that are not objects (a scalar)
  const char* malformed = nullptr;  ///< why `result` is not a vector of samples
  // The scalar's pair, or the current sample's value: items read and whether each fit.
  std::size_t pair_items = 0;
  bool pair_ok = true;
  double pair_time = 0;
  std::string pair_value;

 private:
  // Levels: 1 the envelope's members, 2 data's, 3 result's elements, 4 a sample's members,
  // 5 its labels or its value's items.
  bool in_result(std::size_t level) const {
    return depth() >= level && key_at(1) == "data" && key_at(2) == "result";
  }
  bool in_value(std::size_t level) const { return in_result(level) && key_at(4) == "value"; }

  bool on_enter(bool array) override {
    envelope_reader::on_enter(array);
    if (depth() == 3 && in_result(3)) {
      result_is_array = array;
    } else if (depth() == 4 && in_result(4)) {
      if (array) {
        malformed = "a result element is not an object";
        pair_ok = false;  // nor is it an item of a scalar
      } else {
        samples.emplace_back();
        saw_value_ = false;
      }
    } else if (depth() == 5 && in_value(5)) {
      if (!array) malformed = "a sample's value is not [time, \"value\"]";
      saw_value_ = true;
      pair_items = 0;
      pair_ok = array;
    } else if (depth() == 6 && in_value(6)) {
      pair_ok = false;  // a container is no item of [time, "value"]
    } else if (depth() == 6 && in_result(6) && key_at(4) == "metric" && !array_at(5)) {
      samples.back().labels.erase(std::string(key_at(5)));  // as forget_label_here
    }
    return true;
  }
  bool on_leave() override {
    if (depth() == 4 && in_result(4) && !array_at(4) && !samples.empty() &&
        (!saw_value_ || !pair_ok || pair_items != 2))
      malformed = "a sample is not [time, \"value\"]";
    return true;
  }
  bool on_string(std::string_view value) override {
    envelope_reader::on_string(value);
    if (depth() == 2 && key_at(1) == "data" && key_at(2) == "resultType") {
      result_type.assign(value.substr(0, 100));
    } else if (depth() == 3 && in_result(3)) {
      item(value, true);
    } else if (depth() == 5 && in_result(5) && key_at(4) == "metric" && !array_at(5)) {
      samples.back().labels.insert_or_assign(std::string(key_at(5)), std::string(value));
    } else if (depth() == 5 && in_value(5)) {
      item(value, true);
    }
    return true;
  }
  bool on_number(double value) override {
    envelope_reader::on_number(value);
    if ((depth() == 3 && in_result(3)) || (depth() == 5 && in_value(5))) item({}, false, value);
    forget_label_here();
    return true;
  }
  bool on_other() override {
    envelope_reader::on_other();
    if ((depth() == 3 && in_result(3)) || (depth() == 5 && in_value(5))) {
      pair_ok = false;
      ++pair_items;
    }
    forget_label_here();
    return true;
  }
  /// A value that is not a string under a label's key: only string labels count, and a
  /// document keeps a key's last value.
  void forget_label_here() {
    if (depth() == 5 && in_result(5) && key_at(4) == "metric" && !array_at(5))
      samples.back().labels.erase(std::string(key_at(5)));
  }

  /// An item of a [time, "value"] pair: the time first (a number), then the value (a string);
  /// at level 3 the scalar's, at level 5 the current sample's.
  void item(std::string_view text, bool is_string, double number = 0) {
    const bool scalar = depth() == 3;
    if (scalar) plain_items = true;
    if (pair_items == 0 && !is_string) {
      (scalar ? pair_time : samples.back().timestamp) = number;
    } else if (pair_items == 1 && is_string) {
      (scalar ? pair_value : samples.back().value).assign(text);
    } else {
      pair_ok = false;
    }
    ++pair_items;
  }

  bool saw_value_ = false;
};

bool reply_stream::feed(std::string_view piece) {
  if (body_start_.size() < kBodyStartBytes)
    body_start_.append(piece.substr(0, kBodyStartBytes - body_start_.size()));
  bytes_ += piece.size();
  if (parsed_ && !parser_.feed(piece)) parsed_ = false;
  return parsed_ || body_start_.size() < kBodyStartBytes;
}

bool reply_stream::finish() {
  if (parsed_ && !parser_.finish()) parsed_ = false;
  return parsed_;
}

query_reader::query_reader(unsigned status, std::uint64_t max_reply_bytes)
    : max_reply_bytes_(max_reply_bytes),
      reader_(std::make_unique<query_reply_reader>()),
      stream_(status, *reader_) {}

query_reader::~query_reader() = default;

bool query_reader::feed(std::string_view piece) {
  too_large_ = stream_.bytes() + piece.size() > max_reply_bytes_;
  return !too_large_ && stream_.feed(piece);
}

const std::vector<std::string>& query_reader::warnings() const noexcept {
  return reader_->result.warnings;
}

decoded<std::vector<sample>> query_reader::finish() {
  if (too_large_)
    return reply_failure{errc::backend_error, "too_large",
                         "the answer is larger than " + std::to_string(max_reply_bytes_) + " bytes",
                         true};
  auto& reader = *reader_;
  if (!stream_.finish()) reader.result.json = false;
  if (auto failed = classify(stream_.status(), reader.result, stream_.body_start())) return *failed;
  if (reader.result_type == "vector") {
    if (!reader.result_is_array || reader.plain_items)
      return unusable("the vector's result is not a list of samples");
    if (reader.malformed) return unusable(reader.malformed);
    return std::move(reader.samples);
  }
  if (reader.result_type == "scalar") {
    if (!reader.result_is_array || !reader.samples.empty() || !reader.pair_ok ||
        reader.pair_items != 2)
      return unusable("the scalar is not [time, \"value\"]");
    std::vector<sample> out(1);
    out[0].timestamp = reader.pair_time;
    out[0].value = std::move(reader.pair_value);
    return out;
  }
  return unusable("the result type '" + core::printable(reader.result_type, 40) +
                  "' is not supported");
}

decoded<std::vector<sample>> decode_query_reply(unsigned status, std::string_view body) {
  query_reader reader(status, body.size());
  reader.feed(body);
  return reader.finish();
}

/// An /api/v1/series answer: the envelope, and each series of `data` reduced to its shape.
class series_reply_reader final : public envelope_reader {
 public:
  explicit series_reply_reader(series_limits limits) : limits_(limits) {}

  series_summary summary;
  bool data_is_list = false;
  std::optional<std::string> over_limit;

 private:
  bool on_enter(bool array) override {
    envelope_reader::on_enter(array);
    if (depth() == 2 && key_at(1) == "data") {
      data_is_list = array;
    } else if (depth() == 4 && in_series_) {
      // A container where a label's value would be: as a document keeps a key's last value,
      // an earlier string under the same key no longer counts.
      forget(key_at(3));
    } else if (depth() == 3 && key_at(1) == "data" && array_at(2)) {
      // A series begins; a non-object element is counted and has no name.
      ++summary.series;
      in_series_ = !array;
      has_name_ = false;
      scratch_.first.clear();
      names_ = 0;
    }
    return true;
  }
  bool on_leave() override {
    if (depth() == 3 && in_series_ && key_at(1) == "data" && array_at(2)) {
      in_series_ = false;
      return add_shape();
    }
    return true;
  }
  bool on_string(std::string_view value) override {
    envelope_reader::on_string(value);
    if (depth() != 3 || !in_series_) return true;
    const auto key = key_at(3);
    if (key == "__name__") {
      scratch_.first.assign(value);
      has_name_ = true;
    } else {
      label_name(key);
    }
    return true;
  }
  bool on_number(double) override { return on_other(); }
  bool on_other() override {
    envelope_reader::on_other();
    // Only string labels count, as in the label sets Prometheus sends; a later non-string
    // value of a key takes it back, as a document would keep the last.
    if (depth() == 3 && in_series_) forget(key_at(3));
    return true;
  }

  void forget(std::string_view key) {
    if (key == "__name__") has_name_ = false;
    forget_label(key);
  }

  void label_name(std::string_view key) {
    auto& names = scratch_.second;
    for (std::size_t i = 0; i < names_; ++i)
      if (names[i] == key) return;
    if (names_ < names.size()) {
      names[names_].assign(key);
    } else {
      names.emplace_back(key);
    }
    ++names_;
  }
  void forget_label(std::string_view key) {
    auto& names = scratch_.second;
    for (std::size_t i = 0; i < names_; ++i)
      if (names[i] == key) {
        std::swap(names[i], names[names_ - 1]);
        --names_;
        return;
      }
  }
  /// The shape of the series just read: looked up with the reused scratch, copied only when new.
  bool add_shape() {
    if (!has_name_) return true;
    auto& names = scratch_.second;
    std::vector<std::string> spare(std::make_move_iterator(names.begin() + names_),
                                   std::make_move_iterator(names.end()));
    names.resize(names_);
    std::sort(names.begin(), names.end());
    if (!summary.shapes.contains(scratch_)) {
      if (summary.shapes.size() >= limits_.max_shapes) {
        over_limit = "more than " + std::to_string(limits_.max_shapes) +
                     " distinct series shapes (metric name and label names); raise "
                     "--discovery-max-series-shapes or narrow the seriesQuery";
        return false;
      }
      summary.shapes.insert(scratch_);
    }
    for (auto& s : spare) names.push_back(std::move(s));
    return true;
  }

  series_limits limits_;
  series_shape scratch_;
  std::size_t names_ = 0;  // label names of the current series: the first names_ of scratch_
  bool in_series_ = false;
  bool has_name_ = false;
};

series_reader::series_reader(unsigned status, series_limits limits)
    : limits_(limits),
      reader_(std::make_unique<series_reply_reader>(limits)),
      stream_(status, *reader_) {}

series_reader::~series_reader() = default;

bool series_reader::feed(std::string_view piece) {
  if (stream_.bytes() + piece.size() > limits_.max_reply_bytes) {
    reader_->over_limit = "the answer is larger than " + std::to_string(limits_.max_reply_bytes) +
                          " bytes; raise --discovery-max-reply-bytes or narrow the seriesQuery";
    return false;
  }
  return stream_.feed(piece);
}

decoded<series_summary> series_reader::finish() {
  if (reader_->over_limit)
    return reply_failure{errc::backend_error, "limit", *reader_->over_limit, true};
  if (!stream_.finish()) reader_->result.json = false;
  if (auto failed = classify(stream_.status(), reader_->result, stream_.body_start()))
    return *failed;
  if (!reader_->data_is_list) return unusable("data is not a list of series");
  reader_->summary.bytes = stream_.bytes();
  return std::move(reader_->summary);
}

core::health_check api_client::health(clock::duration window) const {
  std::lock_guard lock(mutex_);
  const auto where = "Prometheus at " + http_.target().host_header();
  if (refused_credentials_)
    return {"prometheus", false, where + " refused our credentials: " + last_problem_};
  if (last_usable_ != clock::time_point{} && clock::now() - last_usable_ < window)
    return {"prometheus", true, ""};
  return {"prometheus", false,
          where + " has not answered recently" +
              (last_problem_.empty() ? "" : " (last error: " + last_problem_ + ")")};
}

void api_client::record(bool usable, bool refused_credentials, std::string problem) {
  std::lock_guard lock(mutex_);
  // A refusal stands until an answer succeeds: a timeout in between says nothing about our
  // credentials.
  if (usable) {
    last_usable_ = clock::now();
    refused_credentials_ = false;
  } else if (refused_credentials) {
    refused_credentials_ = true;
  }
  up_.Set(usable ? 1 : 0);
  if (!problem.empty()) last_problem_ = std::move(problem);
}

http_client::outgoing_request api_client::make_request(const char* endpoint,
                                                       std::string params) const {
  http_client::outgoing_request request;
  const std::string path = std::string("/api/v1/") + endpoint;
  if (verb_ == request_verb::post) {
    request.method = http_client::bhttp::verb::post;
    request.target = path;
    request.body = std::move(params);
    request.content_type = "application/x-www-form-urlencoded";
  } else {
    request.target = path + "?" + params;
  }
  return request;
}

std::string api_client::backend_params() const {
  if (!parameters_.partial_response || backend_params_refused_.load(std::memory_order_relaxed))
    return "";
  return *parameters_.partial_response ? "&partial_response=true" : "&partial_response=false";
}

bool api_client::refused_backend_params(const std::string& sent, unsigned status,
                                        const reply_failure& failed) {
  // Thanos itself answers 400 naming partial_response only for a value it cannot parse, which
  // we never send: a 400 naming it comes from a backend that does not know it.
  if (sent.empty() || status != 400 || failed.detail.find("partial_response") == std::string::npos)
    return false;
  if (!backend_params_refused_.exchange(true))
    core::log::warning(
        "Prometheus at " + where() + " refuses the partial_response parameter (" + failed.detail +
        "): it is not Thanos, so nothing is lost by leaving it out; it is sent no more, and the "
        "request is sent again without it. --prometheus-partial-response=none says so up front");
  return true;
}

void api_client::account(const char* endpoint_label, clock::time_point started, unsigned status,
                         const std::optional<reply_failure>& failed, const std::string& context,
                         std::string_view promql) {
  latency_
      .Add({{"endpoint", endpoint_label}},
           ::prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                     2.5, 5, 10})
      .Observe(std::chrono::duration<double>(clock::now() - started).count());
  if (!failed) {
    record(true, false, "");
    return;
  }
  // Prometheus judging the query (400 bad_data, 422 execution) means it is up and accepts us.
  record(failed->answered || status == 400 || status == 422, refuses_credentials(status),
         failed->detail);
  errors_.Add({{"endpoint", endpoint_label}, {"reason", failed->reason}}).Increment();
  // Discovery logs its own failures, with the rules they cost.
  if (std::string_view(endpoint_label) == "series") return;
  // 400 and 422 are the backend's verdict on the query: bad_data, execution, and the limits of
  // Thanos' and Mimir's query frontends ("the query exceeded the maximum number of series ...
  // (err-mimir-max-series-per-query)"), whose message is the fix; the query shows what to fix.
  if (status == 400 || status == 422) {
    core::log::warning("prometheus query for " + context + " at " + where() +
                       " was refused by the backend (" + failed->detail +
                       "); the query: " + core::printable(promql, 2000));
    return;
  }
  core::log::warning(std::string("prometheus ") + endpoint_label + " for " + context + " at " +
                     where() + " failed: " + failed->detail);
}

namespace {

/// The failure of an exchange that brought no answer; `reason` is the transport's words
/// (body_handler::on_failure), when it gave any.
reply_failure transport_failure(const error_code& ec, const std::string& reason) {
  const bool unavailable = ec == errc::backend_unavailable;
  return reply_failure{unavailable ? errc::backend_unavailable : errc::backend_error,
                       unavailable ? "unavailable" : "protocol",
                       reason.empty() ? ec.message() : reason};
}

}  // namespace

net::awaitable<result<std::vector<sample>>> api_client::async_query(
    std::string promql, std::string context, std::size_t& reply_bytes, reply_failure* failure,
    std::vector<std::string>* warnings) {
  core::log::verbose(4, "prometheus query: " + promql);
  const auto started = clock::now();
  requests_.Add({{"endpoint", "query"}}).Increment();
  const std::string sent_backend_params = backend_params();
  auto request = make_request("query", "query=" + url_encode(promql) +
                                           "&timeout=" + std::to_string(query_timeout_.count()) +
                                           "ms" + sent_backend_params);
  // Decoded as it arrives into samples: the body is never held whole.
  std::optional<query_reader> reader;
  std::string transport_reason;
  http_client::body_handler handler{[&](const http_client::response_head& head) {
                                      reader.emplace(head.status, kMaxQueryReplyBytes);
                                      return true;
                                    },
                                    [&](std::string_view piece) { return reader->feed(piece); },
                                    [&](const std::string& why) { transport_reason = why; }};
  // Arguments of co_await calls are named locals (GCC 12 destroys such temporaries twice).
  const auto deadline = query_timeout_ + kNetworkMargin;
  auto status =
      co_await http_.async_request_streamed(std::move(request), deadline, std::move(handler));
  if (!status) {
    const auto failed = transport_failure(status.error(), transport_reason);
    account("query", started, 0, failed, context, promql);
    if (failure) *failure = failed;
    co_return make_error_code(failed.code);
  }
  reply_bytes = reader->bytes();
  auto samples = reader->finish();
  if (!samples && refused_backend_params(sent_backend_params, *status, samples.error()))
    co_return co_await async_query(std::move(promql), std::move(context), reply_bytes, failure,
                                   warnings);
  account("query", started, *status,
          samples ? std::nullopt : std::optional<reply_failure>(samples.error()), context, promql);
  if (samples && warnings) *warnings = reader->warnings();
  if (!samples) {
    if (failure) *failure = samples.error();
    co_return make_error_code(samples.error().code);
  }
  co_return std::move(*samples);
}

net::awaitable<result<series_summary>> api_client::async_series(
    std::vector<std::string> matches, std::chrono::system_clock::time_point start,
    series_limits limits, std::string context, std::optional<reply_failure>& failure) {
  const auto started = clock::now();
  requests_.Add({{"endpoint", "series"}}).Increment();
  const std::string sent_backend_params = backend_params();
  std::string params = "start=" + format_unix(start) + sent_backend_params;
  for (const auto& m : matches) params += "&match%5B%5D=" + url_encode(m);
  auto request = make_request("series", std::move(params));
  // The answer is read as it arrives: a reader per answer, made once its status is known.
  std::unique_ptr<series_reader> reader;
  std::string transport_reason;
  http_client::body_handler handler{[&](const http_client::response_head& head) {
                                      reader = std::make_unique<series_reader>(head.status, limits);
                                      return true;
                                    },
                                    [&](std::string_view piece) { return reader->feed(piece); },
                                    [&](const std::string& why) { transport_reason = why; }};
  const auto deadline = limits.timeout + kNetworkMargin;
  auto status =
      co_await http_.async_request_streamed(std::move(request), deadline, std::move(handler));
  if (!status) {
    failure = transport_failure(status.error(), transport_reason);
    account("series", started, 0, failure, context);
    co_return make_error_code(failure->code);
  }
  auto summary = reader->finish();
  if (!summary && refused_backend_params(sent_backend_params, *status, summary.error()))
    co_return co_await async_series(std::move(matches), start, limits, std::move(context), failure);
  account("series", started, *status,
          summary ? std::nullopt : std::optional<reply_failure>(summary.error()), context);
  if (!summary) {
    failure = summary.error();
    co_return make_error_code(summary.error().code);
  }
  co_return std::move(*summary);
}

}  // namespace gma::adapters::prometheus
