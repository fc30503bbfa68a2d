// Integer GEMM of the dynamic-quant linear op (decoder models): per-token int8 activation codes
// times int8 weight values, one int32 accumulator per (token, output row, weight group).
//
// Kernel name grammar (gemm_config.h): s8_w8_gemm_grpacc_<MR>x<NR>__<isa>
//   s8      activations: per-token int8 codes in [-127, 127] (quant/per_token.h)
//   w8      weights: values widened to int8 when a session is created (int8, int4, ternary, int2,
//           binary +-1, SEQ +-1/+-3 all fit), whatever packing the file used
//   grpacc  output stage: the raw int32 sum of each weight group (the float epilogue
//           y = s_x[t] * sum_g s_w[o, g] * acc[t, o, g] is the op's, shared by every level)
//
// Layout (the "packing" every level reads): a row of K inputs split into G groups of group_size
// is stored as G blocks of kp = round_up(group_size, 32) bytes, the tail of each block zero:
//   x[t * G * kp + g * kp + k], w[o * G * kp + g * kp + k]   (k < kp)
//   acc[t * acc_stride + o * G + g] = sum_{k < kp} x[...] * w[...]     for o in [o_begin, o_end)
// Exact in int32: |x| <= 127, |w| <= 128, K <= 65536 (validate_decoder_model) gives
// |acc| <= 127 * 128 * 65536 < 2^31. Every level equals the reference bit for bit.
#pragma once
#include <cstdint>

#include "runtime/cpu_features.h"

namespace lowbit::runtime {

constexpr int32_t kTokenGemmBlock = 32;  // group blocks are padded to a multiple of this
inline int32_t token_gemm_padded_group(int32_t group_size) {
  return (group_size + kTokenGemmBlock - 1) / kTokenGemmBlock * kTokenGemmBlock;
}

using TokenGemmFn = void (*)(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t groups, int32_t kp,
                             const int8_t* x, const int8_t* w, int32_t* acc, int64_t acc_stride);

struct TokenGemmConfig {
  const char* name;  // the kernel's symbol name
  Isa isa;
  TokenGemmFn gemm;
};

// The kernel for `isa`: avx2 on avx2 and avx512vnni, the reference elsewhere (no NEON kernel yet).
const TokenGemmConfig& token_gemm_config(Isa isa);

// The levels' kernels (each defined in its own file; avx2 in x86-64 builds only).
void s8_w8_gemm_grpacc_1x1__ref(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t groups, int32_t kp,
                                const int8_t* x, const int8_t* w, int32_t* acc, int64_t acc_stride);
void s8_w8_gemm_grpacc_1x4__avx2(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t groups, int32_t kp,
                                 const int8_t* x, const int8_t* w, int32_t* acc, int64_t acc_stride);

}  // namespace lowbit::runtime
