// metrics.k8s.io through the API handler over an in-memory usage provider and listers: the
// discovery documents, PodMetrics and NodeMetrics bodies, selectors, and each refusal's Status,
// as metrics-server's API layer writes them (shared/reference/resource-metrics.md 1 and 2).
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "server/core/go_json.hpp"
#include "server/handlers/api_handler.hpp"

namespace gma::handlers {
namespace {

namespace net = boost::asio;
using core::json;

core::sys_seconds at(long long unix_seconds) {
  return core::sys_seconds(std::chrono::seconds(unix_seconds));
}

class fake_usage final : public core::resource_metrics_provider {
 public:
  bool serving() const override { return serve; }
  std::chrono::milliseconds window() const override { return std::chrono::minutes(5); }
  net::awaitable<result<std::vector<core::pod_usage>>> async_pod_usage(
      std::vector<std::string> namespaces) override {
    asked_namespaces = namespaces;
    if (fail_with) co_return fail_with;
    std::vector<core::pod_usage> out;
    for (const auto& ns : namespaces) {
      if (ns != "ml") continue;
      out.push_back({"ml", "a", at(1764367205), {{"server", usage("1500m", "41260Ki")}}});
      out.push_back({"ml", "b", at(1764367200), {{"server", usage("12m", "1Gi")}}});
    }
    co_return out;
  }
  net::awaitable<result<std::vector<core::node_usage>>> async_node_usage() override {
    if (fail_with) co_return fail_with;
    co_return std::vector<core::node_usage>{{"n1", at(1764367195), usage("2", "1362696Ki")}};
  }
  static core::resource_usage usage(const char* cpu, const char* memory) {
    return {*core::quantity::parse(cpu), *core::quantity::parse(memory)};
  }
  bool serve = true;
  error_code fail_with;
  std::vector<std::string> asked_namespaces;
};

class fake_objects final : public core::object_lister {
 public:
  explicit fake_objects(std::vector<core::listed_object> objects) : objects_(std::move(objects)) {}
  result<std::vector<core::listed_object>> list_objects(
      const std::optional<std::string>& namespace_,
      const core::label_selector& selector) const override {
    if (!synced) return errc::kubernetes_unavailable;
    std::vector<core::listed_object> out;
    for (const auto& o : objects_)
      if ((!namespace_ || o.namespace_ == *namespace_) && selector.matches(o.labels))
        out.push_back(o);
    return out;
  }
  bool synced = true;

 private:
  std::vector<core::listed_object> objects_;
};

class ResourceMetricsTest : public ::testing::Test {
 protected:
  http::reply get(const std::string& target) {
    handler_dependencies d;
    d.registry = &registry;
    d.resource_metrics = {&usage, with_listers ? &pods : nullptr, with_listers ? &nodes : nullptr};
    api_handler handler(std::move(d));
    net::io_context ioc;
    auto future = net::co_spawn(ioc, handler.async_handle({"GET", target}), net::use_future);
    ioc.run();
    return future.get();
  }
  /// The body with every creationTimestamp (the time of the answer) replaced by "NOW".
  std::string stable_body(const http::reply& r) {
    json j = json::parse(r.body);
    const auto fix = [](json& item) {
      EXPECT_TRUE(item["metadata"]["creationTimestamp"].get<std::string>().ends_with("Z"));
      item["metadata"]["creationTimestamp"] = "NOW";
    };
    if (j.contains("items")) {
      for (auto& item : j["items"]) fix(item);
    } else if (j.contains("metadata") && j["metadata"].contains("creationTimestamp")) {
      fix(j);
    }
    return core::to_go_json(j);
  }

