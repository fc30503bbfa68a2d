// QAT pieces for the transformer layers of models/gpt.h. The linear projections are ordinary
// linear nodes (prepare swaps them for QLinearAct like the CNNs' layers); this file adds the
// embedding table's quantized version and the defaults for language models.
#pragma once
#include "models/gpt.h"
#include "qat/fake_quantize_module.h"
#include "qat/qat_config.h"
#include "qat/quantized_layers.h"

namespace lowbit::qat {

// Embedding lookup in a fake-quantized table ([vocab, d]: "channel" scales are per vocabulary
// row, "group" scales per `group_size` values of a row). Only when the per-layer config sets
// "quantize": true for the embedding node (language-model default: full precision).
class QEmbeddingImpl : public models::LayerImpl {
 public:
  QEmbeddingImpl(const models::EmbeddingImpl& fp, const FakeQuantizeOptions& weight);
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "embedding"; }
  torch::Tensor weight;
  FakeQuantize weight_quantizer{nullptr};
};
TORCH_MODULE(QEmbedding);

// Per-token dynamic int8 fake quantization (quant/per_token.h) of x [..., features]: each row
// (token) gets s_t = max|x_t| / 127 and codes clamp(round_half_even(x / s_t), -127, 127); the
// output is s_t * code, computed with the same lowbit_quant functions as the runtime's
// dynamic-quant linear op. Gradient: straight-through (identity; the scale is not differentiated,
// and no value is clipped since s_t covers the row). CPU float32.
torch::Tensor fake_quantize_per_token(const torch::Tensor& x);

// A projection of a language model with per-token dynamic int8 input quantization and
// fake-quantized weights (per channel or per group), no output quantizer: what the runtime's
// dynamic-quant linear op computes, y[t, o] = s_x[t] * sum_g s_w[o, g] * acc[t, o, g]. Still a
// QLinearAct (kind "linear"), so weight tools (WinQ, convert) treat it as one.
class QTokenLinearImpl : public QLinearActImpl {
 public:
  QTokenLinearImpl(const models::LinearActImpl& fp, const FakeQuantizeOptions& weight);
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
};

// True when `settings` ask for per-token dynamic activations (act_granularity "token"): linear
// layers then quantize their inputs per token and no static activation quantizer is installed.
bool uses_token_activations(const QuantSettings& settings);

// Node kinds of models/gpt.h that stay in float under QAT (norms, attention scores, gating).
bool is_float_transformer_kind(const std::string& kind);

// The language-model defaults: per-token dynamic int8 activations (act_granularity "token", so no
// static output / residual quantizers: the runtime keeps the residual stream in float) and
// overrides that keep "embed" and "head" in full precision, put BEFORE the user's overrides so
// that a per-layer config can still quantize them.
QatConfig with_language_model_defaults(QatConfig config);

}  // namespace lowbit::qat
