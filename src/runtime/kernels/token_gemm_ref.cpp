// The reference kernels of kernels/token_gemm.h and the per-level table.
#include <cstring>

#include <algorithm>

#include "quant/per_token.h"
#include "runtime/kernels/gemm_config.h"
#include "runtime/kernels/token_gemm.h"

namespace lowbit::runtime {

void s8_w8_gemm_grpacc_1x1__ref(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups, int32_t kp,
                                const int8_t* x, const int8_t* w, int32_t* acc, int64_t acc_stride) {
  const int64_t row = int64_t{groups} * kp;
  for (int64_t t = 0; t < tokens; ++t)
    for (int32_t o = o_begin; o < o_end; ++o)
      for (int32_t g = 0; g < groups; ++g) {
        const int8_t* xg = x + t * row + int64_t{g} * kp;
        const int8_t* wg = w + o * row + int64_t{g} * kp;
        int32_t s = 0;
        for (int32_t k = 0; k < kp; ++k) s += int32_t{xg[k]} * int32_t{wg[k]};
        acc[t * acc_stride + int64_t{g} * out + o] = s;
      }
}

void s8_token_pack_rows__ref(const int8_t* rows, int32_t out, int32_t groups, int32_t kp, int8_t* packed) {
  std::memcpy(packed, rows, static_cast<size_t>(out) * groups * kp);
}

size_t s8_token_packed_bytes_rows__ref(int32_t out, int32_t groups, int32_t kp) {
  return static_cast<size_t>(out) * groups * kp;
}

float f32_s8_quantize_token_1x__ref(const float* x, int32_t in, int32_t group_size, int32_t groups, int32_t kp, int8_t* q) {
  const float st = quant::token_scale(x, in);
  for (int32_t g = 0; g < groups; ++g) {
    const int32_t k0 = g * group_size, len = std::min(group_size, in - k0);
    quant::quantize_token(x + k0, len, st, q + int64_t{g} * kp);
    std::memset(q + int64_t{g} * kp + len, 0, static_cast<size_t>(kp - len));
  }
  return st;
}

void s32_f32_grpscale_1x__ref(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups,
                              const int32_t* acc, int64_t acc_stride, const float* scales, const float* sx, float* y) {
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t* at = acc + t * acc_stride;
    for (int32_t o = o_begin; o < o_end; ++o) {
      float sum = 0.0f;
      for (int32_t g = 0; g < groups; ++g)
        sum += scales[int64_t{g} * out + o] * static_cast<float>(at[int64_t{g} * out + o]);
      y[t * out + o] = sx[t] * sum;
    }
  }
}

const TokenGemmConfig& token_gemm_config(Isa isa) {
  static const TokenGemmConfig ref{LOWBIT_KERNEL_NAME(s8_w8_gemm_grpacc_1x1__ref),
                                   Isa::Ref,
                                   s8_w8_gemm_grpacc_1x1__ref,
                                   1,
                                   LOWBIT_KERNEL_NAME(s8_token_pack_rows__ref),
                                   s8_token_pack_rows__ref,
                                   s8_token_packed_bytes_rows__ref,
                                   LOWBIT_KERNEL_NAME(s32_f32_grpscale_1x__ref),
                                   s32_f32_grpscale_1x__ref,
                                   LOWBIT_KERNEL_NAME(f32_s8_quantize_token_1x__ref),
                                   f32_s8_quantize_token_1x__ref};
#if defined(LOWBIT_ARCH_X86_64)
  static const TokenGemmConfig avx2{LOWBIT_KERNEL_NAME(s8_w8_gemm_grpacc_1x4__avx2),
                                    Isa::Avx2,
                                    s8_w8_gemm_grpacc_1x4__avx2,
                                    4,
                                    LOWBIT_KERNEL_NAME(s8_token_pack_rows__ref),
                                    s8_token_pack_rows__ref,
                                    s8_token_packed_bytes_rows__ref,
                                    LOWBIT_KERNEL_NAME(s32_f32_grpscale_8x__avx2),
                                    s32_f32_grpscale_8x__avx2,
                                    LOWBIT_KERNEL_NAME(f32_s8_quantize_token_8x__avx2),
                                    f32_s8_quantize_token_8x__avx2};
  static const TokenGemmConfig vnni{LOWBIT_KERNEL_NAME(s8_w8_gemm_grpacc_8x32__avx512vnni),
                                    Isa::Avx512Vnni,
                                    s8_w8_gemm_grpacc_8x32__avx512vnni,
                                    16,
                                    LOWBIT_KERNEL_NAME(s8_token_pack_16x4__avx512vnni),
                                    s8_token_pack_16x4__avx512vnni,
                                    s8_token_packed_bytes_16x4__avx512vnni,
                                    LOWBIT_KERNEL_NAME(s32_f32_grpscale_16x__avx512vnni),
                                    s32_f32_grpscale_16x__avx512vnni,
                                    LOWBIT_KERNEL_NAME(f32_s8_quantize_token_16x__avx512vnni),
                                    f32_s8_quantize_token_16x__avx512vnni};
  if (isa == Isa::Avx2) return avx2;
  if (isa == Isa::Avx512Vnni) return vnni;
#elif defined(LOWBIT_ARCH_AARCH64)
  // Both levels share the plain-NEON epilogue and quantizer.
  static const TokenGemmConfig neon{LOWBIT_KERNEL_NAME(s8_w8_gemm_grpacc_2x4__neon),
                                    Isa::Neon,
                                    s8_w8_gemm_grpacc_2x4__neon,
                                    4,
                                    LOWBIT_KERNEL_NAME(s8_token_pack_rows__ref),
                                    s8_token_pack_rows__ref,
                                    s8_token_packed_bytes_rows__ref,
                                    LOWBIT_KERNEL_NAME(s32_f32_grpscale_8x__neon),
                                    s32_f32_grpscale_8x__neon,
                                    LOWBIT_KERNEL_NAME(f32_s8_quantize_token_8x__neon),
                                    f32_s8_quantize_token_8x__neon};
  static const TokenGemmConfig neondot{LOWBIT_KERNEL_NAME(s8_w8_gemm_grpacc_8x8__neondot),
                                       Isa::NeonDot,
                                       s8_w8_gemm_grpacc_8x8__neondot,
                                       8,
                                       LOWBIT_KERNEL_NAME(s8_token_pack_8x4__neondot),
                                       s8_token_pack_8x4__neondot,
                                       s8_token_packed_bytes_8x4__neondot,
                                       LOWBIT_KERNEL_NAME(s32_f32_grpscale_8x__neon),
                                       s32_f32_grpscale_8x__neon,
                                       LOWBIT_KERNEL_NAME(f32_s8_quantize_token_8x__neon),
                                       f32_s8_quantize_token_8x__neon};
  if (isa == Isa::Neon) return neon;
  if (isa == Isa::NeonDot) return neondot;
#endif
  return ref;
}

}  // namespace lowbit::runtime
