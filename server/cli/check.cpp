#include "server/cli/check.hpp"

#include <algorithm>
#include <iostream>
#include <sstream>

#include "adapters/prometheus/resource_provider.hpp"
#include "server/cli/one_shot_backend.hpp"
#include "server/handlers/route.hpp"

namespace gma::cli {
namespace {

namespace prom = adapters::prometheus;

/// A full API path for an --explain request: "/apis/..." as it is; "namespaces/NS/METRIC" is an
/// external metric; anything else under namespaces/ is custom.metrics.k8s.io/v1beta2.
std::string explain_target(const std::string& request) {
  std::string target = request.starts_with("/") ? request : "/" + request;
  if (target.starts_with("/apis/")) return target;
  const std::string path = target.substr(0, target.find('?'));
  const bool external = std::count(path.begin(), path.end(), '/') == 3;
  return (external ? "/apis/external.metrics.k8s.io/v1beta1"
                   : "/apis/custom.metrics.k8s.io/v1beta2") +
         target;
}

/// The PromQL `request` would send (one query per serving rule), with a note when the pod
/// cache also filters the answer.
result<std::vector<std::string>> explain(const prom::rules_provider& rules,
                                         const prom::resource_provider& resources,
                                         const std::string& request, std::string& note) {
  const auto parsed = handlers::parse_target(explain_target(request));
  std::string selector_text;
  if (auto it = parsed.query.find("labelSelector"); it != parsed.query.end())
    selector_text = it->second;
  auto selector = core::label_selector::parse(selector_text);
  if (const auto* r = std::get_if<handlers::custom_metric_route>(&parsed.target)) {
    core::custom_metric_query q{r->resource, r->namespace_, r->name, r->metric, {}, std::nullopt};
    if (auto it = parsed.query.find("metricLabelSelector"); it != parsed.query.end())
      if (auto s = core::label_selector::parse(it->second)) q.metric_selector = *s;
    if (r->name == "*" && selector && !selector->empty())
      note = "  # served, this also selects the pods matching labelSelector=" + selector_text +
             " (read from the Kubernetes API)\n";
    return rules.explain_custom(q);
  }
  if (const auto* m = std::get_if<handlers::resource_metrics_route>(&parsed.target)) {
    // One query per namespace and resource, whatever the pods: the all-namespaces list sends
    // one for each namespace that has pods.
    if (m->resource == "pods" && !m->namespace_) return errc::path_not_found;
    note = "  # served, this answers for the " + m->resource +
           " of the Kubernetes API's list (cpu query, then memory query)\n";
    return resources.explain(m->resource == "pods" ? m->namespace_ : std::nullopt);
  }
  if (const auto* e = std::get_if<handlers::external_metric_route>(&parsed.target)) {
    if (!selector) return errc::invalid_selector;
    return rules.explain_external({e->namespace_, e->metric, *selector});
  }
  return errc::path_not_found;
}

/// What Prometheus made of one explained query.
struct query_outcome {
  bool ok = false;
  std::string said;  ///< "3 series", or Prometheus' error
};

/// Runs `promql` once against Prometheus, within the query timeout, so that `check` catches
/// PromQL that Prometheus rejects before a request does.
query_outcome run_once(one_shot_backend& backend, const std::string& promql,
                       const std::string& request) {
  prom::reply_failure failure{errc::backend_error, "error", ""};
  std::size_t reply_bytes = 0;
  const auto samples =
      backend.run(backend.api().async_query(promql, "--explain " + request, reply_bytes, &failure));
  if (!samples) return {false, "Prometheus: error: " + failure.detail};
  return {true, "Prometheus: " + std::to_string(samples->size()) + " series"};
}

/// Discovers against Prometheus, then prints what was found and every --explain with what
/// Prometheus answers to it; the exit code.
int discover_and_explain(const config::options& opts, prom::rules_config config) {
  one_shot_backend backend(opts);
  if (!backend.discover(std::move(config))) {
    std::cerr << "Error: discovery failed: Prometheus at " << opts.prometheus_url
              << " did not answer every series query\n";
    return 1;
  }
  const auto& rules = backend.rules();
  const prom::resource_provider resources(backend.api(), rules, backend.context().get_executor());
  for (const auto& line : rules.describe_discovered()) std::cout << line << "\n";
  if (const auto& r = rules.current_config()->resource)
    for (const char* resource : {"nodes", "pods"})
      std::cout << "resource " << resource << " (metrics.k8s.io/v1beta1): cpu from line "
                << r->cpu.line << ", memory from line " << r->memory.line << ", window "
                << core::go_duration_string(r->window) << "\n";
  int status = 0;
  for (const auto& request : opts.explain) {
    std::string note;
    const auto queries = explain(rules, resources, request, note);
    std::cout << "explain " << request << ":\n";
    if (!queries) {
      std::cout << "  error: " << queries.error().message() << "\n";
      status = 1;
      continue;
    }
    for (const auto& promql : *queries) {
      std::istringstream lines(promql);
      for (std::string line; std::getline(lines, line);) std::cout << "  " << line << "\n";
      const auto outcome = run_once(backend, promql, request);
      std::cout << "    => " << outcome.said << "\n";
      if (!outcome.ok) status = 1;
    }
    std::cout << note;
  }
  return status;
}

}  // namespace

int run_check(const config::options& opts) try {
  if (opts.config_file.empty()) {
    std::cerr << "Error: check needs --config FILE\n";
    return 1;
  }
  // Before anything is printed: "OK" followed by a usage error would read as a pass.
  if (!opts.explain.empty() && !opts.given.contains("prometheus-url")) {
    std::cerr << "Error: --explain needs --prometheus-url: the query names the series discovery "
                 "finds, and is run once against Prometheus\n";
    return 1;
  }
  auto config = load_rules_or_explain(opts.config_file);
  if (!config) return 1;
  std::cout << opts.config_file << ": OK (" << config->rules.size() << " rules, "
            << config->external_rules.size() << " external rules"
            << (config->resource ? ", resourceRules for metrics.k8s.io" : "") << ")\n";
  if (!opts.given.contains("prometheus-url")) return 0;
  return discover_and_explain(opts, std::move(*config));
} catch (const std::exception& e) {
  std::cerr << "Error: " << e.what() << "\n";
  return 1;
}

}  // namespace gma::cli
