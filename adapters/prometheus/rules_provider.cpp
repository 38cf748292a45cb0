#include "adapters/prometheus/rules_provider.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cmath>

#include "adapters/prometheus/rules_query.hpp"
#include "server/core/log.hpp"
#include "server/core/memory.hpp"
#include "server/core/strings.hpp"

namespace gma::adapters::prometheus {
namespace {

// Above this many characters the names leave the query (VictoriaMetrics refuses regexes over
// 16 KiB, prometheus-adapter#668) and the answer is filtered here instead.
constexpr std::size_t kMaxNamesInQuery = 8192;
// How many left-out series are remembered so that each is logged once.
constexpr std::size_t kMaxUnservableLogged = 10000;

bool forced_cluster_scoped(const group_resource& r) {
  return r.group.empty() &&
         (r.resource == "namespaces" || r.resource == "nodes" || r.resource == "persistentvolumes");
}

/// The ObjectReference kind and apiVersion of a resource, for the common ones; others get a
/// capitalised singular and v1.
std::pair<std::string, std::string> kind_and_version(const group_resource& r) {
  static const std::map<std::string, std::string> kinds = {
      {"pods", "Pod"},
      {"namespaces", "Namespace"},
      {"nodes", "Node"},
      {"services", "Service"},
      {"deployments", "Deployment"},
      {"statefulsets", "StatefulSet"},
      {"daemonsets", "DaemonSet"},
      {"replicasets", "ReplicaSet"},
      {"jobs", "Job"},
      {"ingresses", "Ingress"},
      {"persistentvolumeclaims", "PersistentVolumeClaim"},
      {"persistentvolumes", "PersistentVolume"}};
  std::string kind;
  if (auto it = kinds.find(r.resource); it != kinds.end()) {
    kind = it->second;
  } else {
    kind = singular_resource(r.resource);
    if (!kind.empty())
      kind[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(kind[0])));
  }
  return {kind, r.group + "/v1"};
}

/// Object and namespace names are DNS-1123 subdomains. Anything else names no object, and
/// checking keeps LabelValuesByName (rendered raw, as the reference does) harmless.
bool valid_object_name(const std::string& s) { return core::is_dns_subdomain(s); }

core::sys_seconds sample_time(double unix_seconds) {
  return core::sys_seconds(std::chrono::seconds(static_cast<long long>(std::floor(unix_seconds))));
}

}  // namespace

rules_provider::rules_provider(api_client& client, discovery_options options, rules_config config,
                               ::prometheus::Registry& registry)
    : client_(client),
      options_(options),
      discovered_gauge_(::prometheus::BuildGauge()
                            .Name("gma_discovered_metrics")
                            .Help("Metrics listed in discovery, by API group.")
                            .Register(registry)),
      discovery_runs_(::prometheus::BuildCounter()
                          .Name("gma_discovery_runs_total")
                          .Help("Metric discovery runs against Prometheus, by result.")
                          .Register(registry)) {
  state_ = build_state(std::make_shared<const rules_config>(std::move(config)));
}

std::shared_ptr<const rules_provider::state> rules_provider::snapshot() const {
  std::lock_guard lock(mutex_);
  return state_;
}

std::shared_ptr<const rules_provider::state> rules_provider::build_state(
    std::shared_ptr<const rules_config> config) const {
  auto s = std::make_shared<state>();
  s->config = config;
  std::map<std::string, std::set<series_shape>> series;
  {
    std::lock_guard lock(mutex_);
    series = last_series_;
  }
  for (std::size_t i = 0; i < config->rules.size(); ++i) {
    const auto& rule = config->rules[i];
    for (const auto& [name, labels] : series[rule.series_query]) {
      const auto metric = rule.metric_name(name);
      if (!metric || metric->empty()) continue;
      for (const auto& label : labels) {
        const auto resource = rule.resources.resource_for_label(label);
        if (!resource) continue;
        auto& entries = s->custom[{*metric, resource->str()}];
        if (entries.empty() || entries.back().rule != i)
          entries.push_back({i, name, *resource, !forced_cluster_scoped(*resource)});
      }
    }
  }
  for (std::size_t i = 0; i < config->external_rules.size(); ++i) {
    const auto& rule = config->external_rules[i];
    for (const auto& [name, labels] : series[rule.series_query]) {
      const auto metric = rule.metric_name(name);
      if (!metric || metric->empty()) continue;
      auto& entries = s->external[*metric];
      if (entries.empty() || entries.back().rule != i)
        entries.push_back({i, name, rule.resources.namespaced});
    }
  }
  return s;
}

