#include "quant/bias_quantize.h"

#include <cmath>

#include "quant/rounding.h"

namespace lowbit::quant {

int32_t quantize_bias(float bias, float s_x, float s_w) {
  double v = round_half_even(static_cast<double>(bias) / (static_cast<double>(s_x) * static_cast<double>(s_w)));
  if (std::isnan(v)) return 0;
  v = v < -2147483648.0 ? -2147483648.0 : (v > 2147483647.0 ? 2147483647.0 : v);
  return static_cast<int32_t>(v);
}

float dequantize_bias(int32_t code, float s_x, float s_w) {
  return static_cast<float>(static_cast<double>(code) * (static_cast<double>(s_x) * static_cast<double>(s_w)));
}

}  // namespace lowbit::quant
