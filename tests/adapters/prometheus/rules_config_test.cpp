#include "adapters/prometheus/rules_config.hpp"

#include <gtest/gtest.h>
#include <re2/re2.h>

#include "adapters/prometheus/rules_query.hpp"

namespace gma::adapters::prometheus {
namespace {

rules_config parse(const std::string& text) { return parse_rules(text, "config.yaml"); }

std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const config_error& e) {
    return e.what();
  }
  return "no error";
}

core::label_selector selector(const std::string& text) {
  return *core::label_selector::parse(text);
}

// prometheus-adapter-compat.md section 2.3, Example A.
constexpr const char* kExampleA = R"x(rules:
- seriesQuery: '{__name__=~"^container_.*",container!="POD",namespace!="",pod!=""}'
  resources:
    overrides:
      namespace: {resource: "namespace"}
      pod: {resource: "pod"}
  name:
    matches: "^container_(.*)_seconds_total$"
  metricsQuery: "sum(rate(<<.Series>>{<<.LabelMatchers>>,container!=\"POD\"}[2m])) by (<<.GroupBy>>)"
)x";

// Example B.
constexpr const char* kExampleB = R"x(rules:
- seriesQuery: 'http_requests_total{kubernetes_namespace!="",kubernetes_pod_name!=""}'
  resources:
    overrides:
      kubernetes_namespace: {resource: "namespace"}
      kubernetes_pod_name: {resource: "pod"}
  name:
    matches: "^(.*)_total"
    as: "${1}_per_second"
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
)x";

// Example C, with the external rule fixed to map its namespace (as written upstream it is a
// load-time error here; see ExternalNamespacedRuleWithoutNamespaceLabelIsRefused).
constexpr const char* kExampleC = R"x(rules:
- seriesQuery: '{namespace!="",__name__!="^container_.*"}'
  name: {matches: "^(.*)_total$"}
  resources: {template: "<<.Resource>>"}
  metricsQuery: "sum(rate(<<.Series>>{<<.LabelMatchers>>,container!=\"POD\"}[2m])) by (<<.GroupBy>>)"
- seriesQuery: 'cheddar{sharp="true"}'
  name: {as: "cheesy_goodness"}
  resources: {overrides: {brand: {group: "cheese.io", resource: "brand"}}}
  metricsQuery: 'count(cheddar{sharp="true"})'
externalRules:
- seriesQuery: '{__name__="queue_consumer_lag",name!=""}'
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (name)
  resources: {overrides: {namespace: {resource: namespace}}}
- seriesQuery: '{__name__="queue_depth",topic!=""}'
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (name)
  resources: {namespaced: false}
)x";

TEST(RulesConfig, ExampleAQueriesAndNames) {
  const auto config = parse(kExampleA);
  ASSERT_EQ(config.rules.size(), 1u);
  const auto& rule = config.rules[0];
  EXPECT_EQ(rule.metric_name("container_cpu_usage_seconds_total"), "cpu_usage");
  EXPECT_EQ(rule.metric_name("container_memory_bytes"), std::nullopt);
  EXPECT_EQ(*rule.resources.resource_for_label("pod"), (group_resource{"", "pods"}));
  EXPECT_EQ(
      *render_custom_query(rule, "container_cpu_usage_seconds_total", {"", "pods"},
                           std::string("somens"), {"somepod1", "somepod2"}, {}),
      R"x(sum(rate(container_cpu_usage_seconds_total{namespace="somens",pod=~"somepod1|somepod2",container!="POD"}[2m])) by (pod))x");
}

TEST(RulesConfig, ExampleBRenamesWithAs) {
  const auto config = parse(kExampleB);
  const auto& rule = config.rules[0];
  EXPECT_EQ(rule.metric_name("http_requests_total"), "http_requests_per_second");
  EXPECT_EQ(
      *render_custom_query(rule, "http_requests_total", {"", "pods"}, std::string("default"),
                           {"sample-app-1"}, {}),
      R"x(sum(rate(http_requests_total{kubernetes_namespace="default",kubernetes_pod_name="sample-app-1"}[2m])) by (kubernetes_pod_name))x");
  // Namespace metric: the namespace label is the resource label.
  EXPECT_EQ(
      *render_custom_query(rule, "http_requests_total", {"", "namespaces"}, std::nullopt,
                           {"default"}, {}),
      R"x(sum(rate(http_requests_total{kubernetes_namespace="default"}[2m])) by (kubernetes_namespace))x");
}

