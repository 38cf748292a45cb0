#include "server/handlers/route.hpp"

#include <gtest/gtest.h>

namespace gma::handlers {
namespace {

TEST(ParseTarget, CustomPodsWildcardArrivesPercentEncoded) {
  const auto p = parse_target(
      "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/gpu_utilization"
      "?labelSelector=app%3Dtriton%2Ctier+in+%28a%2Cb%29");
  const auto* r = std::get_if<custom_metric_route>(&p.target);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->version, "v1beta2");
  EXPECT_EQ(r->namespace_, "ml");
  EXPECT_EQ(r->resource, "pods");
  EXPECT_EQ(r->name, "*");
  EXPECT_EQ(r->metric, "gpu_utilization");
  EXPECT_EQ(p.query.at("labelSelector"), "app=triton,tier in (a,b)");
}

TEST(ParseTarget, NamespaceMetricAndClusterScoped) {
  const auto ns = parse_target("/apis/custom.metrics.k8s.io/v1beta1/namespaces/ml/metrics/m");
  const auto* r = std::get_if<custom_metric_route>(&ns.target);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->resource, "namespaces");
  EXPECT_EQ(r->name, "ml");
  EXPECT_EQ(r->namespace_, "");
  const auto node = parse_target("/apis/custom.metrics.k8s.io/v1beta1/nodes/gpu-1/m");
  const auto* n = std::get_if<custom_metric_route>(&node.target);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->resource, "nodes");
  EXPECT_EQ(n->name, "gpu-1");
}

TEST(ParseTarget, ExternalMetricNamesKeepDotsAndColons) {
  const auto p = parse_target(
      "/apis/external.metrics.k8s.io/v1beta1/namespaces/llm/vllm:num_requests_waiting");
  const auto* r = std::get_if<external_metric_route>(&p.target);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->metric, "vllm:num_requests_waiting");
  const auto alias =
      parse_target("/apis/external.metrics.k8s.io/v1beta1/namespaces/llm/gpu.utilization");
  EXPECT_EQ(std::get<external_metric_route>(alias.target).metric, "gpu.utilization");
}

TEST(ParseTarget, DiscoveryAndOperationalRoutes) {
  EXPECT_TRUE(std::holds_alternative<group_list_route>(parse_target("/apis").target));
  EXPECT_TRUE(std::holds_alternative<group_list_route>(parse_target("/apis/").target));
  EXPECT_TRUE(
      std::holds_alternative<group_route>(parse_target("/apis/external.metrics.k8s.io").target));
  EXPECT_TRUE(std::holds_alternative<resource_list_route>(
      parse_target("/apis/custom.metrics.k8s.io/v1beta2").target));
  EXPECT_TRUE(std::holds_alternative<health_route>(parse_target("/readyz?verbose").target));
  EXPECT_EQ(std::get<health_route>(parse_target("/readyz/prometheus").target).check, "prometheus");
  EXPECT_TRUE(std::holds_alternative<version_route>(parse_target("/version").target));
  EXPECT_TRUE(std::holds_alternative<self_metrics_route>(parse_target("/metrics").target));
}

TEST(ParseTarget, ResourceMetricsRoutes) {
  const auto route_of = [](const char* target) {
    const auto parsed = parse_target(target);
    const auto* r = std::get_if<resource_metrics_route>(&parsed.target);
    EXPECT_TRUE(r) << target;
    return r ? *r : resource_metrics_route{};
  };
  auto r = route_of("/apis/metrics.k8s.io/v1beta1/nodes");
  EXPECT_EQ(r.resource, "nodes");
  EXPECT_EQ(r.name, "");
  r = route_of("/apis/metrics.k8s.io/v1beta1/nodes/n1");
  EXPECT_EQ(r.name, "n1");
  r = route_of("/apis/metrics.k8s.io/v1beta1/pods");
  EXPECT_EQ(r.resource, "pods");
  EXPECT_FALSE(r.namespace_);
  r = route_of("/apis/metrics.k8s.io/v1beta1/namespaces/ml/pods/p1");
  EXPECT_EQ(r.namespace_, std::optional<std::string>("ml"));
  EXPECT_EQ(r.name, "p1");
  EXPECT_TRUE(std::holds_alternative<resource_list_route>(
      parse_target("/apis/metrics.k8s.io/v1beta1").target));
  EXPECT_STREQ(route_label(parse_target("/apis/metrics.k8s.io/v1beta1/nodes").target),
               "resource_metrics");
}

TEST(ParseTarget, UnknownPathsAreNotFound) {
  for (const char* target :
       {"/", "/apis/metrics.k8s.io/v1", "/apis/metrics.k8s.io/v1beta1/namespaces/ml/nodes",
        "/apis/metrics.k8s.io/v1beta1/pods/a", "/apis/external.metrics.k8s.io/v1beta2",
        "/apis/custom.metrics.k8s.io/v1",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/bar",
        "/apis/custom.metrics.k8s.io/v1beta1/nodes/foo",
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/foo/group/metric",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods//m",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%ZZ/m", "/openapi/v2",
        "relative/path"}) {
    SCOPED_TRACE(target);
    EXPECT_TRUE(std::holds_alternative<not_found_route>(parse_target(target).target));
  }
}

TEST(ParseTarget, AnEncodedSlashInASegmentIsNotFound) {
  const auto p =
      parse_target("/apis/custom.metrics.k8s.io/v1beta2/namespaces/a%2Fb/pods/x/gpu_utilization");
  EXPECT_TRUE(std::holds_alternative<not_found_route>(p.target));
}

}  // namespace
}  // namespace gma::handlers
