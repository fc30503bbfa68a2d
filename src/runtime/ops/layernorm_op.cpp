#include "runtime/ops/layernorm_op.h"

#include <cmath>

namespace lowbit::runtime::ops {

void layernorm(const float* x, int64_t rows, int32_t d, const float* w, const float* b, float eps, float* y) {
  for (int64_t t = 0; t < rows; ++t) {
    const float* xt = x + t * d;
    double sum = 0.0;
    for (int32_t i = 0; i < d; ++i) sum += xt[i];
    const double mean = sum / d;
    double var = 0.0;
    for (int32_t i = 0; i < d; ++i) var += (xt[i] - mean) * (xt[i] - mean);
    var /= d;
    const float meanf = static_cast<float>(mean);
    const float rstd = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
    float* yt = y + t * d;
    for (int32_t i = 0; i < d; ++i) yt[i] = (xt[i] - meanf) * rstd * w[i] + b[i];
  }
}

}  // namespace lowbit::runtime::ops