TEST(RulesConfig, ExampleCTemplatesOverridesAndExternalRules) {
  const auto config = parse(kExampleC);
  ASSERT_EQ(config.rules.size(), 2u);
  ASSERT_EQ(config.external_rules.size(), 2u);
  const auto& templated = config.rules[0];
  EXPECT_EQ(*templated.resources.resource_for_label("service"), (group_resource{"", "services"}));
  EXPECT_EQ(templated.resources.label_for_resource({"apps", "deployments"}), "deployment");
  EXPECT_EQ(config.rules[1].metric_name("cheddar"), "cheesy_goodness");
  EXPECT_EQ(config.rules[1].resources.resource_for_label("brand")->str(), "brands.cheese.io");
  // The reference's external example (compat notes section 3.5), with the namespace mapping.
  EXPECT_EQ(*render_external_query(config.external_rules[0], "queue_consumer_lag", "default",
                                   selector("name=q1,topic in (a,b)")),
            R"x(sum(queue_consumer_lag{name="q1",topic=~"a|b",namespace="default"}) by (name))x");
  EXPECT_EQ(*render_external_query(config.external_rules[1], "queue_depth", "default",
                                   selector("topic=t")),
            R"x(sum(queue_depth{topic="t"}) by (name))x");
}

// Template vectors of pkg/naming/metrics_query_test.go, where the label equals the resource.
TEST(RulesQuery, ReferenceTemplateVectors) {
  const auto rule_with = [](const std::string& query) {
    return parse(
               "rules:\n- seriesQuery: x\n  resources: {overrides: {resource: {resource: "
               "resource}, "
               "namespaces: {resource: namespaces}}}\n  metricsQuery: '" +
               query + "'\n")
        .rules[0];
  };
  const group_resource res{"", "resources"};
  EXPECT_EQ(*render_custom_query(rule_with("<<.LabelMatchers>>"), "s", res, std::nullopt,
                                 {"bar", "baz"}, {}),
            R"x(resource=~"bar|baz")x");
  EXPECT_EQ(
      *render_custom_query(rule_with("<<.LabelMatchers>>"), "s", res, std::nullopt, {"bar"}, {}),
      R"x(resource="bar")x");
  EXPECT_EQ(*render_custom_query(rule_with("<<.LabelMatchers>>"), "s", res, std::nullopt, {"bar"},
                                 selector("metric1=value1")),
            R"x(metric1="value1",resource="bar")x");
  EXPECT_EQ(*render_custom_query(rule_with("<<.GroupBy>> <<.GroupBySlice>>"), "s", res,
                                 std::nullopt, {"bar"}, {}),
            "resource [resource]");
  EXPECT_EQ(
      *render_custom_query(
          rule_with(
              R"x(<<index .LabelValuesByName "namespaces">> <<index .LabelValuesByName "resource">>)x"),
          "s", res, std::string("default"), {"bar", "baz"}, {}),
      "default bar|baz");
  EXPECT_EQ(*render_custom_query(rule_with("<<.LabelValuesByName>>"), "s", res, std::nullopt,
                                 {"bar"}, selector("foo in (bar,baz)")),
            "map[foo:bar|baz resource:bar]");
  // range, refused before issue 10 item 5, renders as Go's text/template does.
  EXPECT_EQ(*render_custom_query(rule_with("<<range .GroupBySlice>>x<<end>>"), "s", res,
                                 std::nullopt, {"bar"}, {}),
            "x");
  EXPECT_EQ(*render_custom_query(
                rule_with("sum(<<.Series>>{<<range $k, $v := .LabelValuesByName>><<$k>>=~\"<<$v>>"
                          "\",<<end>>}) by (<<range $i, $g := .GroupBySlice>><<if $i>>,<<end>>"
                          "<<$g>><<end>>)"),
                "s", res, std::string("ml"), {"a", "b"}, {}),
            R"x(sum(s{namespaces=~"ml",resource=~"a|b",}) by (resource))x");
  // Named templates, as Go's doc.go describes them.
  EXPECT_EQ(*render_custom_query(rule_with("<<define \"by\">>by (<<.GroupBy>>)<<end>>"
                                           "sum(<<.Series>>) <<template \"by\" .>>"),
                                 "s", res, std::nullopt, {"bar"}, {}),
            "sum(s) by (resource)");
  EXPECT_EQ(*render_custom_query(rule_with("sum(<<.Series>>) by (<<block \"g\" .GroupBySlice>>"
                                           "<<range $i, $g := .>><<if $i>>,<<end>><<$g>><<end>>"
                                           "<<end>>)"),
                                 "s", res, std::nullopt, {"bar"}, {}),
            "sum(s) by (resource)");
  // An execution error fails the request instead of sending an empty query.
  EXPECT_FALSE(render_custom_query(rule_with("<<index .GroupBySlice 3>>"), "s", res, std::nullopt,
                                   {"bar"}, {}));
}

