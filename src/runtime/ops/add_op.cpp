#include "runtime/ops/add_op.h"

#include <vector>

#include "quant/add_requantize.h"

namespace lowbit::runtime {
namespace {

class AddOp final : public PreparedOp {
 public:
  AddOp(const OpGraph& g, int32_t index)
      : PreparedOp(g, index),
        kernel_(g.kernels.add.add),
        table_kernel_(g.kernels.add.table),
        qa_(g.input_qparams(index)),
        qb_(g.input_qparams(index, 1)) {
    if (table_kernel_.fn == nullptr) return;
    // Every (a, b) pair through the one add requantization (the reference kernel's arithmetic).
    const Op& o = op();
    const auto m = quant::make_add_multipliers(double(qa_.scale) / o.out.scale, double(qb_.scale) / o.out.scale);
    table_.resize(256 * 256);
    for (int32_t a = 0; a < 256; ++a)
      for (int32_t b = 0; b < 256; ++b)
        table_[static_cast<size_t>(a) * 256 + b] = static_cast<uint8_t>(
            quant::requantize_add(a - qa_.zero_point, b - qb_.zero_point, m, o.out.zero_point, o.out.qmin, o.out.qmax));
  }
  std::string kernel_name() const override { return table_.empty() ? kernel_.name : table_kernel_.name; }
  void run(const OpRunContext& ctx, int64_t batch) const override {
    const uint8_t* a = input(ctx);
    const uint8_t* b = input(ctx, 1);
    uint8_t* y = output(ctx);
    const int64_t n_item = in_shape().size();  // == the output's
    ctx.over_batch(batch, [&](int64_t b0, int64_t n) {
      if (!table_.empty()) {
        table_kernel_.fn(table_.data(), a + b0 * n_item, b + b0 * n_item, n * n_item, y + b0 * n_item);
      } else {
        kernel_.fn(op(), a + b0 * n_item, qa_, b + b0 * n_item, qb_, n * n_item, y + b0 * n_item);
      }
    });
  }

 private:
  Kernel<AddFn> kernel_;
  Kernel<AddTableFn> table_kernel_;
  const ActQParams &qa_, &qb_;
  std::vector<uint8_t> table_;  // [a * 256 + b], where the level has a table kernel
};

}  // namespace

std::unique_ptr<PreparedOp> create_add_op(const OpGraph& g, int32_t index) { return std::make_unique<AddOp>(g, index); }

}  // namespace lowbit::runtime
