#include "runtime/ops/pool_op.h"

namespace lowbit::runtime {
namespace {

// MaxPool2d (max_pool set) or AvgPool2d / GlobalAvgPool (avg_pool set).
class PoolOp final : public PreparedOp {
 public:
  PoolOp(const OpGraph& g, int32_t index) : PreparedOp(g, index), in_q_(g.input_qparams(index)) {
    if (op().kind == OpKind::MaxPool2d) {
      max_pool_ = g.kernels.pool.max_pool;
    } else {
      avg_pool_ = g.kernels.pool.avg_pool;
    }
  }
  std::string kernel_name() const override { return max_pool_.fn ? max_pool_.name : avg_pool_.name; }
  void run(const OpRunContext& ctx, int64_t batch) const override {
    const uint8_t* x = input(ctx);
    uint8_t* y = output(ctx);
    const ValueShape in = in_shape(), out = out_shape();
    ctx.over_batch(batch, [&](int64_t b0, int64_t n) {
      if (max_pool_.fn) {
        max_pool_.fn(op(), x + b0 * in.size(), n, in, out, y + b0 * out.size());
      } else {
        avg_pool_.fn(op(), x + b0 * in.size(), n, in, in_q_, out, y + b0 * out.size());
      }
    });
  }

 private:
  Kernel<MaxPoolFn> max_pool_;
  Kernel<AvgPoolFn> avg_pool_;
  const ActQParams& in_q_;
};

}  // namespace

std::unique_ptr<PreparedOp> create_pool_op(const OpGraph& g, int32_t index) { return std::make_unique<PoolOp>(g, index); }

}  // namespace lowbit::runtime
