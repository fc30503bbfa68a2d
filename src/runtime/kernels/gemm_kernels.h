// The GEMM kernels by name (contract: GemmFn in gemm_config.h). Each is defined with
// LOWBIT_DEFINE_GEMM_KERNEL in its level's file, which exists only in builds for its architecture,
// and is the `gemm` of the config whose name is its symbol.
#pragma once
#include "runtime/kernels/gemm_config.h"

#define LOWBIT_DECLARE_GEMM_KERNEL(name)                                                              \
  void name(int64_t M, int32_t N, int32_t K, const void* A, int64_t lda, const uint8_t* packed_w, \
            const GemmOutput& out)

namespace lowbit::runtime {

// avx2 (x86-64 builds): gemm_s16_avx2.cpp, gemm_u8_avx2.cpp
LOWBIT_DECLARE_GEMM_KERNEL(s16_w8_gemm_fxp_4x16__avx2);
LOWBIT_DECLARE_GEMM_KERNEL(s16_w4_gemm_fxp_4x16__avx2);
LOWBIT_DECLARE_GEMM_KERNEL(s16_w2_gemm_fxp_4x16__avx2);
LOWBIT_DECLARE_GEMM_KERNEL(s16_w4odd_gemm_fxp_4x16__avx2);
LOWBIT_DECLARE_GEMM_KERNEL(s16_w2odd_gemm_fxp_4x16__avx2);
LOWBIT_DECLARE_GEMM_KERNEL(s16_w1odd_gemm_fxp_4x16__avx2);
LOWBIT_DECLARE_GEMM_KERNEL(u8_w4_gemm_fxp_4x16__avx2);
LOWBIT_DECLARE_GEMM_KERNEL(u8_w2_gemm_fxp_4x16__avx2);
LOWBIT_DECLARE_GEMM_KERNEL(u8_w4odd_gemm_fxp_4x16__avx2);
LOWBIT_DECLARE_GEMM_KERNEL(u8_w2odd_gemm_fxp_4x16__avx2);
LOWBIT_DECLARE_GEMM_KERNEL(u8_w1odd_gemm_fxp_4x16__avx2);
LOWBIT_DECLARE_GEMM_KERNEL(u8_w8p_gemm_fxp_4x16__avx2);  // pair_bounded
// avx512vnni (x86-64 builds): gemm_u8_avx512vnni.cpp
LOWBIT_DECLARE_GEMM_KERNEL(u8_w8_gemm_fxp_12x32__avx512vnni);
LOWBIT_DECLARE_GEMM_KERNEL(u8_w4_gemm_fxp_12x32__avx512vnni);
LOWBIT_DECLARE_GEMM_KERNEL(u8_w2_gemm_fxp_12x32__avx512vnni);
LOWBIT_DECLARE_GEMM_KERNEL(u8_w4odd_gemm_fxp_12x32__avx512vnni);
LOWBIT_DECLARE_GEMM_KERNEL(u8_w2odd_gemm_fxp_12x32__avx512vnni);
LOWBIT_DECLARE_GEMM_KERNEL(u8_w1odd_gemm_fxp_12x32__avx512vnni);
// neon and neondot (aarch64 builds): gemm_s16_neon.cpp, gemm_u8_neondot.cpp
LOWBIT_DECLARE_GEMM_KERNEL(s16_w8_gemm_fxp_8x8__neon);
LOWBIT_DECLARE_GEMM_KERNEL(u8_w8_gemm_fxp_8x8__neondot);

}  // namespace lowbit::runtime
