// The auth guard with the real authenticator and authorizer over fake reviewers
// (tests/support/fake_reviewers.hpp): which Status each outcome becomes (401, 403, 503, 404)
// and that only an allowed request reaches the handler behind it.
#include "server/auth/guarded_handler.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/fake_reviewers.hpp"
#include "tests/support/run_awaitable.hpp"

namespace gma::auth {
namespace {

using namespace std::chrono_literals;
using testing::run_awaitable;

constexpr const char* kMetricPath =
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/gpu_utilization";

/// The handler behind the guard: answers 200 "inner" and counts its calls.
class counting_handler final : public http::request_handler {
 public:
  boost::asio::awaitable<http::reply> async_handle(http::request) override {
    ++calls;
    co_return http::reply{200, "text/plain", "inner"};
  }
  std::atomic<int> calls{0};
};

struct fixture {
  fixture() : authn(&tokens, 10s), authz(access, {}), guard(authn, authz, inner, registry) {}

  http::reply handle(std::string token, std::string target = kMetricPath) {
    http::request req{"GET", std::move(target), {}, nullptr};
    if (!token.empty()) req.headers.push_back({"authorization", "Bearer " + token});
    return run_awaitable(ioc, guard.async_handle(std::move(req)));
  }

  boost::asio::io_context ioc;
  testing::fake_token_reviewer tokens;
  testing::fake_access_reviewer access;
  counting_handler inner;
  prometheus::Registry registry;
  authenticator authn;
  authorizer authz;
  guarded_handler guard;
};

std::string reason_of(const http::reply& r) {
  const auto doc = nlohmann::json::parse(r.body, nullptr, false);
  return doc.is_object() && doc.contains("reason") ? doc["reason"].get<std::string>() : "";
}

TEST(GuardedHandler, AllowedRequestReachesTheHandler) {
  fixture f;
  const auto r = f.handle("hpa-token");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "inner");
  EXPECT_EQ(f.inner.calls, 1);
  // The review saw the authenticated user and the path as RequestInfo parses it.
  const auto asked = f.access.asked();
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].user.name, "hpa");
  EXPECT_EQ(asked[0].user.groups, std::vector<std::string>{"system:authenticated"});
  EXPECT_EQ(asked[0].resource, "pods");
  EXPECT_EQ(asked[0].name, "*");  // %2A decoded
}

TEST(GuardedHandler, OperationalPathsNeedNoReview) {
  fixture f;
  const auto r = f.handle("", "/healthz");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "inner");
  EXPECT_EQ(f.inner.calls, 1);
  EXPECT_TRUE(f.access.asked().empty());
}

TEST(GuardedHandler, RejectedTokenIs401) {
  fixture f;
  const auto r = f.handle("stolen");
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(reason_of(r), "Unauthorized");
  EXPECT_EQ(f.inner.calls, 0);
  EXPECT_TRUE(f.access.asked().empty());
}

TEST(GuardedHandler, DeniedRequestIs403WithTheReason) {
  fixture f;
  const auto r = f.handle("");  // system:anonymous
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(reason_of(r), "Forbidden");
  EXPECT_NE(r.body.find("User \\\"system:anonymous\\\" cannot get resource"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("no RBAC policy matched"), std::string::npos) << r.body;
  EXPECT_EQ(f.inner.calls, 0);
}

// Kubernetes unreachable is 503 at either step, never a guess in either direction.
TEST(GuardedHandler, UnreachableKubernetesIs503) {
  fixture f;
  f.tokens.unavailable = true;
  auto r = f.handle("good-token");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(reason_of(r), "ServiceUnavailable");
  f.tokens.unavailable = false;
  f.access.unavailable = true;
  r = f.handle("good-token");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(reason_of(r), "ServiceUnavailable");
  EXPECT_EQ(f.inner.calls, 0);
}

// An encoded '/' names nothing: 404 before anyone is asked.
TEST(GuardedHandler, TargetThatNamesNothingIs404WithoutReviews) {
  fixture f;
  const auto r =
      f.handle("good-token", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/a%2Fb/pods/x/m");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(f.tokens.reviews, 0);
  EXPECT_TRUE(f.access.asked().empty());
}

/// gma_auth_decisions_total{decision=...} as /metrics would show it; -1 when it has no series.
double decisions(prometheus::Registry& registry, const std::string& decision) {
  for (const auto& family : registry.Collect())
    if (family.name == "gma_auth_decisions_total")
      for (const auto& metric : family.metric)
        for (const auto& label : metric.label)
          if (label.name == "decision" && label.value == decision) return metric.counter.value;
  return -1;
}

// Every outcome has its series from the start, at 0, and each request counts in its own.
TEST(GuardedHandler, DecisionsAreCountedPerOutcome) {
  fixture f;
  for (const char* decision : {"not_found", "authn_unavailable", "unauthorized",
                               "authz_unavailable", "forbidden", "allowed"})
    EXPECT_EQ(decisions(f.registry, decision), 0) << decision;
  f.handle("hpa-token");
  f.handle("hpa-token");
  f.handle("stolen");
  f.handle("");  // system:anonymous
  f.handle("hpa-token", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/a%2Fb/pods/x/m");
  EXPECT_EQ(decisions(f.registry, "allowed"), 2);
  EXPECT_EQ(decisions(f.registry, "unauthorized"), 1);
  EXPECT_EQ(decisions(f.registry, "forbidden"), 1);
  EXPECT_EQ(decisions(f.registry, "not_found"), 1);
  EXPECT_EQ(decisions(f.registry, "authn_unavailable"), 0);
}

}  // namespace
}  // namespace gma::auth
