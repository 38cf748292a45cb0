// The Go text/template engine against the input -> output examples of
// /work/shared/reference/go-text-template.md (section 10: E1.., H1.., G1), written from that
// document, not by running Go.

#include "adapters/prometheus/go_template.hpp"

#include <gtest/gtest.h>

namespace gma::adapters::prometheus {
namespace {

const std::set<std::string> kFields = {"Series",  "LabelMatchers", "LabelValuesByName",
                                       "GroupBy", "GroupBySlice",  "Nil"};

/// The data of E1-E16: prometheus-adapter's documented example.
template_data example() {
  return {{"Series", std::string("http_requests_total")},
          {"LabelMatchers", std::string(R"(namespace="somens",pod=~"pod1|pod2")")},
          {"LabelValuesByName",
           std::map<std::string, std::string>{{"namespace", "somens"}, {"pod", "pod1|pod2"}}},
          {"GroupBy", std::string("pod")},
          {"GroupBySlice", std::vector<std::string>{"pod"}}};
}

template_data with_slice(std::vector<std::string> slice) {
  auto d = example();
  d["GroupBySlice"] = std::move(slice);
  return d;
}

/// The rendering, or "parse error: ..." / "exec error: ...".
std::string run(std::string_view text, const template_data& data = example()) {
  std::string error;
  const auto t = go_template::parse(text, kFields, &error);
  if (!t) return "parse error: " + error;
  const auto out = t->execute(data, &error);
  if (!out) return "exec error: " + error;
  return *out;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(GoTemplate, FieldsAndMapAccess) {
  EXPECT_EQ(run("sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)"),  // E1
            R"(sum(rate(http_requests_total{namespace="somens",pod=~"pod1|pod2"}[2m])) by (pod))");
  EXPECT_EQ(run("<<.LabelValuesByName.pod>>"), "pod1|pod2");                        // E2
  EXPECT_EQ(run("<<.LabelValuesByName.missing>>"), "<no value>");                   // E3
  EXPECT_EQ(run("<<index .LabelValuesByName \"namespace\">>"), "somens");           // E4
  EXPECT_EQ(run("<<.LabelValuesByName>>"), "map[namespace:somens pod:pod1|pod2]");  // E30
  EXPECT_EQ(run("<<index .LabelValuesByName \"missing\">>|"), "|");                 // E33
  EXPECT_EQ(run("<<.LabelValuesByName.missing.deeper>>"), "<no value>");            // E51
  EXPECT_EQ(run("<<.GroupBySlice>>"), "[pod]");
  // A struct prints its fields in declaration order (queryTemplateArgs).
  EXPECT_EQ(run("<<$>>"), R"({http_requests_total namespace="somens",pod=~"pod1|pod2" )"
                          R"(map[namespace:somens pod:pod1|pod2] pod [pod]})");
  EXPECT_EQ(run("<<$.Series>>"), "http_requests_total");
}

TEST(GoTemplate, UnknownFieldIsRefusedAtParse) {
  // E8 is an execution error in Go; the fields are known here, so parse refuses it.
  EXPECT_TRUE(contains(run("<<.Nope>>"), "parse error: 1:3: unknown template field .Nope"))
      << run("<<.Nope>>");
  EXPECT_TRUE(
      contains(run("<<range .GroupBySlice>><<.X>><<end>>"),
               "exec error: 1:26: executing \"template\" at <.X>: can't evaluate field X in type "
               "string"))
      << run("<<range .GroupBySlice>><<.X>><<end>>");
}

TEST(GoTemplate, RangeOverMapsAndSlices) {
  EXPECT_EQ(run("<<range $k, $v := .LabelValuesByName>><<$k>>=<<$v>>;<<end>>"),  // E5
            "namespace=somens;pod=pod1|pod2;");
  EXPECT_EQ(run("<<range .GroupBySlice>>[<<.>>]<<else>>none<<end>>", with_slice({})),  // E6
            "none");
  EXPECT_EQ(run("<<range $i, $v := .GroupBySlice>><<$i>>:<<$v>><<end>>",  // E27
                with_slice({"a", "b", "c"})),
            "0:a1:b2:c");
  EXPECT_EQ(run("<<range .GroupBySlice>><<if eq . \"b\">><<break>><<end>><<.>><<end>>",  // E28
                with_slice({"a", "b", "c"})),
            "a");
  EXPECT_EQ(run("<<range .GroupBySlice>><<if eq . \"b\">><<continue>><<end>><<.>><<end>>",
                with_slice({"a", "b", "c"})),
            "ac");
  auto d = example();
  d["LabelValuesByName"] =
      std::map<std::string, std::string>{{"b", "1"}, {"a", "2"}, {"C", "3"}, {"aa", "4"}};
  EXPECT_EQ(run("<<range $k, $v := .LabelValuesByName>><<$k>><<end>>", d), "Caaab");  // E44
  d["LabelValuesByName"] = std::map<std::string, std::string>{{"namespace", "ml"}, {"pod", "a|b"}};
  EXPECT_EQ(run("<<range $k, $v := .LabelValuesByName>><<$k>>=~\"<<$v>>\",<<end>>", d),  // H16
            R"(namespace=~"ml",pod=~"a|b",)");
  EXPECT_EQ(run("<<range $e := .GroupBySlice>><<$e>><<end>>", with_slice({"x", "y"})), "xy");
  EXPECT_EQ(run("<<range .GroupBySlice>><<$.Series>><<end>>"), "http_requests_total");
  EXPECT_TRUE(contains(run("<<range .Series>>x<<end>>"), "range can't iterate over"));
  EXPECT_EQ(run("<<break>>"), "parse error: 1:3: {{break}} outside {{range}}");
}

TEST(GoTemplate, IfElseIfWith) {
  EXPECT_EQ(run("<<if eq .GroupBy \"pod\" \"node\">>yes<<else if .Series>>ser<<else>>no<<end>>"),
            "yes");  // E7
  auto d = example();
  d["GroupBy"] = std::string("x");
  EXPECT_EQ(run("<<if eq .GroupBy \"pod\" \"node\">>yes<<else if .Series>>ser<<else>>no<<end>>", d),
            "ser");
  d["Series"] = std::string();
  EXPECT_EQ(run("<<if eq .GroupBy \"pod\" \"node\">>yes<<else if .Series>>ser<<else>>no<<end>>", d),
            "no");
  EXPECT_EQ(run("<<with \"\">>x<<else>>empty<<end>>"), "empty");  // E26
  EXPECT_EQ(run("<<with .LabelValuesByName>><<.pod>><<end>>"), "pod1|pod2");
  EXPECT_EQ(run("<<with $x := .GroupBy>><<$x>><<.>><<end>>"), "podpod");
  EXPECT_EQ(run("<<if .LabelValuesByName.missing>>t<<else>>f<<end>>"), "f");
  EXPECT_TRUE(contains(run("<<with 1>><<else with 2>><<end>>"), "unexpected <with> in else"));
  EXPECT_TRUE(contains(run("<<if 1>>x"), "unexpected EOF"));
  EXPECT_TRUE(contains(run("<<end>>"), "unexpected {{end}}"));
}

TEST(GoTemplate, Variables) {
  EXPECT_EQ(run("<<$x := 1>><<if true>><<$x = 2>><<end>><<$x>>"), "2");  // E24
  EXPECT_EQ(run("<<if true>><<$y := 3>><<end>><<$y>>"),                  // E25
            "parse error: 1:32: undefined variable \"$y\"");
  EXPECT_EQ(run("<<$v := \"x\">><<range .GroupBySlice>><<$v = .>><<end>><<$v>>",  // H11
                with_slice({"pod", "container"})),
            "container");
  EXPECT_TRUE(contains(run("<<with $x := 1>><<end>><<$x>>"), "undefined variable \"$x\""));
  EXPECT_TRUE(contains(run("<<$z = 1>>"), "undefined variable \"$z\""));
}

TEST(GoTemplate, TrimMarkersAndComments) {
  EXPECT_EQ(run("a  <<- \" b \" ->>  c"), "a b c");  // E10
  EXPECT_EQ(run("<<- /* comment */ ->> x"), "x");    // E11
  EXPECT_EQ(run("<<- 3>><<-3>>"), "3-3");            // E53
  EXPECT_EQ(run("<<23 ->> < <<- 45>>"), "23<45");    // H1
  EXPECT_EQ(run("a<</* multi\nline */>>b"), "ab");
  EXPECT_EQ(run("<<\n .GroupBy\n>>"), "pod");
  EXPECT_TRUE(contains(run("<< /* x */ >>"), "unexpected \"/\" in command"));
  EXPECT_EQ(run("{{x}} >> {a}"), "{{x}} >> {a}");
}

TEST(GoTemplate, PipelinesAndParentheses) {
  EXPECT_EQ(run("<<\"\\\"output\\\"\">>"), "\"output\"");                                 // H6
  EXPECT_EQ(run("<<`\"output\"`>>"), "\"output\"");                                       // H6
  EXPECT_EQ(run("<<printf \"%q\" (print \"out\" \"put\")>>"), "\"output\"");              // H6
  EXPECT_EQ(run("<<\"put\" | printf \"%s%s\" \"out\" | printf \"%q\">>"), "\"output\"");  // H6
  EXPECT_EQ(run("<<(.LabelValuesByName).pod>>"), "pod1|pod2");
  EXPECT_EQ(run("<<.GroupBySlice | len>>"), "1");
  EXPECT_TRUE(contains(run("<<.Series 1>>"), "can't give argument to non-function .Series"));
  EXPECT_TRUE(contains(run("<<nil>>"), "nil is not a command"));
}

TEST(GoTemplate, Builtins) {
  EXPECT_EQ(run("<<print \"a\" 1 2 \"b\" \"c\" 3.5>>"), "a1 2bc3.5");  // E13
  EXPECT_EQ(run("<<println \"a\" 1>>"), "a 1\n");                      // E14
  EXPECT_EQ(run("<<len .GroupBySlice>> <<len .LabelValuesByName>> <<len .Series>>"),
            "1 2 19");                                                              // E15
  EXPECT_EQ(run("<<and 1 0 \"x\">>|<<or 0 \"\" \"y\">>|<<not 0>>"), "0|y|true");    // E16
  EXPECT_EQ(run("<<or .Series (index .GroupBySlice 5)>>"), "http_requests_total");  // E17
  EXPECT_TRUE(contains(run("<<and .Series (index .GroupBySlice 5)>>"),              // E17b
                       "error calling index: index out of range: 5"));
  EXPECT_TRUE(contains(run("<<lt 1 2.5>>"), "incompatible types for comparison"));    // E18
  EXPECT_EQ(run("<<slice .Series 0 4>>"), "http");                                    // E21
  EXPECT_EQ(run("<<html \"<a href='x'>&</a>\">>|<<urlquery \"a b&c=d/\xC3\xA9\">>"),  // E22
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;|a+b%26c%3Dd%2F%C3%A9");
  auto d = example();
  EXPECT_EQ(run("<<eq .LabelValuesByName.none \"x\">>"), "false");  // E49 (a nil value)
  EXPECT_EQ(run("<<lt \"a\" \"b\">>|<<lt 2 10>>|<<lt \"2\" \"10\">>"), "true|true|false");  // H19
  EXPECT_EQ(run("<<print 1_000 0x1F 1e3 'a' 0b101 0o17>>"), "1000 31 1000 97 5 15");
  EXPECT_EQ(run("<<print 1 2>>|<<print \"a\" \"b\">>|<<print 1 \"a\" 2>>"), "1 2|ab|1a2");
  EXPECT_EQ(run("<<urlquery \"a\" \"b\">>|<<html 1 2>>"), "ab|1 2");
  EXPECT_EQ(run("<<js \"a'b\\\"<>&=\\n\">>"), "a\\'b\\\"\\u003C\\u003E\\u0026\\u003D\\u000A");
  EXPECT_EQ(run("<<index \"abc\" 0>>"), "97");
  EXPECT_EQ(run("<<index .GroupBySlice 0>>"), "pod");
  EXPECT_TRUE(
      contains(run("<<index .GroupBySlice \"x\">>"), "cannot index slice/array with type string"));
  EXPECT_TRUE(contains(run("<<len 3>>"), "error calling len: len of type int"));
  EXPECT_TRUE(contains(run("<<slice .Series 3 1>>"), "invalid slice index: 3 > 1"));
  EXPECT_EQ(run("<<slice .GroupBySlice 0 1>>"), "[pod]");
  EXPECT_EQ(run("<<ne 1 2>><<le 2 2>><<gt 3 2>><<ge 1 2>>"), "truetruetruefalse");
  EXPECT_TRUE(contains(run("<<and>>"), "wrong number of args for and: want at least 1 got 0"));
  EXPECT_EQ(run("<<join 1>>"), "parse error: 1:3: function \"join\" not defined");
  EXPECT_EQ(run("x\n  <<foo>>"), "parse error: 2:5: function \"foo\" not defined");
}

TEST(GoTemplate, Printf) {
  EXPECT_EQ(run("<<printf \"%s|%d|%v|%q|%5.2f|%x|%-4s|\" \"a\" 42 .GroupBySlice \"q\\\"x\" 3.14159 "
                "255 \"ab\">>"),
            "a|42|[pod]|\"q\\\"x\"| 3.14|ff|ab  |");                                 // E12
  EXPECT_EQ(run("<<printf \"%d\" \"x\">>|<<printf \"%s\">>|<<printf \"%s\" 1 2>>"),  // E31
            "%!d(string=x)|%!s(MISSING)|%!s(int=1)%!(EXTRA int=2)");
  EXPECT_EQ(run("<<printf \"%.3f|%8.3f|%-8.3f|%08.3f|%e|%g\" 1.0 2.5 2.5 2.5 123456.789 "
                "0.000012>>"),
            "1.000|   2.500|2.500   |0002.500|1.234568e+05|1.2e-05");  // E36
  EXPECT_EQ(run("<<printf \"%5d|%-5d|%05d|%+d|%x|%X|%o|%b|%c\" 42 42 42 42 3054 3054 8 5 65>>"),
            "   42|42   |00042|+42|bee|BEE|10|101|A");  // E37
  EXPECT_EQ(run("<<printf \"%08.3f\" -3.14159>>"), "-003.142");
  EXPECT_EQ(run("<<printf \"%.2s|%10s|%-10s|\" \"abc\" \"x\" \"y\">>"),
            "ab|         x|y         |");
  EXPECT_EQ(run("<<printf \"%6.2v\" 3.14159>>"), "   3.1");
  EXPECT_EQ(run("<<printf \"%.2f %.2f %.2f %.0f %.0f %3.1f\" 0.125 0.375 1.005 2.5 3.5 2.25>>"),
            "0.12 0.38 1.00 2 4 2.2");
  EXPECT_EQ(run("<<printf \"%q|%q\" 42 .GroupBySlice>>"), "'*'|[\"pod\"]");
  EXPECT_EQ(run("<<printf \"%x|%X\" \"PodA\" \"PodA\">>"), "506f6441|506F6441");
  EXPECT_EQ(run("<<printf \"%q\" \"tab\\tx\">>"), "\"tab\\tx\"");
  EXPECT_EQ(run("<<printf \"%s\" .LabelValuesByName.missing>>"), "%!s(<nil>)");
  EXPECT_EQ(run("<<printf \"%v|%t|%%\" true false>>"), "true|false|%");
  EXPECT_EQ(run("<<printf \"%T %T %T %T\" 1 \"a\" .GroupBySlice 2.5>>"),
            "int string []string float64");
  EXPECT_EQ(run("<<printf \"%x %X %o\" -255 255 -8>>"), "-ff FF -10");
}

TEST(GoTemplate, FloatFormatting) {
  EXPECT_EQ(run("<<print 1.0 1e21 0.1>>"), "1 1e+21 0.1");                          // E55
  EXPECT_EQ(run("<<print 100000.0 1000000.0 123456.0 1234567.0 0.0001 0.00001>>"),  // G1
            "100000 1e+06 123456 1.234567e+06 0.0001 1e-05");
  EXPECT_EQ(run("<<print 2.50 12345678.5 -0.0>>"), "2.5 1.23456785e+07 -0");
  EXPECT_TRUE(contains(run("<<1e400>>"), "bad number syntax"));
}

TEST(GoTemplate, Bounds) {
  std::string deep;
  for (int i = 0; i < 101; ++i) deep += "<<if 1>>";
  for (int i = 0; i < 101; ++i) deep += "<<end>>";
  EXPECT_TRUE(contains(run(deep), "template nesting exceeds 100 levels")) << run(deep);
  std::string parens = "<<print " + std::string(200, '(') + "1" + std::string(200, ')') + ">>";
  EXPECT_TRUE(contains(run(parens), "template nesting exceeds 100 levels"));
  std::string ok;
  for (int i = 0; i < 100; ++i) ok += "<<if 1>>";
  ok += "x";
  for (int i = 0; i < 100; ++i) ok += "<<end>>";
  EXPECT_EQ(run(ok), "x");
  // Each level doubles the output; 25 levels of two elements would be 2 GiB.
  std::string wide;
  for (int i = 0; i < 25; ++i) wide += "<<range $.GroupBySlice>>";
  wide += std::string(64, 'x');
  for (int i = 0; i < 25; ++i) wide += "<<end>>";
  EXPECT_TRUE(contains(run(wide, with_slice({"a", "b"})), "template output exceeds 1048576 bytes"));
  std::string quiet;
  for (int i = 0; i < 40; ++i) quiet += "<<range $.GroupBySlice>>";
  for (int i = 0; i < 40; ++i) quiet += "<<end>>";
  EXPECT_TRUE(contains(run(quiet, with_slice({"a", "b"})), "steps"));
  EXPECT_TRUE(contains(run("<<printf \"%1000000s\" \"x\">><<printf \"%1000000s\" \"x\">>"),
                       "template output exceeds"));
}

TEST(GoTemplate, ErrorsNameTheTemplateLineAndColumn) {
  std::string error;
  EXPECT_FALSE(go_template::parse("a\nb <<.Series", kFields, &error, "metricsQuery"));
  EXPECT_EQ(error, "metricsQuery:2:3: unclosed action");
  const auto t = go_template::parse("x\n<<index .GroupBySlice 9>>", kFields, &error, "q");
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->execute(example(), &error));
  EXPECT_EQ(error,
            "q:2:3: executing \"q\" at <index .GroupBySlice 9>: error calling index: "
            "index out of range: 9");
  EXPECT_EQ(t->render(example()), "");
}

TEST(GoTemplate, Uses) {
  std::string error;
  const auto use = [&](std::string_view text) {
    return *go_template::parse(text, kFields, &error);
  };
  EXPECT_TRUE(use("<<.Series>>").uses("Series"));
  EXPECT_FALSE(use("<<.Series>>").uses("GroupBy"));
  EXPECT_TRUE(use("<<index .LabelValuesByName \"pod\">>").uses("LabelValuesByName", "pod"));
  EXPECT_FALSE(use("<<index .LabelValuesByName \"pod\">>").uses("LabelValuesByName", "node"));
  EXPECT_TRUE(use("<<.LabelValuesByName.pod>>").uses("LabelValuesByName", "pod"));
  EXPECT_FALSE(use("<<.LabelValuesByName.pod>>").uses("LabelValuesByName", "node"));
  EXPECT_TRUE(use("<<range .LabelValuesByName>><<.>><<end>>").uses("LabelValuesByName", "x"));
  EXPECT_FALSE(use("<<range .GroupBySlice>><<.>><<end>>").uses("Series"));
  EXPECT_TRUE(use("<<$x := .>><<$x.Series>>").uses("Series"));
  EXPECT_TRUE(use("<<.>>").uses("GroupBy"));
  EXPECT_TRUE(use("<<with $>><<.GroupBy>><<end>>").uses("GroupBy"));
}

}  // namespace
}  // namespace gma::adapters::prometheus
