// LayerNorm over the last dimension, in float, as torch::layer_norm (models/vit.h LayerNormImpl):
//   mean = sum_i x_i / d,  var = sum_i (x_i - mean)^2 / d   (biased; both summed in double)
//   y_i  = (x_i - mean) / sqrt(var + eps) * w_i + b_i       (float)
// LibTorch sums in another order; the difference is float rounding (~1e-7 relative).
#pragma once
#include <cstdint>

namespace lowbit::runtime::ops {

// y [rows, d] = LayerNorm(x [rows, d]; w, b, eps). y may not alias x.
void layernorm(const float* x, int64_t rows, int32_t d, const float* w, const float* b, float eps, float* y);

}  // namespace lowbit::runtime::ops
