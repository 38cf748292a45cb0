#include "adapters/prometheus/gpu_rules.hpp"

namespace gma::prometheus_adapter {
namespace {

constexpr std::string_view kWorkloadLabels[] = {"namespace", "pod", "container"};

/// In series relabelled by Prometheus, the workload's labels carry an exported_ prefix.
std::string exported_name(const std::string& label) {
  for (auto workload : kWorkloadLabels)
    if (label == workload) return "exported_" + label;
  return label;
}

std::vector<matcher> with_exported_names(std::vector<matcher> matchers) {
  for (auto& m : matchers) m.label = exported_name(m.label);
  return matchers;
}

/// The series of `metric` for workloads in `namespace_`, with namespace/pod/container holding
/// the workload's identity whichever label form the series used.
std::string workload_series(const std::string& metric, std::string_view namespace_,
                            const matcher& pod, const std::vector<matcher>& extra) {
  std::vector<matcher> exported = with_exported_names(extra);
  exported.push_back({"exported_namespace", "=", std::string(namespace_)});
  exported.push_back({"exported_pod", pod.op, pod.value});
  std::string relabelled = metric + "{" + render_matchers(exported) + "}";
  for (auto workload : kWorkloadLabels) {
    const std::string label(workload);
    relabelled = "label_replace(" + relabelled + ", " + quote(label) + ", \"$1\", " +
                 quote("exported_" + label) + ", \"(.*)\")";
  }
  std::vector<matcher> plain = extra;
  plain.push_back({"exported_pod", "=", ""});
  plain.push_back({"namespace", "=", std::string(namespace_)});
  plain.push_back({"pod", pod.op, pod.value});
  // A target scraped with honorLabels: false labels its idle GPUs with the exporter's own
  // namespace/pod; series of a target that also has exported_* series are such leftovers.
  return "(" + relabelled + " or (" + metric + "{" + render_matchers(plain) +
         "} unless on (job, instance) " + metric + "{exported_pod!=\"\"}))";
}

std::string per_gpu_value(const gpu_rule& rule, std::string_view namespace_, const matcher& pod,
                          const std::vector<matcher>& extra) {
  const std::string first = workload_series(rule.sources[0], namespace_, pod, extra);
  switch (rule.shape) {
    case value_shape::plain: return first;
    case value_shape::mib_to_bytes: return "(" + first + " * 1048576)";
    case value_shape::used_percent: {
      const std::string second = workload_series(rule.sources[1], namespace_, pod, extra);
      return "(" + first + " / (" + first + " + " + second + ") * 100)";
    }
  }
  return first;
}

const char* aggregation_name(aggregation a) { return a == aggregation::avg ? "avg" : "sum"; }

const matcher kAnyPod{"pod", "!=", ""};

}  // namespace

const std::vector<gpu_rule>& builtin_gpu_rules() {
  static const std::vector<gpu_rule> rules = {
      {"gpu_utilization", {"DCGM_FI_DEV_GPU_UTIL"}, aggregation::avg, value_shape::plain},
      {"gpu_memory_used_bytes", {"DCGM_FI_DEV_FB_USED"}, aggregation::sum, value_shape::mib_to_bytes},
      {"gpu_memory_utilization", {"DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"}, aggregation::avg,
       value_shape::used_percent},
      {"gpu_power_watts", {"DCGM_FI_DEV_POWER_USAGE"}, aggregation::sum, value_shape::plain},
      {"gpu_engine_active", {"DCGM_FI_PROF_GR_ENGINE_ACTIVE"}, aggregation::avg, value_shape::plain},
      {"gpu_tensor_active", {"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"}, aggregation::avg, value_shape::plain},
      {"vllm_num_requests_waiting", {"vllm:num_requests_waiting"}, aggregation::sum, value_shape::plain},
      {"vllm_kv_cache_usage", {"vllm:kv_cache_usage_perc"}, aggregation::avg, value_shape::plain},
  };
  return rules;
}

const gpu_rule* find_gpu_rule(std::string_view metric) {
  if (metric == "gpu.utilization") metric = "gpu_utilization";
  for (const auto& rule : builtin_gpu_rules())
    if (rule.name == metric) return &rule;
  return nullptr;
}

std::string pod_query(const gpu_rule& rule, std::string_view namespace_,
                      const std::optional<std::string>& pod, const std::vector<matcher>& extra) {
  const matcher pod_matcher = pod ? matcher{"pod", "=", *pod} : kAnyPod;
  return std::string(aggregation_name(rule.per_pod)) + " by (namespace, pod) (" +
         per_gpu_value(rule, namespace_, pod_matcher, extra) + ")";
}

std::string namespace_query(const gpu_rule& rule, std::string_view namespace_,
                            const std::vector<matcher>& extra) {
  return std::string(aggregation_name(rule.per_pod)) + " by (namespace) (" +
         per_gpu_value(rule, namespace_, kAnyPod, extra) + ")";
}

std::string series_query(const gpu_rule& rule, std::string_view namespace_,
                         const std::vector<matcher>& extra) {
  return per_gpu_value(rule, namespace_, kAnyPod, extra);
}

}  // namespace gma::prometheus_adapter
