#include "runtime/ops/rmsnorm_op.h"

#include "runtime/kernels/decoder_float_kernels.h"

namespace lowbit::runtime::ops {

void rmsnorm(const float* x, int64_t rows, int32_t d, const float* w, float eps, float* y) { ref::rmsnorm(x, rows, d, w, eps, y); }

}  // namespace lowbit::runtime::ops
