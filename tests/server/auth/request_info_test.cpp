#include "server/auth/request_info.hpp"

#include <gtest/gtest.h>

#include "server/core/request_path.hpp"
#include "server/core/status.hpp"

namespace gma::auth {
namespace {

/// The attributes of `method target` as the guard gets them: from the target's one parse.
core::request_attributes attributes_of(std::string_view method, std::string_view target) {
  return request_attributes_for(method, target, core::parse_request_path(target));
}

// The attribute table of kubernetes-metrics-apis.md section 8.5.
TEST(RequestAttributes, MetricsPathsAsKubernetesParsesThem) {
  auto a = attributes_of("GET",
                         "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/"
                         "gpu_utilization?labelSelector=a%3Db");
  EXPECT_TRUE(a.resource_request);
  EXPECT_EQ(a.verb, "get");
  EXPECT_EQ(a.api_group, "custom.metrics.k8s.io");
  EXPECT_EQ(a.api_version, "v1beta2");
  EXPECT_EQ(a.namespace_, "ml");
  EXPECT_EQ(a.resource, "pods");
  EXPECT_EQ(a.name, "*");
  EXPECT_EQ(a.subresource, "gpu_utilization");

  a = attributes_of("GET",
                    "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ml/deployments.apps/web/rps");
  EXPECT_EQ(a.resource, "deployments.apps");
  EXPECT_EQ(a.name, "web");
  EXPECT_EQ(a.subresource, "rps");

  a = attributes_of("GET", "/apis/external.metrics.k8s.io/v1beta1/namespaces/ml/queue_depth");
  EXPECT_EQ(a.verb, "list");
  EXPECT_EQ(a.resource, "queue_depth");
  EXPECT_EQ(a.name, "");

  a = attributes_of("GET", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/metrics/m");
  EXPECT_EQ(a.resource, "metrics");
  EXPECT_EQ(a.name, "m");
  EXPECT_EQ(a.namespace_, "ml");
}

TEST(RequestAttributes, DiscoveryAndOperationalPathsAreNonResource) {
  for (const char* path :
       {"/apis", "/apis/custom.metrics.k8s.io", "/apis/custom.metrics.k8s.io/v1beta2", "/healthz",
        "/metrics", "/version"}) {
    SCOPED_TRACE(path);
    const auto a = attributes_of("GET", path);
    EXPECT_FALSE(a.resource_request);
    EXPECT_EQ(a.path, path);
    EXPECT_EQ(a.verb, "get");
  }
}

TEST(ForbiddenStatus, KubernetesMessages) {
  auto a = attributes_of(
      "GET", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/*/gpu_utilization");
  a.user.name = "bob";
  const auto status = core::forbidden(a, "");
  EXPECT_EQ(status.code, 403);
  EXPECT_EQ(
      status.body["message"],
      "pods.custom.metrics.k8s.io \"*\" is forbidden: User \"bob\" cannot get resource "
      "\"pods/gpu_utilization\" in API group \"custom.metrics.k8s.io\" in the namespace \"ml\"");
  EXPECT_EQ(status.body["details"].dump(),
            R"({"name":"*","group":"custom.metrics.k8s.io","kind":"pods"})");
  auto cluster = attributes_of("GET", "/apis/external.metrics.k8s.io/v1beta1/namespaces/ml/q");
  cluster.user.name = "bob";
  EXPECT_EQ(
      core::forbidden(cluster, "no RBAC policy matched").body["message"],
      "q.external.metrics.k8s.io is forbidden: User \"bob\" cannot list resource \"q\" in API "
      "group \"external.metrics.k8s.io\" in the namespace \"ml\": no RBAC policy matched");
  auto path = attributes_of("GET", "/metrics");
  path.user.name = "system:anonymous";
  EXPECT_EQ(core::forbidden(path, "").body["message"],
            "forbidden: User \"system:anonymous\" cannot get path \"/metrics\"");
  EXPECT_EQ(
      core::unauthorized().body.dump(),
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401})");
}

TEST(RequestAttributes, AnEncodedSlashIsNotReadAsAnotherResource) {
  // Decoded whole, this would be the resource "secrets" in namespace "a".
  const auto a =
      attributes_of("GET", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/a%2Fsecrets/pods/x/m");
  EXPECT_FALSE(a.resource_request);
  EXPECT_EQ(a.resource, "");
  EXPECT_EQ(a.namespace_, "");
}

}  // namespace
}  // namespace gma::auth
