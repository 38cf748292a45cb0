// The handler over in-memory providers: routing, selector errors and the Status each provider
// error becomes. Prometheus itself is exercised in tests/e2e.
#include "server/handlers/api_handler.hpp"

#include <gtest/gtest.h>

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "server/core/go_json.hpp"
#include "tests/support/self_metrics.hpp"

namespace gma::handlers {
namespace {

namespace net = boost::asio;
using core::json;

class fake_metrics final : public core::custom_metrics_provider,
                           public core::external_metrics_provider,
                           public core::readiness_source {
 public:
  error_code fail_with;
  bool throw_instead = false;
  bool cancelled = false;  ///< throws what a co_await throws once the request is cancelled
  std::optional<core::custom_metric_query> last_query;

  net::awaitable<result<std::vector<core::metric_value>>> async_get_metric(
      core::custom_metric_query q) override {
    last_query = q;
    if (throw_instead) throw std::runtime_error("a JSON field of an unexpected type");
    if (cancelled) throw boost::system::system_error(net::error::operation_aborted);
    if (fail_with) co_return fail_with;
    if (q.metric != "gpu_utilization") co_return errc::metric_not_found;
    std::vector<core::metric_value> out;
    for (const char* pod : {"a", "b", "c"}) {
      if (q.only_names &&
          std::find(q.only_names->begin(), q.only_names->end(), pod) == q.only_names->end())
        continue;
      out.push_back({{"Pod", q.namespace_, pod, "/v1"},
                     q.metric,
                     core::sys_seconds(std::chrono::seconds(0)),
                     *core::quantity::parse("1500m")});
    }
    co_return out;
  }
  std::vector<core::custom_metric_info> list_all_metrics() const override {
    return {{"pods", true, "gpu_utilization"}};
  }
  net::awaitable<result<std::vector<core::external_metric_value>>> async_get_external_metric(
      core::external_metric_query) override {
    if (fail_with) co_return fail_with;
    co_return std::vector<core::external_metric_value>{};
  }
  std::vector<core::external_metric_info> list_all_external_metrics() const override { return {}; }
  std::vector<core::health_check> readiness_checks() const override {
    return {{"prometheus", ready, ready ? "" : "Prometheus has not answered recently"}};
  }
  bool ready = true;
};

class fake_pods final : public core::pod_lister {
 public:
  result<std::vector<std::string>> list_pod_names(const std::string&,
                                                  const core::label_selector& s) const override {
    if (!synced) return errc::kubernetes_unavailable;
    std::vector<std::string> out;
    if (s.matches({{"app", "x"}})) out = {"a", "c"};
    return out;
  }
  bool synced = true;
};

class ApiHandlerTest : public ::testing::Test {
 protected:
  http::reply get(const std::string& target, const char* method = "GET") {
    api_handler handler(deps());
    net::io_context ioc;
    auto future = net::co_spawn(ioc, handler.async_handle({method, target}), net::use_future);
    ioc.run();
    return future.get();
  }
  handler_dependencies deps() {
    handler_dependencies d;
    d.custom = &metrics;
    d.external = &metrics;
    d.pods = with_pods ? &pods : nullptr;
    d.readiness = {&metrics};
    d.registry = &registry;
    d.version = "v1.2.3";
    return d;
  }
  json body(const http::reply& r) { return json::parse(r.body); }

  fake_metrics metrics;
  fake_pods pods;
  bool with_pods = true;
  prometheus::Registry registry;
};

TEST_F(ApiHandlerTest, PodsBySelectorAnswersOnlyMatchingPods) {
  const auto r =
      get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/gpu_utilization"
          "?labelSelector=app%3Dx");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "application/json");
  const auto items = body(r)["items"];
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0]["describedObject"]["name"], "a");
  EXPECT_EQ(items[1]["describedObject"]["name"], "c");
  EXPECT_EQ(items[0]["value"], "1500m");
}

