// rules_provider over an api_client whose transport is a fake Prometheus
// (tests/support/fake_transport.hpp): what discovery lists, the PromQL each request sends, the
// values it builds from the answer, and which error each failure becomes.
#include "adapters/prometheus/rules_provider.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "server/core/status.hpp"
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

// One custom rule (pods and namespaces from its labels) and one cluster-wide external rule.
constexpr const char* kRules = R"(rules:
- seriesQuery: 'DCGM_FI_DEV_GPU_UTIL{namespace!="",pod!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
  name: {as: gpu_utilization}
  metricsQuery: 'avg(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
externalRules:
- seriesQuery: 'queue_depth{topic!=""}'
  resources: {namespaced: false}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (topic)'
)";

constexpr const char* kGpuSeries = R"({"status":"success","data":[
  {"__name__":"DCGM_FI_DEV_GPU_UTIL","namespace":"ml","pod":"p1","gpu":"0"},
  {"__name__":"DCGM_FI_DEV_GPU_UTIL","namespace":"ml","pod":"p2","gpu":"1"}]})";
constexpr const char* kQueueSeries =
    R"({"status":"success","data":[{"__name__":"queue_depth","topic":"jobs"}]})";

bool is_query(const sent_request& r) { return r.target.starts_with("/api/v1/query?"); }

/// A provider over a fake Prometheus that answers series lookups from the series above and
/// queries with `query_answer` (or `query_status` with it), or `answer_by_query` when set.
/// Answers are cached as in production unless `cache` says otherwise.
struct fixture {
  explicit fixture(core::snapshot_cache_options cache = {}, std::string rules_text = kRules)
      : rules(std::move(rules_text)),
        api(transport, request_verb::get, 5000ms, registry),
        provider(api, {}, parse_rules(rules, "rules.yaml"), registry, ioc.get_executor(), cache) {
    transport.answer_with([this](const sent_request& r) -> result<fake_transport::response> {
      if (r.target.starts_with("/api/v1/series?")) {
        if (!series_available) return errc::backend_unavailable;
        const bool queue = r.target.find("queue_depth") != std::string::npos;
        return fake_transport::response{200, "application/json", queue ? kQueueSeries : kGpuSeries};
      }
      if (!query_available) return errc::backend_unavailable;
      if (answer_by_query)
        return fake_transport::response{200, "application/json", answer_by_query(promql_of(r))};
      return fake_transport::response{query_status, "application/json", query_answer};
    });
  }

  /// One discovery run of the rules, adopted; whether every series lookup succeeded.
  bool discover() {
    const auto config = parse_rules(rules, "rules.yaml");
    const bool ok = run_awaitable(ioc, provider.async_discover(config));
    provider.adopt(config);
    return ok;
  }

  result<std::vector<core::metric_value>> get(core::custom_metric_query q) {
    return run_awaitable(ioc, provider.async_get_metric(std::move(q)));
  }
  result<std::vector<core::external_metric_value>> get_external(core::external_metric_query q) {
    return run_awaitable(ioc, provider.async_get_external_metric(std::move(q)));
  }

  /// The PromQL of every query sent so far.
  std::vector<std::string> queries() const {
    std::vector<std::string> out;
    for (const auto& r : transport.requests())
      if (is_query(r)) out.push_back(promql_of(r));
    return out;
  }

  std::string rules;
  boost::asio::io_context ioc;
  fake_transport transport;
  ::prometheus::Registry registry;
  api_client api;
  rules_provider provider;
  bool series_available = true;
  bool query_available = true;
  unsigned query_status = 200;
  std::string query_answer = vector_of("");
  std::function<std::string(const std::string&)> answer_by_query;
};

core::custom_metric_query pods_query(std::string name) {
  core::custom_metric_query q;
  q.group_resource = "pods";
  q.namespace_ = "ml";
  q.name = std::move(name);
  q.metric = "gpu_utilization";
  return q;
}

