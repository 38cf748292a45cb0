// resource_provider over an api_client whose transport is a fake Prometheus: the PromQL each
// metrics.k8s.io request sends for prometheus-adapter's own resourceRules, and the usage built
// from the answers (the Quantity strings of resource-metrics.md section 3, the bucketing and
// timestamps of section 4).
#include "adapters/prometheus/resource_provider.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "tests/support/fake_transport.hpp"
#include "tests/support/prometheus_replies.hpp"
#include "tests/support/run_awaitable.hpp"
#include "tests/support/self_metrics.hpp"

namespace gma::adapters::prometheus {
namespace {

using namespace std::chrono_literals;
using testing::fake_transport;
using testing::promql_of;
using testing::run_awaitable;
using testing::sent_request;
using testing::vector_of;

// prometheus-adapter's deploy/manifests/config-map.yaml, as it ships.
constexpr const char* kDeployRules = R"("resourceRules":
  "cpu":
    "containerLabel": "container"
    "containerQuery": |
      sum by (<<.GroupBy>>) (
        irate (
            container_cpu_usage_seconds_total{<<.LabelMatchers>>,container!="",pod!=""}[4m]
        )
      )
    "nodeQuery": |
      sum by (<<.GroupBy>>) (
        irate(
            node_cpu_usage_seconds_total{<<.LabelMatchers>>}[4m]
        )
      )
    "resources":
      "overrides":
        "namespace":
          "resource": "namespace"
        "node":
          "resource": "node"
        "pod":
          "resource": "pod"
  "memory":
    "containerLabel": "container"
    "containerQuery": |
      sum by (<<.GroupBy>>) (
        container_memory_working_set_bytes{<<.LabelMatchers>>,container!="",pod!=""}
      )
    "nodeQuery": |
      sum by (<<.GroupBy>>) (
        node_memory_working_set_bytes{<<.LabelMatchers>>}
      )
    "resources":
      "overrides":
        "node":
          "resource": "node"
        "namespace":
          "resource": "namespace"
        "pod":
          "resource": "pod"
  "window": "5m"
)";

std::string sample(const std::string& labels, double t, const std::string& value) {
  return R"({"metric":{)" + labels + R"(},"value":[)" + std::to_string(t) + R"(,")" + value +
         R"("]})";
}

struct fixture {
  explicit fixture(std::string rules_text = kDeployRules, core::snapshot_cache_options cache = {})
      : api(transport, request_verb::get, 5000ms, registry),
        rules(api, {}, parse_rules(rules_text, "rules.yaml"), registry, ioc.get_executor()),
        provider(api, rules, ioc.get_executor(), cache) {
    transport.answer_with([this](const sent_request& r) -> result<fake_transport::response> {
      if (!available) return errc::backend_unavailable;
      const auto promql = promql_of(r);
      std::string body = vector_of("");
      for (const auto& [needle, answer] : answers)
        if (promql.find(needle) != std::string::npos) {
          body = vector_of(answer);
          break;
        }
      if (!warning.empty()) body.insert(1, R"("warnings":[")" + warning + R"("],)");
      return fake_transport::response{200, "application/json", body};
    });
  }

  std::vector<std::string> queries() const {
    std::vector<std::string> out;
    for (const auto& r : transport.requests()) out.push_back(promql_of(r));
    return out;
  }

  result<std::vector<core::pod_usage>> pods(std::vector<std::string> namespaces) {
    return run_awaitable(ioc, provider.async_pod_usage(std::move(namespaces)));
  }
  result<std::vector<core::node_usage>> nodes() {
    return run_awaitable(ioc, provider.async_node_usage());
  }

  boost::asio::io_context ioc;
  fake_transport transport;
  ::prometheus::Registry registry;
  api_client api;
  rules_provider rules;
  resource_provider provider;
  bool available = true;
  /// (a piece of the PromQL, the samples that answer it)
  std::vector<std::pair<std::string, std::string>> answers;
  std::string warning;  ///< when set, every answer carries it in "warnings"
};

