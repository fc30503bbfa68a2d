// The non-GEMM kernels of the avx2 level, which the avx512vnni level uses too.
#include "runtime/kernels/add_kernels.h"
#include "runtime/kernels/depthwise_kernels.h"
#include "runtime/kernels/im2col_kernels.h"
#include "runtime/kernels/isa_kernels.h"
#include "runtime/kernels/pool_kernels.h"
#include "runtime/kernels/quantize_kernels.h"
#include "runtime/kernels/ref_kernels.h"

namespace lowbit::runtime {

const IsaKernels& isa_kernels_avx2() {
  static const IsaKernels k = {
      Isa::Avx2,
      true,
      {LOWBIT_KERNEL(f32_quantize_8x__avx2)},
      {LOWBIT_KERNEL(u8_maxpool_32c__avx2), LOWBIT_KERNEL(ref::avg_pool)},
      {LOWBIT_KERNEL(ref::add), LOWBIT_KERNEL(u8_add_lut64k__portable)},
      {LOWBIT_KERNEL(ref::flatten)},
      {LOWBIT_KERNEL(ref::lookup)},
      {LOWBIT_KERNEL(ref::conv2d), LOWBIT_KERNEL(ref::linear)},
      {LOWBIT_KERNEL(u8_dwconv_s32_fxp_8c__avx2)},
      {LOWBIT_KERNEL(u8_im2col_gather_32b__avx2), LOWBIT_KERNEL(u8_stack_rows_c1_16x__avx2)},
  };
  return k;
}

}  // namespace lowbit::runtime
