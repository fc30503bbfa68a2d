#include "runtime/ops/depthwise_op.h"

#include "runtime/kernels/depthwise_kernels.h"

namespace lowbit::runtime {
namespace {

class DepthwiseOp final : public PreparedOp {
 public:
  DepthwiseOp(const OpGraph& g, int32_t index)
      : PreparedOp(g, index),
        kernel_(g.kernels.depthwise.depthwise),
        zx_(g.input_qparams(index).zero_point),
        w_(pack_depthwise_weights(op())) {
    for (const auto& m : op().multipliers) {
      multiplier_.push_back(m.multiplier);
      shift_.push_back(m.shift);
    }
  }
  std::string kernel_name() const override { return kernel_.name; }
  void run(const OpRunContext& ctx, int64_t batch) const override {
    const Op& o = op();
    const ValueShape in = in_shape(), out = out_shape();
    const uint8_t* x = input(ctx);
    const int64_t is = in.size(), os = out.size();
    ctx.over_batch(batch, [&](int64_t b0, int64_t n) {
      GemmOutput stage;
      stage.bias = o.bias_q.data();
      stage.ldy = out.c;
      if (o.output_layer) {
        stage.y_i32 = ctx.logits + b0 * os;
      } else {
        stage.multiplier = multiplier_.data();
        stage.shift = shift_.data();
        stage.zero_point = o.out.zero_point;
        stage.qmin = o.out.qmin;
        stage.qmax = o.out.qmax;
        stage.y_u8 = output(ctx) + b0 * os;
      }
      kernel_.fn(o, w_.data(), x + b0 * is, n, in, zx_, out, stage);
    });
  }

 private:
  Kernel<DepthwiseFn> kernel_;
  int32_t zx_;
  std::vector<int32_t> w_;  // pairs of kernel-row taps, packed once (depthwise_kernels.h)
  std::vector<int32_t> multiplier_, shift_;
};

}  // namespace

std::unique_ptr<PreparedOp> create_depthwise_op(const OpGraph& g, int32_t index) {
  const Op& op = g.model.ops[index];
  const bool depthwise = op.kind == OpKind::Conv2d && op.groups > 1 && op.groups == op.in_channels && op.groups == op.out_channels;
  if (!depthwise || g.kernels.depthwise.depthwise.fn == nullptr) return nullptr;
  return std::make_unique<DepthwiseOp>(g, index);
}

}  // namespace lowbit::runtime
