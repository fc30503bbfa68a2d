#include "models/gpt.h"

#include <cmath>

#include "base/error.h"
#include "base/json_value.h"

namespace lowbit::models {
namespace {

constexpr int64_t kVocab = 256;

void check_inputs(const std::vector<torch::Tensor>& inputs, size_t n, const char* kind) {
  LOWBIT_CHECK(inputs.size() == n, std::string(kind) + " layer takes " + std::to_string(n) + " input(s), got " +
                                       std::to_string(inputs.size()));
}

std::shared_ptr<LinearActImpl> proj(int64_t in, int64_t out) {
  LinearSpec s;
  s.in_features = in;
  s.out_features = out;
  s.activation = Activation::None;
  s.bias = false;
  return std::make_shared<LinearActImpl>(s);
}

// [T, T] bool, true above the diagonal (the future); cached per thread for the last T.
torch::Tensor causal_future_mask(int64_t T, torch::Device device) {
  thread_local torch::Tensor mask;
  if (!mask.defined() || mask.size(0) != T || mask.device() != device)
    mask = torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(device)).triu(1);
  return mask;
}

}  // namespace

int64_t GptOptions::hidden_size() const {
  if (hidden > 0) return hidden;
  const int64_t h = (8 * width + 2) / 3;
  return (h + 31) / 32 * 32;
}

void GptOptions::validate() const {
  auto bad = [](const std::string& what, int64_t v, const std::string& fix) {
    throw Error("gpt-tiny: " + what + " = " + std::to_string(v) + " is invalid; " + fix);
  };
  if (layers < 1) bad("layers (--layers)", layers, "use at least 1");
  if (width < 2) bad("width (--width)", width, "use at least 2");
  if (heads < 1 || width % heads != 0) bad("heads (--heads)", heads, "use a divisor of the width " + std::to_string(width));
  if ((width / std::max<int64_t>(heads, 1)) % 2 != 0)
    bad("head size (width / heads)", width / heads, "make it even (rotary embedding rotates pairs)");
  if (context < 1) bad("context (--context)", context, "use at least 1");
  if (hidden < 0) bad("hidden", hidden, "use 0 (automatic) or a positive size");
  LOWBIT_CHECK(rope_base > 1.0, "gpt-tiny: rope_base must be > 1");
}

nlohmann::json GptOptions::to_json() const {
  return {{"layers", layers}, {"width", width}, {"heads", heads}, {"context", context}, {"hidden", hidden},
          {"rope_base", rope_base}};
}

GptOptions GptOptions::from_json(const nlohmann::json& j) {
  GptOptions o;
  if (!j.is_object()) return o;
  auto read = [&](const char* key, auto& field) { read_json_key(j, key, field, "gpt-tiny options"); };
  read("layers", o.layers);
  read("width", o.width);
  read("heads", o.heads);
  read("context", o.context);
  read("hidden", o.hidden);
  read("rope_base", o.rope_base);
  return o;
}

namespace {

// RoPE's tables for positions offset..offset+T-1, [T, hd] each, in pair order: cos (c_i, c_i) and
// signed sin (-s_i, s_i), so that the rotation is x * cos + swap_pairs(x) * sin. Angles in float64,
// then cast, as before. A one-entry cache per thread: every block's q and k use the same tables.
struct RopeTables {
  int64_t T = -1, hd = -1, offset = 0;
  double base = 0.0;
  torch::ScalarType dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;
  torch::Tensor cos, sin;
};

const RopeTables& rope_tables(int64_t T, int64_t hd, double base, int64_t offset, const torch::Tensor& like) {
  thread_local RopeTables t;
  if (t.T == T && t.hd == hd && t.base == base && t.offset == offset && t.dtype == like.scalar_type() &&
      t.device == like.device())
    return t;
  torch::NoGradGuard no_grad;
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const auto inv_freq = torch::pow(base, -torch::arange(0, hd, 2, opts) / static_cast<double>(hd));  // [hd/2]
  const auto pos = torch::arange(offset, offset + T, opts);                                             // [T]
  const auto angle = torch::outer(pos, inv_freq);                                                      // [T, hd/2]
  const auto to = torch::TensorOptions().dtype(like.scalar_type()).device(like.device());
  const auto c = angle.cos().to(to), s = angle.sin().to(to);
  t = {T, hd, offset, base, like.scalar_type(), like.device(), torch::stack({c, c}, -1).flatten(-2),
       torch::stack({-s, s}, -1).flatten(-2)};
  return t;
}

}  // namespace

