#include "qat/quantized_transformer.h"

#include "base/error.h"

namespace lowbit::qat {

QEmbeddingImpl::QEmbeddingImpl(const models::EmbeddingImpl& fp, const FakeQuantizeOptions& weight_options) {
  weight = register_parameter("weight", fp.weight.detach().clone());
  weight_quantizer = register_module("weight_quantizer", FakeQuantize(weight_options));
}

torch::Tensor QEmbeddingImpl::forward(const std::vector<torch::Tensor>& inputs) {
  LOWBIT_CHECK(inputs.size() == 1, "embedding layer takes 1 input, got " + std::to_string(inputs.size()));
  return torch::embedding(weight_quantizer->forward(weight), inputs[0]);
}

bool is_float_transformer_kind(const std::string& kind) {
  return kind == "rmsnorm" || kind == "attention" || kind == "swiglu";
}

QatConfig with_language_model_defaults(QatConfig config) {
  std::vector<LayerOverride> overrides{{"embed", {{"quantize", false}}}, {"head", {{"quantize", false}}}};
  for (const auto& o : config.overrides) {
    const bool ours = (o.pattern == "embed" || o.pattern == "head") && o.settings == nlohmann::json{{"quantize", false}};
    if (!ours) overrides.push_back(o);  // idempotent: applying twice adds nothing
  }
  config.overrides = std::move(overrides);
  return config;
}

}  // namespace lowbit::qat