  fake_usage usage;
  fake_objects pods{{{"ml", "a", {{"app", "vllm"}}},
                     {"ml", "b", {}},
                     {"ml", "pending", {{"app", "vllm"}}},
                     {"web", "w", {{"app", "web"}}}}};
  fake_objects nodes{{{"", "n1", {{"kubernetes.io/hostname", "n1"}}}, {"", "n2", {}}}};
  bool with_listers = true;
  prometheus::Registry registry;
};

TEST_F(ResourceMetricsTest, DiscoveryAsMetricsServer) {
  auto r = get("/apis/metrics.k8s.io/v1beta1");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(
      r.body,
      R"({"kind":"APIResourceList","apiVersion":"v1","groupVersion":"metrics.k8s.io/v1beta1","resources":[{"name":"nodes","singularName":"","namespaced":false,"kind":"NodeMetrics","verbs":["get","list"]},{"name":"pods","singularName":"","namespaced":true,"kind":"PodMetrics","verbs":["get","list"]}]})"
      "\n");
  r = get("/apis/metrics.k8s.io");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(
      r.body,
      R"({"kind":"APIGroup","apiVersion":"v1","name":"metrics.k8s.io","versions":[{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}],"preferredVersion":{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}})"
      "\n");
  r = get("/apis");
  EXPECT_NE(r.body.find(R"({"name":"metrics.k8s.io","versions":)"), std::string::npos);
}

TEST_F(ResourceMetricsTest, NotServedWithoutResourceRules) {
  usage.serve = false;
  for (const char* target : {"/apis/metrics.k8s.io", "/apis/metrics.k8s.io/v1beta1",
                             "/apis/metrics.k8s.io/v1beta1/nodes"}) {
    const auto r = get(target);
    EXPECT_EQ(r.status, 404u) << target;
  }
  EXPECT_EQ(get("/apis").body.find(R"("name":"metrics.k8s.io")"), std::string::npos);
}

TEST_F(ResourceMetricsTest, PodListWithLabelsSortedAndOnlyPodsWithUsage) {
  const auto r = get("/apis/metrics.k8s.io/v1beta1/namespaces/ml/pods");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(
      stable_body(r),
      R"({"kind":"PodMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{},"items":[)"
      R"({"metadata":{"name":"a","namespace":"ml","creationTimestamp":"NOW","labels":{"app":"vllm"}},"timestamp":"2025-11-28T22:00:05Z","window":"5m0s","containers":[{"name":"server","usage":{"cpu":"1500m","memory":"41260Ki"}}]},)"
      R"({"metadata":{"name":"b","namespace":"ml","creationTimestamp":"NOW"},"timestamp":"2025-11-28T22:00:00Z","window":"5m0s","containers":[{"name":"server","usage":{"cpu":"12m","memory":"1Gi"}}]}]})"
      "\n");
  EXPECT_EQ(usage.asked_namespaces, std::vector<std::string>{"ml"});
}

TEST_F(ResourceMetricsTest, SelectorsFilterTheList) {
  auto r = get("/apis/metrics.k8s.io/v1beta1/namespaces/ml/pods?labelSelector=app%3Dvllm");
  ASSERT_EQ(r.status, 200u);
  auto items = json::parse(r.body)["items"];
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["metadata"]["name"], "a");

  r = get("/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=metadata.name%3Db");
  ASSERT_EQ(r.status, 200u);
  items = json::parse(r.body)["items"];
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["metadata"]["name"], "b");

  // Every namespace's pods are listed, each namespace asked once.
  r = get("/apis/metrics.k8s.io/v1beta1/pods");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(usage.asked_namespaces, (std::vector<std::string>{"ml", "web"}));

  r = get("/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=status.phase%3DRunning");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(
      json::parse(r.body)["message"],
      R"("status.phase" is not a known field selector: only "metadata.name", "metadata.namespace")");
  r = get("/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=a%20in%20b");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(json::parse(r.body)["reason"], "BadRequest");
}

TEST_F(ResourceMetricsTest, SinglePodAndItsNotFounds) {
  auto r = get("/apis/metrics.k8s.io/v1beta1/namespaces/ml/pods/a");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(
      stable_body(r),
      R"({"kind":"PodMetrics","apiVersion":"metrics.k8s.io/v1beta1","metadata":{"name":"a","namespace":"ml","creationTimestamp":"NOW","labels":{"app":"vllm"}},"timestamp":"2025-11-28T22:00:05Z","window":"5m0s","containers":[{"name":"server","usage":{"cpu":"1500m","memory":"41260Ki"}}]})"
      "\n");
  r = get("/apis/metrics.k8s.io/v1beta1/namespaces/ml/pods/nosuch");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(
      r.body,
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"nosuch\" not found","reason":"NotFound","details":{"name":"nosuch","kind":"pods"},"code":404})"
      "\n");
  r = get("/apis/metrics.k8s.io/v1beta1/namespaces/ml/pods/pending");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(
      r.body,
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"podmetrics.metrics.k8s.io \"ml/pending\" not found","reason":"NotFound","details":{"name":"ml/pending","group":"metrics.k8s.io","kind":"podmetrics"},"code":404})"
      "\n");
}

