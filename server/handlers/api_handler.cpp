#include "server/handlers/api_handler.hpp"
#include "server/handlers/process_metrics.hpp"

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <prometheus/text_serializer.h>

#include <chrono>

#include "server/core/go_json.hpp"
#include "server/core/log.hpp"
#include "server/core/status.hpp"
#include "server/handlers/route.hpp"

namespace gma::handlers {
namespace {

using core::json;
constexpr const char* kJson = "application/json";

using http::reply;
using http::status_reply;

reply json_reply(unsigned status, const json& body) {
  return {status, kJson, core::to_go_json(body)};
}

#if defined(__aarch64__)
constexpr const char* kPlatform = "linux/arm64";
#elif defined(__x86_64__)
constexpr const char* kPlatform = "linux/amd64";
#else
constexpr const char* kPlatform = "linux/unknown";
#endif

/// The pods a labelSelector matched, as far as an empty answer's log line needs them: kept
/// without copying the names, since this is on every HPA request.
struct selection {
  bool applied = false;
  std::size_t count = 0;
  std::string first;
};

/// Why a list answer is empty, at --v=1: the HPA only reports "no metrics returned", and a
/// typo in a selector or a namespace looks just the same.
void log_empty_answer(const std::string& target, const std::string& metric,
                      const std::string& namespace_, const std::string& selector,
                      const selection& selected) {
  core::log::verbose(1, [&] {
    std::string why = "GET " + target + ": empty answer: ";
    const std::string where = namespace_.empty() ? "" : " in namespace " + namespace_;
    if (selected.applied && selected.count == 0)
      return why + "no pods" + where + " match labelSelector " + selector +
             " (as the pod list from the Kubernetes API has them)";
    if (selected.applied)
      return why +
             (selected.count == 1
                  ? "1 pod" + where + " matches labelSelector "
                  : std::to_string(selected.count) + " pods" + where + " match labelSelector ") +
             selector + ", but Prometheus has no series of " + metric + " for " +
             (selected.count == 1 ? "it (" : "them (e.g. ") + selected.first +
             "); --v=4 logs the PromQL, `check --explain` runs it";
    return why + "Prometheus has no series of " + metric + where +
           (selector.empty() ? "" : " matching " + selector) +
           "; --v=4 logs the PromQL, `check --explain` runs it";
  });
}

/// Maps a provider error to the Status the client sees; the detail stays in our log.
reply error_reply(const error_code& ec, const std::string& resource, const std::string& metric,
                  const std::string& target) {
  if (ec == errc::metric_not_found) return status_reply(core::metric_not_found(resource, metric));
  // Names the part that failed; the warning logged before this one, by the Prometheus client
  // or the pod cache, names its URL and the transport's or Prometheus' reason.
  const bool prometheus = ec == errc::backend_unavailable || ec == errc::backend_error;
  core::log::warning("GET " + target + ": " + (prometheus ? "Prometheus " : "") + ec.message() +
                     (prometheus ? " (the warning before this line says why)" : ""));
  return status_reply(core::provider_error_status(ec, resource, metric));
}

/// Parses a selector parameter; a parse error becomes a 400 Status in `error`.
bool parse_selector(const std::map<std::string, std::string>& query, const char* name,
                    core::label_selector& out, reply& error) {
  const auto it = query.find(name);
  if (it == query.end()) return true;
  std::string message;
  auto parsed = core::label_selector::parse(it->second, &message);
  if (!parsed) {
    error = status_reply(
        core::bad_request(std::string("invalid ") + name + " \"" + it->second + "\": " + message));
    return false;
  }
  out = std::move(*parsed);
  return true;
}

reply health_reply(const health_route& route, const std::map<std::string, std::string>& query,
                   const std::vector<const core::readiness_source*>& sources) {
  std::vector<core::health_check> checks = {{"ping", true, ""}};
  if (route.kind == "readyz")
    for (const auto* source : sources)
      for (auto& check : source->readiness_checks()) checks.push_back(std::move(check));
  if (!route.check.empty()) {
    for (const auto& check : checks)
      if (check.name == route.check)
        return {check.ok ? 200u : 500u, "text/plain; charset=utf-8",
                check.ok ? "ok" : "internal server error: " + check.reason + "\n"};
    return status_reply(core::resource_not_found());
  }
  bool ok = true;
  std::string listing;
  for (const auto& check : checks) {
    ok = ok && (check.ok || !check.required);
    listing += check.ok
                   ? "[+]" + check.name + " ok\n"
                   : "[-]" + check.name + " failed: " + check.reason +
                         (check.required ? "" : " (informational: not required for readiness)") +
                         "\n";
  }
  if (!ok) {
    core::log::verbose(1, route.kind + " check failed:\n" + listing);
    return {500, "text/plain; charset=utf-8", listing + route.kind + " check failed\n"};
  }
  if (query.contains("verbose"))
    return {200, "text/plain; charset=utf-8", listing + route.kind + " check passed\n"};
  return {200, "text/plain; charset=utf-8", "ok"};
}

}  // namespace

api_handler::api_handler(handler_dependencies deps)
    : deps_(std::move(deps)), metrics_(*deps_.registry) {}

namespace {

/// The answer to an exception out of a provider. A cancelled request (the server is shutting
/// down, and its session answers 503 itself) is expected and not an error.
reply answer_exception(const http::request& req, const std::exception& e, bool cancelled) {
  if (cancelled) {
    core::log::verbose(2, [&] { return req.method + " " + req.target + ": cancelled"; });
    return status_reply(core::service_unavailable("the server is shutting down"));
  }
  core::log::error(req.method + " " + req.target + ": unexpected error: " + e.what());
  return status_reply(core::internal_error("unable to fetch metrics"));
}

}  // namespace

boost::asio::awaitable<reply> api_handler::async_handle(http::request req) {
  const auto started = std::chrono::steady_clock::now();
  std::size_t route_kind = route(not_found_route{}).index();
  reply out;
  // Nothing a provider throws may end the connection without an answer: it is a 500 Status,
  // and the log says what was thrown.
  try {
    out = co_await async_dispatch(req, route_kind);
  } catch (const boost::system::system_error& e) {
    out = answer_exception(req, e, e.code() == boost::asio::error::operation_aborted);
  } catch (const std::exception& e) {
    out = answer_exception(req, e, false);
  }
  metrics_.observe(
      route_kind, out.status,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  core::log::verbose(
      3, [&] { return req.method + " " + req.target + " " + std::to_string(out.status); });
  co_return out;
}

boost::asio::awaitable<reply> api_handler::async_dispatch(const http::request& req,
                                                          std::size_t& route_kind) {
  const parsed_target parsed = parse_target(req.target);
  route_kind = parsed.target.index();
  if (req.method != "GET" && req.method != "HEAD")
    co_return status_reply(core::method_not_allowed());
  const auto& query = parsed.query;

  // Asked only by the discovery routes: serving() takes a lock, which the metric routes skip.
  const auto serving_resource_metrics = [this] {
    return deps_.resource_metrics.provider && deps_.resource_metrics.provider->serving();
  };
  if (std::holds_alternative<group_list_route>(parsed.target))
    co_return json_reply(200, core::api_group_list(serving_resource_metrics()));
  if (const auto* r = std::get_if<group_route>(&parsed.target)) {
    auto group = core::api_group(r->group, serving_resource_metrics());
    if (group.empty()) co_return status_reply(core::resource_not_found());
    co_return json_reply(200, group);
  }
  if (const auto* r = std::get_if<resource_metrics_route>(&parsed.target))
    co_return co_await async_answer_resource_metrics(deps_.resource_metrics, *r, query, req.target);
  if (const auto* r = std::get_if<resource_list_route>(&parsed.target)) {
    if (r->group == core::kResourceMetricsGroup) {
      if (!serving_resource_metrics()) co_return status_reply(core::resource_not_found());
      co_return json_reply(200, core::resource_metrics_resource_list());
    }
    if (r->group == core::kCustomGroup)
      co_return json_reply(
          200, core::custom_resource_list(r->version, deps_.custom->list_all_metrics()));
    co_return json_reply(200,
                         core::external_resource_list(deps_.external->list_all_external_metrics()));
  }
  if (const auto* r = std::get_if<custom_metric_route>(&parsed.target)) {
    reply error;
    core::custom_metric_query q{r->resource, r->namespace_, r->name, r->metric, {}, std::nullopt};
    core::label_selector objects;
    if (!parse_selector(query, "labelSelector", objects, error) ||
        !parse_selector(query, "metricLabelSelector", q.metric_selector, error))
      co_return error;
    if (r->name == "*" && !objects.empty()) {
      if (r->resource != "pods")
        co_return status_reply(core::metric_not_found(r->resource, r->metric));
      if (!deps_.pods)
        co_return status_reply(core::service_unavailable(
            "selecting pods by labelSelector needs access to the Kubernetes API: start the "
            "adapter with --lister-kubeconfig, or run it in a cluster with a service account "
            "that may list and watch pods"));
      auto names = deps_.pods->list_pod_names(r->namespace_, objects);
      if (!names) co_return error_reply(names.error(), r->resource, r->metric, req.target);
      q.only_names = std::move(*names);
    } else if (r->name == "*" && r->resource == "pods" && deps_.pods) {
      // Series of deleted pods linger in Prometheus for its lookback window: with the pod list
      // read, answer only for pods that exist. Before it is read, answer as without one.
      if (auto names = deps_.pods->list_pod_names(r->namespace_, objects))
        q.only_names = std::move(*names);
    }
    const std::string resource_name =
        r->name == "*" || r->resource == "namespaces" ? r->resource : r->resource + " " + r->name;
    const auto version =
        r->version == "v1beta1" ? core::custom_version::v1beta1 : core::custom_version::v1beta2;
    auto selector_copy = q.metric_selector;
    selection selected;
    if (r->name == "*" && !objects.empty() && q.only_names) {
      selected = {true, q.only_names->size(), {}};
      if (!q.only_names->empty() && core::log::enabled(1)) selected.first = q.only_names->front();
    }
    auto items = co_await deps_.custom->async_get_metric(std::move(q));
    if (!items) co_return error_reply(items.error(), resource_name, r->metric, req.target);
    if (items->empty())
      log_empty_answer(req.target, r->metric, r->namespace_, objects.to_string(), selected);
    co_return json_reply(200, core::metric_value_list(version, *items, selector_copy));
  }
  if (const auto* r = std::get_if<external_metric_route>(&parsed.target)) {
    reply error;
    core::external_metric_query q{r->namespace_, r->metric, {}};
    if (!parse_selector(query, "labelSelector", q.selector, error)) co_return error;
    // For an empty answer's log line only (the query takes the selector).
    const std::string selector = core::log::enabled(1) ? q.selector.to_string() : "";
    auto items = co_await deps_.external->async_get_external_metric(std::move(q));
    if (!items) co_return error_reply(items.error(), "namespaces", r->metric, req.target);
    if (items->empty()) log_empty_answer(req.target, r->metric, r->namespace_, selector, {});
    co_return json_reply(200, core::external_metric_value_list(*items));
  }
  if (const auto* r = std::get_if<health_route>(&parsed.target))
    co_return health_reply(*r, query, deps_.readiness);
  if (std::holds_alternative<version_route>(parsed.target)) {
    const std::string v = deps_.version;
    const auto dot = v.find('.');
    const std::string major = v.substr(1, dot - 1);
    const std::string minor = v.substr(dot + 1, v.find('.', dot + 1) - dot - 1);
    co_return json_reply(200, json{{"major", major},
                                   {"minor", minor},
                                   {"gitVersion", v},
                                   {"gitCommit", ""},
                                   {"gitTreeState", ""},
                                   {"buildDate", ""},
                                   {"goVersion", ""},
                                   {"compiler", "gcc"},
                                   {"platform", kPlatform}});
  }
  if (std::holds_alternative<self_metrics_route>(parsed.target)) {
    prometheus::TextSerializer serializer;
    auto families = deps_.registry->Collect();
    for (auto& family : collect_process_metrics()) families.push_back(std::move(family));
    co_return reply{200, "text/plain; version=0.0.4; charset=utf-8",
                    serializer.Serialize(families)};
  }
  co_return status_reply(core::resource_not_found());
}

}  // namespace gma::handlers
