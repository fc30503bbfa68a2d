// The non-GEMM kernels of the neon and neondot levels (they need nothing beyond Armv8-A). Input
// quantization, max pooling and the 1-channel stacked-rows image have NEON kernels; depthwise
// convs still run as grouped convs, and im2col runs are copied by the GEMM op's 16-byte copies (a
// NEON gather would copy the same 16-byte blocks).
#include "runtime/kernels/add_kernels.h"
#include "runtime/kernels/im2col_kernels.h"
#include "runtime/kernels/isa_kernels.h"
#include "runtime/kernels/pool_kernels.h"
#include "runtime/kernels/quantize_kernels.h"
#include "runtime/kernels/ref_kernels.h"

namespace lowbit::runtime {

const IsaKernels& isa_kernels_neon() {
  static const IsaKernels k = {
      Isa::Neon,
      true,
      {LOWBIT_KERNEL(f32_quantize_8x__neon)},
      {LOWBIT_KERNEL(u8_maxpool_16c__neon), LOWBIT_KERNEL(ref::avg_pool)},
      {LOWBIT_KERNEL(ref::add), LOWBIT_KERNEL(u8_add_lut64k__portable)},
      {LOWBIT_KERNEL(ref::flatten)},
      {LOWBIT_KERNEL(ref::lookup)},
      {LOWBIT_KERNEL(ref::conv2d), LOWBIT_KERNEL(ref::linear)},
      {},
      {{}, LOWBIT_KERNEL(u8_stack_rows_c1_16x__neon)},
  };
  return k;
}

}  // namespace lowbit::runtime
