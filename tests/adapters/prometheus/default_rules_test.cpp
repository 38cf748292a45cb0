// The built-in GPU rules (manifests/base/gpu-rules.yaml, compiled in) load and render the
// queries the README describes.
#include <gtest/gtest.h>

#include "adapters/prometheus/default_rules.hpp"
#include "adapters/prometheus/rules_config.hpp"
#include "adapters/prometheus/rules_query.hpp"

namespace gma::adapters::prometheus {
namespace {

const rules_config& builtin() {
  static const rules_config config =
      parse_rules(std::string(default_rules_yaml()), "gpu-rules.yaml");
  return config;
}

std::vector<const discovery_rule*> rules_for(const std::vector<discovery_rule>& rules,
                                             const std::string& series, const std::string& metric) {
  std::vector<const discovery_rule*> out;
  for (const auto& r : rules)
    if (r.series_query.starts_with(series + "{") && r.metric_name(series) == metric)
      out.push_back(&r);
  return out;
}

TEST(DefaultRules, EveryBuiltInMetricHasRulesForBothLabelForms) {
  EXPECT_EQ(builtin().rules.size(), 14u);
  EXPECT_EQ(builtin().external_rules.size(), 28u);
  const std::pair<const char*, const char*> gpu[] = {
      {"DCGM_FI_DEV_GPU_UTIL", "gpu_utilization"},
      {"DCGM_FI_DEV_FB_USED", "gpu_memory_used_bytes"},
      {"DCGM_FI_DEV_FB_USED", "gpu_memory_utilization"},
      {"DCGM_FI_DEV_POWER_USAGE", "gpu_power_watts"},
      {"DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gpu_engine_active"},
      {"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gpu_tensor_active"}};
  for (const auto& [series, metric] : gpu) {
    SCOPED_TRACE(metric);
    EXPECT_EQ(rules_for(builtin().rules, series, metric).size(), 2u);
    EXPECT_EQ(rules_for(builtin().external_rules, series, metric).size(), 2u);
    EXPECT_EQ(rules_for(builtin().external_rules, series, std::string(metric) + "_per_gpu").size(),
              2u);
  }
  EXPECT_EQ(rules_for(builtin().external_rules, "DCGM_FI_DEV_GPU_UTIL", "gpu.utilization").size(),
            2u);
  EXPECT_EQ(
      rules_for(builtin().rules, "vllm:num_requests_waiting", "vllm_num_requests_waiting").size(),
      1u);
}

// The `unless` right-hand side stays within the namespace asked for: a query never scans every
// GPU series of the cluster.
TEST(DefaultRules, PodQueriesForEachLabelForm) {
  const auto rules = rules_for(builtin().rules, "DCGM_FI_DEV_GPU_UTIL", "gpu_utilization");
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(
      *render_custom_query(*rules[0], "DCGM_FI_DEV_GPU_UTIL", {"", "pods"}, std::string("ml"), {},
                           {}),
      R"x(avg by (pod) ((DCGM_FI_DEV_GPU_UTIL{namespace="ml",pod!="",exported_pod=""} unless on (job, instance) DCGM_FI_DEV_GPU_UTIL{namespace="ml",exported_pod!=""})))x");
  EXPECT_EQ(
      *render_custom_query(*rules[0], "DCGM_FI_DEV_GPU_UTIL", {"", "namespaces"}, std::nullopt,
                           {"ml"}, {}),
      R"x(avg by (namespace) ((DCGM_FI_DEV_GPU_UTIL{namespace="ml",exported_pod=""} unless on (job, instance) DCGM_FI_DEV_GPU_UTIL{namespace="ml",exported_pod!=""})))x");
  EXPECT_EQ(
      *render_custom_query(*rules[1], "DCGM_FI_DEV_GPU_UTIL", {"", "pods"}, std::string("ml"),
                           {"a"}, *core::label_selector::parse("gpu=0")),
      R"x(avg by (exported_pod) (DCGM_FI_DEV_GPU_UTIL{gpu="0",exported_namespace="ml",exported_pod="a"}))x");
}

TEST(DefaultRules, ShapesOfMemoryMetrics) {
  const auto used = rules_for(builtin().rules, "DCGM_FI_DEV_FB_USED", "gpu_memory_used_bytes");
  EXPECT_EQ(
      *render_custom_query(*used[1], "DCGM_FI_DEV_FB_USED", {"", "namespaces"}, std::nullopt,
                           {"ml"}, {}),
      R"x(sum by (exported_namespace) ((DCGM_FI_DEV_FB_USED{exported_namespace="ml"} * 1048576)))x");
  const auto ratio = rules_for(builtin().rules, "DCGM_FI_DEV_FB_USED", "gpu_memory_utilization");
  EXPECT_EQ(
      *render_custom_query(*ratio[1], "DCGM_FI_DEV_FB_USED", {"", "pods"}, std::string("ml"), {"a"},
                           {}),
      R"x(avg by (exported_pod) ((DCGM_FI_DEV_FB_USED{exported_namespace="ml",exported_pod="a"} / )x"
      R"x((DCGM_FI_DEV_FB_USED{exported_namespace="ml",exported_pod="a"} + )x"
      R"x(DCGM_FI_DEV_FB_FREE{exported_namespace="ml",exported_pod="a"}) * 100)))x");
}

// External AverageValue divides the sum of the items by the replica count: one item per GPU
// would count a pod with two GPUs twice. The selector filters GPU series before they are
// aggregated per pod, and exported_* series are relabelled first, so both forms group alike.
TEST(DefaultRules, ExternalGpuQueriesAggregatePerPodAfterTheSelector) {
  const auto rules = rules_for(builtin().external_rules, "DCGM_FI_DEV_GPU_UTIL", "gpu.utilization");
  ASSERT_EQ(rules.size(), 2u);
  const auto selector = *core::label_selector::parse("gpu-type=a100");
  EXPECT_EQ(
      *render_external_query(*rules[0], "DCGM_FI_DEV_GPU_UTIL", "ml", selector),
      R"x(avg by (namespace, pod) ((DCGM_FI_DEV_GPU_UTIL{gpu_type="a100",namespace="ml",pod!="",exported_pod=""} )x"
      R"x(unless on (job, instance) DCGM_FI_DEV_GPU_UTIL{namespace="ml",exported_pod!=""})))x");
  EXPECT_EQ(
      *render_external_query(*rules[1], "DCGM_FI_DEV_GPU_UTIL", "ml", selector),
      R"x(avg by (namespace, pod) (label_replace(label_replace()x"
      R"x(DCGM_FI_DEV_GPU_UTIL{gpu_type="a100",exported_namespace="ml",exported_pod!=""}, )x"
      R"x("namespace", "$1", "exported_namespace", "(.*)"), "pod", "$1", "exported_pod", "(.*)")))x");
  // gpu_utilization is the same query under its own name.
  const auto plain = rules_for(builtin().external_rules, "DCGM_FI_DEV_GPU_UTIL", "gpu_utilization");
  ASSERT_EQ(plain.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i)
    EXPECT_EQ(*render_external_query(*plain[i], "DCGM_FI_DEV_GPU_UTIL", "ml", selector),
              *render_external_query(*rules[i], "DCGM_FI_DEV_GPU_UTIL", "ml", selector));
}

TEST(DefaultRules, EveryExternalGpuMetricIsOneItemPerPod) {
  struct expected {
    const char* series;
    const char* metric;
    const char* aggregation;  // as the Pods metric aggregates the pod's GPUs
  };
  const expected cases[] = {{"DCGM_FI_DEV_GPU_UTIL", "gpu_utilization", "avg"},
                            {"DCGM_FI_DEV_FB_USED", "gpu_memory_used_bytes", "sum"},
                            {"DCGM_FI_DEV_FB_USED", "gpu_memory_utilization", "avg"},
                            {"DCGM_FI_DEV_POWER_USAGE", "gpu_power_watts", "sum"},
                            {"DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gpu_engine_active", "avg"},
                            {"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gpu_tensor_active", "avg"}};
  const auto selector = *core::label_selector::parse("container=triton");
  for (const auto& c : cases) {
    SCOPED_TRACE(c.metric);
    const auto rules = rules_for(builtin().external_rules, c.series, c.metric);
    ASSERT_EQ(rules.size(), 2u);
    const auto honored = *render_external_query(*rules[0], c.series, "ml", selector);
    const auto exported = *render_external_query(*rules[1], c.series, "ml", selector);
    const std::string head = std::string(c.aggregation) + " by (namespace, pod) (";
    EXPECT_TRUE(honored.starts_with(head)) << honored;
    EXPECT_TRUE(exported.starts_with(head + "label_replace(label_replace(")) << exported;
    // The selector is inside the aggregation, on the GPU series.
    EXPECT_NE(honored.find(std::string(c.series) +
                           R"x({container="triton",namespace="ml",pod!="",exported_pod=""})x"),
              std::string::npos)
        << honored;
    EXPECT_NE(exported.find(std::string(c.series) +
                            R"x({container="triton",exported_namespace="ml",exported_pod!=""})x"),
              std::string::npos)
        << exported;
    // Grouped by pod only: a pod whose GPUs are held by two containers stays one item.
    EXPECT_EQ(exported.find("exported_container"), std::string::npos) << exported;
  }
  const auto bytes =
      rules_for(builtin().external_rules, "DCGM_FI_DEV_FB_USED", "gpu_memory_used_bytes");
  EXPECT_EQ(
      *render_external_query(*bytes[1], "DCGM_FI_DEV_FB_USED", "ml", {}),
      R"x(sum by (namespace, pod) (label_replace(label_replace()x"
      R"x((DCGM_FI_DEV_FB_USED{exported_namespace="ml",exported_pod!=""} * 1048576), )x"
      R"x("namespace", "$1", "exported_namespace", "(.*)"), "pod", "$1", "exported_pod", "(.*)")))x");
}

// The per-GPU metrics keep one item per series, relabelled to namespace/pod/container.
TEST(DefaultRules, PerGpuExternalQueriesRelabelExportedSeries) {
  const auto rules =
      rules_for(builtin().external_rules, "DCGM_FI_DEV_GPU_UTIL", "gpu_utilization_per_gpu");
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(
      *render_external_query(*rules[0], "DCGM_FI_DEV_GPU_UTIL", "ml",
                             *core::label_selector::parse("gpu-type=a100")),
      R"x((DCGM_FI_DEV_GPU_UTIL{gpu_type="a100",namespace="ml",exported_pod=""} unless on (job, instance) DCGM_FI_DEV_GPU_UTIL{namespace="ml",exported_pod!=""}))x");
  EXPECT_EQ(
      *render_external_query(*rules[1], "DCGM_FI_DEV_GPU_UTIL", "ml", {}),
      R"x(label_replace(label_replace(label_replace(DCGM_FI_DEV_GPU_UTIL{exported_namespace="ml"}, )x"
      R"x("namespace", "$1", "exported_namespace", "(.*)"), "pod", "$1", "exported_pod", "(.*)"), )x"
      R"x("container", "$1", "exported_container", "(.*)"))x");
}

// vLLM renamed vllm:gpu_cache_usage_perc to vllm:kv_cache_usage_perc. One rule discovers either
// name and asks for both in one query, the old name only for pods without the new one, so a
// server exposing both is counted once (two rules would each answer for it).
TEST(DefaultRules, VllmKvCacheReadsTheOlderNameOnce) {
  std::vector<const discovery_rule*> pods;
  for (const auto& r : builtin().rules)
    if (r.series_query.find("vllm:gpu_cache_usage_perc") != std::string::npos) pods.push_back(&r);
  ASSERT_EQ(pods.size(), 1u);
  EXPECT_EQ(pods[0]->metric_name("vllm:gpu_cache_usage_perc"), "vllm_kv_cache_usage");
  EXPECT_EQ(pods[0]->metric_name("vllm:kv_cache_usage_perc"), "vllm_kv_cache_usage");
  EXPECT_EQ(
      *render_custom_query(*pods[0], "vllm:gpu_cache_usage_perc", {"", "pods"}, std::string("llm"),
                           {"a"}, {}),
      R"x(avg by (pod) (vllm:kv_cache_usage_perc{namespace="llm",pod="a"} or on (namespace, pod) )x"
      R"x(vllm:gpu_cache_usage_perc{namespace="llm",pod="a"}))x");

  std::vector<const discovery_rule*> external;
  for (const auto& r : builtin().external_rules)
    if (r.series_query.find("vllm:gpu_cache_usage_perc") != std::string::npos)
      external.push_back(&r);
  ASSERT_EQ(external.size(), 1u);
  EXPECT_EQ(external[0]->metric_name("vllm:gpu_cache_usage_perc"), "vllm_kv_cache_usage");
  EXPECT_EQ(
      *render_external_query(*external[0], "vllm:gpu_cache_usage_perc", "llm",
                             *core::label_selector::parse("model_name=m")),
      R"x(avg by (namespace, pod) (vllm:kv_cache_usage_perc{model_name="m",namespace="llm",pod!=""} )x"
      R"x(or on (namespace, pod) vllm:gpu_cache_usage_perc{model_name="m",namespace="llm",pod!=""}))x");
}

// One pod is one vLLM server, but a data-parallel server has a series per engine: summed.
TEST(DefaultRules, ExternalVllmQueueIsOneItemPerPod) {
  const auto rules =
      rules_for(builtin().external_rules, "vllm:num_requests_waiting", "vllm_num_requests_waiting");
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(
      *render_external_query(*rules[0], "vllm:num_requests_waiting", "llm",
                             *core::label_selector::parse("model_name=m")),
      R"x(sum by (namespace, pod) (vllm:num_requests_waiting{model_name="m",namespace="llm",pod!=""}))x");
}

}  // namespace
}  // namespace gma::adapters::prometheus
