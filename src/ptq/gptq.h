// GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative
// Pre-trained Transformers"): quantize a weight matrix column by column and, after each column,
// spread its rounding error over the columns not yet quantized so that the layer's output on
// the calibration inputs, W X, changes as little as possible (the Optimal Brain Quantization
// update, with the inverse Hessian's Cholesky factor instead of explicit inverse updates).
//
// Notation (docs/ptq.md has a worked example): W [rows, K], one row per output channel; X the
// calibration inputs as columns [K, n] (a convolution's im2col patches); H = 2 X X^T / n.
//   1. Dead inputs (H_jj = 0) get H_jj = 1 and W[:, j] = 0.
//   2. Optional activation order: process columns by decreasing H_jj.
//   3. Damping: H += lambda I with lambda = percdamp * mean(diag H).
//   4. U = upper Cholesky factor of H^{-1} (H^{-1} = U^T U).
//   5. For each column j (in blocks of block_size, updates to later blocks applied lazily once
//      per block): q_j = quantize(w_j); e_j = (w_j - q_j) / U_jj; w_k -= e_j U_jk for k > j.
// The result is the matrix of dequantized grid values Q (same shape as W, original column order).
#pragma once
#include <cstdint>
#include <functional>

#include "torch_pch.h"

namespace lowbit::ptq {

struct GptqOptions {
  double percdamp = 0.01;     // lambda = percdamp * mean(diag H)
  int64_t block_size = 128;   // columns per lazy-update block
  bool act_order = false;     // columns in order of decreasing H_jj
};

// Accumulates H = 2 X X^T / n over calibration rows (float64).
class HessianAccumulator {
 public:
  explicit HessianAccumulator(int64_t columns);
  // rows: [n, K], one calibration input vector per row.
  void add(const torch::Tensor& rows);
  torch::Tensor hessian() const;  // [K, K] float64; zeros if nothing was added
  int64_t count() const { return count_; }

 private:
  torch::Tensor sum_;  // X X^T accumulated, float64
  int64_t count_ = 0;
};

// Maps a float32 column [rows] to its dequantized grid values [rows] (the weight quantizer's
// own arithmetic, so the codes GPTQ picks are the ones fake quantization reproduces).
using ColumnQuantizer = std::function<torch::Tensor(const torch::Tensor&)>;
// The same for quantizers whose scales depend on the column: `index` is the column's index in
// the original (not activation-ordered) weight, e.g. to pick its group's scales (per-group
// weights: column k uses group k / group_size of each row).
using IndexedColumnQuantizer = std::function<torch::Tensor(const torch::Tensor& column, int64_t index)>;

// Returns Q [rows, K] float32. W: [rows, K] float; H: [K, K] (as from HessianAccumulator).
// Throws lowbit::Error naming the shapes if they disagree, or if H is not positive definite
// after damping (give a larger percdamp).
torch::Tensor gptq_quantize(const torch::Tensor& weight, const torch::Tensor& hessian, const ColumnQuantizer& quantize,
                            const GptqOptions& options = {});
// Grouped weights ("static groups"): the scales are fixed before GPTQ runs (from the original
// weights, as round-to-nearest uses), so every group's scale is known when its columns are
// quantized, activation order works unchanged, and the stored scales are exactly the ones used.
torch::Tensor gptq_quantize(const torch::Tensor& weight, const torch::Tensor& hessian,
                            const IndexedColumnQuantizer& quantize, const GptqOptions& options = {});

// The layer-output error GPTQ minimises, from H: ||(W - Q) X||_F^2 / n = tr((W-Q) H (W-Q)^T) / 2.
double reconstruction_error(const torch::Tensor& weight, const torch::Tensor& quantized, const torch::Tensor& hessian);

}  // namespace lowbit::ptq
