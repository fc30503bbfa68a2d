#include "ptq/gptq.h"

#include "base/error.h"

namespace lowbit::ptq {

HessianAccumulator::HessianAccumulator(int64_t columns)
    : sum_(torch::zeros({columns, columns}, torch::kFloat64)) {}

void HessianAccumulator::add(const torch::Tensor& rows) {
  LOWBIT_CHECK(rows.dim() == 2 && rows.size(1) == sum_.size(0),
               "Hessian accumulator for " + std::to_string(sum_.size(0)) + " inputs got rows of shape " +
                   c10::str(rows.sizes()));
  const torch::Tensor x = rows.detach().to(torch::kFloat64);
  sum_.addmm_(x.t(), x);
  count_ += rows.size(0);
}

torch::Tensor HessianAccumulator::hessian() const {
  if (count_ == 0) return sum_.clone();
  return sum_ * (2.0 / static_cast<double>(count_));
}

torch::Tensor gptq_quantize(const torch::Tensor& weight, const torch::Tensor& hessian, const ColumnQuantizer& quantize,
                            const GptqOptions& options) {
  return gptq_quantize(weight, hessian, IndexedColumnQuantizer([&](const torch::Tensor& c, int64_t) { return quantize(c); }),
                       options);
}

torch::Tensor gptq_quantize(const torch::Tensor& weight, const torch::Tensor& hessian,
                            const IndexedColumnQuantizer& quantize, const GptqOptions& options) {
  LOWBIT_CHECK(weight.dim() == 2, "GPTQ: weight must be a matrix [rows, K], got " + c10::str(weight.sizes()));
  const int64_t rows = weight.size(0);
  const int64_t k = weight.size(1);
  LOWBIT_CHECK(hessian.dim() == 2 && hessian.size(0) == k && hessian.size(1) == k,
               "GPTQ: Hessian must be [" + std::to_string(k) + ", " + std::to_string(k) + "], got " +
                   c10::str(hessian.sizes()));
  LOWBIT_CHECK(options.block_size >= 1, "GPTQ: block size must be >= 1");
  LOWBIT_CHECK(options.percdamp > 0.0, "GPTQ: percdamp must be > 0 (a small fraction such as 0.01)");
  torch::NoGradGuard no_grad;
  torch::Tensor w = weight.detach().to(torch::kFloat64).clone();
  torch::Tensor h = hessian.detach().to(torch::kFloat64).clone();

  // Inputs that never fire carry no information: their weights can be anything, use 0.
  const torch::Tensor dead = h.diagonal() == 0;
  h.diagonal().masked_fill_(dead, 1.0);
  w.index_put_({torch::indexing::Slice(), dead}, 0.0);

  torch::Tensor perm;
  if (options.act_order) {
    perm = torch::argsort(h.diagonal(), /*dim=*/0, /*descending=*/true);
    w = w.index_select(1, perm);
    h = h.index_select(0, perm).index_select(1, perm);
  }
  const double damp = options.percdamp * h.diagonal().mean().item<double>();
  h.diagonal().add_(damp);

  // Upper Cholesky factor of H^{-1}: row j holds the OBQ update coefficients for column j
  // given that columns < j are already fixed.
  const auto factorised = torch::linalg_cholesky_ex(h);
  const torch::Tensor& lower = std::get<0>(factorised);
  const torch::Tensor& info = std::get<1>(factorised);
  LOWBIT_CHECK(info.item<int64_t>() == 0, "GPTQ: the damped Hessian is not positive definite; increase percdamp (now " +
                                              std::to_string(options.percdamp) + ")");
  const torch::Tensor h_inv = torch::cholesky_inverse(lower);
  const torch::Tensor u = torch::linalg_cholesky(h_inv).t().contiguous();  // upper: H^{-1} = U^T U

  torch::Tensor q = torch::zeros_like(w);
  using torch::indexing::Slice;
  for (int64_t b0 = 0; b0 < k; b0 += options.block_size) {
    const int64_t b1 = std::min(k, b0 + options.block_size);
    torch::Tensor wb = w.index({Slice(), Slice(b0, b1)}).clone();
    torch::Tensor eb = torch::zeros_like(wb);
    const torch::Tensor ub = u.index({Slice(b0, b1), Slice(b0, b1)});
    for (int64_t j = 0; j < b1 - b0; ++j) {
      const torch::Tensor col = wb.index({Slice(), j});
      const int64_t original = options.act_order ? perm[b0 + j].item<int64_t>() : b0 + j;
      const torch::Tensor qcol = quantize(col.to(torch::kFloat32).contiguous(), original).to(torch::kFloat64).reshape({rows});
      q.index_put_({Slice(), b0 + j}, qcol);
      const torch::Tensor err = (col - qcol) / ub[j][j];
      // Within the block: update the remaining columns right away.
      wb.index({Slice(), Slice(j + 1, torch::indexing::None)})
          .sub_(err.unsqueeze(1) * ub.index({j, Slice(j + 1, torch::indexing::None)}).unsqueeze(0));
      eb.index_put_({Slice(), j}, err);
    }
    // Lazy batch update of every later column at once (one matrix product per block).
    if (b1 < k) w.index({Slice(), Slice(b1, torch::indexing::None)}).sub_(eb.matmul(u.index({Slice(b0, b1), Slice(b1, torch::indexing::None)})));
  }
  if (options.act_order) {
    q = q.index_select(1, torch::argsort(perm));
  }
  return q.to(torch::kFloat32);
}

double reconstruction_error(const torch::Tensor& weight, const torch::Tensor& quantized, const torch::Tensor& hessian) {
  torch::NoGradGuard no_grad;
  const torch::Tensor d = (weight.to(torch::kFloat64) - quantized.to(torch::kFloat64));
  return (d.matmul(hessian.to(torch::kFloat64)) * d).sum().item<double>() / 2.0;
}

}  // namespace lowbit::ptq
