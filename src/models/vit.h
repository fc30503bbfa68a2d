// vit-tiny: a small Vision Transformer for Fashion-MNIST (28x28x1) written as a lowbit Net, so that
// qat::prepare quantizes its patch embedding and linear projections by node name like the CNNs'
// layers, and `lowbit train | qat | ptq | eval` treat it as any image model.
//
// Input: images [N, 1, 28, 28] in [0, 1]; output: 10 logits. Nodes (names are the interface):
//   patch_embed      conv 1->d, kernel = stride = patch (no padding, no BN): [N, d, 28/p, 28/p]
//   tokens           [N, d, h, w] -> [N, T = h*w, d] (row-major patches) + learned position embedding
//   per block b (pre-norm, residual):
//     block<b>_norm1   LayerNorm               block<b>_norm2   LayerNorm
//     block<b>_attn_q / _attn_k / _attn_v  linear d->d (bias)
//     block<b>_attn    non-causal multi-head attention (models/gpt.h AttentionImpl, no RoPE)
//     block<b>_attn_o  linear d->d             block<b>_add1    residual add
//     block<b>_mlp_fc1 linear d->hidden + GELU block<b>_mlp_fc2 linear hidden->d
//     block<b>_add2    residual add
//   pool             mean over the tokens: [N, T, d] -> [N, d]
//   norm_f           LayerNorm
//   head             linear d->10
// Position information: a learned position embedding (one d-vector per patch, added to the
// patch embedding), no class token; the classifier reads the mean of the tokens.
// The float-only kinds ("tokens", "layernorm", "attention", "token_mean") have no parameters that
// QAT quantizes; GELU is the activation of the mlp_fc1 linear node, so its output quantizer sees
// the GELU output, as a CNN's sees the ReLU output.
#pragma once
#include <nlohmann/json.hpp>

#include "models/net.h"

namespace lowbit::models {

struct VitOptions {
  int64_t layers = 4;
  int64_t width = 64;   // d, the token width
  int64_t heads = 4;    // width % heads == 0
  int64_t patch = 4;    // divides 28: 4 -> 7 x 7 = 49 tokens
  int64_t hidden = 0;   // MLP hidden size; 0: 2 * width

  int64_t hidden_size() const { return hidden > 0 ? hidden : 2 * width; }
  int64_t tokens() const { return (28 / patch) * (28 / patch); }
  void validate() const;  // throws lowbit::Error naming the option (and the CLI flag)
  nlohmann::json to_json() const;
  // Reads the keys present in `j` (layers, width, heads, patch, hidden); others are errors.
  static VitOptions from_json(const nlohmann::json& j);
};

Net make_vit(const VitOptions& options);

// [N, d, h, w] (a patch-embedding conv's output) -> [N, h*w, d] plus a learned position
// embedding [h*w, d] (initialised N(0, 0.02^2)).
class PatchTokensImpl : public LayerImpl {
 public:
  PatchTokensImpl(int64_t tokens, int64_t dim);
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "tokens"; }
  torch::Tensor position;  // [tokens, dim]
};

// LayerNorm over the last dimension with a learned scale (ones) and shift (zeros).
class LayerNormImpl : public LayerImpl {
 public:
  explicit LayerNormImpl(int64_t dim, double eps = 1e-5);
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "layernorm"; }
  torch::Tensor weight, bias;  // [dim]
  double eps;
};

// Mean over the token axis: [N, T, d] -> [N, d].
class TokenMeanImpl : public LayerImpl {
 public:
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "token_mean"; }
};

}  // namespace lowbit::models
