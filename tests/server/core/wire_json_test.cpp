// Byte-exact JSON of the wire types, compared with what Kubernetes' Go code writes
// (kubernetes-metrics-apis.md sections 3 and 4).
#include <gtest/gtest.h>

#include "server/core/discovery.hpp"
#include "server/core/go_json.hpp"
#include "server/core/metric_value.hpp"
#include "server/core/status.hpp"

namespace gma::core {
namespace {

sys_seconds at(long long unix_seconds) { return sys_seconds(std::chrono::seconds(unix_seconds)); }

metric_value pod_value(const char* name, const char* value) {
  return {
      {"Pod", "ml", name, "/v1"}, "gpu_utilization", at(1767225600), *quantity::from_sample(value)};
}

TEST(MetricValueListJson, V1beta2) {
  const auto body = to_go_json(
      metric_value_list(custom_version::v1beta2, {pod_value("vllm-0", "73.5")}, label_selector()));
  EXPECT_EQ(
      body,
      R"({"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta2","metadata":{},)"
      R"("items":[{"describedObject":{"kind":"Pod","namespace":"ml","name":"vllm-0","apiVersion":"/v1"},)"
      R"("metric":{"name":"gpu_utilization","selector":null},)"
      R"("timestamp":"2026-01-01T00:00:00Z","value":"73500m"}]})"
      "\n");
}

TEST(MetricValueListJson, V1beta1WithSelector) {
  const auto selector = *label_selector::parse("gpu=0");
  const auto body = to_go_json(
      metric_value_list(custom_version::v1beta1, {pod_value("infer-7d9f-x2", "87.5")}, selector));
  EXPECT_EQ(
      body,
      R"({"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta1","metadata":{},)"
      R"("items":[{"describedObject":{"kind":"Pod","namespace":"ml","name":"infer-7d9f-x2","apiVersion":"/v1"},)"
      R"("metricName":"gpu_utilization","timestamp":"2026-01-01T00:00:00Z","value":"87500m",)"
      R"("selector":{"matchLabels":{"gpu":"0"}}}]})"
      "\n");
}

TEST(MetricValueListJson, EmptyListHasEmptyItemsArray) {
  EXPECT_EQ(
      to_go_json(metric_value_list(custom_version::v1beta2, {}, label_selector())),
      R"({"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta2","metadata":{},"items":[]})"
      "\n");
}

TEST(ExternalMetricValueListJson, MatchesReference) {
  const external_metric_value v{
      "queue_consumer_lag", {{"name", "q1"}}, at(1740880560), *quantity::from_sample("1.5")};
  EXPECT_EQ(
      to_go_json(external_metric_value_list({v})),
      R"({"kind":"ExternalMetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{},)"
      R"("items":[{"metricName":"queue_consumer_lag","metricLabels":{"name":"q1"},)"
      R"("timestamp":"2025-03-02T01:56:00Z","value":"1500m"}]})"
      "\n");
  const external_metric_value no_labels{"m", {}, at(0), quantity()};
  EXPECT_NE(to_go_json(external_metric_value_list({no_labels})).find(R"("metricLabels":null)"),
            std::string::npos);
}

TEST(StatusJson, NotFoundAndInternalError) {
  EXPECT_EQ(to_go_json(metric_not_found("pods", "gpu_utilization").body),
            R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)"
            R"("message":"the server could not find the metric gpu_utilization for pods",)"
            R"("reason":"NotFound","code":404})"
            "\n");
  const auto internal = internal_error("unable to fetch metrics");
  EXPECT_EQ(internal.code, 500);
  EXPECT_EQ(
      to_go_json(internal.body),
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)"
      R"("message":"Internal error occurred: unable to fetch metrics","reason":"InternalError",)"
      R"("details":{"causes":[{"message":"unable to fetch metrics"}]},"code":500})"
      "\n");
  EXPECT_EQ(bad_request("x").code, 400);
  EXPECT_EQ(service_unavailable("x").body["reason"], "ServiceUnavailable");
  EXPECT_EQ(resource_not_found().body["details"], json::object());
}

TEST(GoJson, EscapesHtmlCharactersLikeEncodingJson) {
  EXPECT_EQ(to_go_json(json{{"a", "<x>&"}}), "{\"a\":\"\\u003cx\\u003e\\u0026\"}\n");
}

TEST(DiscoveryJson, ResourceListAndGroups) {
  EXPECT_EQ(
      to_go_json(custom_resource_list("v1beta2", {{"pods", true, "gpu_utilization"},
                                                  {"namespaces", false, "gpu_utilization"}})),
      R"({"kind":"APIResourceList","apiVersion":"v1","groupVersion":"custom.metrics.k8s.io/v1beta2",)"
      R"("resources":[{"name":"pods/gpu_utilization","singularName":"","namespaced":true,"kind":"MetricValueList","verbs":["get"]},)"
      R"({"name":"namespaces/gpu_utilization","singularName":"","namespaced":false,"kind":"MetricValueList","verbs":["get"]}]})"
      "\n");
  EXPECT_EQ(
      to_go_json(api_group(kCustomGroup)),
      R"({"kind":"APIGroup","apiVersion":"v1","name":"custom.metrics.k8s.io",)"
      R"("versions":[{"groupVersion":"custom.metrics.k8s.io/v1beta2","version":"v1beta2"},)"
      R"({"groupVersion":"custom.metrics.k8s.io/v1beta1","version":"v1beta1"}],)"
      R"("preferredVersion":{"groupVersion":"custom.metrics.k8s.io/v1beta2","version":"v1beta2"}})"
      "\n");
  EXPECT_EQ(api_group_list()["groups"].size(), 2u);
}

TEST(DiscoveryJson, NeverAnEmptyResourceList) {
  EXPECT_EQ(custom_resource_list("v1beta1", {})["resources"][0]["name"], "/custommetric");
  EXPECT_EQ(external_resource_list({})["resources"][0]["name"], "externalmetric");
  EXPECT_EQ(
      to_go_json(external_resource_list({{"gpu.utilization"}})),
      R"({"kind":"APIResourceList","apiVersion":"v1","groupVersion":"external.metrics.k8s.io/v1beta1",)"
      R"("resources":[{"name":"gpu.utilization","singularName":"","namespaced":true,"kind":"ExternalMetricValueList","verbs":["get"]}]})"
      "\n");
}

}  // namespace
}  // namespace gma::core