TEST(ResourceQuantities, AsPrometheusAdapterWritesThem) {
  // resource-metrics.md section 3: NewMilliQuantity(int64(v*1000), DecimalSI / BinarySI).
  EXPECT_EQ(cpu_quantity(0.012).to_string(), "12m");
  EXPECT_EQ(cpu_quantity(1.5).to_string(), "1500m");
  EXPECT_EQ(cpu_quantity(2.0).to_string(), "2");
  EXPECT_EQ(cpu_quantity(1.001).to_string(), "1");  // 1000.9999999999999, truncated
  EXPECT_EQ(cpu_quantity(0.0004).to_string(), "0");
  EXPECT_EQ(memory_quantity(42250240).to_string(), "41260Ki");
  EXPECT_EQ(memory_quantity(1073741824).to_string(), "1Gi");
  EXPECT_EQ(memory_quantity(42250241).to_string(), "42250241");
  EXPECT_EQ(memory_quantity(512).to_string(), "512");
  EXPECT_EQ(memory_quantity(1234.5).to_string(), "1234500m");
  // NaN and negative values are read as 0.
  EXPECT_EQ(cpu_quantity(std::nan("")).to_string(), "0");
  EXPECT_EQ(memory_quantity(-5).to_string(), "0");
}

TEST(ResourceProvider, ContainerQueryCoversTheNamespace) {
  fixture f;
  ASSERT_TRUE(f.provider.serving());
  EXPECT_EQ(f.provider.window(), 5min);
  ASSERT_TRUE(f.pods({"ml"}));
  const auto sent = f.queries();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0],
            "sum by (pod,container) (\n  irate (\n      container_cpu_usage_seconds_total{"
            "namespace=\"ml\",pod!=\"\",container!=\"\",pod!=\"\"}[4m]\n  )\n)\n");
  EXPECT_EQ(sent[1],
            "sum by (pod,container) (\n  container_memory_working_set_bytes{namespace=\"ml\","
            "pod!=\"\",container!=\"\",pod!=\"\"}\n)\n");
  ASSERT_TRUE(f.nodes());
  EXPECT_EQ(f.queries()[2],
            "sum by (node) (\n  irate(\n      node_cpu_usage_seconds_total{node!=\"\"}[4m]\n  "
            ")\n)\n");
}

TEST(ResourceProvider, PodsNeedBothResourcesAndContainersFillTheGapWithZero) {
  fixture f;
  f.answers = {{"container_cpu_usage_seconds_total",
                sample(R"("pod":"a","container":"server")", 1764367205.5, "1.5") + "," +
                    sample(R"("pod":"a","container":"sidecar")", 1764367203.2, "0.012") + "," +
                    sample(R"("pod":"only-cpu","container":"c")", 1764367205, "1")},
               {"container_memory_working_set_bytes",
                sample(R"("pod":"a","container":"server")", 1764367204.9, "42250240") + "," +
                    sample(R"("pod":"a","container":"logger")", 1764367206, "NaN") + "," +
                    sample(R"("pod":"only-memory","container":"c")", 1764367205, "1024")}};
  const auto usage = f.pods({"ml"});
  ASSERT_TRUE(usage);
  ASSERT_EQ(usage->size(), 1u);
  const auto& pod = usage->front();
  EXPECT_EQ(pod.namespace_, "ml");
  EXPECT_EQ(pod.name, "a");
  // The earliest sample of any of its containers, in whole seconds.
  EXPECT_EQ(core::format_rfc3339(pod.timestamp), "2025-11-28T22:00:03Z");
  ASSERT_EQ(pod.containers.size(), 3u);
  EXPECT_EQ(pod.containers[0].name, "logger");
  EXPECT_EQ(pod.containers[0].usage.cpu.to_string(), "0");
  EXPECT_EQ(pod.containers[0].usage.memory.to_string(), "0");
  EXPECT_EQ(pod.containers[1].name, "server");
  EXPECT_EQ(pod.containers[1].usage.cpu.to_string(), "1500m");
  EXPECT_EQ(pod.containers[1].usage.memory.to_string(), "41260Ki");
  EXPECT_EQ(pod.containers[2].name, "sidecar");
  EXPECT_EQ(pod.containers[2].usage.cpu.to_string(), "12m");
  EXPECT_EQ(pod.containers[2].usage.memory.to_string(), "0");
}

