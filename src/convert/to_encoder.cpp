#include "convert/to_encoder.h"

#include <cmath>

#include "base/error.h"
#include "convert/net_access.h"
#include "models/gpt.h"
#include "quant/bias_quantize.h"
#include "quant/quantize.h"
#include "qat/quantized_layers.h"

namespace lowbit::convert {
namespace {

using net_access::floats;
using net_access::layer;
using net_access::quantize_weights;
using net_access::where;

const qat::FakeQuantizeImpl* fq_ptr(const qat::FakeQuantize& h) { return h.is_empty() ? nullptr : h.get(); }

// The grid of an activation quantizer (null, disabled or uninitialised: none).
bool act_grid(const std::string& name, const qat::FakeQuantizeImpl* fq, runtime::ActGrid& g) {
  if (!fq || !fq->enabled()) return false;
  LOWBIT_CHECK(fq->initialized(), where(name) + ": its activation quantizer was never calibrated (no forward in "
                                                "training mode); run QAT or calibrate first");
  const quant::QuantSpec& spec = fq->options().spec;
  LOWBIT_CHECK(spec.grid == quant::Grid::Integer, where(name) + ": activation quantizer '" + spec.describe() +
                                                      "' is not on the Integer grid");
  const qat::QParamTensors qp = fq->qparams();
  LOWBIT_CHECK(qp.scale.numel() == 1, where(name) + ": the runtime takes per-tensor activation scales, got " +
                                          std::to_string(qp.scale.numel()));
  g.scale = qp.scale.to(torch::kFloat32).reshape({-1})[0].item<float>();
  g.zero_point = qp.zero_point.to(torch::kInt32).reshape({-1})[0].item<int32_t>();
  g.qmin = spec.qmin();
  g.qmax = spec.qmax();
  LOWBIT_CHECK(g.qmin >= 0 && g.qmax <= 255, where(name) + ": activation codes [" + std::to_string(g.qmin) + ", " +
                                                 std::to_string(g.qmax) + "] are not unsigned 8-bit or narrower");
  return true;
}

// The bias the QAT model adds in evaluation (qat/quantized_layers.cpp, bias_on_accumulator_grid).
std::vector<float> effective_bias(const torch::Tensor& bias, const runtime::EncoderLinear& l, bool on_grid) {
  if (!bias.defined()) return {};
  std::vector<float> b = floats(bias);
  if (!on_grid || !l.quantized) return b;
  const int32_t groups = l.w.groups();
  if (groups != 1) return b;  // per-group weight scales: the float bias (as QAT)
  for (int32_t o = 0; o < l.out_features; ++o) {
    const float sw = l.w.scales[static_cast<size_t>(o)];
    b[static_cast<size_t>(o)] =
        quant::dequantize_bias(quant::quantize_bias(b[static_cast<size_t>(o)], l.input_grid.scale, sw), l.input_grid.scale, sw);
  }
  return b;
}

// The weights of a QAT linear or conv `q` into `r` (shape set): integer codes and scales when its
// weight quantizer is on, else the float weights `w`. Returns whether its input is quantized, with
// the grid in `input_grid`.
template <typename QLayer>
bool take_weights(const std::string& name, QLayer& q, const torch::Tensor& w, runtime::EncoderLinear& r,
                  runtime::ActGrid& input_grid) {
  r.quantized = q.weight_quantizer->enabled();
  if (r.quantized) {
    r.w = quantize_weights(name, q, r.out_features, r.in_features);
  } else {
    r.weight = floats(w);
  }
  return q.input_grid && act_grid(name + " input", q.input_grid.get(), input_grid);
}

// A linear node (QLinearAct or float LinearAct). `in_grid`: the grid its input lies on, or null.
runtime::EncoderLinear convert_linear(models::Net& net, const std::string& name, const runtime::ActGrid* in_grid,
                                      bool allow_gelu) {
  const auto l = layer(net, name);
  runtime::EncoderLinear r;
  auto activation = [&](models::Activation a) {
    LOWBIT_CHECK(a == models::Activation::None || (allow_gelu && a == models::Activation::GELU),
                 where(name) + ": activation '" + models::activation_name(a) + "' is not the one vit-tiny has there");
    r.gelu = a == models::Activation::GELU;
  };
  if (auto q = std::dynamic_pointer_cast<qat::QLinearActImpl>(l)) {
    LOWBIT_CHECK(!q->output_quantized_downstream, where(name) + ": its output quantizer is applied downstream");
    const torch::Tensor w = q->linear->weight;
    r.in_features = static_cast<int32_t>(w.size(1));
    r.out_features = static_cast<int32_t>(w.size(0));
    activation(q->spec().activation);
    runtime::ActGrid own;
    const bool q_in = take_weights(name, *q, w, r, own);
    LOWBIT_CHECK(q_in == (in_grid != nullptr) && (!q_in || own == *in_grid),
                 where(name) + ": its input grid differs from its producer's output grid");
    if (q_in) {
      r.has_input_grid = true;
      r.input_grid = own;
    }
    r.has_output_grid = act_grid(name, fq_ptr(q->output_quantizer), r.output_grid);
    r.bias = effective_bias(q->linear->bias, r, q_in);
    return r;
  }
  auto f = std::dynamic_pointer_cast<models::LinearActImpl>(l);
  LOWBIT_CHECK(f, where(name) + " is not a linear layer");
  activation(f->spec().activation);
  r.in_features = static_cast<int32_t>(f->linear->weight.size(1));
  r.out_features = static_cast<int32_t>(f->linear->weight.size(0));
  r.quantized = false;
  r.weight = floats(f->linear->weight);
  if (f->linear->bias.defined()) r.bias = floats(f->linear->bias);
  return r;
}

void convert_layernorm(models::Net& net, const std::string& name, std::vector<float>& w, std::vector<float>& b,
                       float& eps) {
  auto n = std::dynamic_pointer_cast<models::LayerNormImpl>(layer(net, name));
  LOWBIT_CHECK(n, where(name) + " is not a LayerNorm layer");
  w = floats(n->weight);
  b = floats(n->bias);
  eps = static_cast<float>(n->eps);
}

bool convert_add(models::Net& net, const std::string& name, runtime::ActGrid& g) {
  const auto l = layer(net, name);
  if (auto q = std::dynamic_pointer_cast<qat::QAddActImpl>(l)) {
    LOWBIT_CHECK(q->activation() == models::Activation::None, where(name) + ": the residual add has an activation");
    LOWBIT_CHECK(!q->output_quantized_downstream, where(name) + ": its output quantizer is applied downstream");
    return act_grid(name, fq_ptr(q->output_quantizer), g);
  }
  auto f = std::dynamic_pointer_cast<models::AddActImpl>(l);
  LOWBIT_CHECK(f && f->activation() == models::Activation::None, where(name) + " is not a plain residual add");
  return false;
}

}  // namespace

runtime::EncoderModel to_encoder_model(models::Net& net, const models::VitOptions& o, const std::string& description) {
  LOWBIT_CHECK(net->model_name() == "vit-tiny",
               "convert: model '" + net->model_name() + "' is not an encoder image model (vit-tiny)");
  o.validate();
  LOWBIT_CHECK(net->input_mean().empty() && net->input_std().empty(),
               "convert: the encoder runtime has no input normalisation yet (--mean/--std); train vit-tiny without it");
  torch::NoGradGuard no_grad;
  net->eval();
  runtime::EncoderModel m;
  m.name = description;
  m.patch = static_cast<int32_t>(o.patch);
  m.width = static_cast<int32_t>(o.width);
  m.heads = static_cast<int32_t>(o.heads);
  m.hidden = static_cast<int32_t>(o.hidden_size());
  m.classes = 10;

  // The input quantizer (QAT) or none (a float model).
  if (auto qi = std::dynamic_pointer_cast<qat::QInputImpl>(net->input_layer())) {
    m.input_quantized = act_grid("input", fq_ptr(qi->quantizer), m.input_grid);
  } else {
    LOWBIT_CHECK(!net->input_layer(), "convert: unknown input layer kind '" + net->input_layer()->kind() + "'");
    m.input_quantized = false;
  }

  // patch_embed: a conv with kernel = stride = patch, no padding, no BN.
  {
    const std::string name = "patch_embed";
    const auto l = layer(net, name);
    runtime::EncoderLinear& r = m.patch_embed;
    r.in_features = m.patch_features();
    r.out_features = m.width;
    auto check_spec = [&](const models::ConvSpec& s) {
      LOWBIT_CHECK(s.in_channels == 1 && s.out_channels == o.width && s.kernel == o.patch && s.stride == o.patch &&
                       s.padding == 0 && s.groups == 1 && s.dilation == 1 && s.activation == models::Activation::None,
                   where(name) + ": not the patch embedding conv (1 -> width, kernel = stride = patch, no padding)");
    };
    if (auto q = std::dynamic_pointer_cast<qat::QConvBnActImpl>(l)) {
      check_spec(q->spec());
      LOWBIT_CHECK(!q->bn, where(name) + ": the patch embedding has batch norm");
      auto [w, b] = q->folded_weight_and_bias();
      runtime::ActGrid own;
      const bool q_in = take_weights(name, *q, w, r, own);
      LOWBIT_CHECK(q_in == m.input_quantized && (!q_in || own == m.input_grid),
                   where(name) + ": its input grid differs from the input quantizer's");
      r.has_input_grid = q_in;
      if (q_in) r.input_grid = own;
      r.has_output_grid = act_grid(name, fq_ptr(q->output_quantizer), r.output_grid);
      r.bias = effective_bias(b, r, q_in);
    } else if (auto f = std::dynamic_pointer_cast<models::ConvBnActImpl>(l)) {
      check_spec(f->spec());
      auto wb = f->bn ? std::pair<torch::Tensor, torch::Tensor>{} : std::pair{f->conv->weight, f->conv->bias};
      LOWBIT_CHECK(!f->bn, where(name) + ": the patch embedding has batch norm");
      r.quantized = false;
      r.weight = floats(wb.first);
      if (wb.second.defined()) r.bias = floats(wb.second);
    } else {
      throw Error(where(name) + " is not a conv layer");
    }
  }
  auto tokens = std::dynamic_pointer_cast<models::PatchTokensImpl>(layer(net, "tokens"));
  LOWBIT_CHECK(tokens, where("tokens") + " is not the patch tokens layer");
  m.position = floats(tokens->position);

  float eps = 0.0f;
  for (int64_t b = 0; b < o.layers; ++b) {
    const std::string p = "block" + std::to_string(b) + "_";
    runtime::EncoderLayer L;
    float e1 = 0, e2 = 0;
    convert_layernorm(net, p + "norm1", L.norm1_w, L.norm1_b, e1);
    convert_layernorm(net, p + "norm2", L.norm2_w, L.norm2_b, e2);
    if (b == 0) eps = e1;
    LOWBIT_CHECK(e1 == eps && e2 == eps, where(p + "norm1") + ": the runtime takes one LayerNorm epsilon for the model");
    auto attn = std::dynamic_pointer_cast<models::AttentionImpl>(layer(net, p + "attn"));
    LOWBIT_CHECK(attn && attn->heads() == o.heads && !attn->causal() && attn->rope_base() == 0.0,
                 where(p + "attn") + " is not non-causal attention without RoPE with " + std::to_string(o.heads) +
                     " heads as the run config says");
    L.q = convert_linear(net, p + "attn_q", nullptr, false);
    L.k = convert_linear(net, p + "attn_k", nullptr, false);
    L.v = convert_linear(net, p + "attn_v", nullptr, false);
    L.o = convert_linear(net, p + "attn_o", nullptr, false);
    L.has_add1_grid = convert_add(net, p + "add1", L.add1_grid);
    L.fc1 = convert_linear(net, p + "mlp_fc1", nullptr, true);
    L.fc2 = convert_linear(net, p + "mlp_fc2", L.fc1.has_output_grid ? &L.fc1.output_grid : nullptr, false);
    L.has_add2_grid = convert_add(net, p + "add2", L.add2_grid);
    m.layers.push_back(std::move(L));
  }
  LOWBIT_CHECK(std::dynamic_pointer_cast<models::TokenMeanImpl>(layer(net, "pool")), where("pool") + " is not a token mean");
  float ef = 0;
  convert_layernorm(net, "norm_f", m.norm_f_w, m.norm_f_b, ef);
  LOWBIT_CHECK(ef == eps, where("norm_f") + ": the runtime takes one LayerNorm epsilon for the model");
  m.norm_eps = eps;
  m.head = convert_linear(net, "head", nullptr, false);
  LOWBIT_CHECK(!m.head.has_output_grid, where("head") + ": the logits have an output quantizer");
  runtime::validate_encoder_model(m, "convert");
  return m;
}

namespace {
int64_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}
}  // namespace

