#include "models/vit.h"

#include "base/error.h"
#include "models/gpt.h"

namespace lowbit::models {
namespace {

constexpr int64_t kImageSize = 28;
constexpr int64_t kClasses = 10;

const torch::Tensor& one_input(const std::vector<torch::Tensor>& inputs, const char* kind) {
  LOWBIT_CHECK(inputs.size() == 1, std::string(kind) + " layer takes 1 input, got " + std::to_string(inputs.size()));
  return inputs[0];
}

std::shared_ptr<LinearActImpl> linear(int64_t in, int64_t out, Activation act) {
  return std::make_shared<LinearActImpl>(LinearSpec{in, out, act, /*bias=*/true});
}

}  // namespace

void VitOptions::validate() const {
  auto bad = [](const std::string& what, int64_t v, const std::string& fix) {
    throw Error("vit-tiny: " + what + " = " + std::to_string(v) + " is invalid; " + fix);
  };
  if (layers < 1) bad("layers (--layers)", layers, "use at least 1");
  if (width < 1) bad("width (--width)", width, "use at least 1");
  if (heads < 1 || width % heads != 0) bad("heads (--heads)", heads, "use a divisor of the width " + std::to_string(width));
  if (patch < 1 || kImageSize % patch != 0) bad("patch (--patch)", patch, "use a divisor of 28 (1, 2, 4, 7, 14, 28)");
  if (hidden < 0) bad("hidden", hidden, "use 0 (2 x width) or a positive size");
}

nlohmann::json VitOptions::to_json() const {
  return {{"layers", layers}, {"width", width}, {"heads", heads}, {"patch", patch}, {"hidden", hidden}};
}

VitOptions VitOptions::from_json(const nlohmann::json& j) {
  VitOptions o;
  if (j.is_null()) return o;
  LOWBIT_CHECK(j.is_object(), "training config section 'vit' must be an object, got " + j.dump().substr(0, 80));
  for (auto it = j.begin(); it != j.end(); ++it) {
    int64_t* field = it.key() == "layers" ? &o.layers
                     : it.key() == "width" ? &o.width
                     : it.key() == "heads" ? &o.heads
                     : it.key() == "patch" ? &o.patch
                     : it.key() == "hidden" ? &o.hidden
                                            : nullptr;
    LOWBIT_CHECK(field != nullptr, "unknown key '" + it.key() +
                                       "' in training config section 'vit' (known keys: layers, width, heads, patch, hidden)");
    LOWBIT_CHECK(it->is_number_integer(), "vit-tiny option '" + it.key() + "' must be an integer, got " + it->dump());
    *field = it->get<int64_t>();
  }
  return o;
}

PatchTokensImpl::PatchTokensImpl(int64_t tokens, int64_t dim) {
  position = register_parameter("position", torch::randn({tokens, dim}) * 0.02);
}

torch::Tensor PatchTokensImpl::forward(const std::vector<torch::Tensor>& inputs) {
  const torch::Tensor& x = one_input(inputs, "tokens");
  LOWBIT_CHECK(x.dim() == 4 && x.size(1) == position.size(1) && x.size(2) * x.size(3) == position.size(0),
               "tokens layer expects [N, " + std::to_string(position.size(1)) + ", h, w] with h*w = " +
                   std::to_string(position.size(0)) + ", got " + c10::str(x.sizes()));
  return x.flatten(2).transpose(1, 2) + position;
}

LayerNormImpl::LayerNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
  bias = register_parameter("bias", torch::zeros({dim}));
}

torch::Tensor LayerNormImpl::forward(const std::vector<torch::Tensor>& inputs) {
  const torch::Tensor& x = one_input(inputs, "layernorm");
  return torch::layer_norm(x, {x.size(-1)}, weight, bias, eps);
}

torch::Tensor TokenMeanImpl::forward(const std::vector<torch::Tensor>& inputs) {
  const torch::Tensor& x = one_input(inputs, "token_mean");
  LOWBIT_CHECK(x.dim() == 3, "token_mean layer expects tokens [N, T, d], got " + c10::str(x.sizes()));
  return x.mean(1);
}

Net make_vit(const VitOptions& o) {
  o.validate();
  Net net("vit-tiny");
  const int64_t d = o.width, h = o.hidden_size();
  ConvSpec patch;
  patch.in_channels = 1;
  patch.out_channels = d;
  patch.kernel = o.patch;
  patch.stride = o.patch;
  patch.padding = 0;
  patch.batch_norm = false;
  patch.activation = Activation::None;
  int x = net->add("patch_embed", std::make_shared<ConvBnActImpl>(patch), {0});
  x = net->add("tokens", std::make_shared<PatchTokensImpl>(o.tokens(), d), {x});
  for (int64_t b = 0; b < o.layers; ++b) {
    const std::string p = "block" + std::to_string(b) + "_";
    const int n1 = net->add(p + "norm1", std::make_shared<LayerNormImpl>(d), {x});
    const int q = net->add(p + "attn_q", linear(d, d, Activation::None), {n1});
    const int k = net->add(p + "attn_k", linear(d, d, Activation::None), {n1});
    const int v = net->add(p + "attn_v", linear(d, d, Activation::None), {n1});
    const int a = net->add(p + "attn", std::make_shared<AttentionImpl>(o.heads, /*rope_base=*/0.0, /*causal=*/false), {q, k, v});
    const int ao = net->add(p + "attn_o", linear(d, d, Activation::None), {a});
    x = net->add(p + "add1", std::make_shared<AddActImpl>(Activation::None), {x, ao});
    const int n2 = net->add(p + "norm2", std::make_shared<LayerNormImpl>(d), {x});
    const int f1 = net->add(p + "mlp_fc1", linear(d, h, Activation::GELU), {n2});
    const int f2 = net->add(p + "mlp_fc2", linear(h, d, Activation::None), {f1});
    x = net->add(p + "add2", std::make_shared<AddActImpl>(Activation::None), {x, f2});
  }
  x = net->add("pool", std::make_shared<TokenMeanImpl>(), {x});
  x = net->add("norm_f", std::make_shared<LayerNormImpl>(d), {x});
  net->add("head", linear(d, kClasses, Activation::None), {x});
  return net;
}

}  // namespace lowbit::models