TEST_F(ApiHandlerTest, WildcardWithoutSelectorNeedsNoKubernetes) {
  with_pods = false;
  const auto r = get("/apis/custom.metrics.k8s.io/v1beta1/namespaces/ml/pods/*/gpu_utilization");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(body(r)["items"].size(), 3u);
  EXPECT_FALSE(metrics.last_query->only_names.has_value());
}

TEST_F(ApiHandlerTest, WildcardWithoutSelectorAnswersOnlyForPodsThatExist) {
  // The fake's pod list is {a, c}; Prometheus still has a series of the deleted pod b.
  const auto r = get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/*/gpu_utilization");
  ASSERT_EQ(r.status, 200u);
  const auto items = body(r)["items"];
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0]["describedObject"]["name"], "a");
  EXPECT_EQ(items[1]["describedObject"]["name"], "c");
}

TEST_F(ApiHandlerTest, WildcardWithoutSelectorBeforeThePodListIsReadAnswersForAll) {
  pods.synced = false;
  const auto r = get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/*/gpu_utilization");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(body(r)["items"].size(), 3u);
}

TEST_F(ApiHandlerTest, AnExceptionFromAProviderIsA500Status) {
  metrics.throw_instead = true;
  const auto r = get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/*/gpu_utilization");
  EXPECT_EQ(r.status, 500u);
  EXPECT_EQ(body(r)["kind"], "Status");
  EXPECT_EQ(body(r)["reason"], "InternalError");
  EXPECT_EQ(body(r)["message"], "Internal error occurred: unable to fetch metrics");
}

// At the drain deadline the session cancels the handler, whose next co_await throws
// operation_aborted: that is the server shutting down, not a 500.
TEST_F(ApiHandlerTest, ACancelledRequestIsA503NotAnInternalError) {
  metrics.cancelled = true;
  const auto r = get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/*/gpu_utilization");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(body(r)["reason"], "ServiceUnavailable");
  EXPECT_EQ(body(r)["message"], "the server is shutting down");
}

TEST_F(ApiHandlerTest, SelectorWithoutKubernetesAccessIs503WithAdvice) {
  with_pods = false;
  const auto r =
      get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/*/gpu_utilization"
          "?labelSelector=app%3Dx");
  EXPECT_EQ(r.status, 503u);
  EXPECT_NE(body(r)["message"].get<std::string>().find("--lister-kubeconfig"), std::string::npos);
}

TEST_F(ApiHandlerTest, UnsyncedPodCacheIs503) {
  pods.synced = false;
  EXPECT_EQ(get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/*/gpu_utilization"
                "?labelSelector=app%3Dx")
                .status,
            503u);
}

TEST_F(ApiHandlerTest, BadSelectorsAre400) {
  for (const char* q :
       {"labelSelector=app+in+%28", "metricLabelSelector=%3Dx", "labelSelector=a%3D%22x%22"}) {
    SCOPED_TRACE(q);
    const auto r = get(
        std::string("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/*/gpu_utilization?") +
        q);
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(body(r)["reason"], "BadRequest");
  }
  EXPECT_EQ(get("/apis/external.metrics.k8s.io/v1beta1/namespaces/ml/m?labelSelector=%21").status,
            400u);
}

