#include "quant/per_token.h"

#include <cmath>

#include "quant/quantize.h"

namespace lowbit::quant {

float token_scale(const float* x, int64_t n) {
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    m = a > m ? a : m;  // NaN compares false: ignored
  }
  return m > 0.0f ? m / static_cast<float>(kTokenQMax) : 1.0f;
}

void quantize_token(const float* x, int64_t n, float scale, int8_t* q) {
  for (int64_t i = 0; i < n; ++i) q[i] = static_cast<int8_t>(quantize_integer(x[i], scale, 0, -kTokenQMax, kTokenQMax));
}

float quantize_token_row(const float* x, int64_t n, int8_t* q) {
  const float s = token_scale(x, n);
  quantize_token(x, n, s, q);
  return s;
}

}  // namespace lowbit::quant
