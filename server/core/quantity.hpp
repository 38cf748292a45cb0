#pragma once
/// @file Kubernetes resource.Quantity: parsing, canonical serialisation and MilliValue, following
/// k8s.io/apimachinery/pkg/api/resource. Values are a 64-bit mantissa times a power of ten;
/// inputs that need more than 18 significant digits are rejected instead of being rounded
/// silently. Value type: copyable, immutable, thread-safe.

#include <cstdint>
#include <string>
#include <string_view>

#include "server/core/error.hpp"

namespace gma::core {

/// How a quantity is written back; chosen by the suffix it was parsed with.
enum class quantity_format { decimal_si, decimal_exponent, binary_si };

class quantity {
 public:
  /// Zero in DecimalSI.
  quantity() = default;

  /// Parses "1.5", "87500m", "2Gi", "1.3E+6" as Kubernetes does, rounding values finer than a
  /// nano-unit up (away from zero). errc::bad_request on malformed or too-large input.
  static result<quantity> parse(std::string_view text);

  /// The largest magnitude from_sample accepts, in units: the HPA reads Go's MilliValue(), an
  /// int64 that overflows beyond it, so a larger value would scale on a wrong number.
  static constexpr const char* kMaxSampleText = "9223372036854775";

  /// Converts a Prometheus sample value ("87.5", "1e+06") to DecimalSI, rounded to the nearest
  /// milli-unit (ties away from zero), so -0 and subnormals are "0". errc::bad_request for NaN,
  /// +-Inf, text that overflows a double ("1e400", +Inf to Go's ParseFloat) and every magnitude
  /// whose milli-value does not fit an int64 (beyond kMaxSampleText): never a fake number.
  static result<quantity> from_sample(std::string_view text);

  /// resource.NewMilliQuantity(milli, format): `milli` thousandths of a unit, written in
  /// `format` (BinarySI falls back to DecimalSI where Kubernetes' does: below 1024 or not an
  /// integer).
  static quantity from_milli(std::int64_t milli, quantity_format format) noexcept {
    return quantity(milli, -3, format);
  }
  /// Canonical string, byte-identical to Quantity.String().
  std::string to_string() const;

  /// ceil(value * 1000), away from zero, saturating at the int64 range; what the HPA reads.
  std::int64_t milli_value() const noexcept;

 private:
  quantity(std::int64_t mantissa, std::int32_t scale, quantity_format format) noexcept
      : mantissa_(mantissa), scale_(scale), format_(format) {}

  std::int64_t mantissa_ = 0;  // value = mantissa_ * 10^scale_
  std::int32_t scale_ = 0;
  quantity_format format_ = quantity_format::decimal_si;
};

}  // namespace gma::core
