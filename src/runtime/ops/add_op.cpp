#include "runtime/ops/add_op.h"

namespace lowbit::runtime {
namespace {

class AddOp final : public PreparedOp {
 public:
  AddOp(const OpGraph& g, int32_t index)
      : PreparedOp(g, index),
        kernel_(g.kernels.add.add),
        qa_(g.input_qparams(index)),
        qb_(g.input_qparams(index, 1)) {}
  std::string kernel_name() const override { return kernel_.name; }
  void run(const OpRunContext& ctx, int64_t batch) const override {
    const uint8_t* a = input(ctx);
    const uint8_t* b = input(ctx, 1);
    uint8_t* y = output(ctx);
    const int64_t n_item = in_shape().size();  // == the output's
    ctx.over_batch(batch, [&](int64_t b0, int64_t n) {
      kernel_.fn(op(), a + b0 * n_item, qa_, b + b0 * n_item, qb_, n * n_item, y + b0 * n_item);
    });
  }

 private:
  Kernel<AddFn> kernel_;
  const ActQParams &qa_, &qb_;
};

}  // namespace

std::unique_ptr<PreparedOp> create_add_op(const OpGraph& g, int32_t index) { return std::make_unique<AddOp>(g, index); }

}  // namespace lowbit::runtime
