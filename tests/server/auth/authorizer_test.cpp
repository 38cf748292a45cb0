// The authorizer over a fake SubjectAccessReview seam (tests/support/fake_reviewers.hpp): what
// skips the review, what is reviewed, and how allowed and denied decisions are cached for their
// TTLs.
#include "server/auth/authorizer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <set>

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

// Every field a review sees changes the key, and fields never run into each other: a user
// "a" in group "bc" is not a user "ab" in group "c", an extra value is not another key's.
TEST(AuthorizationCacheKey, DifferentRequestsNeverShareAKey) {
  const auto base = metric_request("hpa");
  std::vector<core::request_attributes> variants;
  const auto vary = [&](auto change) {
    auto a = base;
    change(a);
    variants.push_back(std::move(a));
  };
  vary([](auto& a) { a.user.name = "hpa2"; });
  vary([](auto& a) { a.user.uid = "u-1"; });
  vary([](auto& a) { a.user.groups = {"system:authenticated", ""}; });
  vary([](auto& a) { a.user.groups = {}; });
  vary([](auto& a) { a.user.extra = {{"scopes", {"read"}}}; });
  vary([](auto& a) { a.user.extra = {{"scopes", {"read", ""}}}; });
  vary([](auto& a) { a.user.extra = {{"scopes", {}}, {"read", {}}}; });
  vary([](auto& a) { a.verb = "list"; });
  vary([](auto& a) { a.resource_request = false; });
  vary([](auto& a) { a.namespace_ = "ml2"; });
  vary([](auto& a) { a.api_group = "external.metrics.k8s.io"; });
  vary([](auto& a) { a.api_version = "v1beta1"; });
  vary([](auto& a) { a.resource = "nodes"; });
  vary([](auto& a) { a.subresource = "gpu_power_watts"; });
  vary([](auto& a) { a.name = "p1"; });
  // Boundaries: the same characters split differently between neighbouring fields.
  vary([](auto& a) {
    a.user.name = "hp";
    a.user.uid = "a";
  });
  vary([](auto& a) {
    a.namespace_ = "m";
    a.api_group = "lcustom.metrics.k8s.io";
  });
  vary([](auto& a) { a.user.groups = {"system:", "authenticated"}; });
  std::set<std::string> keys = {authorization_cache_key(base)};
  for (const auto& a : variants) keys.insert(authorization_cache_key(a));
  EXPECT_EQ(keys.size(), variants.size() + 1);
}

TEST(AuthorizationCacheKey, SameRequestSameKeyAndPathOnlyForNonResourceRequests) {
  const auto a = metric_request("hpa");
  auto other_path = a;
  other_path.path = "/elsewhere";
  EXPECT_EQ(authorization_cache_key(a), authorization_cache_key(metric_request("hpa")));
  EXPECT_EQ(authorization_cache_key(a), authorization_cache_key(other_path));
  EXPECT_NE(authorization_cache_key(path_request("/healthz")),
            authorization_cache_key(path_request("/livez")));
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