std::vector<std::string> rules_provider::describe_discovered() const {
  const auto s = snapshot();
  std::vector<std::string> out;
  for (const auto& [key, entries] : s->custom) {
    std::string line = "custom   " + key.second + "/" + key.first + " (series " +
                       entries.front().series + ") from rule";
    for (const auto& e : entries)
      line += " " + s->config->source + ":" + std::to_string(s->config->rules[e.rule].line);
    out.push_back(line);
  }
  for (const auto& [metric, entries] : s->external) {
    std::string line = "external " + metric +
                       (entries.front().namespaced ? "" : " (not namespaced)") + " (series " +
                       entries.front().series + ") from rule";
    for (const auto& e : entries)
      line +=
          " " + s->config->source + ":" + std::to_string(s->config->external_rules[e.rule].line);
    out.push_back(line);
  }
  return out;
}

net::awaitable<bool> rules_provider::async_discover(const rules_config& config) {
  std::set<std::string> queries;
  for (const auto* rules : {&config.rules, &config.external_rules})
    for (const auto& rule : *rules) queries.insert(rule.series_query);
  bool all_ok = true;
  bool any_ok = queries.empty();
  for (const auto& query : queries) {
    std::vector<std::string> matches{query};
    std::string context = "the seriesQuery of " + rule_lines(config, query);
    // Declared before `found`, so it runs once the series are reduced and freed.
    core::trim_heap_after trim;
    auto found = co_await client_.async_series(std::move(matches),
                                               std::chrono::system_clock::now() - options_.max_age,
                                               std::move(context), trim.bytes);
    if (!found) {
      all_ok = false;
      core::log::warning("series query " + query + " failed (" + found.error().message() +
                         "); keeping its previous result");
      continue;
    }
    std::set<series_shape> shapes;
    for (const auto& labels : *found) {
      const auto name = labels.find("__name__");
      if (name == labels.end()) continue;
      std::vector<std::string> label_names;
      for (const auto& [k, v] : labels)
        if (k != "__name__") label_names.push_back(k);
      shapes.insert({name->second, std::move(label_names)});
    }
    any_ok = true;
    std::lock_guard lock(mutex_);
    last_series_[query] = std::move(shapes);
  }
  discovery_runs_.Add({{"result", all_ok ? "success" : "failure"}}).Increment();
  {
    std::lock_guard lock(mutex_);
    reached_prometheus_ = any_ok;
  }
  co_return all_ok;
}

void rules_provider::adopt(rules_config config) {
  auto next = build_state(std::make_shared<const rules_config>(std::move(config)));
  discovered_gauge_.Add({{"group", core::kCustomGroup}})
      .Set(static_cast<double>(next->custom.size()));
  discovered_gauge_.Add({{"group", core::kExternalGroup}})
      .Set(static_cast<double>(next->external.size()));
  std::lock_guard lock(mutex_);
  if (!discovered_ || state_->custom.size() != next->custom.size() ||
      state_->external.size() != next->external.size())
    core::log::info("discovered " + std::to_string(next->custom.size()) + " custom and " +
                    std::to_string(next->external.size()) + " external metrics from " +
                    next->config->source);
  state_ = std::move(next);
  discovered_ = true;
}

void rules_provider::request_reload(rules_config config) {
  {
    std::lock_guard lock(mutex_);
    pending_ = std::move(config);
  }
  if (timer_) net::post(timer_->get_executor(), [timer = timer_] { timer->cancel(); });
}

net::awaitable<void> rules_provider::async_run_discovery() {
  timer_ = std::make_shared<net::steady_timer>(co_await net::this_coro::executor);
  while (true) {
    std::optional<rules_config> next;
    {
      std::lock_guard lock(mutex_);
      next.swap(pending_);
    }
    rules_config config = next ? std::move(*next) : *snapshot()->config;
    const bool ok = co_await async_discover(config);
    // A failed query kept its previous result, so what is adopted is never emptier than before.
    adopt(std::move(config));
    if (!ok)
      core::log::verbose(1, "discovery incomplete; failed series queries keep their last result");
    timer_->expires_after(options_.relist_interval);
    co_await timer_->async_wait(net::as_tuple(net::use_awaitable));
  }
}

std::vector<core::custom_metric_info> rules_provider::list_all_metrics() const {
  std::vector<core::custom_metric_info> out;
  for (const auto& [key, entries] : snapshot()->custom)
    out.push_back({key.second, entries.front().namespaced, key.first});
  return out;
}