TEST(RulesProviderDiscovery, SeriesBecomeTheMetricList) {
  fixture f;
  EXPECT_TRUE(f.provider.list_all_metrics().empty());
  ASSERT_TRUE(f.discover());
  // The pod and namespace labels map to resources; "gpu" maps to none. Namespaces are
  // cluster-scoped objects.
  EXPECT_EQ(f.provider.list_all_metrics(),
            (std::vector<core::custom_metric_info>{{"namespaces", false, "gpu_utilization"},
                                                   {"pods", true, "gpu_utilization"}}));
  EXPECT_EQ(f.provider.list_all_external_metrics(),
            (std::vector<core::external_metric_info>{{"queue_depth", false}}));
  // One lookup per distinct seriesQuery, looking back --metrics-max-age.
  const auto sent = f.transport.requests();
  ASSERT_EQ(sent.size(), 2u);
  for (const auto& r : sent) {
    EXPECT_TRUE(r.target.starts_with("/api/v1/series?start=")) << r.target;
    EXPECT_NE(r.target.find("&match%5B%5D="), std::string::npos) << r.target;
  }
  EXPECT_NE(sent[0].target.find(
                http_client::url_encode(R"(DCGM_FI_DEV_GPU_UTIL{namespace!="",pod!=""})")),
            std::string::npos);
}

TEST(RulesProviderDiscovery, ReadyOnceADiscoveryIsAdopted) {
  fixture f;
  auto checks = f.provider.readiness_checks();
  ASSERT_EQ(checks.size(), 2u);
  EXPECT_EQ(checks[0].name, "metric-discovery");
  EXPECT_FALSE(checks[0].ok);
  EXPECT_FALSE(checks[0].required);  // --readiness-requires-prometheus is off by default
  EXPECT_EQ(checks[1].name, "prometheus");
  EXPECT_FALSE(checks[1].ok);
  ASSERT_TRUE(f.discover());
  checks = f.provider.readiness_checks();
  EXPECT_TRUE(checks[0].ok);
  EXPECT_TRUE(checks[1].ok);
}

// A failing series lookup keeps what the last run found, so an outage does not empty the
// APIResourceList.
TEST(RulesProviderDiscovery, AFailedRunKeepsThePreviousResult) {
  fixture f;
  ASSERT_TRUE(f.discover());
  f.series_available = false;
  EXPECT_FALSE(f.discover());
  EXPECT_EQ(f.provider.list_all_metrics().size(), 2u);
  EXPECT_EQ(f.provider.list_all_external_metrics().size(), 1u);
}

// An outage is one cause: one warning per run names Prometheus and the transport's reason,
// groups the queries, and says what the rules serve meanwhile; readiness does not stay "ok"
// while nothing is being discovered.
TEST(RulesProviderDiscovery, AFailedRunIsOneLineAndFailsTheDiscoveryCheck) {
  fixture f;
  f.series_available = false;
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(f.discover());
  std::string log = ::testing::internal::GetCapturedStderr();
  // One warning ("W..." lines); the info line about what was adopted is not a failure.
  std::size_t warnings = 0;
  for (std::size_t at = 0; at < log.size(); at = log.find('\n', at) + 1) {
    warnings += log[at] == 'W' ? 1 : 0;
    if (log.find('\n', at) == std::string::npos) break;
  }
  EXPECT_EQ(warnings, 1u) << log;
  EXPECT_NE(log.find("discovery from Prometheus at http://prometheus.test:9090: 2 of 2 series "
                     "queries failed (unavailable: no answer within the deadline) for the rules "
                     "at rules.yaml:2, rules.yaml:10; no metrics from them yet"),
            std::string::npos)
      << log;
  auto checks = f.provider.readiness_checks();
  EXPECT_FALSE(checks[0].ok);

  f.series_available = true;
  ASSERT_TRUE(f.discover());
  EXPECT_TRUE(f.provider.readiness_checks()[0].ok);

  f.series_available = false;
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(f.discover());
  log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("for the rules at rules.yaml:2, rules.yaml:10; keeping their previous "
                     "results"),
            std::string::npos)
      << log;
  checks = f.provider.readiness_checks();
  EXPECT_FALSE(checks[0].ok);
  EXPECT_EQ(checks[0].reason,
            "every series query failed in the last discovery run; serving what was found before");
  EXPECT_FALSE(checks[0].required);
}

