// Flatten [C, H, W] -> [C*H*W] in PyTorch's C-major order (kernel record: FlattenConfig).
// On optimized levels a linear that follows reads the NHWC tensor directly, its weight columns
// permuted once (gemm_op.h); a Flatten whose readers all do so is elided by the session.
#pragma once
#include "runtime/ops/prepared_op.h"

namespace lowbit::runtime {

std::unique_ptr<PreparedOp> create_flatten_op(const OpGraph& g, int32_t index);

}  // namespace lowbit::runtime
