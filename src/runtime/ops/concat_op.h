// Concat: the inputs' channels side by side, in input order. Each input is moved onto the output's
// grid through its own 256-entry table (Op::table, 256 per input, built by the converter with
// quant::make_requantize_table), so the op is one table load per element on every level.
#pragma once
#include "runtime/ops/prepared_op.h"

namespace lowbit::runtime {

std::unique_ptr<PreparedOp> create_concat_op(const OpGraph& g, int32_t index);

}  // namespace lowbit::runtime
