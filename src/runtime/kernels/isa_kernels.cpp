#include "runtime/kernels/isa_kernels.h"

#include "runtime/kernels/ref_kernels.h"

namespace lowbit::runtime {
namespace {

const IsaKernels kRef = {
    Isa::Ref,
    {"ref", ref::quantize_input},
    {"ref", ref::max_pool},
    {},
    {},
    {},
};

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
    default: return kRef;
  }
}

}  // namespace lowbit::runtime
