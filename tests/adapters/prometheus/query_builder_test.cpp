#include "adapters/prometheus/query_builder.hpp"

#include <gtest/gtest.h>

namespace gma::adapters::prometheus {
namespace {

std::string render(const std::string& selector_text) {
  auto selector = core::label_selector::parse(selector_text);
  EXPECT_TRUE(selector.has_value()) << selector_text;
  auto matchers = selector_matchers(*selector);
  EXPECT_TRUE(matchers.has_value()) << selector_text;
  return matchers ? render_matchers(*matchers) : "";
}

// The reference adapter's operator table (prometheus-adapter-compat.md section 3.4).
TEST(SelectorMatchers, ReferenceOperatorTable) {
  EXPECT_EQ(render("k=v"), R"(k="v")");
  EXPECT_EQ(render("k==v"), R"(k="v")");
  EXPECT_EQ(render("k!=v"), R"(k!="v")");
  EXPECT_EQ(render("k in (a)"), R"(k=~"a")");
  EXPECT_EQ(render("k in (a,b)"), R"(k=~"a|b")");
  EXPECT_EQ(render("k notin (a,b)"), R"(k!~"a|b")");
  EXPECT_EQ(render("k"), R"(k!="")");
  EXPECT_EQ(render("!k"), R"(k="")");
}

TEST(SelectorMatchers, SortedByKeyLikeTheReference) {
  EXPECT_EQ(render("topic in (a,b),name=q1"), R"(name="q1",topic=~"a|b")");
  EXPECT_EQ(render("metric1=value1"), R"(metric1="value1")");
}

TEST(SelectorMatchers, GreaterAndLessThanAreRefused) {
  auto selector = core::label_selector::parse("replicas>3");
  ASSERT_TRUE(selector.has_value());
  std::string message;
  auto matchers = selector_matchers(*selector, &message);
  EXPECT_EQ(matchers.error(), errc::invalid_selector);
  EXPECT_NE(message.find("replicas"), std::string::npos);
}

TEST(SelectorMatchers, RegexValuesAreEscaped) {
  // A name with '.' must match only itself inside =~, unlike in the reference adapter.
  EXPECT_EQ(render("model in (llama-3.1-8b,x)"), R"(model=~"llama-3\\.1-8b|x")");
}

TEST(SelectorMatchers, KeysBecomePrometheusLabelNames) {
  EXPECT_EQ(render("nvidia.com/gpu-type=a100"), R"(nvidia_com_gpu_type="a100")");
  EXPECT_EQ(prometheus_label_name("gpu-type"), "gpu_type");
  EXPECT_EQ(prometheus_label_name("9lives"), "_9lives");
  EXPECT_EQ(prometheus_label_name("model_name"), "model_name");
}

TEST(Quote, NoValueCanLeaveTheStringLiteral) {
  EXPECT_EQ(quote(R"(x"} or vector(1) #)"), R"("x\"} or vector(1) #")");
  EXPECT_EQ(quote(R"(a\b)"), R"("a\\b")");
  EXPECT_EQ(quote("line\nbreak"), R"("line\nbreak")");
  EXPECT_EQ(quote(std::string("nul\0x", 5)), R"("nul\x00x")");
  EXPECT_EQ(quote("pod-ü"), "\"pod-ü\"");
}

TEST(EscapeRegex, QuotesEveryMetacharacter) {
  EXPECT_EQ(escape_regex(R"(a.b+c*d?e(f)g|h[i]j{k}l^m$n\o)"),
            R"(a\.b\+c\*d\?e\(f\)g\|h\[i\]j\{k\}l\^m\$n\\o)");
  EXPECT_EQ(escape_regex("plain-name_1"), "plain-name_1");
}

}  // namespace
}  // namespace gma::adapters::prometheus
