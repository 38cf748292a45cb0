#include "server/core/quantity.hpp"

#include <cctype>
#include <limits>
#include <optional>

namespace gma::core {
namespace {

using int128 = __int128;
constexpr int kMaxDigits = 18;                 // every 18-digit decimal fits in int64
constexpr int kMaxExponentDigits = 6;          // "1e999999" is the largest exponent read
constexpr std::int32_t kMaxExponent = 999999;  // ... and written (a multiple of three)

/// A decimal number as a digit string (no leading zeros) times 10^exponent.
struct decimal {
  bool negative = false;
  std::string digits;
  std::int32_t exponent = 0;
};

/// Removes `count` trailing digits, rounding the rest away from zero when `round_up_any`
/// (Kubernetes' nano rounding) or half away from zero otherwise.
void drop_digits(decimal& d, int count, bool round_up_any) {
  if (count <= 0) return;
  bool increment = false;
  if (count > static_cast<int>(d.digits.size())) {
    increment = round_up_any && d.digits.find_first_not_of('0') != std::string::npos;
    d.digits.clear();
  } else {
    const std::string dropped = d.digits.substr(d.digits.size() - count);
    d.digits.resize(d.digits.size() - count);
    if (round_up_any) {
      increment = dropped.find_first_not_of('0') != std::string::npos;
    } else {
      increment = dropped.front() >= '5';
    }
  }
  d.exponent += count;
  if (d.digits.empty()) d.digits = "0";
  if (!increment) return;
  int i = static_cast<int>(d.digits.size()) - 1;
  while (i >= 0 && d.digits[i] == '9') d.digits[i--] = '0';
  if (i < 0) {
    d.digits.insert(d.digits.begin(), '1');
  } else {
    ++d.digits[i];
  }
}

/// Reads [sign] digits [. digits] into `d`; returns the number of characters consumed, or
/// nullopt when there is no digit.
std::optional<std::size_t> read_number(std::string_view s, decimal& d) {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    d.negative = s[i] == '-';
    ++i;
  }
  bool any = false;
  for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
    d.digits += s[i];
    any = true;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
      d.digits += s[i];
      --d.exponent;
      any = true;
    }
  }
  if (!any) return std::nullopt;
  return i;
}

std::optional<std::int32_t> read_exponent(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::size_t i = 0;
  bool negative = false;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    ++i;
  }
  if (i == s.size() || s.size() - i > kMaxExponentDigits) return std::nullopt;
  std::int32_t value = 0;
  for (; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
    value = value * 10 + (s[i] - '0');
  }
  return negative ? -value : value;
}

void strip_leading_zeros(decimal& d) {
  const auto first = d.digits.find_first_not_of('0');
  d.digits = first == std::string::npos ? "0" : d.digits.substr(first);
}

std::optional<std::int64_t> to_int64(const decimal& d) {
  if (d.digits.size() > kMaxDigits) return std::nullopt;
  std::int64_t value = std::stoll(d.digits);
  return d.negative ? -value : value;
}

std::string int128_to_string(int128 value) {
  if (value == 0) return "0";
  const bool negative = value < 0;
  unsigned __int128 magnitude = negative ? -static_cast<unsigned __int128>(value) : value;
  std::string out;
  while (magnitude > 0) {
    out.insert(out.begin(), static_cast<char>('0' + static_cast<int>(magnitude % 10)));
    magnitude /= 10;
  }
  return negative ? "-" + out : out;
}

const char* decimal_suffix(std::int32_t exponent) {
  switch (exponent) {
    case -9:
      return "n";
    case -6:
      return "u";
    case -3:
      return "m";
    case 0:
      return "";
    case 3:
      return "k";
    case 6:
      return "M";
    case 9:
      return "G";
    case 12:
      return "T";
    case 15:
      return "P";
    case 18:
      return "E";
    default:
      return nullptr;
  }
}

}  // namespace

