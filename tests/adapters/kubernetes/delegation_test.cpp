// The TokenReview and SubjectAccessReview clients and the ConfigMap read over a fake transport
// (tests/support/fake_transport.hpp): the request each sends (kubernetes-metrics-apis.md 8.4,
// 8.5), how the reply is decoded, and that every failure is kubernetes_unavailable, which the
// auth guard answers with 503 (never an implicit allow).
#include "adapters/kubernetes/delegation.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/fake_transport.hpp"
#include "tests/support/run_awaitable.hpp"

namespace gma::adapters::kubernetes {
namespace {

using nlohmann::json;
using testing::fake_transport;
using testing::run_awaitable;
namespace bhttp = boost::beast::http;

struct fixture {
  result<std::optional<core::user_info>> review_token(std::string token) {
    token_review_client client(transport);
    return run_awaitable(ioc, client.async_review_token(std::move(token)));
  }
  result<core::authorization_decision> review_access(core::request_attributes a) {
    access_review_client client(transport);
    return run_awaitable(ioc, client.async_review_access(std::move(a)));
  }
  /// The JSON body of the only request sent.
  json sent_body() const {
    const auto sent = transport.requests();
    EXPECT_EQ(sent.size(), 1u);
    return sent.empty() ? json() : json::parse(sent.back().body, nullptr, false);
  }

  boost::asio::io_context ioc;
  fake_transport transport{"https://kubernetes.default.svc"};
};

TEST(TokenReview, RequestIsAPostOfTheToken) {
  fixture f;
  f.transport.reply(201, R"({"status":{"authenticated":false}})");
  ASSERT_TRUE(f.review_token("abc.def").has_value());
  const auto sent = f.transport.requests();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].method, bhttp::verb::post);
  EXPECT_EQ(sent[0].target, "/apis/authentication.k8s.io/v1/tokenreviews");
  EXPECT_EQ(sent[0].content_type, "application/json");
  EXPECT_EQ(sent[0].timeout, std::chrono::seconds(10));  // k8s.io/apiserver's delegating clients
  EXPECT_EQ(f.sent_body(), json::parse(R"({"apiVersion":"authentication.k8s.io/v1",
      "kind":"TokenReview","spec":{"token":"abc.def"}})"));
}

TEST(TokenReview, AuthenticatedUserIsDecoded) {
  fixture f;
  f.transport.reply(201, R"({"kind":"TokenReview","status":{"authenticated":true,"user":{
      "username":"system:serviceaccount:kube-system:horizontal-pod-autoscaler","uid":"u-1",
      "groups":["system:serviceaccounts",7,"system:serviceaccounts:kube-system"],
      "extra":{"authentication.kubernetes.io/pod-name":["hpa-0"]}}}})");
  const auto user = f.review_token("t");
  ASSERT_TRUE(user.has_value());
  ASSERT_TRUE(user->has_value());
  EXPECT_EQ(**user,
            (core::user_info{"system:serviceaccount:kube-system:horizontal-pod-autoscaler",
                             "u-1",
                             {"system:serviceaccounts", "system:serviceaccounts:kube-system"},
                             {{"authentication.kubernetes.io/pod-name", {"hpa-0"}}}}));
}

TEST(TokenReview, UnauthenticatedTokenIsNoUser) {
  fixture f;
  f.transport.reply(201, R"({"status":{"authenticated":false,"error":"token expired"}})");
  const auto user = f.review_token("t");
  ASSERT_TRUE(user.has_value());
  EXPECT_FALSE(user->has_value());
  // A reply without a status says nothing good either.
  f.transport.reply(200, R"({"kind":"TokenReview"})");
  const auto empty = f.review_token("t");
  ASSERT_TRUE(empty.has_value());
  EXPECT_FALSE(empty->has_value());
}

// Unreachable, refused (403 without the auth-delegator binding), failing or garbled: the token
// could not be reviewed, which is not the same as invalid.
TEST(TokenReview, FailuresAreKubernetesUnavailable) {
  const std::pair<unsigned, const char*> replies[] = {
      {403, R"({"kind":"Status","code":403})"}, {500, "oops"}, {200, "not json"}, {200, "[]"}};
  for (const auto& [status, body] : replies) {
    SCOPED_TRACE(body);
    fixture f;
    f.transport.reply(status, body);
    const auto user = f.review_token("t");
    ASSERT_FALSE(user.has_value());
    EXPECT_EQ(user.error(), errc::kubernetes_unavailable);
  }
  fixture f;
  f.transport.fail(errc::backend_unavailable);
  const auto user = f.review_token("t");
  ASSERT_FALSE(user.has_value());
  EXPECT_EQ(user.error(), errc::kubernetes_unavailable);
}

