#include "runtime/ops/lookup_op.h"

namespace lowbit::runtime {
namespace {

class LookupOp final : public PreparedOp {
 public:
  LookupOp(const OpGraph& g, int32_t index) : PreparedOp(g, index), kernel_(g.kernels.lookup.lookup) {}
  std::string kernel_name() const override { return kernel_.name; }
  void run(const OpRunContext& ctx, int64_t batch) const override {
    const uint8_t* x = input(ctx);
    uint8_t* y = output(ctx);
    const int64_t n_item = in_shape().size();  // == the output's
    ctx.over_batch(batch, [&](int64_t b0, int64_t n) {
      kernel_.fn(op().table.data(), x + b0 * n_item, n * n_item, y + b0 * n_item);
    });
  }

 private:
  Kernel<LookupFn> kernel_;
};

}  // namespace

std::unique_ptr<PreparedOp> create_lookup_op(const OpGraph& g, int32_t index) {
  return std::make_unique<LookupOp>(g, index);
}

}  // namespace lowbit::runtime
