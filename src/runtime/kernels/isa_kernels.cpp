#include "runtime/kernels/isa_kernels.h"

#include "runtime/kernels/ref_kernels.h"

namespace lowbit::runtime {

namespace {

const IsaKernels& isa_kernels_ref() {
  static const IsaKernels k = {
      Isa::Ref,
      false,
      {LOWBIT_KERNEL(ref::quantize_input)},
      {LOWBIT_KERNEL(ref::max_pool), LOWBIT_KERNEL(ref::avg_pool)},
      {LOWBIT_KERNEL(ref::add), {}},
      {LOWBIT_KERNEL(ref::flatten)},
      {LOWBIT_KERNEL(ref::lookup)},
      {LOWBIT_KERNEL(ref::conv2d), LOWBIT_KERNEL(ref::linear)},
      {},
      {},
  };
  return k;
}

}  // namespace

const IsaKernels& isa_kernels(Isa isa) {
  switch (isa) {
#if defined(LOWBIT_ARCH_X86_64)
    case Isa::Avx2:
    case Isa::Avx512Vnni: return isa_kernels_avx2();
#elif defined(LOWBIT_ARCH_AARCH64)
    case Isa::Neon:
    case Isa::NeonDot: return isa_kernels_neon();
#endif
    default: return isa_kernels_ref();
  }
}

std::vector<std::string> isa_kernel_names(Isa isa) {
  const IsaKernels& k = isa_kernels(isa);
  std::vector<std::string> names;
  for (const char* n : {k.quantize.quantize_input.name, k.pool.max_pool.name, k.pool.avg_pool.name, k.add.add.name,
                        k.add.table.name, k.flatten.flatten.name, k.lookup.lookup.name, k.direct_conv.conv2d.name, k.direct_conv.linear.name,
                        k.depthwise.depthwise.name, k.im2col.gather_rows.name, k.im2col.stack_rows_c1.name})
    if (n != nullptr) names.push_back(n);
  std::vector<Isa> gemm_levels{isa};
  if (isa == Isa::Avx512Vnni) gemm_levels.push_back(Isa::Avx2);  // find_gemm_config's fallback
  for (Isa level : gemm_levels) {
    int count = 0;
    const GemmConfig* table = gemm_configs(level, &count);
    for (int i = 0; i < count; ++i) names.push_back(table[i].name);
  }
  return names;
}

}  // namespace lowbit::runtime