result<quantity> quantity::parse(std::string_view text) {
  decimal d;
  const auto consumed = read_number(text, d);
  if (!consumed) return errc::bad_request;
  const std::string_view suffix = text.substr(*consumed);
  quantity_format format = quantity_format::decimal_si;
  std::int32_t exponent10 = 0;
  int binary_power = 0;  // value is multiplied by 2^binary_power
  if (suffix.empty()) {
  } else if (suffix == "n") {
    exponent10 = -9;
  } else if (suffix == "u") {
    exponent10 = -6;
  } else if (suffix == "m") {
    exponent10 = -3;
  } else if (suffix == "k") {
    exponent10 = 3;
  } else if (suffix == "M") {
    exponent10 = 6;
  } else if (suffix == "G") {
    exponent10 = 9;
  } else if (suffix == "T") {
    exponent10 = 12;
  } else if (suffix == "P") {
    exponent10 = 15;
  } else if (suffix == "E") {
    exponent10 = 18;
  } else if (suffix == "Ki") {
    binary_power = 10;
  } else if (suffix == "Mi") {
    binary_power = 20;
  } else if (suffix == "Gi") {
    binary_power = 30;
  } else if (suffix == "Ti") {
    binary_power = 40;
  } else if (suffix == "Pi") {
    binary_power = 50;
  } else if (suffix == "Ei") {
    binary_power = 60;
  } else if (suffix[0] == 'e' || suffix[0] == 'E') {
    const auto e = read_exponent(suffix.substr(1));
    if (!e) return errc::bad_request;
    exponent10 = *e;
    format = quantity_format::decimal_exponent;
  } else {
    return errc::bad_request;
  }
  if (binary_power > 0) format = quantity_format::binary_si;
  d.exponent += exponent10;
  strip_leading_zeros(d);
  if (binary_power > 0) {
    // Multiply the digit string by 2^binary_power exactly, using 128-bit arithmetic.
    if (d.digits.size() > kMaxDigits) return errc::bad_request;
    int128 value = std::stoll(d.digits);
    for (int i = 0; i < binary_power; ++i) {
      value *= 2;
      if (value > static_cast<int128>(std::numeric_limits<std::int64_t>::max()) * 1000)
        return errc::bad_request;
    }
    d.digits = int128_to_string(value);
  }
  // Kubernetes keeps at most nano precision and rounds finer values up.
  if (d.exponent < -9) drop_digits(d, -9 - d.exponent, /*round_up_any=*/true);
  // Trailing zeros carry no information; dropping them keeps large exact values in range.
  while (d.digits.size() > 1 && d.digits.back() == '0') {
    d.digits.pop_back();
    ++d.exponent;
  }
  // to_string writes the exponent rounded down to a multiple of three; beyond kMaxExponent
  // ("1000e999999" is 1e1000002) the canonical text would not parse back.
  if (d.exponent - d.exponent % 3 > kMaxExponent) return errc::bad_request;
  const auto mantissa = to_int64(d);
  if (!mantissa) return errc::bad_request;
  return quantity(*mantissa, d.exponent, format);
}

result<quantity> quantity::from_sample(std::string_view text) {
  decimal d;
  const auto consumed = read_number(text, d);
  if (!consumed) return errc::bad_request;  // NaN, +Inf, -Inf and garbage
  std::string_view rest = text.substr(*consumed);
  if (!rest.empty()) {
    if (rest[0] != 'e' && rest[0] != 'E') return errc::bad_request;
    const auto e = read_exponent(rest.substr(1));
    if (!e) return errc::bad_request;
    d.exponent += *e;
  }
  strip_leading_zeros(d);
  if (d.exponent < -3) drop_digits(d, -3 - d.exponent, /*round_up_any=*/false);
  // Beyond 18 significant digits a double carries no information anyway.
  if (d.digits.size() > kMaxDigits)
    drop_digits(d, static_cast<int>(d.digits.size()) - kMaxDigits, false);
  const auto mantissa = to_int64(d);
  if (!mantissa) return errc::bad_request;
  const quantity q(*mantissa, d.exponent, quantity_format::decimal_si);
  // What MilliValue() cannot hold (it saturates), the HPA cannot use; text that overflows a
  // double (1e400, +Inf to Prometheus) is far beyond it too.
  const auto milli = q.milli_value();
  if (milli == std::numeric_limits<std::int64_t>::max() ||
      milli == std::numeric_limits<std::int64_t>::min())
    return errc::bad_request;
  return q;
}

std::string quantity::to_string() const {
  if (mantissa_ == 0) return "0";
  int128 mantissa = mantissa_;
  std::int32_t exponent = scale_;
  quantity_format format = format_;
  if (format == quantity_format::binary_si) {
    // Binary suffixes only for exact integers of magnitude >= 1024 (Quantity.CanonicalizeBytes).
    int128 integer = mantissa;
    bool exact = true;
    for (std::int32_t e = exponent; e < 0; ++e) {
      if (integer % 10 != 0) {
        exact = false;
        break;
      }
      integer /= 10;
    }
    for (std::int32_t e = 0; exact && e < exponent; ++e) integer *= 10;
    if (!exact || (integer > -1024 && integer < 1024)) {
      format = quantity_format::decimal_si;
    } else {
      int power = 0;
      while (power < 60 && integer % 1024 == 0) {
        integer /= 1024;
        power += 10;
      }
      static constexpr const char* kBinary[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
      return int128_to_string(integer) + kBinary[power / 10];
    }
  }
  while (mantissa % 10 == 0) {
    mantissa /= 10;
    ++exponent;
  }
  while (exponent % 3 != 0) {  // C++ remainder has Go's sign semantics
    mantissa *= 10;
    --exponent;
  }
  std::string out = int128_to_string(mantissa);
  if (format == quantity_format::decimal_exponent) {
    if (exponent != 0) out += "e" + std::to_string(exponent);
    return out;
  }
  if (const char* suffix = decimal_suffix(exponent)) return out + suffix;
  return out + "e" + std::to_string(exponent);
}

std::int64_t quantity::milli_value() const noexcept {
  int128 value = mantissa_;
  std::int32_t exponent = scale_ + 3;
  constexpr int128 kMax = std::numeric_limits<std::int64_t>::max();
  constexpr int128 kMin = std::numeric_limits<std::int64_t>::min();
  for (; exponent > 0; --exponent) {
    value *= 10;
    if (value > kMax) return std::numeric_limits<std::int64_t>::max();
    if (value < kMin) return std::numeric_limits<std::int64_t>::min();
  }
  bool remainder = false;
  for (; exponent < 0 && value != 0; ++exponent) {
    remainder = remainder || value % 10 != 0;
    value /= 10;
  }
  if (remainder) value += mantissa_ < 0 ? -1 : 1;
  return static_cast<std::int64_t>(value);
}

}  // namespace gma::core
