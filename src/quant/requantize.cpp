#include "quant/requantize.h"

#include <cmath>
#include <string>

#include "base/error.h"

namespace lowbit::quant {

double FixedPointMultiplier::value() const { return std::ldexp(static_cast<double>(multiplier), -shift); }

FixedPointMultiplier make_fixed_point_multiplier(double m) {
  LOWBIT_CHECK(std::isfinite(m) && m > 0.0,
               "requantization multiplier must be finite and > 0 (got " + std::to_string(m) +
                   "); check the layer's input, weight and output scales");
  LOWBIT_CHECK(m < 2147483648.0, "requantization multiplier " + std::to_string(m) +
                                     " is >= 2^31; the output scale is far too small for this layer");
  FixedPointMultiplier r;
  if (m < std::ldexp(1.0, -32)) return r;  // |acc * m| < 0.5 for every int32 acc: output is 0
  int exponent = 0;
  const double mantissa = std::frexp(m, &exponent);  // m = mantissa * 2^exponent, mantissa in [0.5, 1)
  int64_t q = static_cast<int64_t>(std::nearbyint(std::ldexp(mantissa, 31)));  // in [2^30, 2^31]
  int shift = 31 - exponent;
  if (q == (int64_t{1} << 31)) {  // mantissa rounded up to 1.0
    q /= 2;
    shift -= 1;
  }
  if (shift > 62) {  // tiny multiplier: drop precision bits rather than exceed the shift range
    q = static_cast<int64_t>(std::nearbyint(std::ldexp(static_cast<double>(q), 62 - shift)));
    shift = 62;
  }
  if (shift < 0) {
    // m >= 2^31 was rejected above, so shift >= 0 except through rounding at the top.
    throw Error("requantization multiplier " + std::to_string(m) + " is too large to represent");
  }
  r.multiplier = static_cast<int32_t>(q);
  r.shift = shift;
  return r;
}

}  // namespace lowbit::quant