// With --readiness-requires-prometheus, one relist in which every query fails (Prometheus
// restarting) must not unready every replica at once: the prometheus check has a window for
// that, and the discovery check stays informational while earlier results are served.
TEST(RulesProviderDiscovery, AnOutageAloneIsInformationalEvenWhenPrometheusIsRequired) {
  fixture f;
  ASSERT_TRUE(f.discover());
  f.series_available = false;
  EXPECT_FALSE(f.discover());
  discovery_options required;
  required.readiness_requires_prometheus = true;
  ::prometheus::Registry registry;
  rules_provider strict(f.api, required, parse_rules(kRules, "rules.yaml"), registry,
                        f.ioc.get_executor());
  const auto config = parse_rules(kRules, "rules.yaml");
  f.series_available = true;
  ASSERT_TRUE(run_awaitable(f.ioc, strict.async_discover(config)));
  strict.adopt(config);
  EXPECT_TRUE(strict.readiness_checks()[0].required);  // as the flag says, while healthy
  f.series_available = false;
  EXPECT_FALSE(run_awaitable(f.ioc, strict.async_discover(config)));
  strict.adopt(config);
  const auto check = strict.readiness_checks()[0];
  EXPECT_FALSE(check.ok);
  EXPECT_FALSE(check.required);
}

TEST(RulesProviderCustom, EveryPodOfANamespace) {
  fixture f;
  ASSERT_TRUE(f.discover());
  f.query_answer = vector_of(R"(
    {"metric":{"namespace":"ml","pod":"p2"},"value":[1700000000.9,"2"]},
    {"metric":{"namespace":"ml","pod":"p1"},"value":[1700000001.5,"87.5"]},
    {"metric":{"namespace":"ml","pod":"p3"},"value":[1700000000,"NaN"]},
    {"metric":{"namespace":"ml"},"value":[1700000000,"5"]})");
  const auto items = f.get(pods_query("*"));
  ASSERT_TRUE(items.has_value()) << items.error().message();
  EXPECT_EQ(f.queries(), std::vector<std::string>{
                             R"(avg(DCGM_FI_DEV_GPU_UTIL{namespace="ml",pod!=""}) by (pod))"});
  // Sorted by name; NaN and a sample without the pod label are left out.
  ASSERT_EQ(items->size(), 2u);
  const auto& p1 = (*items)[0];
  EXPECT_EQ(p1.described_object.kind, "Pod");
  EXPECT_EQ(p1.described_object.namespace_, "ml");
  EXPECT_EQ(p1.described_object.name, "p1");
  EXPECT_EQ(p1.described_object.api_version, "/v1");
  EXPECT_EQ(p1.metric, "gpu_utilization");
  EXPECT_EQ(p1.timestamp, core::sys_seconds(1700000001s));  // whole seconds, rounded down
  EXPECT_EQ(p1.value.to_string(), "87500m");
  EXPECT_EQ((*items)[1].described_object.name, "p2");
  EXPECT_EQ((*items)[1].value.to_string(), "2");
}

TEST(RulesProviderCustom, OneNamedPodAndTheMetricSelector) {
  fixture f;
  ASSERT_TRUE(f.discover());
  f.query_answer = vector_of(R"({"metric":{"pod":"p1"},"value":[1700000000,"50"]})");
  auto q = pods_query("p1");
  q.metric_selector = *core::label_selector::parse("gpu=0");
  const auto items = f.get(std::move(q));
  ASSERT_TRUE(items.has_value()) << items.error().message();
  EXPECT_EQ(f.queries(),
            std::vector<std::string>{
                R"(avg(DCGM_FI_DEV_GPU_UTIL{gpu="0",namespace="ml",pod!=""}) by (pod))"});
  ASSERT_EQ(items->size(), 1u);
  EXPECT_EQ((*items)[0].value.to_string(), "50");
}

