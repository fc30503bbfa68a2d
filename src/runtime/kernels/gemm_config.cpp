#include "runtime/kernels/gemm_config.h"

#include <cstdlib>
#include <vector>

#include "runtime/weight_format.h"

namespace lowbit::runtime {

#if defined(LOWBIT_ARCH_X86_64)
const GemmConfig* gemm_configs_avx2(int* count) {
  static const std::vector<GemmConfig> all = [] {
    std::vector<GemmConfig> v;
    int n = 0;
    // u8 kernels (vpmaddubsw, for weights of at most 4 bits) are preferred over s16 ones.
    const GemmConfig* u8 = gemm_configs_u8_avx2(&n);
    v.insert(v.end(), u8, u8 + n);
    const GemmConfig* s16 = gemm_configs_s16_avx2(&n);
    v.insert(v.end(), s16, s16 + n);
    return v;
  }();
  *count = static_cast<int>(all.size());
  return all.data();
}

const GemmConfig* gemm_configs_avx512vnni(int* count) { return gemm_configs_u8_avx512vnni(count); }
#endif

const GemmConfig* gemm_configs(Isa isa, int* count) {
  *count = 0;
  switch (isa) {
#if defined(LOWBIT_ARCH_X86_64)
    case Isa::Avx2: return gemm_configs_avx2(count);
    case Isa::Avx512Vnni: return gemm_configs_avx512vnni(count);
#elif defined(LOWBIT_ARCH_AARCH64)
    case Isa::Neon: return gemm_configs_neon(count);
    case Isa::NeonDot: return gemm_configs_neondot(count);
#endif
    default: return nullptr;
  }
}

namespace {

const GemmConfig* find_exact(const GemmConfig* table, int count, int32_t bits, quant::Grid grid,
                             bool pair_bounded = false) {
  for (int i = 0; i < count; ++i)
    if (table[i].bits == bits && table[i].grid == grid && table[i].pair_bounded == pair_bounded) return &table[i];
  return nullptr;
}

}  // namespace

const GemmConfig* find_gemm_config(Isa isa, int32_t bits, quant::Grid grid) {
  int count = 0;
  const GemmConfig* table = gemm_configs(isa, &count);
  if (const GemmConfig* c = find_exact(table, count, bits, grid)) return c;
  // On the levels whose int8 kernel packs the weight values themselves (not codes), other widths
  // whose values fit in int8 (Integer codes of <= 8 bits, Odd values 2c + 1 of <= 7 bits) run it.
  const bool values_kernel = isa == Isa::Avx512Vnni || isa == Isa::Neon || isa == Isa::NeonDot;
  const bool fits_int8 = bits >= 1 && bits <= 8 && weight_value_min(bits, grid) >= -128 && weight_value_max(bits, grid) <= 127;
  if (values_kernel && fits_int8) return find_exact(table, count, 8, quant::Grid::Integer);
  // VNNI kernels exist for every kind a model may hold; anything else falls back to AVX2's.
  if (isa == Isa::Avx512Vnni) return find_gemm_config(Isa::Avx2, bits, grid);
  return nullptr;
}

const GemmConfig* find_pair_bounded_gemm_config(Isa isa, int32_t bits, quant::Grid grid) {
  if (isa != Isa::Avx2) return nullptr;  // avx512vnni: vpdpbusd never saturates
  int count = 0;
  const GemmConfig* table = gemm_configs(isa, &count);  // none in builds without AVX2
  return find_exact(table, count, bits, grid, true);
}

bool gemm_weights_fit_pairs(const int32_t* w, int32_t N, int32_t K, int32_t x_max) {
  if (x_max < 0) return false;
  for (int32_t n = 0; n < N; ++n) {
    const int32_t* row = w + static_cast<size_t>(n) * K;
    for (int32_t k = 0; k < K; k += 2) {
      const int64_t pair = std::abs(int64_t{row[k]}) + (k + 1 < K ? std::abs(int64_t{row[k + 1]}) : 0);
      if (x_max * pair > 32767) return false;
    }
  }
  return true;
}

std::vector<int32_t> fold_zero_point(const int32_t* bias, const int32_t* w, int32_t N, int32_t K, int32_t zero_point) {
  std::vector<int32_t> out(static_cast<size_t>(N));
  for (int32_t n = 0; n < N; ++n) {
    uint32_t sum = 0;
    for (int32_t k = 0; k < K; ++k) sum += static_cast<uint32_t>(w[static_cast<size_t>(n) * K + k]);
    out[n] = static_cast<int32_t>(static_cast<uint32_t>(bias[n]) - static_cast<uint32_t>(zero_point) * sum);
  }
  return out;
}

}  // namespace lowbit::runtime
