// Input quantization kernels (float activations -> uint8 codes).
#pragma once
#include <cstdint>

namespace lowbit::runtime {

// y[i * y_stride] = quant::quantize_integer(x[i], scale, zero_point, qmin, qmax) for i < n, exactly
// (IEEE division, round half to even, NaN -> zero point, clamp), 8 floats per step.
void f32_quantize_8x__avx2(const float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin, int32_t qmax,
                           uint8_t* y, int64_t y_stride);
// The same on NEON (aarch64 builds), 8 floats per step.
void f32_quantize_8x__neon(const float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin, int32_t qmax,
                           uint8_t* y, int64_t y_stride);

}  // namespace lowbit::runtime
