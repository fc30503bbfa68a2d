#include "runtime/ops/rmsnorm_op.h"

#include <cmath>

namespace lowbit::runtime::ops {

void rmsnorm(const float* x, int64_t rows, int32_t d, const float* w, float eps, float* y) {
  for (int64_t t = 0; t < rows; ++t) {
    const float* xr = x + t * d;
    float* yr = y + t * d;
    double ss = 0.0;
    for (int32_t i = 0; i < d; ++i) ss += static_cast<double>(xr[i]) * static_cast<double>(xr[i]);
    const float mean = static_cast<float>(ss / static_cast<double>(d));
    const float r = 1.0f / std::sqrt(mean + eps);
    for (int32_t i = 0; i < d; ++i) yr[i] = xr[i] * r * w[i];
  }
}

}  // namespace lowbit::runtime::ops
