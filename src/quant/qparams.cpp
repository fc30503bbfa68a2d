#include "quant/qparams.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "quant/rounding.h"

namespace lowbit::quant {

QParams choose_qparams(float min, float max, const QuantSpec& spec) {
  LOWBIT_CHECK(std::isfinite(min) && std::isfinite(max),
               "cannot choose quantization parameters from a non-finite range [" + std::to_string(min) + ", " +
                   std::to_string(max) + "] (the observed tensor has inf or NaN values)");
  LOWBIT_CHECK(min <= max, "range minimum " + std::to_string(min) + " exceeds maximum " + std::to_string(max));
  QParams p;
  const double lo = std::min(static_cast<double>(min), 0.0);
  const double hi = std::max(static_cast<double>(max), 0.0);
  double scale;
  if (spec.grid == Grid::Odd) {
    scale = std::max(-lo, hi) / static_cast<double>(spec.qmax());
  } else if (spec.symmetric) {
    const double amax = spec.is_signed ? std::max(-lo, hi) : hi;
    scale = amax / static_cast<double>(spec.qmax());
  } else {
    scale = (hi - lo) / static_cast<double>(spec.qmax() - spec.qmin());
  }
  if (scale == 0.0) scale = 1.0;
  p.scale = std::max(static_cast<float>(scale), kMinScale);
  if (spec.grid == Grid::Integer && !spec.symmetric) {
    const double z = spec.qmin() - round_half_even(lo / static_cast<double>(p.scale));
    p.zero_point = static_cast<int32_t>(std::clamp(z, static_cast<double>(spec.qmin()), static_cast<double>(spec.qmax())));
  }
  return p;
}

}  // namespace lowbit::quant
