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
  EXPECT_EQ(builtin().external_rules.size(), 16u);
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

TEST(DefaultRules, ExternalQueriesRelabelExportedSeries) {
  const auto rules = rules_for(builtin().external_rules, "DCGM_FI_DEV_GPU_UTIL", "gpu.utilization");
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

}  // namespace
}  // namespace gma::adapters::prometheus