// A labelSelector's pods narrow the answer, not the query: one query for the namespace serves
// every selector (and no regex of pod names grows with the deployment).
TEST(RulesProviderCustom, SelectedPodsNarrowTheAnswer) {
  fixture f;
  ASSERT_TRUE(f.discover());
  f.query_answer = vector_of(R"(
    {"metric":{"pod":"p1"},"value":[1700000000,"1"]},
    {"metric":{"pod":"p9"},"value":[1700000000,"9"]})");
  auto q = pods_query("*");
  q.only_names = std::vector<std::string>{"p1", "p2"};
  const auto items = f.get(std::move(q));
  ASSERT_TRUE(items.has_value()) << items.error().message();
  EXPECT_EQ(f.queries(), std::vector<std::string>{
                             R"(avg(DCGM_FI_DEV_GPU_UTIL{namespace="ml",pod!=""}) by (pod))"});
  ASSERT_EQ(items->size(), 1u);
  EXPECT_EQ((*items)[0].described_object.name, "p1");
}

TEST(RulesProviderCustom, ANamespaceIsAClusterScopedObject) {
  fixture f;
  ASSERT_TRUE(f.discover());
  f.query_answer = vector_of(R"({"metric":{"namespace":"ml"},"value":[1700000000,"3"]})");
  core::custom_metric_query q;
  q.group_resource = "namespaces";
  q.name = "ml";
  q.metric = "gpu_utilization";
  const auto items = f.get(std::move(q));
  ASSERT_TRUE(items.has_value()) << items.error().message();
  EXPECT_EQ(f.queries(), std::vector<std::string>{
                             R"(avg(DCGM_FI_DEV_GPU_UTIL{namespace="ml"}) by (namespace))"});
  ASSERT_EQ(items->size(), 1u);
  EXPECT_EQ((*items)[0].described_object.kind, "Namespace");
  EXPECT_EQ((*items)[0].described_object.namespace_, "");
  EXPECT_EQ((*items)[0].described_object.name, "ml");
}

// 404: a metric discovery did not find, a resource it does not serve, a named object without
// data, and names that cannot be Kubernetes objects (never sent to Prometheus).
TEST(RulesProviderCustom, NotFoundCases) {
  fixture f;
  ASSERT_TRUE(f.discover());
  auto unknown = pods_query("*");
  unknown.metric = "no_such_metric";
  auto wrong_resource = pods_query("*");
  wrong_resource.group_resource = "nodes";
  auto bad_name = pods_query("p1\"}) or vector(1");
  auto bad_namespace = pods_query("*");
  bad_namespace.namespace_ = "ML!";
  for (auto q : {unknown, wrong_resource, bad_name, bad_namespace}) {
    SCOPED_TRACE(q.metric + " " + q.group_resource + " " + q.namespace_ + "/" + q.name);
    const auto items = f.get(std::move(q));
    ASSERT_FALSE(items.has_value());
    EXPECT_EQ(items.error(), errc::metric_not_found);
  }
  EXPECT_TRUE(f.queries().empty());
  // p1 has no sample in the (empty) answer.
  const auto items = f.get(pods_query("p1"));
  ASSERT_FALSE(items.has_value());
  EXPECT_EQ(items.error(), errc::metric_not_found);
}

// Before discovery has reached Prometheus, "not found" would be a guess: 503.
TEST(RulesProviderCustom, UnknownWhileDiscoveryCannotReachPrometheusIsUnavailable) {
  fixture f;
  auto items = f.get(pods_query("*"));
  ASSERT_FALSE(items.has_value());
  EXPECT_EQ(items.error(), errc::backend_unavailable);
  f.series_available = false;
  EXPECT_FALSE(f.discover());
  items = f.get(pods_query("*"));
  ASSERT_FALSE(items.has_value());
  EXPECT_EQ(items.error(), errc::backend_unavailable);
}

