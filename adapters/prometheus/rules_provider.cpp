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

const char* outcome_name(core::cache_outcome outcome) {
  switch (outcome) {
    case core::cache_outcome::hit:
      return "hit";
    case core::cache_outcome::miss:
      return "miss";
    case core::cache_outcome::stale:
      return "stale";
    case core::cache_outcome::coalesced:
      return "coalesced";
  }
  return "?";
}

/// A cache key: fields joined by a byte that no rule fingerprint, series name, resource,
/// namespace (all validated names) or selector text contains.
template <class... Parts>
std::string cache_key(const Parts&... parts) {
  std::string key;
  ((key += parts, key += '\x1f'), ...);
  return key;
}

core::sys_seconds sample_time(double unix_seconds) {
  return core::sys_seconds(std::chrono::seconds(static_cast<long long>(std::floor(unix_seconds))));
}

}  // namespace

rules_provider::rules_provider(api_client& client, discovery_options options, rules_config config,
                               ::prometheus::Registry& registry, net::any_io_executor executor,
                               core::snapshot_cache_options cache)
    : client_(client),
      options_(options),
      discovered_gauge_(::prometheus::BuildGauge()
                            .Name("gma_discovered_metrics")
                            .Help("Metrics listed in discovery, by API group.")
                            .Register(registry)),
      discovery_runs_(::prometheus::BuildCounter()
                          .Name("gma_discovery_runs_total")
                          .Help("Metric discovery runs against Prometheus, by result.")
                          .Register(registry)),
      discovery_shapes_(::prometheus::BuildGauge()
                            .Name("gma_discovery_series_shapes")
                            .Help("Distinct series shapes (metric name and label names) that "
                                  "discovery holds, over all seriesQueries.")
                            .Register(registry)
                            .Add({})),
      discovery_series_(::prometheus::BuildGauge()
                            .Name("gma_discovery_last_series")
                            .Help("Series read by the last discovery run.")
                            .Register(registry)
                            .Add({})),
      discovery_bytes_(::prometheus::BuildGauge()
                           .Name("gma_discovery_last_reply_bytes")
                           .Help("Bytes of the series answers read by the last discovery run.")
                           .Register(registry)
                           .Add({})),
      discovery_duration_(::prometheus::BuildGauge()
                              .Name("gma_discovery_last_duration_seconds")
                              .Help("How long the last discovery run took.")
                              .Register(registry)
                              .Add({})),
      queries_(::prometheus::BuildCounter()
                   .Name("gma_prometheus_queries_total")
                   .Help("Queries sent to Prometheus for metric values, by rule (file:line) and "
                         "outcome (success, unavailable, error).")
                   .Register(registry)),
      warnings_(::prometheus::BuildCounter()
                    .Name("gma_prometheus_warnings_total")
                    .Help("Query answers that carried warnings (Thanos' partial answers, PromQL "
                          "annotations), served all the same, by rule (file:line).")
                    .Register(registry)),
      cache_entries_(::prometheus::BuildGauge()
                         .Name("gma_metric_cache_entries")
                         .Help("Answers held in the metric cache.")
                         .Register(registry)
                         .Add({})),
      cache_oldest_age_(::prometheus::BuildGauge()
                            .Name("gma_metric_cache_oldest_snapshot_age_seconds")
                            .Help("Age of the oldest answer in the metric cache: how far behind "
                                  "Prometheus an answer may be.")
                            .Register(registry)
                            .Add({})),
      cache_(std::move(executor), cache) {
  auto& requests = ::prometheus::BuildCounter()
                       .Name("gma_metric_cache_requests_total")
                       .Help(
                           "Answers asked of the metric cache, by result: hit, miss, stale "
                           "(past the TTL, served while Prometheus fails or is slow) or "
                           "coalesced (waited for a query another request started).")
                       .Register(registry);
  for (const auto outcome : {core::cache_outcome::hit, core::cache_outcome::miss,
                             core::cache_outcome::stale, core::cache_outcome::coalesced})
    cache_requests_[static_cast<std::size_t>(outcome)] =
        &requests.Add({{"result", outcome_name(outcome)}});
  state_ = build_state(std::make_shared<const rules_config>(std::move(config)));
}

