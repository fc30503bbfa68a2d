// QAT pieces for the transformer layers of models/gpt.h. The linear projections are ordinary
// linear nodes (prepare swaps them for QLinearAct like the CNNs' layers); this file adds the
// embedding table's quantized version and the defaults for language models.
#pragma once
#include "models/gpt.h"
#include "qat/fake_quantize_module.h"
#include "qat/qat_config.h"

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

// Node kinds of models/gpt.h that stay in float under QAT (norms, attention scores, gating).
bool is_float_transformer_kind(const std::string& kind);

// The language-model defaults: overrides that keep "embed" and "head" in full precision, put
// BEFORE the user's overrides so that a per-layer config can still quantize them.
QatConfig with_language_model_defaults(QatConfig config);

}  // namespace lowbit::qat
