#pragma once
/// @file The built-in GPU metrics: which dcgm-exporter and vLLM series each one reads and how
/// it is aggregated per pod, and the PromQL that computes it. Pure; thread-safe.
///
/// Workload labels arrive either as namespace/pod/container (ServiceMonitor honorLabels: true)
/// or as exported_namespace/exported_pod/exported_container (honorLabels: false, where the
/// plain labels name the exporter's own pod). Every query reads both forms and prefers the
/// exported_* pair when a series has it. Series of a target that has exported_* series but
/// lack them themselves (idle GPUs under honorLabels: false) are ignored: their namespace/pod
/// name the exporter, not a workload.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/prometheus/query_builder.hpp"

namespace gma::prometheus_adapter {

enum class aggregation { avg, sum };

/// How the per-GPU value is computed from the source series.
enum class value_shape {
  plain,          ///< the first source as it is
  mib_to_bytes,   ///< the first source (MiB) times 1048576
  used_percent,   ///< sources[0] / (sources[0] + sources[1]) * 100
};

struct gpu_rule {
  std::string name;
  std::vector<std::string> sources;  ///< Prometheus metric names; all must exist
  aggregation per_pod;
  value_shape shape;
};

/// The built-in rules, in the order the README lists them.
const std::vector<gpu_rule>& builtin_gpu_rules();

/// The rule serving `metric`, accepting the external alias "gpu.utilization"; nullptr if none.
const gpu_rule* find_gpu_rule(std::string_view metric);

/// One value per pod in `namespace_` (labels namespace, pod), optionally only the pod `pod`;
/// `extra` are metric-label matchers from metricLabelSelector.
std::string pod_query(const gpu_rule& rule, std::string_view namespace_,
                      const std::optional<std::string>& pod, const std::vector<matcher>& extra);

/// One value for the whole namespace.
std::string namespace_query(const gpu_rule& rule, std::string_view namespace_,
                            const std::vector<matcher>& extra);

/// One value per series (per GPU) in `namespace_`, labels kept, for external metrics.
std::string series_query(const gpu_rule& rule, std::string_view namespace_,
                         const std::vector<matcher>& extra);

}  // namespace gma::prometheus_adapter