net::awaitable<void> rules_provider::async_run_cache_refresh() {
  std::function<void()> after_tick = [this] {
    // A request that took the rules snapshot just before a reload may have put back an answer
    // of a removed rule; it goes here rather than being refreshed until nobody reads it.
    drop_answers_of_removed_rules();
    cache_entries_.Set(static_cast<double>(cache_.size()));
    cache_oldest_age_.Set(std::chrono::duration<double>(cache_.oldest_age()).count());
  };
  co_await cache_.async_run_refresher(std::move(after_tick));
}

void rules_provider::count(const std::vector<answer_cache::ticket>& tickets) {
  // One count per request, by the answer it waited longest for: a request that needed one
  // query is a miss even if its other rules' answers were in memory.
  const auto rank = [](core::cache_outcome o) {
    switch (o) {
      case core::cache_outcome::hit:
        return 0;
      case core::cache_outcome::stale:
        return 1;
      case core::cache_outcome::coalesced:
        return 2;
      case core::cache_outcome::miss:
        return 3;
    }
    return 3;
  };
  auto outcome = core::cache_outcome::hit;
  for (const auto& t : tickets)
    if (rank(t.outcome()) > rank(outcome)) outcome = t.outcome();
  cache_requests_[static_cast<std::size_t>(outcome)]->Increment();
}

std::shared_ptr<const rules_provider::state> rules_provider::snapshot() const {
  std::lock_guard lock(mutex_);
  return state_;
}

