#include "runtime/ops/concat_op.h"

#include <vector>

namespace lowbit::runtime {
namespace {

class ConcatOp final : public PreparedOp {
 public:
  ConcatOp(const OpGraph& g, int32_t index) : PreparedOp(g, index), kernel_(g.kernels.lookup.lookup) {
    for (int32_t v : op().inputs) channels_.push_back(g.shapes[v].c);
  }
  std::string kernel_name() const override { return kernel_.name; }
  void run(const OpRunContext& ctx, int64_t batch) const override {
    // Values are [batch, H, W, C]: every pixel's output row is the inputs' rows, each through its table.
    const int64_t pixels = int64_t{out_shape().h} * out_shape().w, c_out = out_shape().c;
    uint8_t* y = output(ctx);
    ctx.over_batch(batch, [&](int64_t b0, int64_t n) {
      int64_t offset = 0;
      for (size_t k = 0; k < channels_.size(); ++k) {
        const int64_t c = channels_[k];
        const uint8_t* x = input(ctx, k) + b0 * pixels * c;
        const uint8_t* table = op().table.data() + 256 * k;
        uint8_t* out = y + b0 * pixels * c_out + offset;
        for (int64_t p = 0; p < n * pixels; ++p) kernel_.fn(table, x + p * c, c, out + p * c_out);
        offset += c;
      }
    });
  }

 private:
  Kernel<LookupFn> kernel_;
  std::vector<int64_t> channels_;  // per input
};

}  // namespace

std::unique_ptr<PreparedOp> create_concat_op(const OpGraph& g, int32_t index) {
  return std::make_unique<ConcatOp>(g, index);
}

}  // namespace lowbit::runtime
