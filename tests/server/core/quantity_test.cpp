#include "server/core/quantity.hpp"

#include <gtest/gtest.h>

namespace gma::core {
namespace {

struct sample_case {
  const char* sample;
  const char* canonical;
  std::int64_t milli;
};

// The reference table (kubernetes-metrics-apis.md section 5): values rounded to the nearest
// milli-unit and written in canonical DecimalSI.
TEST(QuantityFromSample, MatchesReferenceTable) {
  const sample_case cases[] = {
      {"0.5", "500m", 500},
      {"80", "80", 80000},
      {"1.5", "1500m", 1500},
      {"87.5", "87500m", 87500},
      {"1000", "1k", 1000000},
      {"1500", "1500", 1500000},
      {"2000", "2k", 2000000},
      {"2500000", "2500k", 2500000000},
      {"1000000", "1M", 1000000000},
      {"1e+06", "1M", 1000000000},
      {"0", "0", 0},
      {"-0.25", "-250m", -250},
      {"0.0333", "33m", 33},
      {"0.0004", "0", 0},
      {"0.0005", "1m", 1},
      {"1.2345", "1235m", 1235},
      {"73.5", "73500m", 73500},
      {"20514", "20514", 20514000},
      {"21510537216", "21510537216", 21510537216000},
      {"187.412000", "187412m", 187412},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.sample);
    auto q = quantity::from_sample(c.sample);
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ(q->to_string(), c.canonical);
    EXPECT_EQ(q->milli_value(), c.milli);
  }
}

TEST(QuantityFromSample, RejectsNonFiniteValues) {
  for (const char* bad : {"NaN", "+Inf", "-Inf", "", "abc", "1.2.3", "1e"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(quantity::from_sample(bad).error(), errc::bad_request);
  }
}

TEST(QuantityFromSample, ValuesBeyondWhatTheHpaReadsAreRefused) {
  // Text that overflows a double is +Inf to Go's ParseFloat, and so to Prometheus; finite values
  // above 9223372036854775 saturate MilliValue, which is all the HPA reads.
  for (const char* bad : {"1e400", "-1e400", "1.7976931348623157e+308", "-1.7976931348623157e308",
                          "123456789012345678901234", "9223372036854776", "1e16", "-1e16"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(quantity::from_sample(bad).error(), errc::bad_request);
  }
  const auto largest = quantity::from_sample("9223372036854775");
  ASSERT_TRUE(largest.has_value());
  EXPECT_EQ(largest->to_string(), "9223372036854775");
  EXPECT_EQ(largest->milli_value(), 9223372036854775000);
  const auto smallest = quantity::from_sample("-9223372036854775");
  ASSERT_TRUE(smallest.has_value());
  EXPECT_EQ(smallest->to_string(), "-9223372036854775");
  const auto peta = quantity::from_sample("1e15");
  ASSERT_TRUE(peta.has_value());
  EXPECT_EQ(peta->to_string(), "1P");
}

TEST(QuantityFromSample, SubnormalsAndNegativeZeroAreZero) {
  for (const char* tiny : {"4.9406564584124654e-324", "-4.9e-324", "2.2250738585072014e-308", "-0",
                           "-0.0", "0.0004"}) {
    SCOPED_TRACE(tiny);
    const auto q = quantity::from_sample(tiny);
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ(q->to_string(), "0");
    EXPECT_EQ(q->milli_value(), 0);
  }
}

struct parse_case {
  const char* input;
  const char* canonical;
};

// Ported from apimachinery's TestQuantityParse / TestQuantityString.
TEST(QuantityParse, CanonicalisesLikeKubernetes) {
  const parse_case cases[] = {
      {"0", "0"},
      {"1", "1"},
      {"100m", "100m"},
      {"1.5", "1500m"},
      {"1.2345", "1234500u"},
      {"0.0001", "100u"},
      {"3.001n", "4n"},
      {"0.00000012345", "124n"},
      {"1.3E+6", "1300e3"},
      {"1.2e3", "1200"},
      {"1024Mi", "1Gi"},
      {".001Ki", "1024m"},
      {"1Ki", "1Ki"},
      {"1000", "1k"},
      {"2k", "2k"},
      {"1500", "1500"},
      {"5G", "5G"},
      {"-1", "-1"},
      {"1e-3", "1e-3"},
      {"1000000000000000000", "1E"},
      {"100Mi", "100Mi"},
      {"512", "512"},
      {"1536Ki", "1536Ki"},
      {"0.5Ki", "512"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.input);
    auto q = quantity::parse(c.input);
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ(q->to_string(), c.canonical);
  }
}

TEST(QuantityParse, MilliValueRoundsUp) {
  EXPECT_EQ(quantity::parse("1.2345")->milli_value(), 1235);
  EXPECT_EQ(quantity::parse("0.0001")->milli_value(), 1);
  EXPECT_EQ(quantity::parse("2k")->milli_value(), 2000000);
}

// Found by tests/fuzz/quantity_fuzz (corpus/quantity/regression-exponent-beyond-canonical):
// "199999990000e999999" parsed, and printed as "199999990e1000002", which did not parse back
// (exponents have at most six digits). Values whose canonical exponent is that large are
// refused; those up to "100e999999" still round-trip.
TEST(QuantityParse, CanonicalTextParsesBackAtTheExponentLimit) {
  for (const char* text : {"1e999999", "10e999999", "100e999999", "1.5e999999", "25E999998"}) {
    SCOPED_TRACE(text);
    const auto q = quantity::parse(text);
    ASSERT_TRUE(q.has_value());
    const auto again = quantity::parse(q->to_string());
    ASSERT_TRUE(again.has_value()) << q->to_string();
    EXPECT_EQ(again->to_string(), q->to_string());
  }
  EXPECT_EQ(quantity::parse("100e999999")->to_string(), "100e999999");
  for (const char* text : {"199999990000e999999", "1000e999999"}) {
    SCOPED_TRACE(text);
    EXPECT_EQ(quantity::parse(text).error(), errc::bad_request);
  }
}

TEST(QuantityParse, RejectsMalformedInput) {
  for (const char* bad : {"", "m", "1x", "1 Ki", "--1", "1Kib", ".", "1e", "1e+"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(quantity::parse(bad).has_value());
  }
}

}  // namespace
}  // namespace gma::core
