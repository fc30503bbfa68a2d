// Conv2d and Linear as a GEMM (kernel records: GemmConfig, kernels/gemm_config.h): weights
// reordered to im2col order and packed once; at run time a padded copy of the input, im2col rows
// (linear rows, the level's gather, the stacked-rows image or portable copies), row chunks split
// over threads, and the kernel's output stage (requantization, int32 logits, or a fused max pool).
#pragma once
#include "runtime/ops/prepared_op.h"

namespace lowbit::runtime {

// The GEMM op for conv / linear op `index`, or nullptr when its level has no GEMM config for its
// weights (or its groups are too small to be worth one): the caller then runs another conv op.
std::unique_ptr<PreparedOp> create_gemm_op(const OpGraph& g, int32_t index);

}  // namespace lowbit::runtime
