// Per-token dynamic int8 quantization of activations: the input of every quantized projection of
// a language model (gpt-tiny) is quantized one token (one row of [tokens, features]) at a time,
// symmetric, with a scale computed from that row at run time:
//
//   s_t = max_k |x[t, k]| / 127        (one float32 division; s_t = 1 when the row is all zeros)
//   q[t, k] = clamp(round_half_even(x[t, k] / s_t), -127, 127)     (quant::quantize_integer)
//
// The grid is narrow ([-127, 127]): x / s_t lies in [-127, 127] up to the division's rounding, and
// a narrow grid lets kernels negate codes without overflow. NaN inputs quantize to 0; a row that
// holds +-inf gets s_t = inf and quantizes to 0 except the NaN that inf / inf gives (also 0).
// QAT's fake quantization (qat::fake_quantize_per_token) and the runtime's dynamic-quant linear op
// both call these functions, so that training simulates exactly the codes and scales the runtime
// computes.
#pragma once
#include <cstdint>

namespace lowbit::quant {

constexpr int32_t kTokenQMax = 127;  // codes lie in [-kTokenQMax, kTokenQMax]

// s_t of one row of n values.
float token_scale(const float* x, int64_t n);
// Codes of one row with a given scale.
void quantize_token(const float* x, int64_t n, float scale, int8_t* q);
// Both: returns s_t and writes the n codes.
float quantize_token_row(const float* x, int64_t n, int8_t* q);

}  // namespace lowbit::quant
