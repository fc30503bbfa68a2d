#include "quant/add_requantize.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/error.h"

namespace lowbit::quant {

AddMultipliers make_add_multipliers(double ratio_a, double ratio_b) {
  for (double r : {ratio_a, ratio_b}) {
    LOWBIT_CHECK(std::isfinite(r) && r > 0.0 && r < 32768.0,
                 "residual add: input/output scale ratio " + std::to_string(r) +
                     " is out of range (0, 2^15); check the add's input and output scales");
  }
  int exponent = 0;
  std::frexp(std::max(ratio_a, ratio_b), &exponent);  // max = mantissa * 2^exponent, mantissa in [0.5, 1)
  AddMultipliers m;
  m.shift = std::min(31 - exponent, 62);
  const auto to_int = [&](double r) {
    const double v = std::nearbyint(std::ldexp(r, m.shift));
    return static_cast<int32_t>(std::min(v, 2147483647.0));
  };
  m.a = to_int(ratio_a);
  m.b = to_int(ratio_b);
  return m;
}

}  // namespace lowbit::quant
