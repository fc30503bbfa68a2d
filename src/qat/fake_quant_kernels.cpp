#include "qat/fake_quant_kernels.h"

#include <cmath>

#include "quant/rounding.h"

namespace lowbit::qat::kernels {

// Values beyond 2^22 steps are clamped before rounding so that the vectorisable
// round_half_even_bounded applies; they clamp to the grid's end either way, so the result is
// that of quant::round_half_even.
void fake_quantize_integer(const float* x, float* y, int64_t n, float s, int32_t z, float qmin, float qmax) {
  const float zf = static_cast<float>(z);
  constexpr float lim = quant::kRoundBoundedLimit;
  for (int64_t j = 0; j < n; ++j) {
    float v = x[j] / s;
    v = v < -lim ? -lim : v;  // NaN passes both comparisons unchanged
    v = v > lim ? lim : v;
    float t = quant::round_half_even_bounded(v) + zf;
    t = std::isnan(t) ? zf : t;
    t = t < qmin ? qmin : t;
    t = t > qmax ? qmax : t;
    y[j] = s * (t - zf);  // t - zf is an exact small integer, as float(q - z) in dequantize
  }
}

void fake_quantize_odd(const float* x, float* y, int64_t n, float s, float cmin, float cmax) {
  const float two_s = 2.0f * s;
  constexpr float lim = quant::kRoundBoundedLimit;
  for (int64_t j = 0; j < n; ++j) {
    float v = x[j] / two_s - 0.5f;
    v = v < -lim ? -lim : v;
    v = v > lim ? lim : v;
    float t = quant::round_half_even_bounded(v);
    t = std::isnan(t) ? 0.0f : t;
    t = t < cmin ? cmin : t;
    t = t > cmax ? cmax : t;
    y[j] = s * (2.0f * t + 1.0f);
  }
}

void straight_through_gradient(const float* x, const float* g, float* dx, int64_t n, float s, float zf, float qmin,
                               float qmax) {
  for (int64_t j = 0; j < n; ++j) {
    const float w = x[j] / s + zf;
    const float gj = g[j];  // loaded unconditionally so that the select vectorises
    dx[j] = (w >= qmin && w <= qmax) ? gj : 0.0f;
  }
}

}  // namespace lowbit::qat::kernels
