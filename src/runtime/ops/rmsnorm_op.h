// RMSNorm in float, as models/gpt.h's RMSNormImpl: y = x * rsqrt(mean(x^2) + eps) * w, per row.
// The mean is accumulated in double (LibTorch sums float32 in its own order: the two agree to a
// few ulp; docs/transformers.md states the end-to-end tolerance).
#pragma once
#include <cstdint>

namespace lowbit::runtime::ops {

void rmsnorm(const float* x, int64_t rows, int32_t d, const float* w, float eps, float* y);

}  // namespace lowbit::runtime::ops
