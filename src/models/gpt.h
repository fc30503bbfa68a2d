// gpt-tiny: a decoder-only, LLaMA-style byte language model written as a lowbit Net, so that
// qat::prepare quantizes its linear projections by node name like the CNNs' layers.
//
// Input: byte ids, int64 [N, T] with T <= context; output: next-byte logits, float [N, T, 256].
// Per block b (node names are the interface, keep them stable):
//   block<b>_norm1  RMSNorm                      block<b>_norm2  RMSNorm
//   block<b>_attn_q / _attn_k / _attn_v  linear d->d (no bias)
//   block<b>_attn   causal multi-head attention of (q, k, v) with rotary position embedding
//                   (AttentionImpl, shared with vit-tiny's non-causal attention)
//   block<b>_attn_o linear d->d              block<b>_add1  residual add
//   block<b>_mlp_gate / _mlp_up  linear d->h     block<b>_swiglu  silu(gate) * up
//   block<b>_mlp_down  linear h->d           block<b>_add2  residual add
// plus "embed" (256 x d table) first and "norm_f", "head" (linear d->256, no bias) last.
// The float-only kinds ("embedding", "rmsnorm", "attention", "swiglu") have no parameters that
// QAT quantizes except the embedding table (qat's QEmbedding, off by default).
#pragma once
#include <nlohmann/json.hpp>

#include "models/net.h"

namespace lowbit::models {

struct GptOptions {
  int64_t layers = 4;
  int64_t width = 128;   // d, the residual width
  int64_t heads = 4;     // width % heads == 0, head size even (RoPE rotates pairs)
  int64_t context = 128; // longest input the model accepts
  int64_t hidden = 0;    // SwiGLU hidden size; 0: 8/3 * width rounded up to a multiple of 32
  double rope_base = 10000.0;

  int64_t hidden_size() const;
  void validate() const;  // throws lowbit::Error naming the option (and the CLI flag)
  nlohmann::json to_json() const;
  // Reads the keys present in `j` (layers, width, heads, context, hidden, rope_base).
  static GptOptions from_json(const nlohmann::json& j);
};

Net make_gpt(const GptOptions& options);

// Rotary position embedding on x [N, H, T, hd] (hd even) for positions offset..offset+T-1:
// pair (x[2i], x[2i+1]) is rotated by angle pos * base^(-2i/hd).
torch::Tensor apply_rope(const torch::Tensor& x, double base, int64_t offset = 0);

class EmbeddingImpl : public LayerImpl {
 public:
  EmbeddingImpl(int64_t vocab, int64_t dim);
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "embedding"; }
  torch::Tensor weight;  // [vocab, dim]
};

class RMSNormImpl : public LayerImpl {
 public:
  explicit RMSNormImpl(int64_t dim, double eps = 1e-5);
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "rmsnorm"; }
  torch::Tensor weight;  // [dim], ones at init
  double eps;
};

// Multi-head scaled dot-product attention. Inputs q, k, v: [N, T, d]; output [N, T, d] (heads
// concatenated). Causal (gpt-tiny): position t attends to positions <= t only; non-causal
// (vit-tiny, models/vit.h): every position attends to every position. rope_base > 0 rotates q and
// k by the rotary position embedding first (gpt-tiny); rope_base 0: no RoPE (vit-tiny has a
// learned position embedding).
class AttentionImpl : public LayerImpl {
 public:
  AttentionImpl(int64_t heads, double rope_base, bool causal = true)
      : heads_(heads), rope_base_(rope_base), causal_(causal) {}
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "attention"; }
  int64_t heads() const { return heads_; }
  double rope_base() const { return rope_base_; }  // 0: no RoPE
  bool causal() const { return causal_; }

 private:
  int64_t heads_;
  double rope_base_;
  bool causal_;
};
using CausalAttentionImpl = AttentionImpl;  // the name gpt-tiny's code was written with

// silu(gate) * up; inputs gate, up.
class SwiGLUImpl : public LayerImpl {
 public:
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "swiglu"; }
};

}  // namespace lowbit::models
