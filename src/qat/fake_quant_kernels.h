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

// Per-token fake quantization of one row (quant/per_token.h): s = max |x| / 127 (1 for an
// all-zero row, NaN ignored), y = s * clamp(round(x / s), -127, 127); returns s. The bits of
// quant::quantize_token_row followed by s * float(q), in two vector passes instead of one scalar
// pass with a nearbyint call per element (the biggest QAT-only cost of a gpt-tiny step).
float fake_quantize_token_row(const float* x, float* y, int64_t n);

// Counter-based standard normal numbers (WinQ's noise, docs/winq.md). Element i of the stream
// `key` is a pure function of (key, i): h = splitmix64(key + (i + 1) * 0x9E3779B97F4A7C15),
// u1 = (bits 40..63 of h + 1) / 2^24 in (0, 1], u2 = (bits 8..31 of h) / 2^24 in [0, 1),
// eps = sqrt(-2 ln u1) * cos(2 pi u2) (Box-Muller, cosine branch; |eps| <= 5.77). ln, cos and
// sqrt are polynomial / Newton approximations written with + and * only (about 1e-7
// relative), compiled without FMA contraction, so the scalar function, every vector width and
// every thread split give the same bits.
float counter_normal(uint64_t key, uint64_t index);

// y[j] = x[j] + sigma * counter_normal(key, first + j) for 0 <= j < n (y may equal x). One pass,
// no state: the noise costs no draw from a sequential generator and no tensor of its own.
void add_counter_normal(const float* x, float* y, int64_t n, float sigma, uint64_t key, uint64_t first);

// WinQ's noisy fake quantization in one pass: xn[j] = x[j] + sigma * counter_normal(key, first + j)
// (the bits of add_counter_normal), y[j] = the fake quantization of xn[j] (the bits of
// fake_quantize_integer / fake_quantize_odd). xn is what the backward pass needs (the mask and
// the LSQ terms are functions of it); writing it here saves a second sweep over the weights.
void noisy_fake_quantize_integer(const float* x, float* xn, float* y, int64_t n, float sigma, uint64_t key,
                                 uint64_t first, float s, int32_t z, float qmin, float qmax);
void noisy_fake_quantize_odd(const float* x, float* xn, float* y, int64_t n, float sigma, uint64_t key,
                             uint64_t first, float s, float cmin, float cmax);

}  // namespace lowbit::qat::kernels