TEST(RulesProviderCustom, BackendFailuresPassThrough) {
  fixture f({.ttl = 0s});  // every request asks Prometheus
  ASSERT_TRUE(f.discover());
  f.query_available = false;
  auto items = f.get(pods_query("*"));
  ASSERT_FALSE(items.has_value());
  EXPECT_EQ(items.error(), errc::backend_unavailable);  // 503
  f.query_available = true;
  f.query_status = 422;
  f.query_answer = R"({"status":"error","errorType":"execution","error":"too many samples"})";
  items = f.get(pods_query("*"));
  ASSERT_FALSE(items.has_value());
  EXPECT_EQ(items.error(), errc::backend_error);  // 500
}

// prometheus-adapter loads a rule without metricsQuery and answers its requests 500 (Prometheus
// refuses the empty query): the same answer here, and no query is sent.
TEST(RulesProviderCustom, ARuleWithoutMetricsQueryAnswers500WithoutAQuery) {
  std::string rules = kRules;
  for (const char* line :
       {"  metricsQuery: 'avg(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'\n",
        "  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (topic)'\n"})
    rules.erase(rules.find(line), std::string(line).size());
  std::vector<std::string> warnings;
  (void)parse_rules(rules, "rules.yaml", &warnings);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("rules.yaml:2: the rule has no metricsQuery: it loads"),
            std::string::npos)
      << warnings[0];
  fixture f({}, rules);
  ASSERT_TRUE(f.discover());
  EXPECT_FALSE(f.provider.list_all_metrics().empty());  // discovered as usual
  auto items = f.get(pods_query("*"));
  ASSERT_FALSE(items.has_value());
  EXPECT_EQ(items.error(), errc::backend_error);  // 500
  auto external = f.get_external({"ml", "queue_depth", {}});
  ASSERT_FALSE(external.has_value());
  EXPECT_EQ(external.error(), errc::backend_error);
  EXPECT_TRUE(f.queries().empty());
}

// A metricsQuery that fails to execute (Go's "error calling index: index out of range: 3") is
// a 500 in prometheus-adapter; here too, and nothing is sent.
TEST(RulesProviderCustom, ATemplateThatFailsToExecuteAnswers500WithoutAQuery) {
  std::string rules = kRules;
  const std::string group_by = "by (<<.GroupBy>>)";
  rules.replace(rules.find(group_by), group_by.size(), "by (<<index .GroupBySlice 3>>)");
  fixture f({}, rules);
  ASSERT_TRUE(f.discover());
  auto items = f.get(pods_query("*"));
  ASSERT_FALSE(items.has_value());
  EXPECT_EQ(items.error(), errc::backend_error);  // 500
  EXPECT_TRUE(f.queries().empty());
}

// Many requests of one namespace, whatever pods they name or select, cost one query: the
// answers come from memory, each with exactly the objects and values it asked for.
TEST(RulesProviderCache, OneQueryPerNamespaceServesEveryRequest) {
  fixture f;
  ASSERT_TRUE(f.discover());
  f.query_answer = vector_of(R"(
    {"metric":{"pod":"p1"},"value":[1700000000,"1"]},
    {"metric":{"pod":"p2"},"value":[1700000001,"2"]},
    {"metric":{"pod":"p3"},"value":[1700000002,"3"]})");
  const auto names = [](const result<std::vector<core::metric_value>>& items) {
    std::vector<std::string> out;
    for (const auto& i : *items) out.push_back(i.described_object.name + "=" + i.value.to_string());
    return out;
  };
  EXPECT_EQ(names(f.get(pods_query("*"))), (std::vector<std::string>{"p1=1", "p2=2", "p3=3"}));
  EXPECT_EQ(names(f.get(pods_query("p2"))), (std::vector<std::string>{"p2=2"}));
  auto selected = pods_query("*");
  selected.only_names = std::vector<std::string>{"p3", "p9", "p1", "p3"};
  EXPECT_EQ(names(f.get(std::move(selected))), (std::vector<std::string>{"p1=1", "p3=3"}));
  auto other = pods_query("*");
  other.namespace_ = "other";
  ASSERT_TRUE(f.get(std::move(other)));
  EXPECT_EQ(f.queries(), (std::vector<std::string>{
                             R"(avg(DCGM_FI_DEV_GPU_UTIL{namespace="ml",pod!=""}) by (pod))",
                             R"(avg(DCGM_FI_DEV_GPU_UTIL{namespace="other",pod!=""}) by (pod))"}));
  EXPECT_EQ(
      testing::series_value(f.registry, "gma_metric_cache_requests_total", {{"result", "miss"}}),
      2);
  EXPECT_EQ(
      testing::series_value(f.registry, "gma_metric_cache_requests_total", {{"result", "hit"}}), 2);
  EXPECT_EQ(testing::series_value(f.registry, "gma_prometheus_queries_total",
                                  {{"rule", "rules.yaml:2"}, {"outcome", "success"}}),
            2);
}

