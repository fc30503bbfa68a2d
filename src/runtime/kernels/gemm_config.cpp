#include "runtime/kernels/gemm_config.h"

namespace lowbit::runtime {

const GemmConfig* find_gemm_config(Isa isa, int32_t bits, quant::Grid grid) {
  // The avx512vnni level has no kernels of its own yet and runs the AVX2 ones.
  if (isa == Isa::Ref) return nullptr;
  int count = 0;
  const GemmConfig* table = gemm_configs_avx2(&count);
  for (int i = 0; i < count; ++i)
    if (table[i].bits == bits && table[i].grid == grid) return &table[i];
  return nullptr;
}

}  // namespace lowbit::runtime
