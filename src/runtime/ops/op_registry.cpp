// The op factories by kind. A new op kind: its file in ops/ (create / buffers / run), one line here.
#include "base/error.h"
#include "runtime/ops/add_op.h"
#include "runtime/ops/concat_op.h"
#include "runtime/ops/conv_op.h"
#include "runtime/ops/flatten_op.h"
#include "runtime/ops/lookup_op.h"
#include "runtime/ops/pool_op.h"
#include "runtime/ops/prepared_op.h"

namespace lowbit::runtime {
namespace {

const OpFactory kFactories[] = {
    {OpKind::Conv2d, create_conv_op},
    {OpKind::Linear, create_conv_op},
    {OpKind::MaxPool2d, create_pool_op},
    {OpKind::AvgPool2d, create_pool_op},
    {OpKind::GlobalAvgPool, create_pool_op},
    {OpKind::Add, create_add_op},
    {OpKind::Flatten, create_flatten_op},
    {OpKind::Lookup, create_lookup_op},
    {OpKind::Concat, create_concat_op},
};

}  // namespace

std::unique_ptr<PreparedOp> create_op(const OpGraph& g, int32_t index) {
  const OpKind kind = g.model.ops[index].kind;
  for (const OpFactory& f : kFactories)
    if (f.kind == kind) return f.create(g, index);
  throw Error("op " + std::to_string(index) + ": the runtime has no implementation of op kind " + op_kind_name(kind));
}

}  // namespace lowbit::runtime