/// How many times `needle` occurs in `text`.
std::size_t occurrences(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Thanos' "warnings" (a store down, partial data): every answer is served and counted by rule,
// and the warnings are logged once for the rule, not once a request.
TEST(RulesProviderWarnings, ServedCountedAndLoggedOncePerRule) {
  fixture f;
  ASSERT_TRUE(f.discover());
  f.query_answer = R"({"status":"success","warnings":["store 10.0.0.7:10901 is unavailable"],
    "data":{"resultType":"vector","result":[{"metric":{"pod":"p1"},"value":[1700000000,"1"]}]}})";
  ::testing::internal::CaptureStderr();
  for (const char* ns : {"ml", "other", "third"}) {
    auto q = pods_query("*");
    q.namespace_ = ns;
    const auto items = f.get(std::move(q));
    ASSERT_TRUE(items.has_value()) << items.error().message();
    EXPECT_EQ(items->size(), 1u);
  }
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(f.queries().size(), 3u);
  EXPECT_EQ(testing::series_value(f.registry, "gma_prometheus_warnings_total",
                                  {{"rule", "rules.yaml:2"}}),
            3);
  EXPECT_EQ(occurrences(log, "carried warnings"), 1u) << log;
  EXPECT_NE(log.find("the answer for the rule at rules.yaml:2 at "
                     "http://prometheus.test:9090 carried warnings (served all the same; logged "
                     "once for this rule, counted in gma_prometheus_warnings_total): \"store "
                     "10.0.0.7:10901 is unavailable\""),
            std::string::npos)
      << log;
}

// bad_data (400) and a query frontend's limit (422): a 500, and one log line that quotes the
// backend's message and names the rule and the query.
TEST(RulesProviderCustom, ARefusedQueryIsLoggedWithTheBackendsMessageAndTheQuery) {
  const std::pair<unsigned, std::string> cases[] = {
      {400,
       R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error"})"},
      {422,
       R"j({"status":"error","errorType":"execution","error":"the query exceeded the maximum number of series (limit: 1 series) (err-mimir-max-series-per-query)"})j"},
  };
  for (const auto& [status, body] : cases) {
    SCOPED_TRACE(status);
    fixture f;
    ASSERT_TRUE(f.discover());
    f.query_status = status;
    f.query_answer = body;
    ::testing::internal::CaptureStderr();
    const auto items = f.get(pods_query("*"));
    const std::string log = ::testing::internal::GetCapturedStderr();
    ASSERT_FALSE(items.has_value());
    EXPECT_EQ(items.error(), errc::backend_error);
    EXPECT_EQ(core::provider_error_status(items.error(), "pods", "gpu_utilization").code, 500);
    EXPECT_NE(log.find("prometheus query for the rule at rules.yaml:2 at "
                       "http://prometheus.test:9090 was refused by the backend (HTTP " +
                       std::to_string(status)),
              std::string::npos)
        << log;
    const std::string message =
        status == 400 ? "1:5: parse error" : "(err-mimir-max-series-per-query)";
    EXPECT_NE(log.find(message), std::string::npos) << log;
    EXPECT_NE(log.find(R"(the query: avg(DCGM_FI_DEV_GPU_UTIL{namespace="ml",pod!=""}) by (pod))"),
              std::string::npos)
        << log;
  }
}

