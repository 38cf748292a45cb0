#include "adapters/prometheus/api_client.hpp"

#include <nlohmann/json.hpp>

#include "server/core/json_access.hpp"
#include "server/core/log.hpp"
#include "server/core/strings.hpp"

namespace gma::adapters::prometheus {

using http_client::url_encode;

namespace {

using clock = std::chrono::steady_clock;
// Time for the answer to travel back after Prometheus gives up at `timeout=`.
constexpr auto kNetworkMargin = std::chrono::milliseconds(500);

std::string format_unix(std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  return std::to_string(ms / 1000) + "." + std::to_string(1000 + ms % 1000).substr(1);
}

result<sample> parse_sample(const nlohmann::json& metric, const nlohmann::json& pair) {
  if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number() || !pair[1].is_string())
    return errc::backend_error;
  sample s;
  if (metric.is_object())
    for (const auto& [k, v] : metric.items())
      if (v.is_string()) s.labels[k] = v.get<std::string>();
  s.timestamp = pair[0].get<double>();
  s.value = pair[1].get<std::string>();
  return s;
}

}  // namespace

api_client::api_client(http_client::transport& http, request_verb verb,
                       std::chrono::milliseconds query_timeout, ::prometheus::Registry& registry)
    : http_(http),
      verb_(verb),
      query_timeout_(query_timeout),
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

std::optional<reply_failure> classify_reply(unsigned status, std::string_view body,
                                            nlohmann::json& doc) {
  doc = nlohmann::json::parse(body, nullptr, false);
  const bool json = !doc.is_discarded() && doc.is_object();
  const bool success = status >= 200 && status < 300 && json &&
                       core::string_at(doc, "status") == "success" && doc.contains("data");
  if (success) return std::nullopt;
  std::string detail = "HTTP " + std::to_string(status);
  const std::string error_type = core::string_at(doc, "errorType");
  const bool prometheus_error = json && core::string_at(doc, "status") == "error";
  if (prometheus_error) {
    detail +=
        ", errorType " + error_type + ": " + core::printable(core::string_at(doc, "error"), 500);
  } else {
    // Not Prometheus' own error (a proxy's page, AWS' {"message":...}, problem+json): its
    // start says why.
    detail += json ? ": " : ", not JSON: ";
    detail += core::printable(body, 200);
  }
  // 5xx is an outage: from a proxy in front of Prometheus whatever its body (a 503 page while
  // Prometheus restarts), Prometheus' own 503 (errorType timeout), VictoriaMetrics' (errorType
  // "503"). Prometheus judges the query itself with 400 bad_data and 422 execution.
  if (status >= 500)
    return reply_failure{errc::backend_unavailable,
                         status == 503 && prometheus_error ? "api_error" : "http_status", detail};
  if (error_type == "timeout" || error_type == "unavailable")
    return reply_failure{errc::backend_unavailable, "api_error", detail};
  return reply_failure{errc::backend_error, json ? "api_error" : "not_json", detail};
}

result<std::vector<sample>> decode_query_data(const nlohmann::json& data,
                                              const std::string& context) {
  const std::string type = core::string_at(data, "resultType");
  std::vector<sample> out;
  static const nlohmann::json kNone;
  const auto& result_field =
      data.is_object() && data.contains("result") ? data.at("result") : kNone;
  if (type == "vector" && result_field.is_array()) {
    for (const auto& element : result_field) {
      auto s = parse_sample(element.contains("metric") ? element["metric"] : nlohmann::json(),
                            element.contains("value") ? element["value"] : nlohmann::json());
      if (!s) {
        core::log::warning(
            "prometheus query for " + context +
            ": a sample is not [time, \"value\"]: " + core::printable(element.dump(), 200));
        return errc::backend_error;
      }
      out.push_back(std::move(*s));
    }
    return out;
  }
  if (type == "scalar") {
    auto s = parse_sample(nlohmann::json(), result_field);
    if (!s) {
      core::log::warning("prometheus query for " + context +
                         ": the scalar is not [time, \"value\"]");
      return errc::backend_error;
    }
    out.push_back(std::move(*s));
    return out;
  }
  core::log::warning("prometheus query for " + context + " returned the unsupported result type '" +
                     type + "'");
  return errc::backend_error;
}