std::shared_ptr<const rules_provider::state> rules_provider::build_state(
    std::shared_ptr<const rules_config> config) const {
  auto s = std::make_shared<state>();
  s->config = config;
  for (const auto* rules : {&config->rules, &config->external_rules})
    for (const auto& rule : *rules) s->fingerprints.insert(rule.fingerprint);
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
          entries.push_back(
              {i, name, *resource, !forced_cluster_scoped(*resource),
               rule.metrics_query.uses("LabelValuesByName",
                                       rule.resources.label_for_resource(*resource).value_or(""))});
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
  const auto started = std::chrono::steady_clock::now();
  bool all_ok = true;
  bool any_ok = queries.empty();
  std::vector<failed_query> failed;
  std::uint64_t series = 0;
  std::uint64_t bytes = 0;
  for (const auto& query : queries) {
    std::vector<std::string> matches{query};
    std::string context = "the seriesQuery of " + rule_lines(config, query);
    std::optional<reply_failure> failure;
    auto found = co_await client_.async_series(std::move(matches),
                                               std::chrono::system_clock::now() - options_.max_age,
                                               options_.limits, context, failure);
    if (!found) {
      all_ok = false;
      auto why =
          failure.value_or(reply_failure{errc::backend_error, "error", found.error().message()});
      std::lock_guard lock(mutex_);
      failed.push_back({query, why, last_series_.contains(query)});
      discovery_failures_.insert_or_assign(query, std::move(why));
      continue;
    }
    any_ok = true;
    series += found->series;
    bytes += found->bytes;
    core::log::verbose(2, "discovery for " + context + ": " + std::to_string(found->series) +
                              " series, " + std::to_string(found->shapes.size()) + " shapes, " +
                              std::to_string(found->bytes) + " bytes");
    std::lock_guard lock(mutex_);
    last_series_[query] = std::move(found->shapes);
    discovery_failures_.erase(query);
  }
  // One line per run for every failure of it (api_client leaves series failures to us).
  if (!failed.empty())
    core::log::warning("discovery from Prometheus at " + client_.where() + ": " +
                       describe_failures(config, failed, queries.size()));
  discovery_runs_.Add({{"result", all_ok ? "success" : "failure"}}).Increment();
  discovery_series_.Set(static_cast<double>(series));
  discovery_bytes_.Set(static_cast<double>(bytes));
  discovery_duration_.Set(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  {
    std::lock_guard lock(mutex_);
    reached_prometheus_ = any_ok;
    // Queries no rule asks any more are forgotten, with what they found.
    std::erase_if(last_series_, [&](const auto& e) { return !queries.contains(e.first); });
    std::erase_if(discovery_failures_, [&](const auto& e) { return !queries.contains(e.first); });
    std::size_t shapes = 0;
    for (const auto& [query, found] : last_series_) shapes += found.size();
    discovery_shapes_.Set(static_cast<double>(shapes));
  }
  co_return all_ok;
}

void rules_provider::adopt(rules_config config) {
  auto next = build_state(std::make_shared<const rules_config>(std::move(config)));
  discovered_gauge_.Add({{"group", core::kCustomGroup}})
      .Set(static_cast<double>(next->custom.size()));
  discovered_gauge_.Add({{"group", core::kExternalGroup}})
      .Set(static_cast<double>(next->external.size()));
  {
    std::lock_guard lock(mutex_);
    if (!discovered_ || state_->custom.size() != next->custom.size() ||
        state_->external.size() != next->external.size())
      core::log::info("discovered " + std::to_string(next->custom.size()) + " custom and " +
                      std::to_string(next->external.size()) + " external metrics from " +
                      next->config->source);
    state_ = std::move(next);
    discovered_ = true;
  }
  if (const auto dropped = drop_answers_of_removed_rules())
    core::log::info("dropped " + std::to_string(dropped) +
                    " cached answers of rules that are no longer configured");
}

std::size_t rules_provider::drop_answers_of_removed_rules() {
  const auto s = snapshot();
  return cache_.drop_if([&](const std::string& tag) { return !s->fingerprints.contains(tag); });
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
    // A failed run was logged by async_discover, once. A failed query kept its previous
    // result, so what is adopted is never emptier than before.
    co_await async_discover(config);
    adopt(std::move(config));
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
  bool reached = false;
  std::vector<std::string> unserved;  // rules with no discovery on record, and why
  bool config_problem = false;
  const auto s = snapshot();
  {
    std::lock_guard lock(mutex_);
    discovered = discovered_;
    reached = reached_prometheus_;
    for (const auto& [query, failure] : discovery_failures_) {
      const bool over_bound = std::string_view(failure.reason) == "limit";
      const bool kept = last_series_.contains(query);
      // An outage is ridden out on what a query found before; an answer over a configured
      // bound fails the same way at every relist, so it is shown even then.
      if (kept && !over_bound) continue;
      unserved.push_back(rule_lines(*s->config, query) + ": " + failure.detail +
                         (kept ? " (serving what it found before)" : ""));
      // A rule never discovered because of a bound is a configuration problem a rollout should
      // stop on: required. One that keeps its last shapes still serves: informational.
      config_problem = config_problem || (over_bound && !kept);
    }
  }
  const auto window = std::max<std::chrono::steady_clock::duration>(
      2 * options_.relist_interval + std::chrono::seconds(5), std::chrono::seconds(30));
  const bool required = options_.readiness_requires_prometheus;
  auto prometheus = client_.health(window);
  prometheus.required = required;
  std::string reason;
  if (!discovered) {
    reason = "no metric discovery has succeeded yet";
  } else if (!unserved.empty()) {
    reason = "discovery failing for " + core::join(unserved, "; ");
  } else if (!reached) {
    // Every rule still serves what it found before, but nothing is being discovered.
    reason = "every series query failed in the last discovery run; serving what was found before";
  }
  // Every query failing while earlier results are served is an outage, which the prometheus
  // check rides out within its window: informational here even with
  // --readiness-requires-prometheus, so that one failed relist does not unready every replica.
  const bool outage_only = discovered && !reached && unserved.empty();
  return {{"metric-discovery", discovered && reached && unserved.empty(), std::move(reason),
           (required && !outage_only) || config_problem},
          std::move(prometheus)};
}

std::vector<std::string> rules_provider::rule_locations(const rules_config& config,
                                                        const std::string& series_query) {
  std::vector<std::string> out;
  for (const auto* rules : {&config.rules, &config.external_rules})
    for (const auto& rule : *rules)
      if (rule.series_query == series_query)
        out.push_back(config.source + ":" + std::to_string(rule.line));
  return out;
}

std::string rules_provider::rule_lines(const rules_config& config,
                                       const std::string& series_query) {
  const auto where = rule_locations(config, series_query);
  return (where.size() == 1 ? "the rule at " : "the rules at ") + core::join(where, ", ");
}

std::string rules_provider::describe_failures(const rules_config& config,
                                              const std::vector<failed_query>& failed,
                                              std::size_t asked) {
  // Grouped by cause, in the order first seen: an outage is one cause for every query.
  std::vector<std::pair<std::string, std::vector<const failed_query*>>> causes;
  for (const auto& f : failed) {
    auto it = std::find_if(causes.begin(), causes.end(),
                           [&](const auto& c) { return c.first == f.failure.detail; });
    if (it == causes.end()) it = causes.insert(causes.end(), {f.failure.detail, {}});
    it->second.push_back(&f);
  }
  std::vector<std::string> parts;
  for (const auto& [detail, queries] : causes) {
    std::vector<std::string> rules;
    std::size_t kept = 0;
    for (const auto* q : queries) {
      for (auto& r : rule_locations(config, q->query)) rules.push_back(std::move(r));
      kept += q->kept ? 1 : 0;
    }
    // One query names itself; several are counted, unless they are every failure of the run.
    std::string part;
    if (queries.size() == 1) {
      part = "series query " + core::printable(queries.front()->query, 300) + " failed ";
    } else if (causes.size() > 1) {
      part = std::to_string(queries.size()) + " of them failed ";
    }
    part += "(" + detail + ") for " + (rules.size() == 1 ? "the rule at " : "the rules at ") +
            core::join(rules, ", ") + "; ";
    // Say what the rules serve meanwhile, and never "keeping" what does not exist.
    if (kept == queries.size()) {
      part +=
          queries.size() == 1 ? "keeping its previous result" : "keeping their previous results";
    } else if (kept == 0) {
      part += "no metrics from " + std::string(queries.size() == 1 ? "it" : "them") + " yet";
    } else {
      part += "keeping the previous results of " + std::to_string(kept) + "; " +
              std::to_string(queries.size() - kept) + " have no metrics yet";
    }
    parts.push_back(std::move(part));
  }
  // "2 of 12 series queries failed: series query Q failed (...)", or, for one cause shared by
  // several, "12 of 12 series queries failed (...)".
  const bool one_cause_of_several = causes.size() == 1 && failed.size() > 1;
  return std::to_string(failed.size()) + " of " + std::to_string(asked) + " series queries failed" +
         (one_cause_of_several ? " " : ": ") + core::join(parts, "; and ");
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

result<const std::vector<rules_provider::custom_entry>*> rules_provider::custom_entries(
    const state& s, const core::custom_metric_query& query) const {
  const auto it = s.custom.find({query.metric, query.group_resource});
  if (it == s.custom.end()) return unknown_metric();
  const bool namespaced = it->second.front().namespaced;
  if (namespaced && !valid_object_name(query.namespace_)) return errc::metric_not_found;
  if (query.name != "*" && !valid_object_name(query.name)) return errc::metric_not_found;
  return &it->second;
}

rules_provider::custom_scope rules_provider::scope_of(const custom_entry& entry,
                                                      const core::custom_metric_query& query) {
  custom_scope scope;
  if (entry.namespaced) scope.namespace_ = query.namespace_;
  if (query.name != "*" &&
      (entry.needs_names || entry.resource == group_resource{"", "namespaces"})) {
    // A namespace is its own scope: asking for one namespace object costs what asking for the
    // namespace's pods does, and keeps the built-in rules' `unless` within that namespace.
    scope.names.push_back(query.name);
  } else if (entry.needs_names && query.only_names) {
    // Above this many characters the names leave the query (VictoriaMetrics refuses regexes
    // over 16 KiB, prometheus-adapter#668), as they did before the cache.
    constexpr std::size_t kMaxNamesInQuery = 8192;
    std::size_t length = 0;
    for (const auto& n : *query.only_names) length += n.size() + 1;
    if (length <= kMaxNamesInQuery) scope.names = *query.only_names;
  }
  return scope;
}

namespace {

/// A query that rendered empty (a rule without metricsQuery, or one that prints nothing) is not
/// sent: prometheus-adapter sends it and answers Prometheus' refusal with a 500, which is what
/// this answers too, with the rule named in the log. A template that fails to execute is a 500
/// there too; the log says why.
result<std::string> sendable(result<std::string> promql, const std::string& execution_error,
                             const std::string& source, const discovery_rule& rule) {
  const std::string where =
      "the metricsQuery of the rule at " + source + ":" + std::to_string(rule.line);
  if (!promql && !execution_error.empty())
    core::log::warning(where + " failed: " + execution_error + ": answering 500");
  if (promql && promql->empty()) {
    core::log::warning(where + " rendered empty: answering 500");
    return errc::backend_error;
  }
  return promql;
}

}  // namespace

result<std::string> rules_provider::custom_promql(const state& s, const custom_entry& entry,
                                                  const core::custom_metric_query& query) {
  const auto& rule = s.config->rules[entry.rule];
  const auto scope = scope_of(entry, query);
  std::string error;
  auto promql = render_custom_query(rule, entry.series, entry.resource, scope.namespace_,
                                    scope.names, query.metric_selector, &error);
  return sendable(std::move(promql), error, s.config->source, rule);
}

result<std::string> rules_provider::external_promql(const state& s, const external_entry& entry,
                                                    const core::external_metric_query& query) {
  const auto& rule = s.config->external_rules[entry.rule];
  std::string error;
  auto promql = render_external_query(rule, entry.series, query.namespace_, query.selector, &error);
  return sendable(std::move(promql), error, s.config->source, rule);
}

result<std::vector<std::string>> rules_provider::explain_custom(
    const core::custom_metric_query& query) const {
  const auto s = snapshot();
  const auto entries = custom_entries(*s, query);
  if (!entries) return entries.error();
  std::vector<std::string> out;
  for (const auto& entry : **entries) {
    auto promql = custom_promql(*s, entry, query);
    if (!promql) return promql.error();
    out.push_back(std::move(*promql));
  }
  return out;
}

rules_provider::answer_cache::ticket rules_provider::request_custom(
    const state& s, const custom_entry& entry, const core::custom_metric_query& query,
    const std::string& selector) {
  const auto& rule = s.config->rules[entry.rule];
  const auto scope = scope_of(entry, query);
  const std::string key =
      cache_key(rule.fingerprint, entry.series, entry.resource.str(), scope.namespace_.value_or(""),
                core::join(scope.names, "|"), selector);
  return cache_.request(key, [&] {
    std::string what = "the rule at " + s.config->source + ":" + std::to_string(rule.line) +
                       " for " + entry.resource.str();
    if (scope.namespace_) what += " in namespace " + *scope.namespace_;
    if (!scope.names.empty()) what += " " + core::printable(core::join(scope.names, ","), 200);
    if (!selector.empty()) what += " with metricLabelSelector " + selector;
    return source_for(*s.config, rule, "rule", std::move(what), custom_promql(s, entry, query),
                      rule.resources.label_for_resource(entry.resource).value_or(""));
  });
}

rules_provider::answer_cache::ticket rules_provider::request_external(
    const state& s, const external_entry& entry, const core::external_metric_query& query,
    const std::string& selector) {
  const auto& rule = s.config->external_rules[entry.rule];
  const std::string namespace_ = entry.namespaced ? query.namespace_ : std::string();
  const std::string key = cache_key(rule.fingerprint, entry.series, namespace_, selector);
  return cache_.request(key, [&] {
    std::string what = "the external rule at " + s.config->source + ":" +
                       std::to_string(rule.line) + " for " + query.metric;
    if (entry.namespaced) what += " in namespace " + namespace_;
    if (!selector.empty()) what += " with labelSelector " + selector;
    return source_for(*s.config, rule, "external rule", std::move(what),
                      external_promql(s, entry, query), "");
  });
}

rules_provider::answer_cache::source rules_provider::source_for(
    const rules_config& config, const discovery_rule& rule, const std::string& rule_kind,
    std::string what, result<std::string> promql, std::string object_label) {
  if (!promql) {
    const error_code error = promql.error();
    return {rule.fingerprint, std::move(what), [error] { return failed_fetch(error); }};
  }
  std::string label = config.source + ":" + std::to_string(rule.line);
  std::string context = "the " + rule_kind + " at " + label;
  return {rule.fingerprint, std::move(what),
          [this, promql = std::move(*promql), label = std::move(label),
           context = std::move(context), object_label = std::move(object_label)] {
            return async_fetch(promql, label, context, object_label);
          }};
}

net::awaitable<result<std::shared_ptr<const rules_provider::rule_snapshot>>>
rules_provider::failed_fetch(error_code error) {
  co_return error;
}

net::awaitable<result<std::shared_ptr<const rules_provider::rule_snapshot>>>
rules_provider::async_fetch(std::string promql, std::string rule, std::string context,
                            std::string object_label) {
  // Declared first, so that it runs after the reply and its samples are freed.
  core::trim_heap_after trim;
  std::size_t reply_bytes = 0;
  std::vector<std::string> warnings;
  auto samples =
      co_await client_.async_query(std::move(promql), context, reply_bytes, nullptr, &warnings);
  trim.bytes += reply_bytes;
  if (!warnings.empty()) note_warnings(rule, context, warnings);
  const char* outcome = samples                                        ? "success"
                        : samples.error() == errc::backend_unavailable ? "unavailable"
                                                                       : "error";
  queries_.Add({{"rule", rule}, {"outcome", outcome}}).Increment();
  if (!samples) co_return samples.error();
  auto snapshot = std::make_shared<rule_snapshot>();
  snapshot->rows.reserve(samples->size());
  for (auto& sample : *samples) {
    std::string object;
    if (!object_label.empty()) {
      const auto it = sample.labels.find(object_label);
      if (it == sample.labels.end()) continue;
      object = it->second;
    }
    auto value = servable_value(sample, context);
    if (!value) continue;
    core::label_map labels;
    if (object_label.empty()) {
      sample.labels.erase("__name__");
      labels = std::move(sample.labels);
    }
    snapshot->rows.push_back(
        {std::move(object), std::move(labels), sample_time(sample.timestamp), *value});
  }
  if (!object_label.empty()) {
    // One row per object, the first Prometheus gave winning, sorted for lookups by name.
    auto& rows = snapshot->rows;
    std::stable_sort(rows.begin(), rows.end(),
                     [](const auto& a, const auto& b) { return a.object < b.object; });
    rows.erase(std::unique(rows.begin(), rows.end(),
                           [](const auto& a, const auto& b) { return a.object == b.object; }),
               rows.end());
  }
  co_return snapshot;
}

void rules_provider::note_warnings(const std::string& rule, const std::string& context,
                                   const std::vector<std::string>& warnings) const {
  warnings_.Add({{"rule", rule}}).Increment();
  {
    std::lock_guard lock(mutex_);
    if (!warnings_logged_.insert(rule).second) return;
  }
  std::string text;
  for (const auto& w : warnings)
    text += (text.empty() ? "\"" : "; \"") + core::printable(w, 500) + "\"";
  core::log::warning("the answer for " + context + " at " + client_.where() +
                     " carried warnings (served all the same; logged once for this rule, counted "
                     "in gma_prometheus_warnings_total): " +
                     text);
}

net::awaitable<result<std::vector<std::shared_ptr<const rules_provider::rule_snapshot>>>>
rules_provider::async_wait_all(std::vector<answer_cache::ticket> tickets) {
  count(tickets);
  co_return co_await cache_.async_wait_all(std::move(tickets));
}

net::awaitable<result<std::vector<core::metric_value>>> rules_provider::async_get_metric(
    core::custom_metric_query query) {
  const auto s = snapshot();  // the whole request uses one config
  const auto entries = custom_entries(*s, query);
  if (!entries) co_return entries.error();
  if (query.only_names && query.only_names->empty()) co_return std::vector<core::metric_value>{};
  if (query.only_names) {
    auto& names = *query.only_names;  // ours: sorted, so keys and the answer come out sorted
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
  }
  const std::string selector = query.metric_selector.to_string();
  std::vector<answer_cache::ticket> tickets;
  tickets.reserve((*entries)->size());
  for (const auto& entry : **entries) tickets.push_back(request_custom(*s, entry, query, selector));
  auto answers = co_await async_wait_all(std::move(tickets));
  if (!answers) co_return answers.error();

  // The row for an object from the first rule that has one.
  const auto row_of = [&](const std::string& name) -> const rule_snapshot::row* {
    for (const auto& answer : *answers) {
      const auto it = std::lower_bound(
          answer->rows.begin(), answer->rows.end(), name,
          [](const rule_snapshot::row& r, const std::string& n) { return r.object < n; });
      if (it != answer->rows.end() && it->object == name) return &*it;
    }
    return nullptr;
  };
  const auto& front = (*entries)->front();
  // Named, not a structured binding: clang 14 cannot capture one in the lambda below (P1091).
  const auto kind_version = kind_and_version(front.resource);
  const std::string& kind = kind_version.first;
  const std::string& api_version = kind_version.second;
  const std::string namespace_ = front.namespaced ? query.namespace_ : std::string();
  std::vector<core::metric_value> items;
  const auto add = [&](const rule_snapshot::row& row) {
    items.push_back(
        {{kind, namespace_, row.object, api_version}, query.metric, row.timestamp, row.value});
  };
  if (query.name != "*") {
    if (const auto* row = row_of(query.name)) add(*row);
    if (items.empty()) co_return errc::metric_not_found;
  } else if (query.only_names) {
    for (const auto& name : *query.only_names)
      if (const auto* row = row_of(name)) add(*row);
  } else {
    for (auto it = answers->begin(); it != answers->end(); ++it) {
      // Two rules with the same text share one cached answer: list its objects once.
      if (std::find(answers->begin(), it, *it) != it) continue;
      for (const auto& row : (*it)->rows)
        if (row_of(row.object) == &row) add(row);
    }
    std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
      return a.described_object.name < b.described_object.name;
    });
  }
  co_return items;
}

