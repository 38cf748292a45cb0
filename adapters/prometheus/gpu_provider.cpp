#include "adapters/prometheus/gpu_provider.hpp"

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cmath>

#include "adapters/prometheus/gpu_rules.hpp"
#include "server/core/log.hpp"

namespace gma::prometheus_adapter {
namespace {

core::sys_seconds sample_time(double unix_seconds) {
  return core::sys_seconds(std::chrono::seconds(static_cast<long long>(std::floor(unix_seconds))));
}

/// Prometheus prints NaN and +-Inf for undefined values (0/0 on idle GPUs); such samples are
/// left out instead of being sent as a number the HPA would act on.
std::optional<core::quantity> finite_value(const sample& s) {
  auto q = core::quantity::from_sample(s.value);
  if (!q) {
    log::verbose(3, "skipping non-finite sample value " + s.value);
    return std::nullopt;
  }
  return *q;
}

}  // namespace

gpu_provider::gpu_provider(api_client& client, discovery_options options,
                           prometheus::Registry& registry)
    : client_(client),
      options_(options),
      discovered_gauge_(prometheus::BuildGauge()
                            .Name("gma_discovered_metrics")
                            .Help("Metrics listed in discovery, by API group.")
                            .Register(registry)),
      discovery_runs_(prometheus::BuildCounter()
                          .Name("gma_discovery_runs_total")
                          .Help("Metric discovery runs against Prometheus, by result.")
                          .Register(registry)),
      available_(std::make_shared<const std::vector<std::string>>()) {}

std::shared_ptr<const std::vector<std::string>> gpu_provider::available() const {
  std::lock_guard lock(mutex_);
  return available_;
}

net::awaitable<bool> gpu_provider::async_discover_once() {
  std::vector<std::string> matches;
  for (const auto& rule : builtin_gpu_rules())
    for (const auto& source : rule.sources) matches.push_back("{__name__=" + quote(source) + "}");
  // Only the names are needed; asking for label values keeps the answer small however many
  // GPUs the cluster has.
  std::string label = "__name__";
  auto names = co_await client_.async_label_values(
      std::move(label), std::move(matches), std::chrono::system_clock::now() - options_.max_age);
  if (!names) {
    discovery_runs_.Add({{"result", "failure"}}).Increment();
    log::warning("metric discovery failed (" + names.error().message() +
                 "); keeping the previous list");
    co_return false;
  }
  const std::set<std::string> present(names->begin(), names->end());
  auto found = std::make_shared<std::vector<std::string>>();
  for (const auto& rule : builtin_gpu_rules())
    if (std::all_of(rule.sources.begin(), rule.sources.end(),
                    [&](const std::string& s) { return present.contains(s); }))
      found->push_back(rule.name);
  discovery_runs_.Add({{"result", "success"}}).Increment();
  discovered_gauge_.Add({{"group", core::kCustomGroup}}).Set(static_cast<double>(found->size() * 2));
  {
    std::lock_guard lock(mutex_);
    if (!discovered_ || *available_ != *found)
      log::info("discovered " + std::to_string(found->size()) + " GPU metrics");
    available_ = std::move(found);
    discovered_ = true;
  }
  discovered_gauge_.Add({{"group", core::kExternalGroup}})
      .Set(static_cast<double>(list_all_external_metrics().size()));
  co_return true;
}

net::awaitable<void> gpu_provider::async_run_discovery() {
  net::steady_timer timer(co_await net::this_coro::executor);
  while (true) {
    co_await async_discover_once();
    timer.expires_after(options_.relist_interval);
    co_await timer.async_wait(net::use_awaitable);
  }
}

std::vector<core::custom_metric_info> gpu_provider::list_all_metrics() const {
  std::vector<core::custom_metric_info> out;
  for (const auto& name : *available()) {
    out.push_back({"pods", true, name});
    out.push_back({"namespaces", false, name});
  }
  return out;
}

std::vector<core::external_metric_info> gpu_provider::list_all_external_metrics() const {
  std::vector<core::external_metric_info> out;
  for (const auto& name : *available()) {
    out.push_back({name});
    if (name == "gpu_utilization") out.push_back({"gpu.utilization"});
  }
  return out;
}

std::vector<core::health_check> gpu_provider::readiness_checks() const {
  bool discovered = false;
  {
    std::lock_guard lock(mutex_);
    discovered = discovered_;
  }
  // Discovery asks Prometheus every relist interval, so silence for two intervals means it is
  // not answering.
  const auto window = std::max<std::chrono::steady_clock::duration>(
      2 * options_.relist_interval + std::chrono::seconds(5), std::chrono::seconds(30));
  const auto last = client_.last_success();
  const bool recent = last.time_since_epoch().count() != 0 &&
                      std::chrono::steady_clock::now() - last < window;
  return {{"metric-discovery", discovered,
           discovered ? "" : "no metric discovery has succeeded yet"},
          {"prometheus", recent, recent ? "" : "Prometheus has not answered recently"}};
}

net::awaitable<result<std::vector<core::metric_value>>> gpu_provider::async_get_metric(
    core::custom_metric_query query) {
  const gpu_rule* rule = find_gpu_rule(query.metric);
  const bool pods = query.group_resource == "pods";
  if (!rule || query.metric == "gpu.utilization" ||
      (!pods && query.group_resource != "namespaces"))
    co_return errc::metric_not_found;
  auto extra = selector_matchers(query.metric_selector);
  if (!extra) co_return extra.error();

  std::string promql;
  if (pods) {
    std::optional<std::string> pod;
    if (query.name != "*") pod = query.name;
    promql = pod_query(*rule, query.namespace_, pod, *extra);
  } else {
    promql = namespace_query(*rule, query.name, *extra);
  }
  auto samples = co_await client_.async_query(std::move(promql));
  if (!samples) co_return samples.error();

  std::optional<std::set<std::string>> allowed;
  if (query.only_names) allowed.emplace(query.only_names->begin(), query.only_names->end());
  std::vector<core::metric_value> items;
  for (const auto& s : *samples) {
    const auto value = finite_value(s);
    if (!value) continue;
    core::metric_value item{{}, query.metric, sample_time(s.timestamp), *value};
    if (pods) {
      const auto it = s.labels.find("pod");
      if (it == s.labels.end()) continue;
      if (allowed && !allowed->contains(it->second)) continue;
      item.described_object = {"Pod", query.namespace_, it->second, "/v1"};
    } else {
      item.described_object = {"Namespace", "", query.name, "/v1"};
    }
    items.push_back(std::move(item));
  }
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
    return a.described_object.name < b.described_object.name;
  });
  if (items.empty() && query.name != "*") co_return errc::metric_not_found;
  co_return items;
}

net::awaitable<result<std::vector<core::external_metric_value>>>
gpu_provider::async_get_external_metric(core::external_metric_query query) {
  const gpu_rule* rule = find_gpu_rule(query.metric);
  if (!rule) co_return errc::metric_not_found;
  auto extra = selector_matchers(query.selector);
  if (!extra) co_return extra.error();
  std::string promql = series_query(*rule, query.namespace_, *extra);
  auto samples = co_await client_.async_query(std::move(promql));
  if (!samples) co_return samples.error();
  std::vector<core::external_metric_value> items;
  for (auto& s : *samples) {
    const auto value = finite_value(s);
    if (!value) continue;
    s.labels.erase("__name__");
    items.push_back({query.metric, std::move(s.labels), sample_time(s.timestamp), *value});
  }
  std::sort(items.begin(), items.end(),
            [](const auto& a, const auto& b) { return a.labels < b.labels; });
  co_return items;
}

}  // namespace gma::prometheus_adapter
