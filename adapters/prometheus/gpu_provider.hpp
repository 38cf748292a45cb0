#pragma once
/// @file The built-in GPU metrics served from Prometheus, as both custom (pods, namespaces)
/// and external metrics, with periodic discovery of which ones have series.
///
/// @par Thread safety
/// All methods may be called concurrently. The discovered list is an immutable snapshot
/// swapped under a mutex. The api_client must outlive the provider.

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>

#include "adapters/prometheus/api_client.hpp"
#include "server/core/provider.hpp"

namespace gma::prometheus_adapter {

struct discovery_options {
  std::chrono::seconds relist_interval{60};
  /// How far back discovery looks for series (`start=` of the series lookup).
  std::chrono::seconds max_age{60};
};

class gpu_provider final : public core::custom_metrics_provider,
                           public core::external_metrics_provider,
                           public core::readiness_source {
 public:
  gpu_provider(api_client& client, discovery_options options, prometheus::Registry& registry);

  /// Discovers now, then every relist interval, until the coroutine is cancelled. A failed
  /// run keeps the last good list.
  net::awaitable<void> async_run_discovery();
  /// One discovery run; false when Prometheus could not be asked.
  net::awaitable<bool> async_discover_once();

  net::awaitable<result<std::vector<core::metric_value>>> async_get_metric(
      core::custom_metric_query query) override;
  std::vector<core::custom_metric_info> list_all_metrics() const override;

  net::awaitable<result<std::vector<core::external_metric_value>>> async_get_external_metric(
      core::external_metric_query query) override;
  std::vector<core::external_metric_info> list_all_external_metrics() const override;

  std::vector<core::health_check> readiness_checks() const override;

 private:
  std::shared_ptr<const std::vector<std::string>> available() const;

  api_client& client_;
  discovery_options options_;
  prometheus::Family<prometheus::Gauge>& discovered_gauge_;
  prometheus::Family<prometheus::Counter>& discovery_runs_;
  mutable std::mutex mutex_;
  std::shared_ptr<const std::vector<std::string>> available_;  // guarded by mutex_
  bool discovered_ = false;                                   // guarded by mutex_
};

}  // namespace gma::prometheus_adapter