std::vector<core::external_metric_info> rules_provider::list_all_external_metrics() const {
  std::vector<core::external_metric_info> out;
  // Unlike the reference, namespaced: false rules are listed as not namespaced.
  for (const auto& [metric, entries] : snapshot()->external)
    out.push_back({metric, std::any_of(entries.begin(), entries.end(),
                                       [](const auto& e) { return e.namespaced; })});
  return out;
}

std::vector<core::health_check> rules_provider::readiness_checks() const {
  bool discovered = false;
  {
    std::lock_guard lock(mutex_);
    discovered = discovered_;
  }
  const auto window = std::max<std::chrono::steady_clock::duration>(
      2 * options_.relist_interval + std::chrono::seconds(5), std::chrono::seconds(30));
  const bool required = options_.readiness_requires_prometheus;
  auto prometheus = client_.health(window);
  prometheus.required = required;
  return {{"metric-discovery", discovered,
           discovered ? "" : "no metric discovery has succeeded yet", required},
          std::move(prometheus)};
}

std::string rules_provider::rule_lines(const rules_config& config,
                                       const std::string& series_query) {
  std::string lines;
  for (const auto* rules : {&config.rules, &config.external_rules})
    for (const auto& rule : *rules)
      if (rule.series_query == series_query)
        lines += (lines.empty() ? "" : ", ") + config.source + ":" + std::to_string(rule.line);
  return (lines.find(',') == std::string::npos ? "the rule at " : "the rules at ") + lines;
}

std::optional<core::quantity> rules_provider::servable_value(const sample& s,
                                                             const std::string& context) {
  auto value = core::quantity::from_sample(s.value);
  if (value) return *value;
  // Logged once per series (a bounded memory of them), not on every request.
  std::string series;
  for (const auto& [k, v] : s.labels) series += (series.empty() ? "" : ",") + k + "=" + v;
  {
    std::lock_guard lock(mutex_);
    if (unservable_logged_.size() >= kMaxUnservableLogged) unservable_logged_.clear();
    if (!unservable_logged_.insert(context + "{" + series + "}").second) return std::nullopt;
  }
  const std::string why = "leaving out the series {" + core::printable(series, 500) + "} of " +
                          context + ": its value " + core::printable(s.value, 40) +
                          " is not a finite number within +-" + core::quantity::kMaxSampleText +
                          ", which is what the HPA can read";
  // NaN is what an idle GPU reports for a ratio (0/0): expected, so only at --v=1.
  if (s.value == "NaN") {
    core::log::verbose(1, why);
  } else {
    core::log::warning(why);
  }
  return std::nullopt;
}

error_code rules_provider::unknown_metric() const {
  std::lock_guard lock(mutex_);
  // While discovery cannot reach Prometheus, "not found" would be a guess.
  return reached_prometheus_ ? make_error_code(errc::metric_not_found)
                             : make_error_code(errc::backend_unavailable);
}

result<std::vector<std::pair<std::string, const rules_provider::custom_entry*>>>
rules_provider::custom_queries(const state& s, const core::custom_metric_query& query) const {
  const auto it = s.custom.find({query.metric, query.group_resource});
  if (it == s.custom.end()) return unknown_metric();
  std::vector<std::pair<std::string, const custom_entry*>> out;
  for (const custom_entry& entry : it->second) {
    const auto& rule = s.config->rules[entry.rule];
    std::optional<std::string> namespace_;
    if (entry.namespaced) {
      if (!valid_object_name(query.namespace_)) return errc::metric_not_found;
      namespace_ = query.namespace_;
    }
    std::vector<std::string> names;
    if (query.name != "*") {
      if (!valid_object_name(query.name)) return errc::metric_not_found;
      names.push_back(query.name);
    } else if (query.only_names && query.names_narrow_query) {
      std::size_t length = 0;
      for (const auto& n : *query.only_names) length += n.size() + 1;
      if (length <= kMaxNamesInQuery) names = *query.only_names;
    }
    auto promql = render_custom_query(rule, entry.series, entry.resource, namespace_, names,
                                      query.metric_selector);
    if (!promql) return promql.error();
    if (promql->empty()) {
      core::log::warning("the metricsQuery of the rule at " + s.config->source + ":" +
                         std::to_string(rule.line) + " rendered empty");
      return errc::backend_error;
    }
    out.emplace_back(std::move(*promql), &entry);
  }
  return out;
}

