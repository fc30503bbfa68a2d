#include "runtime/ops/swiglu_op.h"

#include "runtime/kernels/decoder_float_kernels.h"

namespace lowbit::runtime::ops {

void swiglu(const float* gate, const float* up, int64_t n, float* y) { ref::swiglu(gate, up, n, y); }

}  // namespace lowbit::runtime::ops
