// Fuzz target: Kubernetes Quantity (server/core/quantity). parse() reads quantities written by
// hand (rules, tests); from_sample() reads every Prometheus sample value the adapter serves.
// Invariants beyond not crashing:
//  - the canonical text (to_string) parses back to the same canonical text and MilliValue;
//  - the value agrees with an independent reading of the text as a long double: MilliValue is
//    the value times 1000 rounded away from zero (parse) or to nearest (from_sample), within
//    long double precision, and saturates only beyond the int64 range;
//  - from_sample never returns what MilliValue cannot hold.

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "server/core/quantity.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace gma;

namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

/// The number part's value as a long double, and whether any of its digits is non-zero (a
/// value that underflows to 0 here is still not 0).
struct reading {
  long double value;
  bool nonzero;
};

reading read(std::string_view number) {
  const std::string copy(number);
  return {std::strtold(copy.c_str(), nullptr),
          copy.find_first_of("123456789") != std::string::npos};
}

/// The suffix of a quantity that parse() accepted, as a factor: 10^k, 2^k or the e-exponent.
long double factor_of(std::string_view suffix) {
  static const std::pair<const char*, long double> kSuffixes[] = {
      {"n", 1e-9L},    {"u", 1e-6L},    {"m", 1e-3L},    {"", 1},
      {"k", 1e3L},     {"M", 1e6L},     {"G", 1e9L},     {"T", 1e12L},
      {"P", 1e15L},    {"E", 1e18L},    {"Ki", 0x1p10L}, {"Mi", 0x1p20L},
      {"Gi", 0x1p30L}, {"Ti", 0x1p40L}, {"Pi", 0x1p50L}, {"Ei", 0x1p60L}};
  for (const auto& [text, factor] : kSuffixes)
    if (suffix == text) return factor;
  // e/E and a decimal exponent: clamp so powl neither overflows to NaN nor takes long.
  const long exponent = std::strtol(std::string(suffix.substr(1)).c_str(), nullptr, 10);
  return std::pow(10.0L, static_cast<long double>(std::clamp(exponent, -6000L, 6000L)));
}

/// Checks that `milli` is `expected` (value * 1000) rounded to an integer: away from zero
/// (within one unit, and never 0 for a non-zero value) when `away_from_zero`, else to the
/// nearest (within half a unit), both plus long double's relative error; saturated when the
/// value is beyond the int64 range.
void check_milli(std::int64_t milli, long double expected, bool nonzero, bool negative,
                 bool away_from_zero, const std::string& what) {
  if (!nonzero) {
    GMA_FUZZ_CHECK(milli == 0, what + ": zero has MilliValue " + std::to_string(milli));
    return;
  }
  const long double limit = static_cast<long double>(kMax);
  if (expected > limit * (1 + 1e-15L)) {
    GMA_FUZZ_CHECK(milli == kMax, what + ": should saturate, got " + std::to_string(milli));
    return;
  }
  if (expected < -limit * (1 + 1e-15L)) {
    GMA_FUZZ_CHECK(milli == kMin, what + ": should saturate, got " + std::to_string(milli));
    return;
  }
  if (std::fabs(expected) > limit * (1 - 1e-15L)) return;  // too close to call
  const long double error = std::fabs(static_cast<long double>(milli) - expected);
  const long double unit = away_from_zero ? 1 : 0.5L;
  GMA_FUZZ_CHECK(error <= unit + std::fabs(expected) * 1e-15L,
                 what + ": MilliValue " + std::to_string(milli) + " for a value of " +
                     std::to_string(static_cast<double>(expected)) + " milli");
  // By sign of the text: a tiny value underflows to 0 in a long double too.
  if (away_from_zero)
    GMA_FUZZ_CHECK(milli != 0 && (milli < 0) == negative,
                   what + ": a non-zero value rounds away from zero, got " + std::to_string(milli));
}

