// Lookup: y = table[x] element-wise, for activations that are not a clamp (kernel record:
// LookupConfig in kernels/isa_kernels.h; the table is Op::table, built by the converter).
#pragma once
#include "runtime/ops/prepared_op.h"

namespace lowbit::runtime {

std::unique_ptr<PreparedOp> create_lookup_op(const OpGraph& g, int32_t index);

}  // namespace lowbit::runtime
