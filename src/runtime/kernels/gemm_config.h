// GEMM kernel configurations: one record selects a kernel together with the function that packs
// weights for it (XNNPACK-style), so a packed layout is never paired with the wrong kernel.
//
// Kernel name grammar: <input>_<weight>_gemm_<output stage>_<MR>x<NR>__<isa>
//   input  s16: activations already widened to int16 as (x - zero_point)
//          u8:  raw uint8 activations; the caller folds -zero_point * sum_k W[n][k] into the bias
//               (fold_zero_point) and pads conv borders with the zero point
//   weight w8 / w4 / w2: signed Integer-grid codes of that width; w4odd / w2odd / w1odd: Odd grid
//   output fxp: int32 + bias, then fixed-point requantization (quant::requantize) or int32 logits
//
// C[m][n] = bias[n] + sum_k A[m][k] * W[n][k] (int32, wrapping), A row-major (int16 or uint8) with
// the row length K padded to a multiple of k_align (padding zero), W[n][k] in the order the caller chose.
#pragma once
#include <cstdint>
#include <vector>

#include "quant/quant_spec.h"
#include "runtime/cpu_features.h"

namespace lowbit::runtime {

// Output stage of a GEMM call. Hidden layer: y_u8[m*ldy + n] = requantize(C, M[n], zp, qmin, qmax);
// output layer (y_i32 != nullptr): y_i32[m*ldy + n] = C.
struct GemmOutput {
  const int32_t* bias = nullptr;        // [N]
  const int32_t* multiplier = nullptr;  // [N] (hidden layers)
  const int32_t* shift = nullptr;       // [N]
  int32_t zero_point = 0, qmin = 0, qmax = 255;
  uint8_t* y_u8 = nullptr;
  int32_t* y_i32 = nullptr;
  int64_t ldy = 0;
  // Fused max pooling (hidden layers, configs with pool_rows_max >= pool_rows): output row m / pool_rows
  // is requantize(max over the pool_rows consecutive rows of C). Exact: requantize is non-decreasing
  // in C (multipliers are >= 0), so the max of the requantized values is the requantized max. M and
  // the tile heights are multiples of pool_rows.
  int32_t pool_rows = 1;
};

// Packs weight values W[n][k] (n < N, k < K; Integer codes or Odd values) for the kernel.
using GemmPackFn = std::vector<uint8_t> (*)(const int32_t* w, int32_t N, int32_t K);
// M rows of A (row stride lda elements, lda >= round_up(K, k_align)) times packed W.
using GemmFn = void (*)(int64_t M, int32_t N, int32_t K, const void* A, int64_t lda, const uint8_t* packed_w,
                        const GemmOutput& out);
// out[i] = x[i] - zero_point for i < n (widening uint8 activations for the s16 kernels).
using WidenFn = void (*)(const uint8_t* x, int64_t n, int32_t zero_point, int16_t* out);

// A kernel's name is its symbol, stringified here so the two cannot drift.
#define LOWBIT_KERNEL_NAME(fn) #fn

// Defines the kernel `name` as the instantiation that implements it (a template's arguments are in
// the name), so that a config's name, #name, is the symbol the profiler shows.
#define LOWBIT_DEFINE_GEMM_KERNEL(name, ...)                                                                   \
  void name(int64_t M, int32_t N, int32_t K, const void* A, int64_t lda, const uint8_t* packed_w,             \
            const GemmOutput& out) {                                                                             \
    __VA_ARGS__(M, N, K, A, lda, packed_w, out);                                                                 \
  }

enum class GemmInput { S16, U8 };

struct GemmConfig {
  const char* name;
  Isa isa;
  int32_t bits;
  quant::Grid grid;
  GemmInput input;
  int32_t k_align;  // A rows are padded with zeros to a multiple of this
  int32_t mr, nr;
  GemmPackFn pack;
  GemmFn gemm;
  WidenFn widen;  // S16 input: uint8 -> int16 (x - zero_point)
  int32_t pool_rows_max = 1;  // GemmOutput::pool_rows may be any power of two up to this
  // false: exact for every weight of (bits, grid) and every uint8 activation. true (vpmaddubsw on
  // int8 weights): exact only for layers whose packed weights pass gemm_weights_fit_pairs; such a
  // config is never returned by find_gemm_config, only by find_pair_bounded_gemm_config.
  bool pair_bounded = false;
};

// bias[n] - zero_point * sum_k W[n][k] (wrapping int32): the bias for U8-input kernels.
std::vector<int32_t> fold_zero_point(const int32_t* bias, const int32_t* w, int32_t N, int32_t K, int32_t zero_point);

// The kernel for weights of (bits, grid) on `isa`, or nullptr when there is none (callers then
// use the reference kernels). On avx512vnni: the VNNI kernel of that (bits, grid); else the int8
// VNNI kernel when the values fit in int8 (its packing stores values, not codes); else AVX2's.
// On neon / neondot: the level's int8 kernel for every kind whose values fit in int8.
// The returned config's bits / grid may therefore differ from the query on those levels.
const GemmConfig* find_gemm_config(Isa isa, int32_t bits, quant::Grid grid);

// A pair_bounded config for (bits, grid) on `isa` (AVX2: u8_w8p for int8 weights), or nullptr. The
// caller must check gemm_weights_fit_pairs on the weights in the order it packs them and otherwise
// use find_gemm_config's kernel.
const GemmConfig* find_pair_bounded_gemm_config(Isa isa, int32_t bits, quant::Grid grid);

// True when no vpmaddubsw pair sum can saturate: x_max * (|w[n][k]| + |w[n][k + 1]|) <= 32767 for
// every column n and even k (W[n][k] row-major, N x K, in the packed order; K odd: the last k pairs
// with a zero), x_max the largest activation value the GEMM may read (conv padding included).
bool gemm_weights_fit_pairs(const int32_t* w, int32_t N, int32_t K, int32_t x_max);

// Every configuration of an ISA level (for tests and benchmarks), preferred ones first; none
// (count 0) for ref and for levels this build lacks (build_has_isa).
const GemmConfig* gemm_configs(Isa isa, int* count);
// The same per level; each exists only in builds for its architecture (x86-64 / aarch64).
const GemmConfig* gemm_configs_avx2(int* count);
const GemmConfig* gemm_configs_avx512vnni(int* count);  // the VNNI kernels only (no AVX2 fallbacks)
const GemmConfig* gemm_configs_neon(int* count);
const GemmConfig* gemm_configs_neondot(int* count);
// Per-kernel-family tables (defined in the kernels' own files).
const GemmConfig* gemm_configs_s16_avx2(int* count);
const GemmConfig* gemm_configs_u8_avx2(int* count);
const GemmConfig* gemm_configs_u8_avx512vnni(int* count);

}  // namespace lowbit::runtime
