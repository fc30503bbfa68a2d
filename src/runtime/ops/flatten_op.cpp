#include "runtime/ops/flatten_op.h"

namespace lowbit::runtime {
namespace {

class FlattenOp final : public PreparedOp {
 public:
  FlattenOp(const OpGraph& g, int32_t index) : PreparedOp(g, index), kernel_(g.kernels.flatten.flatten) {}
  std::string kernel_name() const override { return kernel_.name; }
  void run(const OpRunContext& ctx, int64_t batch) const override {
    const uint8_t* x = input(ctx);
    uint8_t* y = output(ctx);
    const int64_t n_item = in_shape().size();
    ctx.over_batch(batch, [&](int64_t b0, int64_t n) { kernel_.fn(x + b0 * n_item, n, in_shape(), y + b0 * n_item); });
  }
  bool elidable() const override { return true; }
  std::string elided_note() const override { return "folded into the next linear"; }

 private:
  Kernel<FlattenFn> kernel_;
};

}  // namespace

std::unique_ptr<PreparedOp> create_flatten_op(const OpGraph& g, int32_t index) {
  return std::make_unique<FlattenOp>(g, index);
}

}  // namespace lowbit::runtime
