// MaxPool2d, AvgPool2d and GlobalAvgPool (kernel records: PoolConfig in kernels/isa_kernels.h).
#pragma once
#include "runtime/ops/prepared_op.h"

namespace lowbit::runtime {

std::unique_ptr<PreparedOp> create_pool_op(const OpGraph& g, int32_t index);

}  // namespace lowbit::runtime
