// Integer GEMM of the dynamic-quant linear op (decoder models): per-token int8 activation codes
// times int8 weight values, one int32 accumulator per (token, output row, weight group), and the
// float epilogue that turns them into the op's output. One config record (TokenGemmConfig) binds a
// level's GEMM to its weight packing and its epilogue, so a packed layout never meets another
// level's kernel.
//
// Kernel name grammar (gemm_config.h): s8_w8_gemm_grpacc_<MR>x<NR>__<isa>
//   s8      activations: per-token int8 codes in [-127, 127] (quant/per_token.h)
//   w8      weights: values widened to int8 when a session is created (int8, int4, ternary, int2,
//           binary +-1, SEQ +-1/+-3 all fit), whatever packing the file used
//   grpacc  output stage: the raw int32 sum of each weight group
//   MR x NR tokens x output rows of one tile
// and for the epilogue s32_f32_grpscale_<N>x__<isa> (N output rows per step).
//
// Activations: a row of K inputs split into G groups of group_size is stored as G blocks of
// kp = round_up(group_size, 32) bytes, the tail of each block zero: x[t * G * kp + g * kp + k].
// Weights: the level's packing of the "row layout" w[o * G * kp + g * kp + k] (the reference and
// avx2 and neon levels run on the row layout itself; avx512vnni and neondot on blocks of 16 / 8
// rows, below).
// Accumulators, group-major within a token (output rows contiguous, so that the epilogue runs
// across rows):
//   acc[t * acc_stride + g * out + o] = sum_{k < kp} x[t, g, k] * w[o, g, k]   for o in [o_begin, o_end)
// Exact in int32: |x| <= 127, |w| <= 128, K <= 65536 (validate_decoder_model) gives
// |acc| <= 127 * 128 * 65536 < 2^31. Every level equals the reference bit for bit.
//
// Epilogue (the op's float formula; every level does each output's operations in the same order,
// so every level gives the same float32, bit for bit):
//   y[t * out + o] = s_x[t] * (((0 + s[0][o] * acc_0) + s[1][o] * acc_1) + ...)   (g increasing)
// with scales transposed to s[g * out + o] and each product and sum rounded to float32 (no fused
// multiply-add).
#pragma once
#include <cstddef>
#include <cstdint>

#include "runtime/cpu_features.h"