TEST_F(ResourceMetricsTest, Nodes) {
  auto r = get("/apis/metrics.k8s.io/v1beta1/nodes");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(
      stable_body(r),
      R"({"kind":"NodeMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{},"items":[{"metadata":{"name":"n1","creationTimestamp":"NOW","labels":{"kubernetes.io/hostname":"n1"}},"timestamp":"2025-11-28T21:59:55Z","window":"5m0s","usage":{"cpu":"2","memory":"1362696Ki"}}]})"
      "\n");
  r = get("/apis/metrics.k8s.io/v1beta1/nodes/n1");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(json::parse(r.body)["kind"], "NodeMetrics");
  r = get("/apis/metrics.k8s.io/v1beta1/nodes/n9");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(json::parse(r.body)["message"], "node \"n9\" not found");
  r = get("/apis/metrics.k8s.io/v1beta1/nodes/n2");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(json::parse(r.body)["message"], "nodemetrics.metrics.k8s.io \"n2\" not found");
}

TEST_F(ResourceMetricsTest, WatchIsNotSupported) {
  const auto r = get("/apis/metrics.k8s.io/v1beta1/namespaces/ml/pods?watch=true");
  EXPECT_EQ(r.status, 405u);
  EXPECT_EQ(
      r.body,
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"watch is not supported on resources of kind \"pods.metrics.k8s.io\"","reason":"MethodNotAllowed","details":{"group":"metrics.k8s.io","kind":"pods"},"code":405})"
      "\n");
}

TEST_F(ResourceMetricsTest, FailuresBecomeStatuses) {
  with_listers = false;
  auto r = get("/apis/metrics.k8s.io/v1beta1/nodes");
  EXPECT_EQ(r.status, 503u);
  EXPECT_NE(json::parse(r.body)["message"].get<std::string>().find("--lister-kubeconfig"),
            std::string::npos);
  with_listers = true;
  nodes.synced = false;
  r = get("/apis/metrics.k8s.io/v1beta1/nodes");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(json::parse(r.body)["message"],
            "the node list has not been read from the Kubernetes API yet");
  usage.fail_with = errc::backend_unavailable;
  r = get("/apis/metrics.k8s.io/v1beta1/namespaces/ml/pods");
  EXPECT_EQ(r.status, 503u);
  usage.fail_with = errc::backend_error;
  r = get("/apis/metrics.k8s.io/v1beta1/namespaces/ml/pods/a");
  EXPECT_EQ(r.status, 500u);
  EXPECT_EQ(json::parse(r.body)["reason"], "InternalError");
  // Unknown paths of the group.
  EXPECT_EQ(get("/apis/metrics.k8s.io/v1beta1/namespaces/ml/nodes").status, 404u);
  EXPECT_EQ(get("/apis/metrics.k8s.io/v1/nodes").status, 404u);
}

TEST(GoDuration, AsTimeDurationString) {
  EXPECT_EQ(core::go_duration_string(std::chrono::minutes(5)), "5m0s");
  EXPECT_EQ(core::go_duration_string(std::chrono::hours(1)), "1h0m0s");
  EXPECT_EQ(core::go_duration_string(std::chrono::seconds(30)), "30s");
  EXPECT_EQ(core::go_duration_string(std::chrono::milliseconds(20021)), "20.021s");
  EXPECT_EQ(core::go_duration_string(std::chrono::milliseconds(1500)), "1.5s");
  EXPECT_EQ(core::go_duration_string(std::chrono::milliseconds(500)), "500ms");
  EXPECT_EQ(core::go_duration_string(std::chrono::milliseconds(0)), "0s");
  EXPECT_EQ(core::go_duration_string(std::chrono::milliseconds(90061001)), "25h1m1.001s");
}

}  // namespace
}  // namespace gma::handlers