// The metric selector is part of the question: answers for different selectors never mix.
TEST(RulesProviderCache, SelectorsThatDifferAreAskedApart) {
  fixture f;
  ASSERT_TRUE(f.discover());
  f.answer_by_query = [](const std::string& promql) {
    const auto gpu = promql.find(R"(gpu="1")") != std::string::npos ? "1" : "0";
    return vector_of(std::string(R"({"metric":{"pod":"p1"},"value":[1700000000,")") + gpu +
                     R"("]})");
  };
  for (const auto* selector : {"gpu=0", "gpu=1", "gpu=0", "gpu=1"}) {
    auto q = pods_query("p1");
    q.metric_selector = *core::label_selector::parse(selector);
    const auto items = f.get(std::move(q));
    ASSERT_TRUE(items) << selector;
    EXPECT_EQ((*items)[0].value.to_string(), std::string(selector).substr(4)) << selector;
  }
  EXPECT_EQ(f.queries().size(), 2u);
}

// A reload that changes a rule drops that rule's answers; a discovery run that keeps the rules
// keeps them. Going back to the first rules asks again: their answers were dropped, not kept.
TEST(RulesProviderCache, AReloadDropsTheAnswersOfRulesThatNoLongerExist) {
  fixture f;
  ASSERT_TRUE(f.discover());
  f.query_answer = vector_of(R"({"metric":{"pod":"p1"},"value":[1700000000,"1"]})");
  ASSERT_TRUE(f.get(pods_query("p1")));
  ASSERT_TRUE(f.discover());  // the same rules again
  ASSERT_TRUE(f.get(pods_query("p1")));
  EXPECT_EQ(f.queries().size(), 1u);
  const auto adopt = [&](const std::string& text) {
    const auto config = parse_rules(text, "rules.yaml");
    ASSERT_TRUE(run_awaitable(f.ioc, f.provider.async_discover(config)));
    f.provider.adopt(config);
  };
  std::string changed = kRules;
  changed.replace(changed.find("avg("), 4, "max(");
  adopt(changed);
  ASSERT_TRUE(f.get(pods_query("p1")));
  adopt(kRules);
  ASSERT_TRUE(f.get(pods_query("p1")));
  const std::string avg = R"(avg(DCGM_FI_DEV_GPU_UTIL{namespace="ml",pod!=""}) by (pod))";
  const std::string max = R"(max(DCGM_FI_DEV_GPU_UTIL{namespace="ml",pod!=""}) by (pod))";
  EXPECT_EQ(f.queries(), (std::vector<std::string>{avg, max, avg}));
}

// A rule that prints the object names (LabelValuesByName) is asked with them, as before the
// cache, and each list of names is an answer of its own.
TEST(RulesProviderCache, RulesThatPrintTheNamesAreAskedWithThem) {
  fixture f;
  std::string rules = kRules;
  rules.replace(rules.find("<<.LabelMatchers>>"), 18,
                R"(namespace="ml",pod=~"<<index .LabelValuesByName "pod">>")");
  const auto config = parse_rules(rules, "rules.yaml");
  ASSERT_TRUE(run_awaitable(f.ioc, f.provider.async_discover(config)));
  f.provider.adopt(config);
  f.query_answer = vector_of(R"({"metric":{"pod":"p1"},"value":[1700000000,"1"]})");
  ASSERT_TRUE(f.get(pods_query("p1")));
  auto selected = pods_query("*");
  selected.only_names = std::vector<std::string>{"p2", "p1"};
  ASSERT_TRUE(f.get(std::move(selected)));
  EXPECT_EQ(f.queries(),
            (std::vector<std::string>{
                R"(avg(DCGM_FI_DEV_GPU_UTIL{namespace="ml",pod=~"p1"}) by (pod))",
                R"(avg(DCGM_FI_DEV_GPU_UTIL{namespace="ml",pod=~"p1|p2"}) by (pod))"}));
}

