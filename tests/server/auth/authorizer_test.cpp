// The authorizer over a fake SubjectAccessReview seam (tests/support/fake_reviewers.hpp): what
// skips the review, what is reviewed, and how allowed and denied decisions are cached for their
// TTLs.
#include "server/auth/authorizer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>

#include "tests/support/fake_reviewers.hpp"
#include "tests/support/run_awaitable.hpp"

namespace gma::auth {
namespace {

using namespace std::chrono_literals;
using testing::fake_access_reviewer;
using testing::run_awaitable;

core::request_attributes metric_request(std::string user) {
  core::request_attributes a;
  a.user = {std::move(user), "", {"system:authenticated"}, {}};
  a.verb = "get";
  a.resource_request = true;
  a.namespace_ = "ml";
  a.api_group = "custom.metrics.k8s.io";
  a.api_version = "v1beta2";
  a.resource = "pods";
  a.subresource = "gpu_utilization";
  a.name = "*";
  a.path = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/*/gpu_utilization";
  return a;
}

core::request_attributes path_request(std::string path) {
  core::request_attributes a;
  a.user = {"system:anonymous", "", {"system:unauthenticated"}, {}};
  a.verb = "get";
  a.path = std::move(path);
  return a;
}

struct fixture {
  explicit fixture(authorization_options options = {}) : authz(reviewer, std::move(options)) {}
  result<core::authorization_decision> authorize(core::request_attributes a) {
    return run_awaitable(ioc, authz.async_authorize(std::move(a)));
  }
  boost::asio::io_context ioc;
  fake_access_reviewer reviewer;
  authorizer authz;
};

TEST(Authorizer, AlwaysAllowedPathsSkipTheReview) {
  authorization_options options;
  options.always_allow_paths = {"/healthz", "/readyz/*"};
  fixture f(options);
  for (const char* path : {"/healthz", "/readyz/", "/readyz/prometheus"}) {
    SCOPED_TRACE(path);
    const auto d = f.authorize(path_request(path));
    ASSERT_TRUE(d.has_value());
    EXPECT_TRUE(d->allowed);
  }
  EXPECT_TRUE(f.reviewer.asked().empty());
  // Exact unless it ends in '*', and never for a resource request.
  EXPECT_FALSE(f.authorize(path_request("/healthz/x"))->allowed);
  EXPECT_FALSE(f.authorize(path_request("/readyz"))->allowed);
  auto resource = metric_request("nobody");
  resource.path = "/healthz";
  EXPECT_FALSE(f.authorize(resource)->allowed);
  EXPECT_EQ(f.reviewer.asked().size(), 3u);
}

// kube-aggregator's availability check comes as system:masters.
TEST(Authorizer, SystemMastersSkipTheReview) {
  fixture f;
  auto a = metric_request("system:kube-aggregator");
  a.user.groups = {"system:masters"};
  const auto d = f.authorize(a);
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->allowed);
  EXPECT_TRUE(f.reviewer.asked().empty());
}

TEST(Authorizer, TheReviewDecidesWithItsReason) {
  fixture f;
  auto d = f.authorize(metric_request("hpa"));
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->allowed);
  d = f.authorize(metric_request("eve"));
  ASSERT_TRUE(d.has_value());
  EXPECT_FALSE(d->allowed);
  EXPECT_EQ(d->reason, "no RBAC policy matched");
  const auto asked = f.reviewer.asked();
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[0].user.name, "hpa");
  EXPECT_EQ(asked[0].resource, "pods");
  EXPECT_EQ(asked[0].subresource, "gpu_utilization");
}

// Allowed and denied answers live for their own TTLs (--authorization-webhook-cache-*-ttl):
// here allowed ones for an hour and denied ones not at all.
TEST(Authorizer, AllowedAndDeniedDecisionsAreCachedForTheirOwnTtl) {
  authorization_options options;
  options.allowed_ttl = 1h;
  options.denied_ttl = 0s;
  fixture f(options);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(f.authorize(metric_request("hpa"))->allowed);
    EXPECT_FALSE(f.authorize(metric_request("eve"))->allowed);
  }
  const auto asked = f.reviewer.asked();
  ASSERT_EQ(asked.size(), 4u);  // hpa once, eve three times
  EXPECT_EQ(
      std::count_if(asked.begin(), asked.end(), [](const auto& a) { return a.user.name == "hpa"; }),
      1);
}

TEST(Authorizer, DeniedDecisionsAreCachedToo) {
  authorization_options options;
  options.allowed_ttl = 0s;
  options.denied_ttl = 1h;
  fixture f(options);
  for (int i = 0; i < 2; ++i) {
    EXPECT_FALSE(f.authorize(metric_request("eve"))->allowed);
    EXPECT_TRUE(f.authorize(metric_request("hpa"))->allowed);
  }
  EXPECT_EQ(f.reviewer.asked().size(), 3u);  // eve once, hpa twice
}

// The cache key is every attribute the review sees: another verb, object or group is another
// review. The path of a resource request is not one of them (only RequestInfo's fields are).
TEST(Authorizer, CacheKeyIsWhatTheReviewSees) {
  fixture f;
  ASSERT_TRUE(f.authorize(metric_request("hpa")).has_value());
  auto other_object = metric_request("hpa");
  other_object.name = "p1";
  auto other_group = metric_request("hpa");
  other_group.user.groups.push_back("ml-team");
  auto other_path = metric_request("hpa");
  other_path.path = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/gpu_utilization";
  for (const auto& a : {other_object, other_group, other_path})
    ASSERT_TRUE(f.authorize(a).has_value());
  EXPECT_EQ(f.reviewer.asked().size(), 3u);
}

// A review that cannot be made is an error (the guard's 503), never an allow, and is not
// cached: the next request asks again.
TEST(Authorizer, UnreachableKubernetesIsAnErrorAndNotCached) {
  fixture f;
  f.reviewer.unavailable = true;
  const auto d = f.authorize(metric_request("hpa"));
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error(), errc::kubernetes_unavailable);
  f.reviewer.unavailable = false;
  EXPECT_TRUE(f.authorize(metric_request("hpa"))->allowed);
  EXPECT_EQ(f.reviewer.asked().size(), 2u);
}

}  // namespace
}  // namespace gma::auth