EncoderAgreement compare_encoder_with_torch(runtime::EncoderSession& session, models::Net& net,
                                            const torch::Tensor& images, const torch::Tensor& labels,
                                            int64_t batch_size) {
  torch::NoGradGuard no_grad;
  net->eval();
  EncoderAgreement a;
  const int64_t n = images.size(0), classes = session.model().classes;
  double sum_diff = 0.0;
  for (int64_t b0 = 0; b0 < n; b0 += batch_size) {
    const int64_t len = std::min(batch_size, n - b0);
    const torch::Tensor x = images.narrow(0, b0, len).to(torch::kFloat32).contiguous();
    const torch::Tensor expected = net->forward(x).to(torch::kFloat32).contiguous();
    LOWBIT_CHECK(expected.numel() == len * classes, "compare: the model gives " + std::to_string(expected.numel()) +
                                                        " logits for " + std::to_string(len) + " images");
    const std::vector<float> got = session.run(x.data_ptr<float>(), len);
    const float* e = expected.data_ptr<float>();
    for (int64_t i = 0; i < len; ++i) {
      const float* gi = got.data() + i * classes;
      const float* ei = e + i * classes;
      for (int64_t c = 0; c < classes; ++c) {
        const double d = std::fabs(static_cast<double>(gi[c]) - ei[c]);
        a.max_abs_diff = std::max(a.max_abs_diff, std::isfinite(d) ? d : INFINITY);
        a.max_abs_logit = std::max(a.max_abs_logit, std::fabs(static_cast<double>(ei[c])));
        sum_diff += d;
      }
      const int64_t pg = argmax(gi, classes), pe = argmax(ei, classes);
      a.predictions_equal += pg == pe;
      if (labels.defined()) {
        const int64_t y = labels[b0 + i].item<int64_t>();
        a.runtime_correct += pg == y;
        a.torch_correct += pe == y;
      }
    }
    a.count += len;
  }
  a.mean_abs_diff = a.count > 0 ? sum_diff / static_cast<double>(a.count * classes) : 0.0;
  return a;
}

}  // namespace lowbit::convert
