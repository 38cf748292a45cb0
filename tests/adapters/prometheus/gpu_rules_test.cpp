#include "adapters/prometheus/gpu_rules.hpp"

#include <gtest/gtest.h>

namespace gma::prometheus_adapter {
namespace {

const std::string kUtilSeries =
    R"x((label_replace(label_replace(label_replace(DCGM_FI_DEV_GPU_UTIL{exported_namespace="ml",exported_pod!=""}, )x"
    R"x("namespace", "$1", "exported_namespace", "(.*)"), "pod", "$1", "exported_pod", "(.*)"), )x"
    R"x("container", "$1", "exported_container", "(.*)") or )x"
    R"x((DCGM_FI_DEV_GPU_UTIL{exported_pod="",namespace="ml",pod!=""} unless on (job, instance) )x"
    R"x(DCGM_FI_DEV_GPU_UTIL{exported_pod!=""})))x";

TEST(GpuRules, BuiltInTable) {
  const auto& rules = builtin_gpu_rules();
  ASSERT_EQ(rules.size(), 8u);
  EXPECT_EQ(find_gpu_rule("gpu.utilization"), find_gpu_rule("gpu_utilization"));
  EXPECT_EQ(find_gpu_rule("vllm_kv_cache_usage")->sources[0], "vllm:kv_cache_usage_perc");
  EXPECT_EQ(find_gpu_rule("gpu_memory_used_bytes")->per_pod, aggregation::sum);
  EXPECT_EQ(find_gpu_rule("DCGM_FI_DEV_GPU_UTIL"), nullptr);
}

TEST(GpuRules, PodQueryReadsBothLabelForms) {
  EXPECT_EQ(pod_query(*find_gpu_rule("gpu_utilization"), "ml", std::nullopt, {}),
            "avg by (namespace, pod) (" + kUtilSeries + ")");
}

TEST(GpuRules, SinglePodAndMetricLabelMatchers) {
  const std::vector<matcher> extra = {{"pod", "!=", "x"}, {"gpu", "=", "0"}};
  const auto q = pod_query(*find_gpu_rule("gpu_power_watts"), "ml", std::string("p-1"), extra);
  EXPECT_EQ(q,
            R"x(sum by (namespace, pod) ((label_replace(label_replace(label_replace()x"
            R"x(DCGM_FI_DEV_POWER_USAGE{exported_pod!="x",gpu="0",exported_namespace="ml",exported_pod="p-1"}, )x"
            R"x("namespace", "$1", "exported_namespace", "(.*)"), "pod", "$1", "exported_pod", "(.*)"), )x"
            R"x("container", "$1", "exported_container", "(.*)") or )x"
            R"x((DCGM_FI_DEV_POWER_USAGE{pod!="x",gpu="0",exported_pod="",namespace="ml",pod="p-1"} )x"
            R"x(unless on (job, instance) DCGM_FI_DEV_POWER_USAGE{exported_pod!=""}))))x");
}

TEST(GpuRules, HostileNamesStayInsideStringLiterals) {
  const auto q = pod_query(*find_gpu_rule("gpu_utilization"), R"x(ml"} or vector(1))x",
                           std::string(R"x(p\"})x"), {});
  EXPECT_NE(q.find(R"x(exported_namespace="ml\"} or vector(1)")x"), std::string::npos);
  EXPECT_NE(q.find(R"x(pod="p\\\"}")x"), std::string::npos);
}

TEST(GpuRules, ShapesAndNamespaceAggregation) {
  const auto memory = namespace_query(*find_gpu_rule("gpu_memory_used_bytes"), "ml", {});
  EXPECT_TRUE(memory.starts_with("sum by (namespace) (("));
  EXPECT_TRUE(memory.ends_with(" * 1048576))"));
  const auto ratio = series_query(*find_gpu_rule("gpu_memory_utilization"), "ml", {});
  EXPECT_NE(ratio.find("DCGM_FI_DEV_FB_USED"), std::string::npos);
  EXPECT_NE(ratio.find("DCGM_FI_DEV_FB_FREE"), std::string::npos);
  EXPECT_TRUE(ratio.ends_with(") * 100)"));
  EXPECT_EQ(series_query(*find_gpu_rule("gpu_utilization"), "ml", {}), kUtilSeries);
}

}  // namespace
}  // namespace gma::prometheus_adapter