torch::Tensor apply_rope(const torch::Tensor& x, double base, int64_t offset) {
  const int64_t T = x.size(-2), hd = x.size(-1);
  LOWBIT_CHECK(hd % 2 == 0, "rotary embedding needs an even head size, got " + std::to_string(hd));
  const RopeTables& t = rope_tables(T, hd, base, offset, x);
  // (a, b) -> (a cos - b sin, b cos + a sin): the same products and sums as rotating each pair,
  // so the same floats, but 2 products and one swap instead of selects, 4 products and a stack
  // (whose backward zero-fills a full-size gradient per select).
  const auto swapped = x.unflatten(-1, {hd / 2, 2}).flip(-1).flatten(-2);
  return x * t.cos + swapped * t.sin;
}

EmbeddingImpl::EmbeddingImpl(int64_t vocab, int64_t dim) {
  weight = register_parameter("weight", torch::randn({vocab, dim}) * 0.02);
}

torch::Tensor EmbeddingImpl::forward(const std::vector<torch::Tensor>& inputs) {
  check_inputs(inputs, 1, "embedding");
  const auto& x = inputs[0];
  LOWBIT_CHECK(!x.is_floating_point(), "embedding layer takes integer ids (bytes), got a floating-point tensor");
  return torch::embedding(weight, x);
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const std::vector<torch::Tensor>& inputs) {
  check_inputs(inputs, 1, "rmsnorm");
  const auto& x = inputs[0];
  return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps) * weight;
}

torch::Tensor AttentionImpl::forward(const std::vector<torch::Tensor>& inputs) {
  check_inputs(inputs, 3, "attention");
  const int64_t N = inputs[0].size(0), T = inputs[0].size(1), d = inputs[0].size(2);
  LOWBIT_CHECK(d % heads_ == 0, "attention: width " + std::to_string(d) + " is not a multiple of " +
                                    std::to_string(heads_) + " heads");
  const int64_t hd = d / heads_;
  auto split = [&](const torch::Tensor& t) { return t.view({N, T, heads_, hd}).transpose(1, 2); };  // [N, H, T, hd]
  auto rotate = [&](const torch::Tensor& t) { return rope_base_ > 0 ? apply_rope(t, rope_base_) : t; };
  const auto q = rotate(split(inputs[0]));
  const auto k = rotate(split(inputs[1]));
  const auto v = split(inputs[2]);
  // In place on the fresh [N, H, T, T] scores (nothing saves them for backward): two fewer
  // tensors of that size per block than out-of-place division and masking.
  auto scores = torch::matmul(q, k.transpose(-2, -1)).div_(std::sqrt(static_cast<double>(hd)));  // [N, H, T, T]
  if (causal_) scores.masked_fill_(causal_future_mask(T, scores.device()), -std::numeric_limits<float>::infinity());
  const auto y = torch::matmul(torch::softmax(scores, -1), v);  // [N, H, T, hd]
  return y.transpose(1, 2).reshape({N, T, d});
}

torch::Tensor SwiGLUImpl::forward(const std::vector<torch::Tensor>& inputs) {
  check_inputs(inputs, 2, "swiglu");
  return torch::silu(inputs[0]) * inputs[1];
}

Net make_gpt(const GptOptions& o) {
  o.validate();
  Net net("gpt-tiny");
  net->set_input_shape({});  // token ids [N, T], any T up to the context
  const int64_t d = o.width, h = o.hidden_size();
  int x = net->add("embed", std::make_shared<EmbeddingImpl>(kVocab, d), {0});
  for (int64_t b = 0; b < o.layers; ++b) {
    const std::string p = "block" + std::to_string(b) + "_";
    const int n1 = net->add(p + "norm1", std::make_shared<RMSNormImpl>(d), {x});
    const int q = net->add(p + "attn_q", proj(d, d), {n1});
    const int k = net->add(p + "attn_k", proj(d, d), {n1});
    const int v = net->add(p + "attn_v", proj(d, d), {n1});
    const int a = net->add(p + "attn", std::make_shared<AttentionImpl>(o.heads, o.rope_base, /*causal=*/true), {q, k, v});
    const int ao = net->add(p + "attn_o", proj(d, d), {a});
    x = net->add(p + "add1", std::make_shared<AddActImpl>(Activation::None), {x, ao});
    const int n2 = net->add(p + "norm2", std::make_shared<RMSNormImpl>(d), {x});
    const int g = net->add(p + "mlp_gate", proj(d, h), {n2});
    const int u = net->add(p + "mlp_up", proj(d, h), {n2});
    const int s = net->add(p + "swiglu", std::make_shared<SwiGLUImpl>(), {g, u});
    const int m = net->add(p + "mlp_down", proj(h, d), {s});
    x = net->add(p + "add2", std::make_shared<AddActImpl>(Activation::None), {x, m});
  }
  x = net->add("norm_f", std::make_shared<RMSNormImpl>(d), {x});
  net->add("head", proj(d, kVocab), {x});
  return net;
}

}  // namespace lowbit::models
