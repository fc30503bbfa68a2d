// Conv2d and Linear: picks the depthwise op (depthwise_op.h), else the GEMM op (gemm_op.h), else
// the direct kernels of DirectConvConfig (the reference level; groups of fewer than 4 channels).
#pragma once
#include "runtime/ops/prepared_op.h"

namespace lowbit::runtime {

std::unique_ptr<PreparedOp> create_conv_op(const OpGraph& g, int32_t index);

}  // namespace lowbit::runtime