core::request_attributes hpa_request() {
  core::request_attributes a;
  a.user = {
      "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
      "",
      {"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
      {}};
  a.verb = "get";
  a.resource_request = true;
  a.namespace_ = "ml";
  a.api_group = "custom.metrics.k8s.io";
  a.api_version = "v1beta2";
  a.resource = "pods";
  a.subresource = "gpu_utilization";
  a.name = "*";
  return a;
}

// The example request of kubernetes-metrics-apis.md 8.5, field for field.
TEST(SubjectAccessReview, ResourceRequestAsKubernetesSendsIt) {
  fixture f;
  f.transport.reply(201, R"({"status":{"allowed":true}})");
  ASSERT_TRUE(f.review_access(hpa_request()).has_value());
  const auto sent = f.transport.requests();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].method, bhttp::verb::post);
  EXPECT_EQ(sent[0].target, "/apis/authorization.k8s.io/v1/subjectaccessreviews");
  EXPECT_EQ(sent[0].content_type, "application/json");
  EXPECT_EQ(f.sent_body(), json::parse(R"({"apiVersion":"authorization.k8s.io/v1",
      "kind":"SubjectAccessReview",
      "spec":{"resourceAttributes":{"namespace":"ml","verb":"get","group":"custom.metrics.k8s.io",
        "version":"v1beta2","resource":"pods","subresource":"gpu_utilization","name":"*"},
      "user":"system:serviceaccount:kube-system:horizontal-pod-autoscaler",
      "groups":["system:serviceaccounts","system:serviceaccounts:kube-system",
                "system:authenticated"]}})"));
}

// Empty attributes are left out (an external metric has no name); uid and extra go along.
TEST(SubjectAccessReview, EmptyFieldsAreLeftOutAndUidAndExtraSent) {
  fixture f;
  f.transport.reply(201, R"({"status":{"allowed":true}})");
  auto a = hpa_request();
  a.verb = "list";
  a.api_group = "external.metrics.k8s.io";
  a.api_version = "v1beta1";
  a.resource = "queue_depth";
  a.subresource = "";
  a.name = "";
  a.user.uid = "u-1";
  a.user.extra = {{"scopes", {"a", "b"}}};
  ASSERT_TRUE(f.review_access(a).has_value());
  const auto spec = f.sent_body()["spec"];
  EXPECT_EQ(spec["resourceAttributes"], json::parse(R"({"namespace":"ml","verb":"list",
      "group":"external.metrics.k8s.io","version":"v1beta1","resource":"queue_depth"})"));
  EXPECT_EQ(spec["uid"], "u-1");
  EXPECT_EQ(spec["extra"], json::parse(R"({"scopes":["a","b"]})"));
}

TEST(SubjectAccessReview, NonResourceRequestSendsPathAndVerb) {
  fixture f;
  f.transport.reply(201, R"({"status":{"allowed":false}})");
  core::request_attributes a;
  a.user = {"alice", "", {}, {}};
  a.verb = "get";
  a.path = "/apis/custom.metrics.k8s.io/v1beta2";
  ASSERT_TRUE(f.review_access(a).has_value());
  EXPECT_EQ(f.sent_body()["spec"], json::parse(R"({
      "nonResourceAttributes":{"path":"/apis/custom.metrics.k8s.io/v1beta2","verb":"get"},
      "user":"alice"})"));
}

TEST(SubjectAccessReview, DecisionAndReasonAreDecoded) {
  struct decoded {
    const char* body;
    bool allowed;
    const char* reason;
  };
  const decoded cases[] = {
      {R"({"status":{"allowed":true,"reason":"RBAC: allowed by ClusterRoleBinding"}})", true,
       "RBAC: allowed by ClusterRoleBinding"},
      {R"({"status":{"allowed":false,"reason":"no RBAC policy matched"}})", false,
       "no RBAC policy matched"},
      // denied wins: an authorizer in the chain said no outright.
      {R"({"status":{"allowed":true,"denied":true}})", false, ""},
      {R"({"status":{"allowed":"true"}})", false, ""},
      {R"({"status":{"allowed":false,"evaluationError":"webhook down"}})", false, ""},
      {R"({"kind":"SubjectAccessReview"})", false, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    fixture f;
    f.transport.reply(201, c.body);
    const auto decision = f.review_access(hpa_request());
    ASSERT_TRUE(decision.has_value());
    EXPECT_EQ(decision->allowed, c.allowed);
    EXPECT_EQ(decision->reason, c.reason);
  }
}

TEST(SubjectAccessReview, FailuresAreKubernetesUnavailable) {
  fixture f;
  f.transport.reply(503, "");
  auto decision = f.review_access(hpa_request());
  ASSERT_FALSE(decision.has_value());
  EXPECT_EQ(decision.error(), errc::kubernetes_unavailable);
  f.transport.fail(errc::backend_unavailable);
  decision = f.review_access(hpa_request());
  ASSERT_FALSE(decision.has_value());
  EXPECT_EQ(decision.error(), errc::kubernetes_unavailable);
}

TEST(ConfigMapRead, DataOfTheNamedConfigMap) {
  fixture f;
  f.transport.reply(200, R"({"kind":"ConfigMap","data":{
      "requestheader-allowed-names":"[\"front-proxy-client\"]","odd":5}})");
  const auto data = run_awaitable(
      f.ioc,
      async_get_configmap_data(f.transport, "kube-system", "extension-apiserver-authentication"));
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(*data, (std::map<std::string, std::string>{
                       {"requestheader-allowed-names", "[\"front-proxy-client\"]"}}));
  const auto sent = f.transport.requests();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].method, bhttp::verb::get);
  EXPECT_EQ(sent[0].target,
            "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication");
  f.transport.reply(403, R"({"kind":"Status","code":403})");
  const auto refused = run_awaitable(
      f.ioc,
      async_get_configmap_data(f.transport, "kube-system", "extension-apiserver-authentication"));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error(), errc::kubernetes_unavailable);
}

}  // namespace
}  // namespace gma::adapters::kubernetes