TEST(ResourceProvider, NodesTakeTheirFirstSampleOfEach) {
  fixture f;
  f.answers = {
      {"node_cpu_usage_seconds_total", sample(R"("node":"n2")", 1764367205, "0.312457893") + "," +
                                           sample(R"("node":"n1")", 1764367205, "2") + "," +
                                           sample(R"("node":"n3")", 1764367205, "1")},
      {"node_memory_working_set_bytes", sample(R"("node":"n1")", 1764367199, "1395400704") + "," +
                                            sample(R"("node":"n2")", 1764367205, "-1")}};
  const auto usage = f.nodes();
  ASSERT_TRUE(usage);
  ASSERT_EQ(usage->size(), 2u);  // n3 has no memory
  EXPECT_EQ((*usage)[0].name, "n1");
  EXPECT_EQ(core::format_rfc3339((*usage)[0].timestamp), "2025-11-28T21:59:59Z");
  EXPECT_EQ((*usage)[0].usage.cpu.to_string(), "2");
  EXPECT_EQ((*usage)[0].usage.memory.to_string(), "1362696Ki");
  EXPECT_EQ((*usage)[1].name, "n2");
  EXPECT_EQ((*usage)[1].usage.cpu.to_string(), "312m");
  EXPECT_EQ((*usage)[1].usage.memory.to_string(), "0");
}

TEST(ResourceProvider, AnswersAreSharedPerNamespace) {
  fixture f;
  ASSERT_TRUE(f.pods({"ml", "ml", "web"}));
  EXPECT_EQ(f.queries().size(), 4u);  // two namespaces, two resources
  ASSERT_TRUE(f.pods({"ml"}));
  EXPECT_EQ(f.queries().size(), 4u);  // cached
}

// As for custom metrics: an answer with Thanos' warnings is served, counted by rule and
// logged once for the rule.
TEST(ResourceProvider, WarningsAreServedCountedAndLoggedOncePerRule) {
  fixture f;
  f.warning = "store 10.0.0.7:10901 is unavailable";
  f.answers = {{"container_cpu", sample(R"("pod":"p1","container":"c")", 1700000000, "0.5")},
               {"container_memory", sample(R"("pod":"p1","container":"c")", 1700000000, "1024")}};
  ::testing::internal::CaptureStderr();
  const auto usage = f.pods({"ml", "web"});
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(usage);
  EXPECT_EQ(usage->size(), 2u);
  for (const char* rule : {"rules.yaml:3", "rules.yaml:25"})
    EXPECT_EQ(testing::series_value(f.registry, "gma_prometheus_warnings_total", {{"rule", rule}}),
              2)
        << rule;
  EXPECT_NE(log.find("the answer for the resourceRules.cpu at rules.yaml:3 for the pods of "
                     "namespace ml at http://prometheus.test:9090 carried warnings (served all "
                     "the same; logged once for this rule, counted in "
                     "gma_prometheus_warnings_total): \"store 10.0.0.7:10901 is unavailable\""),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("namespace web"), std::string::npos) << log;  // once per rule
}

TEST(ResourceProvider, FailuresAreTheRequestsErrors) {
  fixture f;
  f.available = false;
  const auto usage = f.pods({"ml"});
  ASSERT_FALSE(usage);
  EXPECT_EQ(usage.error(), errc::backend_unavailable);

  // A rule that maps no label to pods cannot be asked: nothing is sent.
  fixture unmapped(R"(resourceRules:
  cpu: {containerQuery: 'sum(x{<<.LabelMatchers>>}) by (<<.GroupBy>>)', nodeQuery: 'y',
        resources: {overrides: {namespace: {resource: namespace}}}}
  memory: {containerQuery: 'z', nodeQuery: 'w', resources: {overrides: {node: {resource: node}}}}
)");
  const auto refused = unmapped.pods({"ml"});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), errc::backend_error);
  EXPECT_TRUE(unmapped.queries().empty());
}

