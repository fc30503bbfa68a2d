// The inner loops of fake quantization over one run of elements that share a scale and zero
// point. They are the exact operation order of quant::quantize_* / dequantize (NaN handling as
// in quant/quantize.h), written so that the compiler vectorises them: the file is compiled
// without the PCH and with -fno-trapping-math (see CMakeLists.txt), which lets GCC turn the
// clamps into vector selects; lowbit never reads floating-point exception flags, and the
// results do not change.
#pragma once
#include <cstdint>

namespace lowbit::qat::kernels {

// y = s * (clamp(round(x / s) + z, qmin, qmax) - z); NaN quantizes to z.
void fake_quantize_integer(const float* x, float* y, int64_t n, float s, int32_t z, float qmin, float qmax);

// The odd grid (binary, seq2): y = s * (2c + 1), c = clamp(round(x / 2s - 1/2), cmin, cmax);
// NaN gives c = 0.
void fake_quantize_odd(const float* x, float* y, int64_t n, float s, float cmin, float cmax);

// Clipped straight-through gradient: dx = g where x / s + z lies in [qmin, qmax], else 0
// (NaN inputs too).
void straight_through_gradient(const float* x, const float* g, float* dx, int64_t n, float s, float zf, float qmin,
                               float qmax);

}  // namespace lowbit::qat::kernels
