#pragma once
/// @file Metrics from a prometheus-adapter rules file: discovery per distinct seriesQuery
/// (a failing query keeps its previous result), custom and external metrics rendered from the
/// rules' metricsQuery, and atomic swaps of a new configuration.
///
/// Requests are answered from a core::snapshot_cache of per-rule answers. A custom-metrics
/// request asks each serving rule once per namespace (per namespace object for namespace
/// metrics, once for the cluster for other cluster-scoped resources), without object names,
/// and picks its objects from the answer: so Prometheus' load grows with the (metric,
/// namespace, metric selector) triples in use, not with the HPAs or pods asking.
///
/// @par Thread safety
/// Request methods may run concurrently with discovery and reloads: they read an immutable
/// snapshot (config + what discovery found) taken under a mutex.
/// async_run_discovery must run on one strand, and request_reload must be called on that strand
/// too: it wakes the loop's timer, which only that strand touches. The client, the registry and the
/// executor's io_context are borrowed and must outlive the provider.

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "adapters/prometheus/api_client.hpp"
#include "adapters/prometheus/rules_config.hpp"
#include "server/core/provider.hpp"
#include "server/core/snapshot_cache.hpp"

namespace gma::adapters::prometheus {

struct discovery_options {
  std::chrono::seconds relist_interval{60};
  /// How far back discovery looks for series (`start=` of the series lookup).
  std::chrono::seconds max_age{60};
  /// Whether /readyz fails while Prometheus does not answer or no discovery has succeeded
  /// (--readiness-requires-prometheus). Off by default: an unready APIService breaks discovery
  /// for the whole cluster, while this replica can still answer with stale data or a 503.
  bool readiness_requires_prometheus = false;
  /// Bounds on each seriesQuery's answer (--discovery-max-reply-bytes,
  /// --discovery-max-series-shapes).
  series_limits limits;
};

class rules_provider final : public core::custom_metrics_provider,
                             public core::external_metrics_provider,
                             public core::readiness_source {
 public:
  /// Queries run on `executor`; `cache` sets the answers' TTL, stale window and bound (a zero
  /// TTL asks Prometheus for every request).
  rules_provider(api_client& client, discovery_options options, rules_config config,
                 ::prometheus::Registry& registry, net::any_io_executor executor,
                 core::snapshot_cache_options cache = {});

  /// Refreshes the answers being read before they expire and drops those nobody reads; updates
  /// the cache's gauges. Runs until cancelled; not needed with a zero TTL.
  net::awaitable<void> async_run_cache_refresh();

  /// Discovers now and every relist interval; a pending reload is discovered and swapped in
  /// at once. Runs until cancelled.
  net::awaitable<void> async_run_discovery();

  /// Queues a validated config: the discovery loop discovers it and swaps config and results
  /// in together, so requests see the old or the new one, never a mix.
  void request_reload(rules_config config);

  /// The PromQL a request would send (one query per serving rule), for `check --explain`;
  /// errc::metric_not_found when no discovered rule serves it.
  result<std::vector<std::string>> explain_custom(const core::custom_metric_query& query) const;
  result<std::vector<std::string>> explain_external(const core::external_metric_query& query) const;

  /// The rules in force now (what the last reload swapped in), for the resource provider.
  std::shared_ptr<const rules_config> current_config() const { return snapshot()->config; }

  /// Counts an answer with `warnings` for `rule` ("file:line") in gma_prometheus_warnings_total
  /// and logs them the first time the rule has any (Thanos warns on every answer while a store
  /// is down: one line, not one a request). Any thread; the resource provider's answers too.
  void note_warnings(const std::string& rule, const std::string& context,
                     const std::vector<std::string>& warnings) const;

  /// Every discovered metric with the line of each rule that serves it, for `check`.
  std::vector<std::string> describe_discovered() const;

  net::awaitable<result<std::vector<core::metric_value>>> async_get_metric(
      core::custom_metric_query query) override;
  std::vector<core::custom_metric_info> list_all_metrics() const override;
  net::awaitable<result<std::vector<core::external_metric_value>>> async_get_external_metric(
      core::external_metric_query query) override;
  std::vector<core::external_metric_info> list_all_external_metrics() const override;
  std::vector<core::health_check> readiness_checks() const override;

  /// One discovery run of `config` (public for `check`); false when any series query failed
  /// (its previous result, if any, was kept).
  net::awaitable<bool> async_discover(const rules_config& config);

  /// Swaps in a discovered config at once (used by `check`, which has no loop).
  void adopt(rules_config config);

 private:
  struct custom_entry {
    std::size_t rule;
    std::string series;
    group_resource resource;
    bool namespaced;
    /// The rule's metricsQuery prints the object names (LabelValuesByName of the resource's
    /// label): its query must carry them, so it is asked per object list, as before the cache.
    bool needs_names;
  };
  struct external_entry {
    std::size_t rule;
    std::string series;
    bool namespaced;
  };
  /// One rule's answer to one query, reduced to what requests read from it.
  struct rule_snapshot {
    struct row {
      std::string object;      ///< custom: the value of the resource's label
      core::label_map labels;  ///< external: the series' labels but __name__
      core::sys_seconds timestamp;
      core::quantity value;
    };
    std::vector<row> rows;  ///< custom: one per object, sorted (the first sample wins)
  };
  using answer_cache = core::snapshot_cache<rule_snapshot>;

  /// What one rule is asked for a custom request: the namespace (namespaced resources) and the
  /// object names in the query: only the namespace itself, for namespace metrics, unless the
  /// rule prints the names (custom_entry::needs_names).
  struct custom_scope {
    std::optional<std::string> namespace_;
    std::vector<std::string> names;
  };

  /// Several rules may serve one metric (say, one per label form of the same series); their
  /// answers are merged, the first rule winning for an object.
  struct state {
    std::shared_ptr<const rules_config> config;
    std::set<std::string> fingerprints;  ///< of every rule: cached answers of others are dropped
    std::map<std::pair<std::string, std::string>, std::vector<custom_entry>>
        custom;  // (metric, resource)
    std::map<std::string, std::vector<external_entry>> external;
  };

  std::shared_ptr<const state> snapshot() const;
  std::shared_ptr<const state> build_state(std::shared_ptr<const rules_config> config) const;
  /// The rules serving a custom request; metric_not_found for a name or namespace that no
  /// object can have.
  result<const std::vector<custom_entry>*> custom_entries(
      const state& s, const core::custom_metric_query& query) const;
  static custom_scope scope_of(const custom_entry& entry, const core::custom_metric_query& query);
  /// The PromQL one rule sends for a custom request.
  /// The rule's query for an external request; as custom_promql, never empty.
  static result<std::string> external_promql(const state& s, const external_entry& entry,
                                             const core::external_metric_query& query);
  static result<std::string> custom_promql(const state& s, const custom_entry& entry,
                                           const core::custom_metric_query& query);
  /// The rules serving an external request.
  result<const std::vector<external_entry>*> external_entries(
      const state& s, const core::external_metric_query& query) const;

  /// Asks the cache for one rule's answer; the source (the rendered query) is built only when
  /// the cache does not hold the key yet.
  answer_cache::ticket request_custom(const state& s, const custom_entry& entry,
                                      const core::custom_metric_query& query,
                                      const std::string& selector);
  answer_cache::ticket request_external(const state& s, const external_entry& entry,
                                        const core::external_metric_query& query,
                                        const std::string& selector);
  /// A cache source that sends `promql` (or fails with its rendering's error).
  /// `rule` is "file:line", the label of gma_prometheus_queries_total.
  answer_cache::source source_for(const rules_config& config, const discovery_rule& rule,
                                  const std::string& rule_kind, std::string what,
                                  result<std::string> promql, std::string object_label);
  /// Queries Prometheus and reduces the answer to a rule_snapshot. `object_label` empty: an
  /// external rule's answer.
  net::awaitable<result<std::shared_ptr<const rule_snapshot>>> async_fetch(
      std::string promql, std::string rule, std::string context, std::string object_label);
  /// The fetch of a query that could not be rendered: its error, without asking Prometheus.
  static net::awaitable<result<std::shared_ptr<const rule_snapshot>>> failed_fetch(
      error_code error);
  /// Counts the tickets' outcomes, then waits for them all (snapshot_cache::async_wait_all).
  net::awaitable<result<std::vector<std::shared_ptr<const rule_snapshot>>>> async_wait_all(
      std::vector<answer_cache::ticket> tickets);
  /// Drops the cached answers of rules the current config does not have; how many.
  std::size_t drop_answers_of_removed_rules();
  /// Counts a request in gma_metric_cache_requests_total.
  void count(const std::vector<answer_cache::ticket>& tickets);
  /// metric_not_found, or backend_unavailable while discovery cannot reach Prometheus.
  error_code unknown_metric() const;
  /// A seriesQuery whose discovery failed in this run, and whether it keeps an earlier result.
  struct failed_query {
    std::string query;
    reply_failure failure;
    bool kept = false;
  };
  /// "file:line" of each rule whose seriesQuery is `series_query`.
  static std::vector<std::string> rule_locations(const rules_config& config,
                                                 const std::string& series_query);
  /// "the rule(s) at file:line, ..." whose seriesQuery is `series_query`, for log lines.
  static std::string rule_lines(const rules_config& config, const std::string& series_query);
  /// "N of `asked` series queries failed", then the run's failures grouped by cause, with the
  /// rules each costs and what they serve meanwhile.
  static std::string describe_failures(const rules_config& config,
                                       const std::vector<failed_query>& failed, std::size_t asked);
  /// The sample's value as a Quantity, or nullopt for NaN, infinities and values too large for
  /// the HPA, logged once per series with `context`.
  std::optional<core::quantity> servable_value(const sample& s, const std::string& context);

  api_client& client_;
  discovery_options options_;
  ::prometheus::Family<::prometheus::Gauge>& discovered_gauge_;
  ::prometheus::Family<::prometheus::Counter>& discovery_runs_;
  ::prometheus::Gauge& discovery_shapes_;
  ::prometheus::Gauge& discovery_series_;
  ::prometheus::Gauge& discovery_bytes_;
  ::prometheus::Gauge& discovery_duration_;
  ::prometheus::Family<::prometheus::Counter>& queries_;   ///< by rule and outcome
  ::prometheus::Family<::prometheus::Counter>& warnings_;  ///< answers with warnings, by rule
  /// gma_metric_cache_requests_total by cache_outcome, resolved once.
  std::array<::prometheus::Counter*, 4> cache_requests_{};
  ::prometheus::Gauge& cache_entries_;
  ::prometheus::Gauge& cache_oldest_age_;
  answer_cache cache_;
  mutable std::mutex mutex_;
  // A mutex, not std::atomic<std::shared_ptr>: libstdc++ 12's is a spin lock that TSan
  // reports racing, and this is held only to copy a pointer.
  std::shared_ptr<const state> state_;                         // guarded by mutex_
  std::optional<rules_config> pending_;                        // guarded by mutex_
  std::map<std::string, std::set<series_shape>> last_series_;  // guarded by mutex_
  /// Why each seriesQuery's last discovery failed; absent after a success. Guarded by mutex_.
  std::map<std::string, reply_failure> discovery_failures_;
  bool discovered_ = false;                        // guarded by mutex_
  bool reached_prometheus_ = false;                // the last run had an answer; guarded by mutex_
  std::set<std::string> unservable_logged_;        // series left out and logged; guarded by mutex_
  mutable std::set<std::string> warnings_logged_;  // rules whose warnings were logged; by mutex_
  std::shared_ptr<net::steady_timer> timer_;       // the loop's, to wake it early
};

}  // namespace gma::adapters::prometheus