TEST(ResourceProvider, NotServedWithoutResourceRules) {
  fixture f("rules: []\n");
  EXPECT_FALSE(f.provider.serving());
  const auto usage = f.pods({"ml"});
  ASSERT_FALSE(usage);
  EXPECT_EQ(usage.error(), errc::metric_not_found);
}

TEST(ResourceProvider, ExplainPrintsTheQueries) {
  fixture f;
  const auto pods = f.provider.explain(std::string("ml"));
  ASSERT_TRUE(pods);
  ASSERT_EQ(pods->size(), 2u);
  EXPECT_NE((*pods)[0].find("container_cpu_usage_seconds_total{namespace=\"ml\",pod!=\"\""),
            std::string::npos);
  const auto nodes = f.provider.explain(std::nullopt);
  ASSERT_TRUE(nodes);
  EXPECT_NE((*nodes)[1].find("node_memory_working_set_bytes{node!=\"\"}"), std::string::npos);
  EXPECT_TRUE(f.queries().empty());
}

TEST(ResourceRulesConfig, LoadsWindowAndRefusesWhatIsWrong) {
  const auto config = parse_rules(kDeployRules, "rules.yaml");
  ASSERT_TRUE(config.resource);
  EXPECT_EQ(config.resource->window, 5min);
  EXPECT_EQ(config.resource->cpu.container_label, "container");

  const auto refusal = [](const std::string& text) {
    try {
      parse_rules(text, "r.yaml");
    } catch (const config_error& e) {
      return std::string(e.what());
    }
    return std::string("loaded");
  };
  EXPECT_EQ(refusal("resourceRules:\n  window: 5x\n"),
            "r.yaml:2: resourceRules.window: not a valid duration string: \"5x\"");
  EXPECT_EQ(refusal("resourceRules:\n  cpu: {containerQuery: x, labels: y}\n"),
            "r.yaml:2: unknown key \"labels\" in resourceRules.cpu (expected one of: "
            "containerLabel, containerQuery, nodeQuery, resources)");
  EXPECT_EQ(refusal("resourceRules:\n  disk: {}\n"),
            "r.yaml:2: unknown key \"disk\" in resourceRules (expected one of: cpu, memory, "
            "window)");

  std::vector<std::string> warnings;
  const auto partial =
      parse_rules("resourceRules:\n  cpu: {containerQuery: x}\n", "p.yaml", &warnings);
  ASSERT_TRUE(partial.resource);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0],
            "p.yaml:2: resourceRules.cpu has no nodeQuery: it loads, as in prometheus-adapter, "
            "but every request for node metrics gets 500");
  EXPECT_EQ(warnings[1],
            "p.yaml:2: resourceRules.memory is missing: it loads, as in prometheus-adapter, but "
            "every metrics.k8s.io request gets 500");
  // An empty resourceRules is none, as a nil pointer in prometheus-adapter.
  EXPECT_FALSE(parse_rules("resourceRules:\n", "e.yaml").resource);
}

TEST(ResourceRulesConfig, PrometheusDurations) {
  EXPECT_EQ(parse_prometheus_duration("5m"), 5min);
  EXPECT_EQ(parse_prometheus_duration("1h30m"), 90min);
  EXPECT_EQ(parse_prometheus_duration("250ms"), 250ms);
  EXPECT_EQ(parse_prometheus_duration("1d"), 24h);
  EXPECT_EQ(parse_prometheus_duration("0"), 0ms);
  EXPECT_FALSE(parse_prometheus_duration(""));
  EXPECT_FALSE(parse_prometheus_duration("5"));
  EXPECT_FALSE(parse_prometheus_duration("30s5m"));  // units in order
  EXPECT_FALSE(parse_prometheus_duration("1.5m"));
  EXPECT_FALSE(parse_prometheus_duration("99999999999999y"));
}

}  // namespace
}  // namespace gma::adapters::prometheus