TEST(RulesQuery, SelectorOperatorsMapAsTheReference) {
  const auto rule = parse(
                        "externalRules:\n- seriesQuery: x\n  resources: {namespaced: false}\n"
                        "  metricsQuery: '<<.LabelMatchers>>'\n")
                        .external_rules[0];
  EXPECT_EQ(
      *render_external_query(rule, "x", "ns", selector("a=1,b!=2,c in (3,4),d notin (5),e,!f")),
      R"x(a="1",b!="2",c=~"3|4",d!~"5",e!="",f="")x");
  EXPECT_EQ(render_external_query(rule, "x", "ns", selector("a>1")).error(),
            errc::invalid_selector);
}

TEST(RulesConfig, NameExpansionFollowsGo) {
  const re2::RE2 re("^(?P<base>[a-z]+)_(\\d+)_total$");
  EXPECT_EQ(expand_name(re, "http_2_total", "$1"), "http");
  EXPECT_EQ(expand_name(re, "http_2_total", "${1}_x"), "http_x");
  EXPECT_EQ(expand_name(re, "http_2_total", "${base}-$2"), "http-2");
  EXPECT_EQ(expand_name(re, "http_2_total", "$1x"), "");  // Go reads $1x as the group "1x"
  EXPECT_EQ(expand_name(re, "http_2_total", "$$1"), "$1");
  EXPECT_EQ(expand_name(re, "nope", "$1"), "");
  // Numbers beyond any group, even beyond an int, expand to nothing, as in Go.
  EXPECT_EQ(expand_name(re, "http_2_total", "a${99999999999}b"), "ab");
  EXPECT_EQ(expand_name(re, "http_2_total", "a$99999999999999999999b"), "a");
}

TEST(RulesConfig, SeriesFiltersAreUnanchoredAndExclusive) {
  const auto rule =
      parse(
          "rules:\n- seriesQuery: x\n  seriesFilters: [{is: 'gpu'}, {isNot: '_free$'}]\n"
          "  resources: {overrides: {pod: {resource: pod}}}\n  metricsQuery: q\n")
          .rules[0];
  EXPECT_EQ(rule.metric_name("DCGM_gpu_util"), "DCGM_gpu_util");
  EXPECT_EQ(rule.metric_name("DCGM_gpu_free"), std::nullopt);
  EXPECT_EQ(rule.metric_name("cpu"), std::nullopt);
}

