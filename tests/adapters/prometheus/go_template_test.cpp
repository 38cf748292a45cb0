// The Go text/template engine against the input -> output examples of
// /work/shared/reference/go-text-template.md (section 10: E1.., H1.., G1) and the examples of
// Go's text/template and fmt documentation, written from those documents, not by running Go.
// Error texts follow Go's formats: `template: NAME:LINE:COL: executing "NAME" at <NODE>: ...`
// (COL counts bytes from 0, as Go's ErrorContext does); parse errors, which Go gives as
// `template: NAME:LINE: ...`, carry the column too.

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

/// The rendering of the template named "t", or "parse error: ..." / "exec error: ...".
std::string run(std::string_view text, const template_data& data = example()) {
  std::string error;
  const auto t = go_template::parse(text, kFields, &error, "t");
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

TEST(GoTemplate, UnknownFieldsAndArguments) {
  // E8 is an execution error in Go; the fields are known here, so parse refuses it.
  EXPECT_EQ(run("<<.Nope>>"), "parse error: template: t:1:2: unknown template field .Nope");
  // Where the dot is not known to be the data, it is Go's execution error.
  EXPECT_EQ(run("<<range .GroupBySlice>><<.X>><<end>>"),
            "exec error: template: t:1:25: executing \"t\" at <.X>: can't evaluate field X in "
            "type string");
  EXPECT_EQ(run("<<$x := .>><<$x.Nope>>"),
            "exec error: template: t:1:13: executing \"t\" at <$x.Nope>: can't evaluate field "
            "Nope in type naming.queryTemplateArgs");
  // Go's evalField: a field or a map key given arguments.
  EXPECT_EQ(run("<<.Series 1>>"),
            "exec error: template: t:1:2: executing \"t\" at <.Series>: Series has arguments but "
            "cannot be invoked as function");
  EXPECT_EQ(run("<<.LabelValuesByName.pod 1>>"),
            "exec error: template: t:1:2: executing \"t\" at <.LabelValuesByName.pod>: pod is not "
            "a method but has arguments");
  EXPECT_EQ(run("<<$x := 1>><<$x 2>>"),
            "exec error: template: t:1:13: executing \"t\" at <$x>: can't give argument to "
            "non-function $x");
  EXPECT_EQ(run("<<.GroupBy | .Series>>"),
            "exec error: template: t:1:13: executing \"t\" at <.Series>: Series has arguments but "
            "cannot be invoked as function");
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
  EXPECT_EQ(run("<<range .Series>>x<<end>>"),
            "exec error: template: t:1:8: executing \"t\" at <.Series>: range can't iterate over "
            "http_requests_total");
  EXPECT_EQ(run("<<range .LabelValuesByName.missing>>x<<else>>empty<<end>>"), "empty");
  EXPECT_EQ(run("<<break>>"), "parse error: template: t:1:2: {{break}} outside {{range}}");
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
  // Go 1.22, which prometheus-adapter v0.12.0 is built with, has no `else with` (1.23 does).
  EXPECT_EQ(run("<<with 1>><<else with 2>><<end>>"),
            "parse error: template: t:1:17: unexpected <with> in else");
  EXPECT_EQ(run("<<if 1>>x"), "parse error: template: t:1:2: unexpected EOF");
  EXPECT_EQ(run("<<end>>"), "parse error: template: t:1:2: unexpected {{end}}");
  EXPECT_EQ(run("<<if 1>><<else>><<else>><<end>>"),
            "parse error: template: t:1:2: expected end; found {{else}}");
}

TEST(GoTemplate, Variables) {
  EXPECT_EQ(run("<<$x := 1>><<if true>><<$x = 2>><<end>><<$x>>"), "2");  // E24
  EXPECT_EQ(run("<<if true>><<$y := 3>><<end>><<$y>>"),                  // E25
            "parse error: template: t:1:31: undefined variable \"$y\"");
  EXPECT_EQ(run("<<$v := \"x\">><<range .GroupBySlice>><<$v = .>><<end>><<$v>>",  // H11
                with_slice({"pod", "container"})),
            "container");
  EXPECT_EQ(run("<<with $x := 1>><<end>><<$x>>"),
            "parse error: template: t:1:25: undefined variable \"$x\"");
  EXPECT_EQ(run("<<$z = 1>>"), "parse error: template: t:1:2: undefined variable \"$z\"");
  EXPECT_EQ(run("<<range $i, 1>><<end>>"),
            "parse error: template: t:1:10: range can only initialize variables");
  EXPECT_EQ(run("<<with $i, $v := 1>><<end>>"),
            "parse error: template: t:1:9: too many declarations in with");
}

TEST(GoTemplate, TrimMarkersAndComments) {
  EXPECT_EQ(run("a  <<- \" b \" ->>  c"), "a b c");  // E10
  EXPECT_EQ(run("<<- /* comment */ ->> x"), "x");    // E11
  EXPECT_EQ(run("<<- 3>><<-3>>"), "3-3");            // E53
  EXPECT_EQ(run("<<23 ->> < <<- 45>>"), "23<45");    // H1
  EXPECT_EQ(run("a<</* multi\nline */>>b"), "ab");
  EXPECT_EQ(run("<<\n .GroupBy\n>>"), "pod");
  EXPECT_EQ(run("<< /* x */ >>"), "parse error: template: t:1:3: unexpected \"/\" in command");
  EXPECT_EQ(run("<</* x */ y>>"),
            "parse error: template: t:1:9: comment ends before closing delimiter");
  EXPECT_EQ(run("<</* x"), "parse error: template: t:1:0: unclosed comment");
  EXPECT_EQ(run("{{x}} >> {a}"), "{{x}} >> {a}");
}

TEST(GoTemplate, LexicalErrorsComeWhereTheParserMeetsThem) {
  // Go's parser names the first mistake it meets: here the stray ">", not the unclosed action.
  EXPECT_EQ(run("sum(<<.Series>"), "parse error: template: t:1:13: unexpected \">\" in operand");
  EXPECT_EQ(run("a\nb <<.Series"), "parse error: template: t:2:2: unclosed action");
  EXPECT_EQ(run("<<print (1>>"), "parse error: template: t:1:10: unclosed left paren");
  EXPECT_EQ(run("<<print 1)>>"), "parse error: template: t:1:9: unexpected right paren");
  EXPECT_EQ(run("<<,>>"), "parse error: template: t:1:2: unexpected \",\" in command");
  EXPECT_EQ(run("<<print \"a\"\"b\">>"),
            "parse error: template: t:1:11: unexpected \"\\\"b\\\"\" in operand");
  EXPECT_EQ(run("<<if #>>"), "parse error: template: t:1:5: unexpected \"#\" in if");
  EXPECT_EQ(run("<<print 1\"abcdefghijklmn\">>"),  // item.String(): %.10q... past 10
            "parse error: template: t:1:9: unexpected \"\\\"abcdefghi\"... in operand");
  EXPECT_EQ(run("<<\x01>>"),
            "parse error: template: t:1:2: unrecognized character in action: U+0001");
  EXPECT_EQ(run("<<>>"), "parse error: template: t:1:0: missing value for command");
  EXPECT_EQ(run("<<print 1 | 2>>"),
            "parse error: template: t:1:12: non executable command in pipeline stage 2");
}

TEST(GoTemplate, PipelinesAndParentheses) {
  EXPECT_EQ(run("<<\"\\\"output\\\"\">>"), "\"output\"");                                 // H6
  EXPECT_EQ(run("<<`\"output\"`>>"), "\"output\"");                                       // H6
  EXPECT_EQ(run("<<printf \"%q\" (print \"out\" \"put\")>>"), "\"output\"");              // H6
  EXPECT_EQ(run("<<\"put\" | printf \"%s%s\" \"out\" | printf \"%q\">>"), "\"output\"");  // H6
  EXPECT_EQ(run("<<(.LabelValuesByName).pod>>"), "pod1|pod2");
  EXPECT_EQ(run("<<.GroupBySlice | len>>"), "1");
  EXPECT_EQ(run("<<nil>>"),
            "exec error: template: t:1:2: executing \"t\" at <nil>: nil is not a "
            "command");
  EXPECT_EQ(run("<<print nil>>"), "<nil>");
}

TEST(GoTemplate, Builtins) {
  EXPECT_EQ(run("<<print \"a\" 1 2 \"b\" \"c\" 3.5>>"), "a1 2bc3.5");  // E13
  EXPECT_EQ(run("<<println \"a\" 1>>"), "a 1\n");                      // E14
  EXPECT_EQ(run("<<len .GroupBySlice>> <<len .LabelValuesByName>> <<len .Series>>"),
            "1 2 19");                                                              // E15
  EXPECT_EQ(run("<<and 1 0 \"x\">>|<<or 0 \"\" \"y\">>|<<not 0>>"), "0|y|true");    // E16
  EXPECT_EQ(run("<<or .Series (index .GroupBySlice 5)>>"), "http_requests_total");  // E17
  EXPECT_EQ(run("<<and .Series (index .GroupBySlice 5)>>"),                         // E17b
            "exec error: template: t:1:15: executing \"t\" at <index .GroupBySlice 5>: error "
            "calling index: index out of range: 5");
  EXPECT_EQ(run("<<lt 1 2.5>>"),  // E18
            "exec error: template: t:1:2: executing \"t\" at <lt 1 2.5>: error calling lt: "
            "incompatible types for comparison");
  EXPECT_EQ(run("<<slice .Series 0 4>>"), "http");                                    // E21
  EXPECT_EQ(run("<<html \"<a href='x'>&</a>\">>|<<urlquery \"a b&c=d/\xC3\xA9\">>"),  // E22
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;|a+b%26c%3Dd%2F%C3%A9");
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
  EXPECT_EQ(run("<<len 3>>"),
            "exec error: template: t:1:2: executing \"t\" at <len 3>: error calling len: len of "
            "type int");
  EXPECT_TRUE(contains(run("<<slice .Series 3 1>>"), "invalid slice index: 3 > 1"));
  EXPECT_EQ(run("<<slice .GroupBySlice 0 1>>"), "[pod]");
  EXPECT_EQ(run("<<ne 1 2>><<le 2 2>><<gt 3 2>><<ge 1 2>>"), "truetruetruefalse");
  // funcs.go checks the count of arguments before it evaluates any.
  EXPECT_EQ(run("<<and>>"),
            "exec error: template: t:1:2: executing \"t\" at <and>: wrong number of args for and: "
            "want at least 1 got 0");
  EXPECT_EQ(run("<<not (index .GroupBySlice 9) 2>>"),
            "exec error: template: t:1:2: executing \"t\" at <not>: wrong number of args for not: "
            "want 1 got 2");
  EXPECT_EQ(run("<<1 | lt 2>>"), "false");  // the piped value is the last argument
  EXPECT_TRUE(contains(run("<<eq .GroupBySlice .GroupBySlice>>"), "non-comparable type"));
  EXPECT_TRUE(contains(run("<<eq $ $>>"), "non-comparable type"));
  EXPECT_EQ(run("<<join 1>>"), "parse error: template: t:1:2: function \"join\" not defined");
  EXPECT_EQ(run("x\n  <<foo>>"), "parse error: template: t:2:4: function \"foo\" not defined");
}

TEST(GoTemplate, NumberConstants) {
  EXPECT_EQ(run("<<print 9223372036854775807 -9223372036854775808>>"),
            "9223372036854775807 -9223372036854775808");
  // In uint64 but not int: parsed, refused where it is used (idealConstant).
  EXPECT_EQ(run("<<print 9223372036854775808>>"),
            "exec error: template: t:1:8: executing \"t\" at <9223372036854775808>: "
            "9223372036854775808 overflows int");
  EXPECT_EQ(run("<<print 99999999999999999999>>"),
            "parse error: template: t:1:8: integer overflow: \"99999999999999999999\"");
  EXPECT_EQ(run("<<print 08>>"), "parse error: template: t:1:8: integer overflow: \"08\"");
  EXPECT_EQ(run("<<1e400>>"), "parse error: template: t:1:2: illegal number syntax: \"1e400\"");
  EXPECT_EQ(run("<<print 1x>>"), "parse error: template: t:1:8: bad number syntax: \"1x\"");
  EXPECT_EQ(run("<<print 0x1p-2 1e-400>>"), "0.25 0");
  EXPECT_EQ(run("<<print 1i>>"),
            "parse error: template: t:1:8: complex number constants are not supported: \"1i\"");
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
  EXPECT_EQ(run("<<printf \"%T %T %T %T %T\" 1 \"a\" .GroupBySlice 2.5 .>>"),
            "int string []string float64 naming.queryTemplateArgs");
  EXPECT_EQ(run("<<printf \"%x %X %o\" -255 255 -8>>"), "-ff FF -10");
  // The format must be a string: evalArg's and validateType's errors.
  EXPECT_EQ(run("<<printf 1>>"),
            "exec error: template: t:1:9: executing \"t\" at <1>: expected string; found 1");
  EXPECT_EQ(run("<<printf .GroupBySlice>>"),
            "exec error: template: t:1:9: executing \"t\" at <.GroupBySlice>: wrong type for "
            "value; expected string; got []string");
  EXPECT_EQ(run("<<\"%d\" | printf>>"), "%!d(MISSING)");
}

// The fmt package's documentation: flags, Go syntax, argument indexes and its error forms.
TEST(GoTemplate, PrintfAsFmtDocuments) {
  // "%x ... floating-point: hexadecimal notation (with decimal power of two exponent)", and
  // %b "decimalless scientific notation with exponent a power of two".
  EXPECT_EQ(run("<<printf \"%x|%X|%x|%.1x|%x\" 1.0 2.5 3.0 1.0 0.1>>"),
            "0x1p+00|0X1.4P+01|0x1.8p+01|0x1.0p+00|0x1.999999999999ap-04");
  EXPECT_EQ(run("<<printf \"%b\" 1.0>>"), "4503599627370496p-52");
  // '+' on %q: ASCII only; '#' on %q: a raw (backquoted) string if strconv.CanBackquote.
  EXPECT_EQ(run("<<printf \"%+q|%#q|%#q\" \"\xC3\xA9\" \"pod\" \"a`b\">>"),
            "\"\\u00e9\"|`pod`|\"a`b\"");
  // %#v: a Go-syntax representation; %+v adds field names to structs, and is %v otherwise.
  EXPECT_EQ(run("<<printf \"%#v|%#v|%#v|%+v|%+d\" \"pod\" .GroupBySlice 42 42 42>>"),
            "\"pod\"|[]string{\"pod\"}|42|42|+42");
  EXPECT_EQ(run("<<printf \"%#v\" .LabelValuesByName>>"),
            "map[string]string{\"namespace\":\"somens\", \"pod\":\"pod1|pod2\"}");
  EXPECT_EQ(
      run("<<printf \"%+v\" .>>"),
      "{Series:http_requests_total LabelMatchers:namespace=\"somens\",pod=~\"pod1|pod2\" "
      "LabelValuesByName:map[namespace:somens pod:pod1|pod2] GroupBy:pod GroupBySlice:[pod]}");
  EXPECT_EQ(run("<<printf \"%#v\" .>>"),
            "naming.queryTemplateArgs{Series:\"http_requests_total\", "
            "LabelMatchers:\"namespace=\\\"somens\\\",pod=~\\\"pod1|pod2\\\"\", "
            "LabelValuesByName:map[string]string{\"namespace\":\"somens\", \"pod\":\"pod1|pod2\"}, "
            "GroupBy:\"pod\", GroupBySlice:[]string{\"pod\"}}");
  // '#': 0b, 0, 0x, 0o; %U and %#U.
  EXPECT_EQ(run("<<printf \"%#b|%#o|%O|%#x|%U|%#U\" 5 8 8 255 120 120>>"),
            "0b101|010|0o10|0xff|U+0078|U+0078 'x'");
  // ' ' and '#' on %x of a string.
  EXPECT_EQ(run("<<printf \"% x|%#x|% #x\" \"abc\" \"abc\" \"abc\">>"),
            "61 62 63|0x616263|0x61 0x62 0x63");
  // '#' on %g keeps the trailing zeros (six significant digits unless a precision is given).
  EXPECT_EQ(run("<<printf \"%#g|%#.3g|%g\" 1.0 1.0 1.0>>"), "1.00000|1.00|1");
  // Explicit argument indexes.
  EXPECT_EQ(run("<<printf \"%[2]d %[1]d\" 11 22>>"), "22 11");
  EXPECT_EQ(run("<<printf \"%[3]*.[2]*[1]f\" 12.0 2 6>>"), " 12.00");
  EXPECT_EQ(run("<<printf \"%d %d %#[1]x %#x\" 16 17>>"), "16 17 0x10 0x11");
  EXPECT_EQ(run("<<printf \"%[1]d %[1]d\" 1 2>>"), "1 1");  // reordered: no EXTRA
  // Errors: BADWIDTH, BADPREC, BADINDEX, NOVERB, as fmt documents them.
  EXPECT_EQ(run("<<printf \"%*s|%.*s\" 4.5 \"hi\" 4.5 \"hi\">>"), "%!(BADWIDTH)hi|%!(BADPREC)hi");
  EXPECT_EQ(run("<<printf \"%*[2]d\" 7>>"), "%!d(BADINDEX)");
  EXPECT_EQ(run("<<printf \"%\">>"), "%!(NOVERB)");
  EXPECT_EQ(run("<<printf \"hi\" \"guys\">>"), "hi%!(EXTRA string=guys)");
  EXPECT_EQ(run("<<printf \"hi%d\">>"), "hi%!d(MISSING)");
  EXPECT_EQ(run("<<printf \"%*d\" -4 1>>"), "1   ");  // a negative width is '-'
}

TEST(GoTemplate, FloatFormatting) {
  EXPECT_EQ(run("<<print 1.0 1e21 0.1>>"), "1 1e+21 0.1");                          // E55
  EXPECT_EQ(run("<<print 100000.0 1000000.0 123456.0 1234567.0 0.0001 0.00001>>"),  // G1
            "100000 1e+06 123456 1.234567e+06 0.0001 1e-05");
  EXPECT_EQ(run("<<print 2.50 12345678.5 -0.0>>"), "2.5 1.23456785e+07 -0");
  EXPECT_EQ(run("<<printf \"%G|%E|% f|%+.1e\" 1e-7 1.0 1.0 1.0>>"),
            "1E-07|1.000000E+00| 1.000000|+1.0e+00");
}

// Named templates: Go's documentation of define, template and block.
TEST(GoTemplate, DefineTemplateAndBlock) {
  // doc.go's example.
  EXPECT_EQ(run("<<define \"T1\">>ONE<<end>><<define \"T2\">>TWO<<end>><<define \"T3\">><<template "
                "\"T1\">> <<template \"T2\">><<end>><<template \"T3\">>"),
            "ONE TWO");
  // "{{block "name" pipeline}} T1 {{end}}" is "{{define "name"}} T1 {{end}}" then
  // "{{template "name" pipeline}}".
  EXPECT_EQ(run("sum(x) by (<<block \"by\" .>><<.GroupBy>><<end>>)"), "sum(x) by (pod)");
  // The callee's dot, and its $, are the pipeline's value; without one, nil.
  EXPECT_EQ(run("<<define \"d\">><<.>>/<<$>><<end>><<template \"d\" .GroupBy>>"), "pod/pod");
  EXPECT_EQ(run("<<define \"d\">><<.>><<end>><<template \"d\">>"), "<no value>");
  EXPECT_EQ(run("<<define \"d\">><<range .>><<.>>,<<end>><<end>><<template \"d\" .GroupBySlice>>",
                with_slice({"a", "b"})),
            "a,b,");
  // A definition that is only white space gives way to one that is not; two that are not are
  // an error (within one text, as prometheus-adapter parses it).
  EXPECT_EQ(run("<<define \"x\">> <<end>><<define \"x\">>X<<end>><<template \"x\">>"), "X");
  EXPECT_EQ(run("<<define \"x\">>X<<end>><<define \"x\">>\n<<end>><<template \"x\">>"), "X");
  EXPECT_EQ(run("<<block \"x\" .>>default<<end>><<define \"x\">>other<<end>>"),
            "parse error: template: t:1:50: template: multiple definition of template \"x\"");
  // The text is the template of its own name: a define of that name stands in for empty text.
  EXPECT_EQ(run("<<define \"t\">>body<<end>>\n"), "body");
  EXPECT_EQ(run("x<<define \"t\">>body<<end>>"),
            "parse error: template: t:1:21: template: multiple definition of template \"t\"");
  // A template sees no variable of its caller, and is not inside the caller's range.
  EXPECT_EQ(run("<<$x := 1>><<define \"d\">><<$x>><<end>>"),
            "parse error: template: t:1:27: undefined variable \"$x\"");
  EXPECT_EQ(run("<<define \"d\">><<break>><<end>>"),
            "parse error: template: t:1:16: {{break}} outside {{range}}");
  // define only at the top level; names are strings; block needs a pipeline.
  EXPECT_EQ(run("<<if 1>><<define \"x\">><<end>><<end>>"),
            "parse error: template: t:1:10: unexpected <define> in command");
  EXPECT_EQ(run("<<define x>><<end>>"),
            "parse error: template: t:1:9: unexpected \"x\" in define clause");
  EXPECT_EQ(run("<<template .X>>"),
            "parse error: template: t:1:11: unexpected \".X\" in template clause");
  EXPECT_EQ(run("<<block \"x\">>y<<end>>"),
            "parse error: template: t:1:11: missing value for block clause");
  EXPECT_EQ(run("<<define \"x\">>y<<else>>z<<end>>"),
            "parse error: template: t:1:17: unexpected {{else}} in define clause");
  EXPECT_EQ(run("<<define \"x\">>y"), "parse error: template: t:1:2: unexpected EOF");
  // Execution errors name the template running and the text's name and position.
  EXPECT_EQ(run("<<template \"x\">>"),
            "exec error: template: t:1:11: executing \"t\" at <{{template \"x\"}}>: template \"x\" "
            "not defined");
  EXPECT_EQ(run("<<define \"T\">><<.X>><<end>><<template \"T\" .Series>>"),
            "exec error: template: t:1:16: executing \"T\" at <.X>: can't evaluate field X in "
            "type string");
  // Recursion ends at a depth of 100 here (Go's limit is 100000).
  EXPECT_EQ(run("<<define \"r\">><<template \"r\" .>><<end>><<template \"r\" .>>"),
            "exec error: template: t:1:25: executing \"r\" at <{{template \"r\" .}}>: exceeded "
            "maximum template depth (100)");
  std::string countdown =
      "<<define \"r\">><<if .>><<len .>><<template \"r\" slice . 1>><<end>><<end>>"
      "<<template \"r\" .GroupBySlice>>";
  EXPECT_EQ(run(countdown, with_slice({"a", "b", "c"})), "321");
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
  EXPECT_TRUE(contains(run("<<printf \"%9999999s\" \"x\">>"), "template output exceeds"));
  // Template calls inside ifs, ranges and withs recurse; the recursion stops at 1000 levels,
  // within a thread's stack.
  std::string ring = "<<define \"a\">>";
  for (int i = 0; i < 90; ++i) ring += "<<if 1>>";
  ring += "<<template \"a\" .>>";
  for (int i = 0; i < 90; ++i) ring += "<<end>>";
  ring += "<<end>><<template \"a\" .>>";
  EXPECT_TRUE(contains(run(ring), "template execution nests deeper than 1000 levels")) << run(ring);
}

TEST(GoTemplate, ErrorsNameTheTemplateLineAndColumn) {
  std::string error;
  EXPECT_FALSE(go_template::parse("a\nb <<.Series", kFields, &error, "metricsQuery"));
  EXPECT_EQ(error, "template: metricsQuery:2:2: unclosed action");
  // As Go's TestMissingFieldOnNil: `template: tmpl:1:2: executing "tmpl" at <.MissingField>`.
  const auto t = go_template::parse("x\n<<index .GroupBySlice 9>>", kFields, &error, "q");
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->execute(example(), &error));
  EXPECT_EQ(error,
            "template: q:2:2: executing \"q\" at <index .GroupBySlice 9>: error calling index: "
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
  // A template given the data may print any field; given a field, only that one.
  EXPECT_TRUE(use("<<define \"d\">><<.>><<end>><<template \"d\" .>>").uses("GroupBy"));
  EXPECT_TRUE(use("<<define \"d\">><<.>><<end>><<template \"d\" .Series>>").uses("Series"));
  EXPECT_FALSE(use("<<define \"d\">><<.>><<end>><<template \"d\" .Series>>").uses("GroupBy"));
  EXPECT_TRUE(use("<<define \"d\">><<.GroupBy>><<end>>").uses("GroupBy"));
  EXPECT_TRUE(use("<<block \"b\" $>><<.LabelMatchers>><<end>>").uses("GroupBySlice"));
}

}  // namespace
}  // namespace gma::adapters::prometheus