/// The exact value of a canonical text (digits, then a DecimalSI suffix, an e-exponent or a
/// binary suffix) as a mantissa without trailing zeros times a power of ten; read here, apart
/// from quantity.cpp, to compare two canonical texts by value.
std::pair<__int128, long> exact_value(const std::string& canonical) {
  std::size_t i = canonical[0] == '-' ? 1 : 0;
  __int128 mantissa = 0;
  for (; i < canonical.size() && canonical[i] >= '0' && canonical[i] <= '9'; ++i)
    mantissa = mantissa * 10 + (canonical[i] - '0');
  if (canonical[0] == '-') mantissa = -mantissa;
  const std::string suffix = canonical.substr(i);
  long exponent = 0;
  static const std::pair<const char*, int> kDecimal[] = {{"n", -9}, {"u", -6}, {"m", -3}, {"", 0},
                                                         {"k", 3},  {"M", 6},  {"G", 9},  {"T", 12},
                                                         {"P", 15}, {"E", 18}};
  static const std::pair<const char*, int> kBinary[] = {{"Ki", 10}, {"Mi", 20}, {"Gi", 30},
                                                        {"Ti", 40}, {"Pi", 50}, {"Ei", 60}};
  bool known = false;
  for (const auto& [text, e] : kDecimal)
    if (suffix == text) exponent = e, known = true;
  for (const auto& [text, power] : kBinary)
    if (suffix == text) mantissa <<= power, known = true;
  if (!known) exponent = std::stol(suffix.substr(1));
  while (mantissa != 0 && mantissa % 10 == 0) mantissa /= 10, ++exponent;
  return {mantissa, mantissa == 0 ? 0 : exponent};
}

/// The canonical text parses back to the same value and MilliValue. Its own canonical text is
/// a fixed point; the first one need not be: 62.5Ki is 64000 in BinarySI, as in Kubernetes,
/// which parses as DecimalSI and prints as 64k.
void check_canonical(const core::quantity& q, const std::string& what) {
  const std::string canonical = q.to_string();
  const auto again = core::quantity::parse(canonical);
  GMA_FUZZ_CHECK(again.has_value(),
                 what + " prints as \"" + canonical + "\", which does not parse");
  const std::string second = again->to_string();
  GMA_FUZZ_CHECK(
      exact_value(second) == exact_value(canonical),
      what + " prints as \"" + canonical + "\", which prints as \"" + second + "\", another value");
  GMA_FUZZ_CHECK(again->milli_value() == q.milli_value(),
                 what + ": \"" + canonical + "\" has another MilliValue");
  const auto third = core::quantity::parse(second);
  GMA_FUZZ_CHECK(third.has_value() && third->to_string() == second,
                 what + ": \"" + second + "\" is not a fixed point of parse and print");
}

/// Length of the number at the start of `s` ([sign] digits [. digits]), as both parsers read it.
std::size_t number_length(std::string_view s) {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i < s.size() && s[i] == '.') ++i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  return i;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  fuzz::guarded([&] {
    const std::string what = "\"" + std::string(text) + "\"";
    const std::size_t number = number_length(text);
    if (const auto q = core::quantity::parse(text)) {
      check_canonical(*q, "parse " + what);
      const auto [value, nonzero] = read(text.substr(0, number));
      check_milli(q->milli_value(), value * factor_of(text.substr(number)) * 1000, nonzero,
                  text.starts_with('-'), /*away_from_zero=*/true, "parse " + what);
    }
    if (const auto q = core::quantity::from_sample(text)) {
      check_canonical(*q, "from_sample " + what);
      const std::int64_t milli = q->milli_value();
      GMA_FUZZ_CHECK(milli != kMax && milli != kMin, "from_sample " + what + " saturates");
      // Values within the int64 milli range print with a DecimalSI suffix (m to P), never an
      // exponent or a binary suffix.
      const std::string canonical = q->to_string();
      GMA_FUZZ_CHECK(canonical.find_first_of("ei") == std::string::npos,
                     "from_sample " + what + " is not DecimalSI: " + canonical);
      // strtold reads the whole sample text (the e-exponent included) the way Go's ParseFloat
      // does.
      const std::string copy(text);
      const long double value = std::strtold(copy.c_str(), nullptr);
      check_milli(milli, value * 1000, read(text.substr(0, number)).nonzero, text.starts_with('-'),
                  /*away_from_zero=*/false, "from_sample " + what);
    }
  });
  return 0;
}