namespace lowbit::runtime {

constexpr int32_t kTokenGemmBlock = 32;  // group blocks are padded to a multiple of this
inline int32_t token_gemm_padded_group(int32_t group_size) {
  return (group_size + kTokenGemmBlock - 1) / kTokenGemmBlock * kTokenGemmBlock;
}

// o_begin must be a multiple of the config's o_block; o_end a multiple of it or `out`.
using TokenGemmFn = void (*)(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups, int32_t kp,
                             const int8_t* x, const int8_t* w, int32_t* acc, int64_t acc_stride);
// Packs the row layout (rows [out, groups * kp]) into `packed` (packed_bytes(out, groups, kp) bytes).
using TokenPackFn = void (*)(const int8_t* rows, int32_t out, int32_t groups, int32_t kp, int8_t* packed);
using TokenPackedBytesFn = size_t (*)(int32_t out, int32_t groups, int32_t kp);
// The epilogue for tokens [0, tokens) and output rows [o_begin, o_end).
using TokenScaleFn = void (*)(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups,
                              const int32_t* acc, int64_t acc_stride, const float* scales, const float* sx, float* y);

// Per-token quantization of one row (quant/per_token.h, exactly: the same IEEE operations):
// returns s_t = token_scale(x, in) and writes the codes in the activation layout above (groups of
// group_size values, each block of kp bytes zero-padded).
using TokenQuantizeFn = float (*)(const float* x, int32_t in, int32_t group_size, int32_t groups, int32_t kp, int8_t* q);

struct TokenGemmConfig {
  const char* name;  // the GEMM's symbol name
  Isa isa;
  TokenGemmFn gemm;
  int32_t o_block;  // output rows per packed block / per tile column; splits are multiples of it
  const char* pack_name;
  TokenPackFn pack;
  TokenPackedBytesFn packed_bytes;
  const char* epilogue_name;
  TokenScaleFn epilogue;
  const char* quantize_name;
  TokenQuantizeFn quantize;
};

// The config of `isa`: avx512vnni, avx2, neondot, neon; the reference elsewhere.
const TokenGemmConfig& token_gemm_config(Isa isa);

// The levels' kernels (each defined in its own file; avx2 / avx512vnni in x86-64 builds only).
void s8_w8_gemm_grpacc_1x1__ref(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups, int32_t kp,
                                const int8_t* x, const int8_t* w, int32_t* acc, int64_t acc_stride);
void s8_w8_gemm_grpacc_1x4__avx2(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups,
                                 int32_t kp, const int8_t* x, const int8_t* w, int32_t* acc, int64_t acc_stride);
void s8_w8_gemm_grpacc_8x32__avx512vnni(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups,
                                        int32_t kp, const int8_t* x, const int8_t* w, int32_t* acc,
                                        int64_t acc_stride);
void s8_w8_gemm_grpacc_2x4__neon(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups,
                                 int32_t kp, const int8_t* x, const int8_t* w, int32_t* acc, int64_t acc_stride);
void s8_w8_gemm_grpacc_8x8__neondot(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups,
                                    int32_t kp, const int8_t* x, const int8_t* w, int32_t* acc, int64_t acc_stride);
// Row layout as is (ref, avx2, neon).
void s8_token_pack_rows__ref(const int8_t* rows, int32_t out, int32_t groups, int32_t kp, int8_t* packed);
size_t s8_token_packed_bytes_rows__ref(int32_t out, int32_t groups, int32_t kp);
// avx512vnni: per block of 16 rows (zero rows past `out`) and group, 16 int32 -128 * sum_k w
// (vpdpbusd multiplies x + 128 as uint8), then kp / 4 quads of 16 rows x 4 bytes.
void s8_token_pack_16x4__avx512vnni(const int8_t* rows, int32_t out, int32_t groups, int32_t kp, int8_t* packed);
size_t s8_token_packed_bytes_16x4__avx512vnni(int32_t out, int32_t groups, int32_t kp);
// neondot: per block of 8 rows (zero rows past `out`) and group, kp / 4 quads of 8 rows x 4 bytes.
void s8_token_pack_8x4__neondot(const int8_t* rows, int32_t out, int32_t groups, int32_t kp, int8_t* packed);
size_t s8_token_packed_bytes_8x4__neondot(int32_t out, int32_t groups, int32_t kp);
float f32_s8_quantize_token_1x__ref(const float* x, int32_t in, int32_t group_size, int32_t groups, int32_t kp, int8_t* q);
float f32_s8_quantize_token_8x__avx2(const float* x, int32_t in, int32_t group_size, int32_t groups, int32_t kp, int8_t* q);
float f32_s8_quantize_token_16x__avx512vnni(const float* x, int32_t in, int32_t group_size, int32_t groups, int32_t kp,
                                            int8_t* q);
float f32_s8_quantize_token_8x__neon(const float* x, int32_t in, int32_t group_size, int32_t groups, int32_t kp, int8_t* q);
void s32_f32_grpscale_1x__ref(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups,
                              const int32_t* acc, int64_t acc_stride, const float* scales, const float* sx, float* y);
void s32_f32_grpscale_8x__avx2(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups,
                               const int32_t* acc, int64_t acc_stride, const float* scales, const float* sx, float* y);
void s32_f32_grpscale_16x__avx512vnni(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups,
                                      const int32_t* acc, int64_t acc_stride, const float* scales, const float* sx,
                                      float* y);

void s32_f32_grpscale_8x__neon(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups,
                               const int32_t* acc, int64_t acc_stride, const float* scales, const float* sx, float* y);

}  // namespace lowbit::runtime
