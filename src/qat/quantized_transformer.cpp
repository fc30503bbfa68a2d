#include "qat/quantized_transformer.h"

#include "base/error.h"
#include "qat/fake_quant_aten.h"
#include "qat/fake_quant_kernels.h"

namespace lowbit::qat {

QEmbeddingImpl::QEmbeddingImpl(const models::EmbeddingImpl& fp, const FakeQuantizeOptions& weight_options) {
  weight = register_parameter("weight", fp.weight.detach().clone());
  weight_quantizer = register_module("weight_quantizer", FakeQuantize(weight_options));
}

torch::Tensor QEmbeddingImpl::forward(const std::vector<torch::Tensor>& inputs) {
  LOWBIT_CHECK(inputs.size() == 1, "embedding layer takes 1 input, got " + std::to_string(inputs.size()));
  return torch::embedding(weight_quantizer->forward(weight), inputs[0]);
}

namespace {

struct PerTokenFakeQuant : public torch::autograd::Function<PerTokenFakeQuant> {
  static torch::Tensor forward(torch::autograd::AutogradContext*, const torch::Tensor& x_in) {
    LOWBIT_CHECK(x_in.scalar_type() == torch::kFloat32 && x_in.dim() >= 1,
                 "per-token fake quantization takes a float32 tensor [..., features], got " +
                     std::string(x_in.toString()) + " of " + std::to_string(x_in.dim()) + " dims");
    if (!fused_kernels_apply(x_in)) return fake_quantize_per_token_aten(x_in);  // e.g. a CUDA tensor
    const torch::Tensor x = x_in.contiguous();
    torch::Tensor y = torch::empty_like(x);
    const int64_t k = x.size(-1);
    if (k == 0) return y;
    const int64_t rows = x.numel() / k;
    const float* xp = x.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    // The bits of quant::quantize_token_row's codes times their scale (tests/qat/fake_quant_test.cpp).
    at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) kernels::fake_quantize_token_row(xp + r * k, yp + r * k, k);
    });
    return y;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext*, torch::autograd::tensor_list g) {
    return {g[0]};
  }
};

}  // namespace

// The projections of a block share their inputs (q, k and v read one normalised tensor, gate and
// up another), and per-token quantization depends on nothing but the input, so the last result
// is reused when the same tensor, unchanged (same storage, same version) and under the same grad
// mode, comes again: 4 quantizations per gpt-tiny block instead of 7. Autograd sums the reused
// output's gradients before the straight-through backward, which is the sum the separate
// copies' identity backwards would give.
struct PerTokenCache {
  torch::Tensor input, output;
  int64_t version = 0;
  bool grad_mode = false;
};

torch::Tensor fake_quantize_per_token(const torch::Tensor& x) {
  thread_local PerTokenCache cache;
  const bool grad_mode = torch::GradMode::is_enabled();
  if (cache.input.defined() && cache.input.unsafeGetTensorImpl() == x.unsafeGetTensorImpl() &&
      cache.input.data_ptr() == x.data_ptr() && cache.version == x._version() && cache.grad_mode == grad_mode)
    return cache.output;
  torch::Tensor y = PerTokenFakeQuant::apply(x);
  cache = {x, y, x._version(), grad_mode};
  return y;
}

QTokenLinearImpl::QTokenLinearImpl(const models::LinearActImpl& fp, const FakeQuantizeOptions& weight)
    : QLinearActImpl(fp, weight, std::nullopt) {}

torch::Tensor QTokenLinearImpl::forward(const std::vector<torch::Tensor>& inputs) {
  LOWBIT_CHECK(inputs.size() == 1, "linear layer takes 1 input, got " + std::to_string(inputs.size()));
  const torch::Tensor y = torch::nn::functional::linear(fake_quantize_per_token(inputs[0]),
                                                        weight_quantizer->forward(linear->weight), linear->bias);
  return models::apply_activation(y, spec().activation);
}

bool uses_token_activations(const QuantSettings& settings) { return settings.act_granularity == "token"; }

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
  config.defaults.act_granularity = "token";  // what the decoder runtime computes (quant/per_token.h)
  return config;
}

}  // namespace lowbit::qat
