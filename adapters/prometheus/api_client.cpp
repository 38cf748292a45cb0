#include "adapters/prometheus/api_client.hpp"

#include <nlohmann/json.hpp>

#include "server/core/log.hpp"

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

api_client::api_client(http_client::http_client& http, request_verb verb,
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
                   .Register(registry)) {}

clock::time_point api_client::last_success() const noexcept {
  return clock::time_point(clock::duration(last_success_.load()));
}

net::awaitable<result<std::string>> api_client::async_call(const char* endpoint_label,
                                                           std::string path, std::string params,
                                                           request_verb verb) {
  const auto started = clock::now();
  requests_.Add({{"endpoint", endpoint_label}}).Increment();
  auto fail = [&](const char* reason, errc code) -> result<std::string> {
    errors_.Add({{"endpoint", endpoint_label}, {"reason", reason}}).Increment();
    return code;
  };
  result<http_client::response> res = errc::backend_unavailable;
  const auto deadline = query_timeout_ + kNetworkMargin;
  // Arguments of co_await calls are named locals (GCC 12 destroys such temporaries twice).
  if (verb == request_verb::post) {
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
  if (!res) {
    core::log::warning(std::string("prometheus ") + endpoint_label + " request to " +
                       http_.target().host + ":" + http_.target().port +
                       " failed: " + res.error().message());
    co_return fail(
        res.error() == errc::backend_unavailable ? "unavailable" : "protocol",
        res.error() == errc::backend_unavailable ? errc::backend_unavailable : errc::backend_error);
  }
  // Prometheus answers 400/422/503 with a JSON error body; 5xx from a proxy is an outage.
  if (res->status >= 500 && res->status != 503 && res->status != 422) {
    core::log::warning(std::string("prometheus ") + endpoint_label + " answered HTTP " +
                       std::to_string(res->status) + ": " + res->body.substr(0, 300));
    co_return fail("http_status", errc::backend_unavailable);
  }
  last_success_ = clock::now().time_since_epoch().count();
  co_return std::move(res->body);
}

namespace {

/// Checks the {"status":"success","data":...} envelope and returns data.
result<nlohmann::json> json_error(errc e) {
  return result<nlohmann::json>(boost::system::in_place_error, make_error_code(e));
}

result<nlohmann::json> envelope_data(const std::string& body, const char* what) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    core::log::warning(std::string("prometheus ") + what +
                       ": response is not JSON: " + body.substr(0, 200));
    return json_error(errc::backend_error);
  }
  if (doc.value("status", "") != "success") {
    core::log::warning(std::string("prometheus ") + what +
                       " failed: " + doc.value("errorType", "") + ": " + doc.value("error", ""));
    // A query that timed out inside Prometheus is an availability problem, not a bad query.
    if (doc.value("errorType", "") == "timeout") return json_error(errc::backend_unavailable);
    return json_error(errc::backend_error);
  }
  if (!doc.contains("data")) return json_error(errc::backend_error);
  return std::move(doc["data"]);
}

}  // namespace

net::awaitable<result<std::vector<sample>>> api_client::async_query(std::string promql) {
  core::log::verbose(4, "prometheus query: " + promql);
  std::string params =
      "query=" + url_encode(promql) + "&timeout=" + std::to_string(query_timeout_.count()) + "ms";
  std::string path = "/api/v1/query";
  auto body = co_await async_call("query", std::move(path), std::move(params), verb_);
  if (!body) co_return body.error();
  auto data = envelope_data(*body, "query");
  if (!data) co_return data.error();
  const std::string type = data->value("resultType", "");
  std::vector<sample> out;
  const auto& result_field = (*data)["result"];
  if (type == "vector" && result_field.is_array()) {
    for (const auto& element : result_field) {
      auto s = parse_sample(element.contains("metric") ? element["metric"] : nlohmann::json(),
                            element.contains("value") ? element["value"] : nlohmann::json());
      if (!s) co_return errc::backend_error;
      out.push_back(std::move(*s));
    }
    co_return out;
  }
  if (type == "scalar") {
    auto s = parse_sample(nlohmann::json(), result_field);
    if (!s) co_return errc::backend_error;
    out.push_back(std::move(*s));
    co_return out;
  }
  core::log::warning("prometheus query returned unsupported result type '" + type + "'");
  co_return errc::backend_error;
}

net::awaitable<result<std::vector<core::label_map>>> api_client::async_series(
    std::vector<std::string> matches, std::chrono::system_clock::time_point start) {
  std::string params = "start=" + format_unix(start);
  for (const auto& m : matches) params += "&match%5B%5D=" + url_encode(m);
  std::string path = "/api/v1/series";
  auto body = co_await async_call("series", std::move(path), std::move(params), verb_);
  if (!body) co_return body.error();
  auto data = envelope_data(*body, "series");
  if (!data) co_return data.error();
  if (!data->is_array()) co_return errc::backend_error;
  std::vector<core::label_map> out;
  for (const auto& series : *data) {
    core::label_map labels;
    if (series.is_object())
      for (const auto& [k, v] : series.items())
        if (v.is_string()) labels[k] = v.get<std::string>();
    out.push_back(std::move(labels));
  }
  co_return out;
}

}  // namespace gma::adapters::prometheus
