// The reference kernel of kernels/token_gemm.h and the per-level table.
#include "runtime/kernels/token_gemm.h"

namespace lowbit::runtime {

void s8_w8_gemm_grpacc_1x1__ref(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t groups, int32_t kp,
                                const int8_t* x, const int8_t* w, int32_t* acc, int64_t acc_stride) {
  const int64_t row = int64_t{groups} * kp;
  for (int64_t t = 0; t < tokens; ++t)
    for (int32_t o = o_begin; o < o_end; ++o)
      for (int32_t g = 0; g < groups; ++g) {
        const int8_t* xg = x + t * row + int64_t{g} * kp;
        const int8_t* wg = w + o * row + int64_t{g} * kp;
        int32_t s = 0;
        for (int32_t k = 0; k < kp; ++k) s += int32_t{xg[k]} * int32_t{wg[k]};
        acc[t * acc_stride + int64_t{o} * groups + g] = s;
      }
}

const TokenGemmConfig& token_gemm_config(Isa isa) {
  static const TokenGemmConfig ref{"s8_w8_gemm_grpacc_1x1__ref", Isa::Ref, s8_w8_gemm_grpacc_1x1__ref};
#if defined(LOWBIT_ARCH_X86_64)
  static const TokenGemmConfig avx2{"s8_w8_gemm_grpacc_1x4__avx2", Isa::Avx2, s8_w8_gemm_grpacc_1x4__avx2};
  if (isa == Isa::Avx2 || isa == Isa::Avx512Vnni) return avx2;
#endif
  return ref;
}

}  // namespace lowbit::runtime
