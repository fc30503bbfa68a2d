// The non-GEMM kernels of the neon and neondot levels. For now these are the reference kernels
// (quantization, max pooling) and the session's portable paths (depthwise convs as grouped convs,
// im2col with 16-byte copies, scalar stacked rows): correct on every aarch64 CPU, not tuned. The
// GEMMs, where the time goes, have NEON kernels (gemm_s16_neon.cpp, gemm_u8_neondot.cpp).
#include "runtime/kernels/isa_kernels.h"
#include "runtime/kernels/ref_kernels.h"

namespace lowbit::runtime {

const IsaKernels& isa_kernels_neon() {
  static const IsaKernels k = {
      Isa::Neon,
      {"ref", ref::quantize_input},
      {"ref", ref::max_pool},
      {},
      {},
      {},
  };
  return k;
}

}  // namespace lowbit::runtime
