#include "runtime/kernels/gemm_config.h"

#include <vector>

namespace lowbit::runtime {

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

const GemmConfig* find_gemm_config(Isa isa, int32_t bits, quant::Grid grid) {
  // The avx512vnni level has no kernels of its own yet and runs the AVX2 ones.
  if (isa == Isa::Ref) return nullptr;
  int count = 0;
  const GemmConfig* table = gemm_configs_avx2(&count);
  for (int i = 0; i < count; ++i)
    if (table[i].bits == bits && table[i].grid == grid) return &table[i];
  return nullptr;
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