result<const std::vector<rules_provider::external_entry>*> rules_provider::external_entries(
    const state& s, const core::external_metric_query& query) const {
  const auto it = s.external.find(query.metric);
  if (it == s.external.end()) return unknown_metric();
  for (const auto& entry : it->second)
    if (entry.namespaced && !valid_object_name(query.namespace_)) return errc::metric_not_found;
  return &it->second;
}

result<std::vector<std::string>> rules_provider::explain_external(
    const core::external_metric_query& query) const {
  const auto s = snapshot();
  const auto entries = external_entries(*s, query);
  if (!entries) return entries.error();
  std::vector<std::string> out;
  for (const auto& entry : **entries) {
    auto promql = external_promql(*s, entry, query);
    if (!promql) return promql.error();
    out.push_back(std::move(*promql));
  }
  return out;
}

net::awaitable<result<std::vector<core::external_metric_value>>>
rules_provider::async_get_external_metric(core::external_metric_query query) {
  const auto s = snapshot();
  const auto entries = external_entries(*s, query);
  if (!entries) co_return entries.error();
  const std::string selector = query.selector.to_string();
  std::vector<answer_cache::ticket> tickets;
  tickets.reserve((*entries)->size());
  for (const auto& entry : **entries)
    tickets.push_back(request_external(*s, entry, query, selector));
  auto answers = co_await async_wait_all(std::move(tickets));
  if (!answers) co_return answers.error();
  std::vector<core::external_metric_value> items;
  for (auto it = answers->begin(); it != answers->end(); ++it) {
    if (std::find(answers->begin(), it, *it) != it) continue;  // as in async_get_metric
    for (const auto& row : (*it)->rows)
      items.push_back({query.metric, row.labels, row.timestamp, row.value});
  }
  std::sort(items.begin(), items.end(),
            [](const auto& a, const auto& b) { return a.labels < b.labels; });
  co_return items;
}

}  // namespace gma::adapters::prometheus
