#include "server/core/label_selector.hpp"

#include <gtest/gtest.h>

namespace gma::core {
namespace {

label_selector parse_ok(const std::string& text) {
  std::string message;
  auto s = label_selector::parse(text, &message);
  EXPECT_TRUE(s.has_value()) << text << ": " << message;
  return s ? *s : label_selector();
}

TEST(LabelSelectorParse, EveryOperator) {
  struct c {
    const char* text;
    selector_op op;
    std::vector<std::string> values;
  };
  const c cases[] = {
      {"app=web", selector_op::equals, {"web"}},
      {"app==web", selector_op::double_equals, {"web"}},
      {"app!=web", selector_op::not_equals, {"web"}},
      {"app in (b,a,b)", selector_op::in, {"a", "b"}},
      {"app notin (x)", selector_op::not_in, {"x"}},
      {"app", selector_op::exists, {}},
      {"!app", selector_op::does_not_exist, {}},
      {"replicas>3", selector_op::greater_than, {"3"}},
      {"replicas<10", selector_op::less_than, {"10"}},
      {"app=", selector_op::equals, {""}},
      {"app in ()", selector_op::in, {""}},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.text);
    const auto s = parse_ok(tc.text);
    ASSERT_EQ(s.requirements().size(), 1u);
    EXPECT_EQ(s.requirements()[0].op, tc.op);
    EXPECT_EQ(s.requirements()[0].values, tc.values);
  }
}

TEST(LabelSelectorParse, SortsRequirementsByKeyAndAcceptsWhitespace) {
  const auto s = parse_ok(" tier = gpu , app in ( a , b ) ,!legacy,example.com/team");
  EXPECT_EQ(s.to_string(), "app in (a,b),example.com/team,!legacy,tier=gpu");
}

// Found by tests/fuzz/label_selector_fuzz (corpus/label_selector/regression-empty-value-set):
// "(  ,  )" holds the empty value and prints as "()", which was refused as an empty set. As in
// labels.Parse, "()" is that set, so every printed selector parses back to itself.
TEST(LabelSelectorParse, PrintedSelectorsParseBack) {
  for (const char* text :
       {" ttier = gpu , app in (  ,  ) ,!legacy,ex.coa", "a notin (,b)", "a in ()", "a notin ()"}) {
    SCOPED_TRACE(text);
    const auto s = parse_ok(text);
    const auto again = parse_ok(s.to_string());
    EXPECT_EQ(again.requirements(), s.requirements());
    EXPECT_EQ(again.to_string(), s.to_string());
  }
  EXPECT_EQ(parse_ok("app in (,)").to_string(), "app in ()");
  EXPECT_TRUE(parse_ok("app in ()").matches({{"app", ""}}));
  EXPECT_FALSE(parse_ok("app in ()").matches({{"app", "x"}}));
}

TEST(LabelSelectorParse, EmptyStringSelectsEverything) {
  const auto s = parse_ok("");
  EXPECT_TRUE(s.empty());
  EXPECT_TRUE(s.matches({{"anything", "x"}}));
}

TEST(LabelSelectorParse, RejectsMalformedInput) {
  for (const char* bad :
       {"app in (a", "app in a", "=web", "app=web,", ",app", "app=we b", "app=\"web\"", "app!",
        "a b", "app=web)", "-app=x", "app=-x", "replicas>three", "a/b/c=d", "UPPER.com/x=y",
        "app=web;drop", "app=web\"} or vector(1) #"}) {
    SCOPED_TRACE(bad);
    std::string message;
    auto s = label_selector::parse(bad, &message);
    EXPECT_FALSE(s.has_value());
    EXPECT_EQ(s.error(), errc::invalid_selector);
    EXPECT_FALSE(message.empty());
  }
}

TEST(LabelSelectorParse, LongValuesAreRejected) {
  EXPECT_FALSE(label_selector::parse("app=" + std::string(64, 'a')).has_value());
  EXPECT_TRUE(label_selector::parse("app=" + std::string(63, 'a')).has_value());
}

TEST(LabelSelectorMatch, FollowsKubernetesSemantics) {
  const label_map pod = {{"app", "triton"}, {"tier", "gpu"}, {"replicas", "4"}};
  EXPECT_TRUE(parse_ok("app=triton").matches(pod));
  EXPECT_FALSE(parse_ok("app=vllm").matches(pod));
  EXPECT_TRUE(parse_ok("app!=vllm").matches(pod));
  EXPECT_TRUE(parse_ok("missing!=x").matches(pod));
  EXPECT_TRUE(parse_ok("app in (vllm,triton)").matches(pod));
  EXPECT_FALSE(parse_ok("app notin (triton)").matches(pod));
  EXPECT_TRUE(parse_ok("missing notin (triton)").matches(pod));
  EXPECT_TRUE(parse_ok("tier").matches(pod));
  EXPECT_FALSE(parse_ok("!tier").matches(pod));
  EXPECT_TRUE(parse_ok("replicas>3,replicas<5").matches(pod));
  EXPECT_FALSE(parse_ok("app=triton,tier=cpu").matches(pod));
}

TEST(LabelSelectorJson, MatchesParseToLabelSelector) {
  EXPECT_TRUE(parse_ok("").to_label_selector_json().is_null());
  EXPECT_EQ(parse_ok("gpu=0").to_label_selector_json().dump(), R"({"matchLabels":{"gpu":"0"}})");
  EXPECT_EQ(
      parse_ok("b!=x,a in (2,1),c,!d,e==f").to_label_selector_json().dump(),
      R"({"matchLabels":{"e":"f"},"matchExpressions":[{"key":"a","operator":"In","values":["1","2"]},)"
      R"({"key":"b","operator":"NotIn","values":["x"]},{"key":"c","operator":"Exists"},)"
      R"({"key":"d","operator":"DoesNotExist"}]})");
}

}  // namespace
}  // namespace gma::core
