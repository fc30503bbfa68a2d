#include "runtime/ops/prepared_op.h"

namespace lowbit::runtime {

int OpGraph::readers(int32_t v) const {
  int n = 0;
  for (const Op& o : model.ops)
    for (int32_t in : o.inputs) n += in == v;
  return n;
}

PreparedOp::PreparedOp(const OpGraph& g, int32_t index)
    : op_(&g.model.ops[index]), index_(index), in_(g.shapes[g.model.ops[index].inputs[0]]), out_(g.shapes[index + 1]) {}

}  // namespace lowbit::runtime