result<std::string> rules_provider::explain_custom(const core::custom_metric_query& query) const {
  auto queries = custom_queries(*snapshot(), query);
  if (!queries) return queries.error();
  std::string out;
  for (const auto& q : *queries) out += (out.empty() ? "" : "\n") + q.first;
  return out;
}

net::awaitable<result<std::vector<core::metric_value>>> rules_provider::async_get_metric(
    core::custom_metric_query query) {
  // Declared first, so that it runs after every reply and sample of the request is freed.
  core::trim_heap_after trim;
  const auto s = snapshot();  // the whole request uses one config
  auto queries = custom_queries(*s, query);
  if (!queries) co_return queries.error();
  if (query.only_names && query.only_names->empty()) co_return std::vector<core::metric_value>{};
  std::optional<std::set<std::string>> allowed;
  if (query.name != "*") allowed.emplace(std::set<std::string>{query.name});
  if (query.only_names) allowed.emplace(query.only_names->begin(), query.only_names->end());
  std::vector<core::metric_value> items;
  std::set<std::string> answered;
  for (auto& [promql, entry] : *queries) {
    const auto& rule = s->config->rules[entry->rule];
    const auto label = rule.resources.label_for_resource(entry->resource);
    std::string context = "the rule at " + s->config->source + ":" + std::to_string(rule.line);
    std::size_t reply_bytes = 0;
    auto samples = co_await client_.async_query(std::move(promql), context, reply_bytes);
    trim.bytes += reply_bytes;
    if (!samples) co_return samples.error();
    const auto [kind, api_version] = kind_and_version(entry->resource);
    for (const auto& sample : *samples) {
      const auto object = sample.labels.find(*label);
      if (object == sample.labels.end() || (allowed && !allowed->contains(object->second)) ||
          answered.contains(object->second))
        continue;
      auto value = servable_value(sample, context);
      if (!value) continue;
      answered.insert(object->second);
      items.push_back(
          {{kind, entry->namespaced ? query.namespace_ : "", object->second, api_version},
           query.metric,
           sample_time(sample.timestamp),
           *value});
    }
  }
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
    return a.described_object.name < b.described_object.name;
  });
  if (items.empty() && query.name != "*") co_return errc::metric_not_found;
  co_return items;
}

result<std::vector<std::pair<std::string, int>>> rules_provider::external_queries(
    const state& s, const core::external_metric_query& query) const {
  const auto it = s.external.find(query.metric);
  if (it == s.external.end()) return unknown_metric();
  std::vector<std::pair<std::string, int>> out;
  for (const auto& entry : it->second) {
    if (entry.namespaced && !valid_object_name(query.namespace_)) return errc::metric_not_found;
    auto promql = render_external_query(s.config->external_rules[entry.rule], entry.series,
                                        query.namespace_, query.selector);
    if (!promql) return promql.error();
    out.emplace_back(std::move(*promql), s.config->external_rules[entry.rule].line);
  }
  return out;
}

result<std::string> rules_provider::explain_external(
    const core::external_metric_query& query) const {
  auto queries = external_queries(*snapshot(), query);
  if (!queries) return queries.error();
  std::string out;
  for (const auto& q : *queries) out += (out.empty() ? "" : "\n") + q.first;
  return out;
}

net::awaitable<result<std::vector<core::external_metric_value>>>
rules_provider::async_get_external_metric(core::external_metric_query query) {
  core::trim_heap_after trim;  // declared first, as in async_get_metric
  const auto s = snapshot();
  auto queries = external_queries(*s, query);
  if (!queries) co_return queries.error();
  std::vector<core::external_metric_value> items;
  for (auto& [promql, line] : *queries) {
    std::string context = "the external rule at " + s->config->source + ":" + std::to_string(line);
    std::size_t reply_bytes = 0;
    auto samples = co_await client_.async_query(std::move(promql), context, reply_bytes);
    trim.bytes += reply_bytes;
    if (!samples) co_return samples.error();
    for (auto& sample : *samples) {
      auto value = servable_value(sample, context);
      if (!value) continue;
      sample.labels.erase("__name__");
      items.push_back(
          {query.metric, std::move(sample.labels), sample_time(sample.timestamp), *value});
    }
  }
  std::sort(items.begin(), items.end(),
            [](const auto& a, const auto& b) { return a.labels < b.labels; });
  co_return items;
}

}  // namespace gma::adapters::prometheus