// Two rules with the same text share one answer; its objects are listed once, as without the
// cache.
TEST(RulesProviderCache, TwoIdenticalRulesListEachObjectOnce) {
  for (const auto ttl : {10000ms, 0ms}) {
    SCOPED_TRACE(ttl.count());
    fixture f({.ttl = ttl});
    std::string rules = kRules;
    const auto rule_end = rules.find("externalRules:");
    rules.insert(rule_end, rules.substr(7, rule_end - 7));  // the custom rule twice
    const auto config = parse_rules(rules, "rules.yaml");
    ASSERT_EQ(config.rules.size(), 2u);
    ASSERT_TRUE(run_awaitable(f.ioc, f.provider.async_discover(config)));
    f.provider.adopt(config);
    auto q = pods_query("*");
    q.group_resource = "namespaces";
    q.namespace_ = "";
    f.query_answer = vector_of(R"({"metric":{"namespace":"ml"},"value":[1700000000,"3"]},
                                  {"metric":{"namespace":"dev"},"value":[1700000000,"4"]})");
    const auto items = f.get(std::move(q));
    ASSERT_TRUE(items) << items.error().message();
    ASSERT_EQ(items->size(), 2u);
    EXPECT_EQ((*items)[0].described_object.name, "dev");
    EXPECT_EQ((*items)[1].described_object.name, "ml");
  }
}

// External answers are cached per rule, namespace and selector too.
TEST(RulesProviderCache, ExternalAnswersAreCachedBySelector) {
  fixture f;
  ASSERT_TRUE(f.discover());
  f.query_answer = vector_of(R"({"metric":{"topic":"jobs"},"value":[1700000000,"12"]})");
  core::external_metric_query q;
  q.namespace_ = "ml";
  q.metric = "queue_depth";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(f.get_external(q));
  q.selector = *core::label_selector::parse("topic=jobs");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(f.get_external(q));
  q.namespace_ = "other";  // namespaced: false: the same question
  const auto items = f.get_external(q);
  ASSERT_TRUE(items);
  EXPECT_EQ((*items)[0].value.to_string(), "12");
  EXPECT_EQ(f.queries().size(), 2u);
}

TEST(RulesProviderExternal, QueryAndLabelledValues) {
  fixture f;
  ASSERT_TRUE(f.discover());
  f.query_answer = vector_of(R"(
    {"metric":{"__name__":"queue_depth","topic":"jobs"},"value":[1700000000.2,"12"]},
    {"metric":{"topic":"alerts"},"value":[1700000000,"+Inf"]})");
  core::external_metric_query q;
  q.namespace_ = "ml";
  q.metric = "queue_depth";
  q.selector = *core::label_selector::parse("topic in (jobs,alerts)");
  const auto items = f.get_external(std::move(q));
  ASSERT_TRUE(items.has_value()) << items.error().message();
  // namespaced: false: the namespace of the request does not narrow the query. Set values are
  // sorted, as Kubernetes keeps them.
  EXPECT_EQ(f.queries(),
            std::vector<std::string>{R"(sum(queue_depth{topic=~"alerts|jobs"}) by (topic))"});
  ASSERT_EQ(items->size(), 1u);  // +Inf cannot be a Quantity
  EXPECT_EQ((*items)[0].metric, "queue_depth");
  EXPECT_EQ((*items)[0].labels, (core::label_map{{"topic", "jobs"}}));
  EXPECT_EQ((*items)[0].timestamp, core::sys_seconds(1700000000s));
  EXPECT_EQ((*items)[0].value.to_string(), "12");
}

TEST(RulesProviderExternal, UnknownMetricAndBackendFailure) {
  fixture f;
  ASSERT_TRUE(f.discover());
  core::external_metric_query q;
  q.namespace_ = "ml";
  q.metric = "no_such_metric";
  auto items = f.get_external(q);
  ASSERT_FALSE(items.has_value());
  EXPECT_EQ(items.error(), errc::metric_not_found);
  q.metric = "queue_depth";
  f.query_available = false;
  items = f.get_external(q);
  ASSERT_FALSE(items.has_value());
  EXPECT_EQ(items.error(), errc::backend_unavailable);
}

}  // namespace
}  // namespace gma::adapters::prometheus