result<std::vector<core::label_map>> decode_series_data(const nlohmann::json& data,
                                                        const std::string& context) {
  if (!data.is_array()) {
    core::log::warning("prometheus series for " + context + ": data is not a list of series");
    return errc::backend_error;
  }
  std::vector<core::label_map> out;
  for (const auto& series : data) {
    core::label_map labels;
    if (series.is_object())
      for (const auto& [k, v] : series.items())
        if (v.is_string()) labels[k] = v.get<std::string>();
    out.push_back(std::move(labels));
  }
  return out;
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

net::awaitable<result<nlohmann::json>> api_client::async_call(const char* endpoint_label,
                                                              std::string path, std::string params,
                                                              const std::string& context,
                                                              std::size_t& reply_bytes) {
  const auto started = clock::now();
  requests_.Add({{"endpoint", endpoint_label}}).Increment();
  result<http_client::response> res = errc::backend_unavailable;
  const auto deadline = query_timeout_ + kNetworkMargin;
  // Arguments of co_await calls are named locals (GCC 12 destroys such temporaries twice).
  if (verb_ == request_verb::post) {
    std::string form_type = "application/x-www-form-urlencoded";
    res = co_await http_.async_request(http_client::bhttp::verb::post, std::move(path),
                                       std::move(params), std::move(form_type), deadline);
  } else {
    std::string target = path + "?" + params;
    res = co_await http_.async_get(std::move(target), deadline);
  }
  latency_
      .Add({{"endpoint", endpoint_label}},
           ::prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                     2.5, 5, 10})
      .Observe(std::chrono::duration<double>(clock::now() - started).count());
  nlohmann::json doc;
  if (res) reply_bytes = res->body.size();
  std::optional<reply_failure> failed;
  if (!res) {
    const bool unavailable = res.error() == errc::backend_unavailable;
    failed = reply_failure{unavailable ? errc::backend_unavailable : errc::backend_error,
                           unavailable ? "unavailable" : "protocol", res.error().message()};
  } else {
    failed = classify_reply(res->status, res->body, doc);
  }
  if (!failed) {
    record(true, false, "");
    co_return std::move(doc["data"]);
  }
  const unsigned status = res ? res->status : 0;
  // Prometheus judging the query (400 bad_data, 422 execution) means it is up and accepts us.
  record(status == 400 || status == 422, refuses_credentials(status), failed->detail);
  errors_.Add({{"endpoint", endpoint_label}, {"reason", failed->reason}}).Increment();
  core::log::warning(std::string("prometheus ") + endpoint_label + " for " + context + " at " +
                     http_.target().host_header() + " failed: " + failed->detail);
  // json converts from an enum, so the error is placed explicitly.
  co_return result<nlohmann::json>(boost::system::in_place_error, make_error_code(failed->code));
}

net::awaitable<result<std::vector<sample>>> api_client::async_query(std::string promql,
                                                                    std::string context,
                                                                    std::size_t& reply_bytes) {
  core::log::verbose(4, "prometheus query: " + promql);
  std::string params =
      "query=" + url_encode(promql) + "&timeout=" + std::to_string(query_timeout_.count()) + "ms";
  std::string path = "/api/v1/query";
  auto data =
      co_await async_call("query", std::move(path), std::move(params), context, reply_bytes);
  if (!data) co_return data.error();
  co_return decode_query_data(*data, context);
}

net::awaitable<result<std::vector<core::label_map>>> api_client::async_series(
    std::vector<std::string> matches, std::chrono::system_clock::time_point start,
    std::string context, std::size_t& reply_bytes) {
  std::string params = "start=" + format_unix(start);
  for (const auto& m : matches) params += "&match%5B%5D=" + url_encode(m);
  std::string path = "/api/v1/series";
  auto data =
      co_await async_call("series", std::move(path), std::move(params), context, reply_bytes);
  if (!data) co_return data.error();
  co_return decode_series_data(*data, context);
}

}  // namespace gma::adapters::prometheus
