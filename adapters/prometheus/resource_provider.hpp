#pragma once
/// @file metrics.k8s.io from a rules file's `resourceRules`, as prometheus-adapter's resource
/// provider serves it: per resource (cpu, memory) a containerQuery per namespace and a
/// nodeQuery for every node; samples bucketed by pod and container (or node), NaN and negative
/// values read as 0, CPU in millicores (NewMilliQuantity, truncated) and memory in bytes
/// (BinarySI). Unlike prometheus-adapter, each query covers a whole namespace (every pod the
/// pod label names) rather than the pods of one request, so that its answer is shared through a
/// core::snapshot_cache by every request for that namespace, as custom metrics are.
///
/// @par Thread safety
/// Every member may be called from any thread; the rules come from the rules_provider's current
/// snapshot, so a reload swaps them for the next request. The client, the rules provider and
/// the executor's io_context are borrowed and must outlive this provider.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapters/prometheus/api_client.hpp"
#include "adapters/prometheus/rules_provider.hpp"
#include "server/core/resource_metrics.hpp"
#include "server/core/snapshot_cache.hpp"

namespace gma::adapters::prometheus {

/// The usage a sample's value stands for: NaN and negative values are 0, as in
/// prometheus-adapter; CPU cores become truncated millicores (DecimalSI), bytes BinarySI.
core::quantity cpu_quantity(double cores);
core::quantity memory_quantity(double bytes);

class resource_provider final : public core::resource_metrics_provider {
 public:
  resource_provider(api_client& client, const rules_provider& rules, net::any_io_executor executor,
                    core::snapshot_cache_options cache = {});

  /// Refreshes the answers being read before they expire and drops those nobody reads. Runs
  /// until cancelled; not needed with a zero TTL.
  net::awaitable<void> async_run_cache_refresh();

  bool serving() const override;
  std::chrono::milliseconds window() const override;
  net::awaitable<result<std::vector<core::pod_usage>>> async_pod_usage(
      std::vector<std::string> namespaces) override;
  net::awaitable<result<std::vector<core::node_usage>>> async_node_usage() override;

  /// The PromQL a request sends, for `check --explain`: the cpu then the memory containerQuery
  /// for `namespace_`, or (nullopt) the two nodeQueries. errc::metric_not_found without
  /// resourceRules; a query that cannot be rendered is its error.
  result<std::vector<std::string>> explain(const std::optional<std::string>& namespace_) const;

 private:
  /// One query's samples reduced to what requests read, sorted by object then container.
  struct usage_rows {
    struct row {
      std::string object;     ///< the pod's or node's name
      std::string container;  ///< empty for nodes, or a sample without the container label
      double timestamp = 0;   ///< Unix seconds
      double value = 0;
    };
    std::vector<row> rows;
  };
  using usage_cache = core::snapshot_cache<usage_rows>;

  /// Asks the cache for one rule's answer for a namespace, or (nullopt) for the nodes.
  usage_cache::ticket request(const rules_config& config, const resource_query_rule& rule,
                              const char* resource, const std::optional<std::string>& namespace_);
  /// Queries Prometheus and reduces the answer to rows; `rule` ("file:line") counts warnings.
  net::awaitable<result<std::shared_ptr<const usage_rows>>> async_fetch(
      std::string promql, std::string rule, std::string context, std::string object_label,
      std::string container_label);
  static net::awaitable<result<std::shared_ptr<const usage_rows>>> failed_fetch(error_code error);

  api_client& client_;
  const rules_provider& rules_;
  usage_cache cache_;
};

}  // namespace gma::adapters::prometheus
