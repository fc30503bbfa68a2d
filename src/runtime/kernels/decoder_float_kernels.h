// The float kernels of decoder models (gpt-tiny): one config record per family, one row per level,
// names made with LOWBIT_KERNEL (the real symbols). Deviation allowed from the reference
// (ref::*, the scalar loops of models/gpt.h's arithmetic): none. Every optimized kernel does each
// output's float operations in the reference's order (vector lanes run across outputs: keys for
// attention scores, head dimensions for the weighted sum, output columns for the head), with
// separate multiply and add (no FMA; the files are compiled with fp-contract off) and exp from the
// same std::exp, so every level's logits equal the reference's bit for bit
// (tests/runtime/decoder_float_kernels_test.cpp, DecoderSession.LevelsAgreeBitForBit).
// Families without an optimized kernel (RMSNorm: its mean is accumulated in double; RoPE; SwiGLU:
// its cost is std::exp) run the reference on every level.
#pragma once
#include <cstdint>

#include "runtime/cpu_features.h"
#include "runtime/kernels/isa_kernels.h"

namespace lowbit::runtime {

// y[t] = x[t] * (1 / sqrt(mean(x[t]^2) + eps)) * w, mean accumulated in double (ops/rmsnorm_op.h).
using RmsNormFn = void (*)(const float* x, int64_t rows, int32_t d, const float* w, float eps, float* y);
// Rotates x [rows, heads * hd] at positions pos0.. in place with cos / sin tables [context, half].
using RopeFn = void (*)(float* x, int64_t rows, int64_t pos0, int32_t heads, int32_t hd, const float* cos,
                        const float* sin, int32_t half);
// y = silu(gate) * up = gate / (1 + exp(-gate)) * up, element-wise.
using SwigluFn = void (*)(const float* gate, const float* up, int64_t n, float* y);
// One query row of one head against cached positions 0..p (ops/attention_op.h):
//   s_j = (sum_i q[i] * k_j[i], i increasing) / inv_scale; softmax with the max subtracted, sum in
//   increasing j; out[i] = sum_j (e_j / sum) * v_j[i] in increasing j.
// k rows: k[j * d + i]; the same keys transposed: kt[i * kt_stride + j]; v rows: v[j * d + i].
using AttentionRowFn = void (*)(const float* q, const float* k, const float* kt, int64_t kt_stride, const float* v,
                                int64_t d, int64_t p, int32_t hd, float inv_scale, float* scores, float* out);
// y[t * y_stride + o] = sum_k x[t * in + k] * wt[k * out + o] (k increasing) for o in [o_begin, o_end).
using LinearF32Fn = void (*)(const float* x, int64_t rows, const float* wt, int32_t in, int32_t out, int32_t o_begin,
                             int32_t o_end, float* y);

struct DecoderFloatKernels {
  Isa isa;
  Kernel<RmsNormFn> rmsnorm;
  Kernel<RopeFn> rope;
  Kernel<SwigluFn> swiglu;
  Kernel<AttentionRowFn> attention_row;
  Kernel<LinearF32Fn> linear;
  int32_t linear_o_block;  // output columns per kernel step; splits are multiples of it
};

const DecoderFloatKernels& decoder_float_kernels(Isa isa);

namespace ref {
void rmsnorm(const float* x, int64_t rows, int32_t d, const float* w, float eps, float* y);
void rope(float* x, int64_t rows, int64_t pos0, int32_t heads, int32_t hd, const float* cos, const float* sin,
          int32_t half);
void swiglu(const float* gate, const float* up, int64_t n, float* y);
void attention_row(const float* q, const float* k, const float* kt, int64_t kt_stride, const float* v, int64_t d,
                   int64_t p, int32_t hd, float inv_scale, float* scores, float* out);
void linear_f32(const float* x, int64_t rows, const float* wt, int32_t in, int32_t out, int32_t o_begin, int32_t o_end,
                float* y);
}  // namespace ref

void f32_attention_row_16x__avx512vnni(const float* q, const float* k, const float* kt, int64_t kt_stride,
                                       const float* v, int64_t d, int64_t p, int32_t hd, float inv_scale, float* scores,
                                       float* out);
void f32_linear_kinc_1x64__avx512vnni(const float* x, int64_t rows, const float* wt, int32_t in, int32_t out,
                                      int32_t o_begin, int32_t o_end, float* y);
void f32_attention_row_8x__avx2(const float* q, const float* k, const float* kt, int64_t kt_stride, const float* v,
                                int64_t d, int64_t p, int32_t hd, float inv_scale, float* scores, float* out);
void f32_linear_kinc_1x32__avx2(const float* x, int64_t rows, const float* wt, int32_t in, int32_t out,
                                int32_t o_begin, int32_t o_end, float* y);
void f32_attention_row_8x__neon(const float* q, const float* k, const float* kt, int64_t kt_stride, const float* v,
                                int64_t d, int64_t p, int32_t hd, float inv_scale, float* scores, float* out);
void f32_linear_kinc_1x16__neon(const float* x, int64_t rows, const float* wt, int32_t in, int32_t out,
                                int32_t o_begin, int32_t o_end, float* y);

}  // namespace lowbit::runtime
