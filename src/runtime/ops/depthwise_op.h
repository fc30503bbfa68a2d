// Depthwise Conv2d (groups = in_channels = out_channels) on levels with a depthwise kernel
// (kernel record: DepthwiseConfig in kernels/isa_kernels.h).
#pragma once
#include "runtime/ops/prepared_op.h"

namespace lowbit::runtime {

// nullptr when op `index` is not depthwise or its level has no depthwise kernel.
std::unique_ptr<PreparedOp> create_depthwise_op(const OpGraph& g, int32_t index);

}  // namespace lowbit::runtime