TEST(RulesConfig, LoadTimeErrorsNameFileAndLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"rules:\n- seriesQuery: x\n  metricQuery: y\n",
       "config.yaml:3: unknown key \"metricQuery\""},
      {"rulez: []\n", "config.yaml:1: unknown key \"rulez\""},
      {"rules:\n- seriesQuery: [a]\n  metricsQuery: q\n",
       "config.yaml:2: seriesQuery must be a string"},
      {"rules:\n- seriesQuery: x\n  resources: {namespaced: maybe, overrides: {pod: {resource: "
       "pod}}}\n  metricsQuery: q\n",
       "resources.namespaced must be true or false"},
      {"rules:\n- seriesQuery: x\n  seriesFilters: [{is: '(unclosed'}]\n  resources: {template: "
       "'<<.Resource>>'}\n  metricsQuery: q\n",
       "config.yaml:3: seriesFilters.is is not a valid regular expression"},
      {"rules:\n- seriesQuery: x\n  seriesFilters: [{is: a, isNot: b}]\n  resources: {template: "
       "'<<.Resource>>'}\n  metricsQuery: q\n",
       "has both is and isNot"},
      {"rules:\n- seriesQuery: x\n  resources: {template: '<<.Resource>>'}\n  metricsQuery: "
       "'sum(<<.Series>'\n",
       "config.yaml:4: template: metricsQuery:1:13: unexpected \">\" in operand"},
      {"rules:\n- seriesQuery: x\n  resources: {template: '<<.Resource>>'}\n  metricsQuery: "
       "'sum(<<.Series'\n",
       "config.yaml:4: template: metricsQuery:1:4: unclosed action"},
      {"rules:\n- seriesQuery: x\n  resources: {template: '<<.Resource>>'}\n  metricsQuery: "
       "'<<join .GroupBySlice>>x'\n",
       "config.yaml:4: template: metricsQuery:1:2: function \"join\" not defined"},
      {"rules:\n- seriesQuery: x\n  resources: {template: '<<.Resource>>'}\n  metricsQuery: "
       "'<<range .GroupBySlice>>x'\n",
       "config.yaml:4: template: metricsQuery:1:2: unexpected EOF"},
      {"rules:\n- seriesQuery: x\n  resources: {template: '<<.Resource>>'}\n  metricsQuery: "
       "'<<.Seriez>>'\n",
       "config.yaml:4: template: metricsQuery:1:2: unknown template field .Seriez"},
      {"rules:\n- seriesQuery: x\n  resources: {template: '<<.Resource>>'}\n  metricsQuery: "
       "'<<define \"a\">>1<<end>><<define \"a\">>2<<end>>'\n",
       "config.yaml:4: template: metricsQuery:1:39: template: multiple definition of template "
       "\"a\""},
      {"rules:\n- seriesQuery: x\n  resources: {template: 'kube_<<.Group>>'}\n  metricsQuery: q\n",
       "resources.template must use <<.Resource>>"},
      {"rules:\n- seriesQuery: x\n  metricsQuery: q\n",
       "config.yaml:2: the rule maps no series label"},
      {"rules:\n- seriesQuery: x\n  name: {matches: '(a)(b)'}\n  resources: {template: "
       "'<<.Resource>>'}\n  metricsQuery: q\n",
       "name.as is required"},
      {"rules:\n- seriesQuery: x\n  name: {matches: '^(.*)_total$', as: '${99999999999}'}\n  "
       "resources: {template: '<<.Resource>>'}\n  metricsQuery: q\n",
       "config.yaml:3: name.as refers to group 99999999999, but name.matches has 1 capture groups"},
      {"rules:\n- seriesQuery: x\n  name: {matches: '^(.*)_total$', as: '$2'}\n  "
       "resources: {template: '<<.Resource>>'}\n  metricsQuery: q\n",
       "name.as refers to group 2, but name.matches has 1 capture groups"},
      {"rules:\n- seriesQuery: x\n  name: {matches: '^(?P<base>.*)_total$', as: '${bsae}'}\n  "
       "resources: {template: '<<.Resource>>'}\n  metricsQuery: q\n",
       "name.as refers to the group \"bsae\", which name.matches does not name"},
      {"externalRules:\n- seriesQuery: '{__name__=\"queue_consumer_lag\",name!=\"\"}'\n  "
       "metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (name)\n",
       "config.yaml:2: the external rule is namespaced but no label maps to the namespace "
       "resource"},
      {"rules: {a: b}\n", "config.yaml:1: rules must be a list"},
      {"rules: [\n", "config.yaml:2:"},
  };
  for (const auto& [text, expected] : cases) {
    SCOPED_TRACE(text);
    EXPECT_NE(error_of(text).find(expected), std::string::npos) << error_of(text);
  }
}

// Found with tests/fuzz/rules_config_fuzz (corpus/rules_config/regression-template-*): these
// templates loaded, and then every label discovery mapped through them threw std::out_of_range
// (the pattern had no resource group).
TEST(RulesConfig, TemplatesWhosePatternCannotMatchAResourceAreRefused) {
  for (const char* templ :
       {R"(<<index .Resource \"x\">>)", "[<<.Resource>>]", R"(\\Q<<.Resource>>\\E)"}) {
    SCOPED_TRACE(templ);
    const std::string text = std::string("rules:\n- seriesQuery: x\n  resources: {template: \"") +
                             templ + "\"}\n  metricsQuery: y\n";
    EXPECT_NE(error_of(text).find("config.yaml:3: resources.template must use <<.Resource>>"),
              std::string::npos)
        << error_of(text);
  }
}

// The Helm chart's CI values use <<.GroupBy>> in an external rule: prometheus-adapter renders it
// empty, and so does this, with a warning at load.
TEST(RulesConfig, GroupByInAnExternalRuleRendersEmptyWithAWarning) {
  std::vector<std::string> warnings;
  const auto config = parse_rules(
      "externalRules:\n- seriesQuery: '{__name__=\"q\"}'\n  resources: {namespaced: false}\n"
      "  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>) "
      "<<.GroupBySlice>>'\n",
      "config.yaml", &warnings);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("config.yaml:4: <<.GroupBy>> and <<.GroupBySlice>> render empty in an "
                             "external rule"),
            std::string::npos)
      << warnings[0];
  const auto query =
      render_external_query(config.external_rules.at(0), "q", "default", selector("a=b"));
  ASSERT_TRUE(query);
  EXPECT_EQ(*query, R"(sum(q{a="b"}) by () [])");
}

