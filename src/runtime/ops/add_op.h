// Residual add of two values of equal shape (kernel record: AddConfig in kernels/isa_kernels.h).
#pragma once
#include "runtime/ops/prepared_op.h"

namespace lowbit::runtime {

std::unique_ptr<PreparedOp> create_add_op(const OpGraph& g, int32_t index);

}  // namespace lowbit::runtime