TEST_F(ApiHandlerTest, UnknownMetricIs404WithReferenceMessage) {
  const auto r = get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/p-1/nope");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(body(r)["message"], "the server could not find the metric nope for pods p-1");
  EXPECT_EQ(body(get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/*/nope"))["message"],
            "the server could not find the metric nope for pods");
}

TEST_F(ApiHandlerTest, ProviderErrorsMapToStatusCodes) {
  const std::string target =
      "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/*/gpu_utilization";
  metrics.fail_with = errc::backend_unavailable;
  auto r = get(target);
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(body(r)["reason"], "ServiceUnavailable");
  metrics.fail_with = errc::backend_error;
  r = get(target);
  EXPECT_EQ(r.status, 500u);
  EXPECT_EQ(body(r)["message"], "Internal error occurred: unable to fetch metrics");
  metrics.fail_with = errc::invalid_selector;
  EXPECT_EQ(get(target).status, 400u);
}

TEST_F(ApiHandlerTest, UnknownPathsAndMethods) {
  EXPECT_EQ(get("/apis/metrics.k8s.io/v1beta1").status, 404u);
  EXPECT_EQ(body(get("/nope"))["message"], "the server could not find the requested resource");
  EXPECT_EQ(get("/apis", "POST").status, 405u);
}

TEST_F(ApiHandlerTest, ReadinessListsChecks) {
  auto r = get("/readyz?verbose");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "[+]ping ok\n[+]prometheus ok\nreadyz check passed\n");
  metrics.ready = false;
  r = get("/readyz");
  EXPECT_EQ(r.status, 500u);
  EXPECT_NE(r.body.find("[-]prometheus failed"), std::string::npos);
  EXPECT_EQ(get("/livez").status, 200u);
  EXPECT_EQ(get("/readyz/prometheus").status, 500u);
}

TEST_F(ApiHandlerTest, VersionAndSelfMetrics) {
  EXPECT_EQ(body(get("/version"))["gitVersion"], "v1.2.3");
  EXPECT_EQ(body(get("/version"))["minor"], "2");
  api_handler handler(deps());
  net::io_context ioc;
  net::co_spawn(ioc, handler.async_handle({"GET", "/apis"}), net::detached);
  auto metrics_reply =
      net::co_spawn(ioc, handler.async_handle({"GET", "/metrics"}), net::use_future);
  ioc.run();
  const auto text = metrics_reply.get().body;
  EXPECT_NE(text.find(R"(gma_http_requests_total{code="200",route="discovery"} 1)"),
            std::string::npos)
      << text;
}

// Counters by route and code and the latency histogram by route, with the handles kept between
// requests: every request lands in its own series, and a series exists once it has a request.
TEST_F(ApiHandlerTest, SelfMetricsCountEveryRequestByRouteAndCode) {
  api_handler handler(deps());
  net::io_context ioc;
  const std::vector<std::string> targets = {
      "/apis",
      "/apis",
      "/apis/custom.metrics.k8s.io",
      "/nothing/here",
      "/version",
      "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/gpu_utilization",
      "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/"
      "gpu_utilization?labelSelector=%21"};
  for (const auto& target : targets)
    net::co_spawn(ioc, handler.async_handle({"GET", target}), net::detached);
  net::co_spawn(ioc, handler.async_handle({"POST", "/apis"}), net::detached);
  ioc.run();
  const auto requests = [&](const char* route, const char* code) {
    return testing::series_value(registry, "gma_http_requests_total",
                                 {{"route", route}, {"code", code}});
  };
  EXPECT_EQ(requests("discovery", "200"), 3);
  EXPECT_EQ(requests("discovery", "405"), 1);
  EXPECT_EQ(requests("not_found", "404"), 1);
  EXPECT_EQ(requests("version", "200"), 1);
  EXPECT_EQ(requests("custom_metric", "200"), 1);
  EXPECT_EQ(requests("custom_metric", "400"), 1);
  EXPECT_EQ(requests("external_metric", "200"), -1);
  const auto latency = [&](const char* route) {
    return testing::series_value(registry, "gma_http_request_duration_seconds", {{"route", route}});
  };
  EXPECT_EQ(latency("discovery"), 4);
  EXPECT_EQ(latency("custom_metric"), 2);
  EXPECT_EQ(latency("health"), -1);
}

TEST(RouteLabel, EveryKindHasTheLabelOfItsRoutes) {
  EXPECT_STREQ(route_label(route(custom_metric_route{}).index()), "custom_metric");
  EXPECT_STREQ(route_label(route(group_list_route{}).index()), "discovery");
  EXPECT_STREQ(route_label(route(not_found_route{}).index()), "not_found");
  EXPECT_STREQ(route_label(kRouteKinds), "not_found");
}

}  // namespace
}  // namespace gma::handlers
