#include "runtime/ops/conv_op.h"

#include "runtime/ops/depthwise_op.h"
#include "runtime/ops/gemm_op.h"

namespace lowbit::runtime {
namespace {

// Conv2d / Linear through the level's direct (reference) kernels, on the raw weight codes.
class DirectConvOp final : public PreparedOp {
 public:
  DirectConvOp(const OpGraph& g, int32_t index)
      : PreparedOp(g, index),
        conv2d_(g.kernels.direct_conv.conv2d),
        linear_(g.kernels.direct_conv.linear),
        zx_(g.input_qparams(index).zero_point) {}
  std::string kernel_name() const override { return op().kind == OpKind::Conv2d ? conv2d_.name : linear_.name; }
  void run(const OpRunContext& ctx, int64_t batch) const override {
    const Op& o = op();
    const ValueShape in = in_shape(), out = out_shape();
    const uint8_t* x = input(ctx);
    uint8_t* y = o.output_layer ? nullptr : output(ctx);
    int32_t* y32 = o.output_layer ? ctx.logits : nullptr;
    const int64_t is = in.size(), os = out.size();
    ctx.over_batch(batch, [&](int64_t b0, int64_t n) {
      uint8_t* yb = y ? y + b0 * os : nullptr;
      int32_t* y32b = y32 ? y32 + b0 * os : nullptr;
      if (o.kind == OpKind::Conv2d) {
        conv2d_.fn(o, x + b0 * is, n, in, zx_, out, yb, y32b);
      } else {
        linear_.fn(o, x + b0 * is, n, zx_, yb, y32b);
      }
    });
  }

 private:
  Kernel<Conv2dFn> conv2d_;
  Kernel<LinearFn> linear_;
  int32_t zx_;
};

}  // namespace

std::unique_ptr<PreparedOp> create_conv_op(const OpGraph& g, int32_t index) {
  if (auto op = create_depthwise_op(g, index)) return op;
  if (auto op = create_gemm_op(g, index)) return op;
  return std::make_unique<DirectConvOp>(g, index);
}

}  // namespace lowbit::runtime