// yaml.v2, which prometheus-adapter reads its file with, resolves anchors, aliases and "<<"
// merge keys (the mapping's own keys win), and its UnmarshalStrict refuses a key set twice.
TEST(RulesConfig, AnchorsAliasesAndMergeKeysAsYamlV2) {
  const auto config = parse(R"x(rules:
- &gpu
  seriesQuery: 'DCGM_FI_DEV_GPU_UTIL{namespace!="",pod!=""}'
  resources: &pods
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
  name: {as: gpu_utilization}
  metricsQuery: avg(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)
- <<: *gpu
  seriesQuery: 'DCGM_FI_DEV_FB_USED{namespace!="",pod!=""}'
  name: {as: gpu_memory_used}
- <<: [{name: {as: first_wins}}, {name: {as: second}, seriesQuery: 'x{namespace!="",pod!=""}'}]
  resources: *pods
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)
)x");
  ASSERT_EQ(config.rules.size(), 3u);
  EXPECT_EQ(config.rules[1].series_query, R"(DCGM_FI_DEV_FB_USED{namespace!="",pod!=""})");
  EXPECT_EQ(config.rules[1].name_as, "gpu_memory_used");
  EXPECT_EQ(config.rules[1].resources.overrides, config.rules[0].resources.overrides);
  EXPECT_EQ(config.rules[1].metrics_query.render({{"Series", "s"}}),
            config.rules[0].metrics_query.render({{"Series", "s"}}));
  EXPECT_EQ(config.rules[2].name_as, "first_wins");
  EXPECT_EQ(config.rules[2].series_query, R"(x{namespace!="",pod!=""})");
  EXPECT_EQ(config.rules[2].resources.overrides.size(), 2u);
  // The merged rules are told apart (their fingerprints name their own keys).
  EXPECT_NE(config.rules[0].fingerprint, config.rules[1].fingerprint);
}

TEST(RulesConfig, AKeySetTwiceInOneMappingIsRefused) {
  EXPECT_EQ(error_of(R"(rules:
- seriesQuery: 'a{namespace!="",pod!=""}'
  seriesQuery: 'b{namespace!="",pod!=""}'
)"),
            "config.yaml:3: key \"seriesQuery\" already set in this mapping at line 2");
  EXPECT_EQ(error_of("rules: []\nrules: []\n"),
            "config.yaml:2: key \"rules\" already set in this mapping at line 1");
  // Inside a flow mapping too, and a merge's keys do not count as set twice.
  EXPECT_EQ(
      error_of("rules:\n- resources: {overrides: {pod: {resource: pod}, pod: {resource: pod}}}\n"),
      "config.yaml:2: key \"pod\" already set in this mapping at line 2");
  // A merge needs mappings; a quoted "<<" is an ordinary (here unknown) key.
  EXPECT_EQ(error_of("rules:\n- <<: 3\n"),
            "config.yaml:2: a merge (<<) takes a mapping or a list of mappings");
  EXPECT_NE(error_of("rules:\n- \"<<\": {seriesQuery: x}\n").find("unknown key \"<<\""),
            std::string::npos);
}

// Aliases share nodes: a file that doubles its size with each anchor loads in linear time (the
// merge pass visits each shared node once), then fails on the unknown key as any file would.
TEST(RulesConfig, AliasChainsAreWalkedOnce) {
  std::string text = "a0: &a0 {x: 1}\n";
  for (int i = 1; i < 40; ++i)
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [*a" + std::to_string(i - 1) +
            ", *a" + std::to_string(i - 1) + "]\n";
  EXPECT_NE(error_of(text).find("config.yaml:1: unknown key \"a0\""), std::string::npos)
      << error_of(text);
}

TEST(RulesConfig, OnlyTheFirstDocumentIsRead) {
  const auto config = parse(std::string(kExampleA) + "---\nthis: [is not, read\n");
  EXPECT_EQ(config.rules.size(), 1u);
}

TEST(RulesConfig, PluralsAndSingulars) {
  EXPECT_EQ(plural_resource("pod"), "pods");
  EXPECT_EQ(plural_resource("Pods"), "pods");
  EXPECT_EQ(plural_resource("ingress"), "ingresses");
  EXPECT_EQ(plural_resource("networkpolicy"), "networkpolicies");
  EXPECT_EQ(singular_resource("deployments"), "deployment");
  EXPECT_EQ(singular_resource("ingresses"), "ingress");
}

}  // namespace
}  // namespace gma::adapters::prometheus
