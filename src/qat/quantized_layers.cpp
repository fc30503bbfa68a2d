#include "qat/quantized_layers.h"

#include "base/error.h"
#include "models/sync_batch_norm.h"
#include "quant/bias_quantize.h"
#include "qat/quantized_transformer.h"

namespace lowbit::qat {
namespace {

namespace F = torch::nn::functional;

const torch::Tensor& single_input(const std::vector<torch::Tensor>& inputs, const std::string& kind) {
  LOWBIT_CHECK(inputs.size() == 1, kind + " layer takes 1 input, got " + std::to_string(inputs.size()));
  return inputs[0];
}

FakeQuantize make_quantizer(const FakeQuantizeOptions& o) { return FakeQuantize(o); }

// The bias the integer model adds: bias_code[o] * s_x * s_w[o] with the codes conversion stores
// (quant::quantize_bias), straight through. Unchanged while the input grid or the weight scales
// are not there yet, and for per-group weight scales (not convertible).
torch::Tensor bias_on_accumulator_grid(const torch::Tensor& bias, const std::shared_ptr<FakeQuantizeImpl>& input_grid,
                                       const FakeQuantizeImpl& weight_quantizer, bool training) {
  // Evaluation only: in training a bias that float noise (another thread count, an all-reduce
  // order) moves across a code boundary would jump by a whole unit, and data-parallel runs would
  // part from single-process ones; the gradient is the same either way (straight through).
  if (training || !bias.defined() || !input_grid || !input_grid->enabled() || !input_grid->initialized() ||
      !weight_quantizer.enabled() || !weight_quantizer.initialized())
    return bias;
  const int64_t out = bias.numel();
  const torch::Tensor s_w = weight_quantizer.qparams().scale.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  if (s_w.numel() != 1 && s_w.numel() != out) return bias;
  const float s_x = input_grid->qparams().scale.detach().to(torch::kCPU, torch::kFloat32).reshape({-1})[0].item<float>();
  const torch::Tensor b = bias.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  torch::Tensor on_grid = torch::empty({out}, torch::kFloat32);
  const float* bp = b.data_ptr<float>();
  const float* sp = s_w.data_ptr<float>();
  float* gp = on_grid.data_ptr<float>();
  for (int64_t o = 0; o < out; ++o) {
    const float sw = sp[s_w.numel() == 1 ? 0 : o];
    gp[o] = quant::dequantize_bias(quant::quantize_bias(bp[o], s_x, sw), s_x, sw);
  }
  return bias + (on_grid.to(bias.device(), bias.scalar_type()) - bias).detach();
}

}  // namespace

// ---- QConvBnAct ---------------------------------------------------------------------------

QConvBnActImpl::QConvBnActImpl(const models::ConvBnActImpl& fp, const FakeQuantizeOptions& weight,
                               const std::optional<FakeQuantizeOptions>& output, int64_t bn_freeze_step)
    : spec_(fp.spec()), bn_freeze_step_(bn_freeze_step) {
  torch::NoGradGuard no_grad;
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(spec_.in_channels, spec_.out_channels, spec_.kernel)
                                                       .stride(spec_.stride)
                                                       .padding(spec_.padding)
                                                       .dilation(spec_.dilation)
                                                       .groups(spec_.groups)
                                                       .bias(fp.conv->bias.defined())));
  conv->weight.copy_(fp.conv->weight);
  if (fp.conv->bias.defined() && conv->bias.defined()) conv->bias.copy_(fp.conv->bias);
  if (fp.bn) {
    bn = register_module("bn", torch::nn::BatchNorm2d(fp.bn->options));
    bn->weight.copy_(fp.bn->weight);
    bn->bias.copy_(fp.bn->bias);
    bn->running_mean.copy_(fp.bn->running_mean);
    bn->running_var.copy_(fp.bn->running_var);
    bn->num_batches_tracked.copy_(fp.bn->num_batches_tracked);
  }
  weight_quantizer = register_module("weight_quantizer", make_quantizer(weight));
  if (output) output_quantizer = register_module("output_quantizer", make_quantizer(*output));
  step_ = register_buffer("step", torch::zeros({1}, torch::kInt64));
}

bool QConvBnActImpl::bn_frozen() const { return bn_freeze_step_ >= 0 && step_.item<int64_t>() >= bn_freeze_step_; }

namespace {
// Folded weight and bias from the running BN statistics (differentiable in W, gamma, beta).
std::pair<torch::Tensor, torch::Tensor> fold(const torch::nn::Conv2d& conv, const torch::nn::BatchNorm2d& bn) {
  const torch::Tensor inv_std = torch::rsqrt(bn->running_var + bn->options.eps());
  const torch::Tensor factor = bn->weight * inv_std;  // gamma / sqrt(var + eps), per output channel
  const torch::Tensor w = conv->weight * factor.view({-1, 1, 1, 1});
  torch::Tensor b = bn->bias - factor * bn->running_mean;
  if (conv->bias.defined()) b = b + factor * conv->bias;
  return {w, b};
}
}  // namespace

std::pair<torch::Tensor, torch::Tensor> QConvBnActImpl::folded_weight_and_bias() const {
  torch::NoGradGuard no_grad;
  if (!bn) return {conv->weight.detach().clone(), conv->bias.defined() ? conv->bias.detach().clone() : torch::Tensor()};
  auto [w, b] = fold(conv, bn);
  return {w.detach(), b.detach()};
}

namespace {
torch::Tensor bn_factor(const torch::nn::BatchNorm2d& bn) {
  return (bn->weight * torch::rsqrt(bn->running_var + bn->options.eps())).view({-1, 1, 1, 1});
}
}  // namespace

torch::Tensor QConvBnActImpl::quantizer_input() {
  torch::NoGradGuard no_grad;
  if (!bn) return conv->weight.detach().clone();
  return conv->weight * bn_factor(bn);  // the same expression as fold() and the training path
}

void QConvBnActImpl::set_quantizer_input(const torch::Tensor& target) {
  torch::NoGradGuard no_grad;
  LOWBIT_CHECK(target.sizes() == conv->weight.sizes(), "set_quantizer_input: shape " + c10::str(target.sizes()) +
                                                          " differs from the conv weight's " +
                                                          c10::str(conv->weight.sizes()));
  if (!bn) {
    conv->weight.copy_(target);
  } else {
    conv->weight.copy_(target / bn_factor(bn));
  }
}

torch::Tensor QConvBnActImpl::forward(const std::vector<torch::Tensor>& inputs) {
  const torch::Tensor& x = single_input(inputs, "conv");
  const auto& o = conv->options;
  auto conv_with = [&](const torch::Tensor& w, const torch::Tensor& b) {
    return F::conv2d(x, w, F::Conv2dFuncOptions().bias(b).stride(o.stride()).padding(o.padding()).dilation(o.dilation()).groups(o.groups()));
  };
  const bool frozen = bn_frozen();
  if (is_training()) step_ += 1;
  torch::Tensor y;
  if (!bn) {
    const torch::Tensor wq = weight_quantizer->forward(conv->weight);
    y = conv_with(wq, bias_on_accumulator_grid(conv->bias, input_grid, *weight_quantizer, is_training()));
  } else if (is_training() && !frozen) {
    // Approximate folding: quantize the weights folded with the running statistics, undo the
    // per-channel factor, then batch-statistics BN (which also updates the running stats).
    // The factor is undone on the weights, not on the conv output as PyTorch does: by linearity
    // conv(x, wq) / f == conv(x, wq / f), and the weights are a few thousand values where the
    // output is millions (forward and backward).
    const torch::Tensor factor = bn->weight * torch::rsqrt(bn->running_var + bn->options.eps());
    const torch::Tensor wq = weight_quantizer->forward(conv->weight * factor.view({-1, 1, 1, 1}));
    y = conv_with(wq / factor.view({-1, 1, 1, 1}), torch::Tensor());
    if (conv->bias.defined()) y = y + conv->bias.view({1, -1, 1, 1});
    y = models::batch_norm(*bn, y);  // the global batch's statistics in a data-parallel run
  } else {
    auto [w, b] = fold(conv, bn);
    const torch::Tensor wq = weight_quantizer->forward(w);
    y = conv_with(wq, bias_on_accumulator_grid(b, input_grid, *weight_quantizer, is_training()));
  }
  y = models::apply_activation(y, spec_.activation);
  return output_quantizer && !output_quantized_downstream ? output_quantizer->forward(y) : y;
}

// ---- QLinearAct ---------------------------------------------------------------------------

QLinearActImpl::QLinearActImpl(const models::LinearActImpl& fp, const FakeQuantizeOptions& weight,
                               const std::optional<FakeQuantizeOptions>& output)
    : spec_(fp.spec()) {
  torch::NoGradGuard no_grad;
  linear = register_module("linear", torch::nn::Linear(fp.linear->options));
  linear->weight.copy_(fp.linear->weight);
  if (fp.linear->bias.defined()) linear->bias.copy_(fp.linear->bias);
  weight_quantizer = register_module("weight_quantizer", make_quantizer(weight));
  if (output) output_quantizer = register_module("output_quantizer", make_quantizer(*output));
}

void QLinearActImpl::set_quantizer_input(const torch::Tensor& target) {
  torch::NoGradGuard no_grad;
  LOWBIT_CHECK(target.sizes() == linear->weight.sizes(), "set_quantizer_input: shape " + c10::str(target.sizes()) +
                                                            " differs from the linear weight's " +
                                                            c10::str(linear->weight.sizes()));
  linear->weight.copy_(target);
}

torch::Tensor QLinearActImpl::forward(const std::vector<torch::Tensor>& inputs) {
  const torch::Tensor wq = weight_quantizer->forward(linear->weight);
  torch::Tensor y = F::linear(single_input(inputs, "linear"), wq,
                              bias_on_accumulator_grid(linear->bias, input_grid, *weight_quantizer, is_training()));
  y = models::apply_activation(y, spec_.activation);
  return output_quantizer && !output_quantized_downstream ? output_quantizer->forward(y) : y;
}

// ---- QAddAct, QPool, QInput ---------------------------------------------------------------

QAddActImpl::QAddActImpl(models::Activation activation, const std::optional<FakeQuantizeOptions>& output)
    : activation_(activation) {
  if (output) output_quantizer = register_module("output_quantizer", make_quantizer(*output));
}

torch::Tensor QAddActImpl::forward(const std::vector<torch::Tensor>& inputs) {
  LOWBIT_CHECK(inputs.size() == 2, "add layer takes 2 inputs, got " + std::to_string(inputs.size()));
  torch::Tensor y = models::apply_activation(inputs[0] + inputs[1], activation_);
  return output_quantizer && !output_quantized_downstream ? output_quantizer->forward(y) : y;
}

QPointwiseImpl::QPointwiseImpl(const quant::PointwiseFunction& f, const std::optional<FakeQuantizeOptions>& output)
    : models::PointwiseImpl(f) {
  if (output) output_quantizer = register_module("output_quantizer", make_quantizer(*output));
}

torch::Tensor QPointwiseImpl::forward(const std::vector<torch::Tensor>& inputs) {
  torch::Tensor y = models::PointwiseImpl::forward(inputs);
  return output_quantizer && !output_quantized_downstream ? output_quantizer->forward(y) : y;
}

QConcatImpl::QConcatImpl(const std::optional<FakeQuantizeOptions>& output) {
  if (output) output_quantizer = register_module("output_quantizer", make_quantizer(*output));
}

torch::Tensor QConcatImpl::forward(const std::vector<torch::Tensor>& inputs) {
  torch::Tensor y = models::ConcatImpl::forward(inputs);
  return output_quantizer && !output_quantized_downstream ? output_quantizer->forward(y) : y;
}

QPoolImpl::QPoolImpl(std::string kind, models::PoolSpec pool, std::shared_ptr<FakeQuantizeImpl> input_grid)
    : kind_(std::move(kind)), pool_(pool), input_grid_(std::move(input_grid)) {
  LOWBIT_CHECK(kind_ == "avgpool" || kind_ == "gap", "QPool handles avgpool and gap, not '" + kind_ + "'");
}

torch::Tensor QPoolImpl::forward(const std::vector<torch::Tensor>& inputs) {
  const torch::Tensor& x = single_input(inputs, kind_);
  torch::Tensor y = kind_ == "gap" ? x.mean({2, 3})
                                   : torch::avg_pool2d(x, {pool_.kernel, pool_.kernel}, {pool_.stride, pool_.stride},
                                                       {pool_.padding, pool_.padding}, false, false);
  if (!input_grid_ || !input_grid_->enabled() || !input_grid_->initialized()) return y;
  // Back onto the input's grid, straight through; the scale belongs to the producer.
  return fake_quantize(y, input_grid_->scale.detach(), input_grid_->zero_point.detach(), input_grid_->options().spec,
                       Estimator::Ste);
}

QMaxPoolImpl::QMaxPoolImpl(const models::PoolSpec& pool, std::shared_ptr<FakeQuantizeImpl> producer_quantizer)
    : models::MaxPoolImpl(pool), producer_quantizer_(std::move(producer_quantizer)) {
  LOWBIT_CHECK(producer_quantizer_, "QMaxPool needs its producer's output quantizer");
}

torch::Tensor QMaxPoolImpl::forward(const std::vector<torch::Tensor>& inputs) {
  return producer_quantizer_->forward(models::MaxPoolImpl::forward(inputs));
}

QInputImpl::QInputImpl() {
  FakeQuantizeOptions o;
  o.spec = quant::QuantSpec::uint_asymmetric(8);
  o.estimator = Estimator::Ste;
  quantizer = register_module("quantizer", FakeQuantize(o));
  quantizer->set_fixed_qparams(torch::full({1}, 1.0f / 255.0f), torch::zeros({1}));
}

torch::Tensor QInputImpl::forward(const std::vector<torch::Tensor>& inputs) {
  const torch::Tensor& x = single_input(inputs, "input quantizer");
  if (!x.is_floating_point()) return x;  // token ids of a language model (models/gpt.h): exact already
  return quantizer->forward(x);
}

// ---- weight_quantized_layers ---------------------------------------------------------------

std::vector<std::pair<std::string, WeightQuantizedLayer*>> weight_quantized_layers(torch::nn::Module& root) {
  std::vector<std::pair<std::string, WeightQuantizedLayer*>> out;
  for (const auto& item : root.named_modules("", /*include_self=*/true)) {
    if (auto* w = dynamic_cast<WeightQuantizedLayer*>(item.value().get())) out.emplace_back(item.key(), w);
  }
  return out;
}

// ---- prepare ------------------------------------------------------------------------------

namespace {
// When max pool `pool` is the only reader of a quantized layer's output, marks that layer's
// output quantizer as applied downstream and returns true (QMaxPool then applies it).
bool defer_to_max_pool(models::Net& net, const std::vector<models::Node>& nodes, const models::Node& pool) {
  if (pool.inputs.size() != 1 || pool.inputs[0] == 0) return false;
  const int value = pool.inputs[0];
  int readers = 0;
  for (const auto& n : nodes)
    for (int v : n.inputs) readers += v == value;
  if (readers != 1) return false;
  const std::shared_ptr<models::LayerImpl>& producer = net->nodes()[value - 1].layer;  // the prepared layer
  if (auto c = std::dynamic_pointer_cast<QConvBnActImpl>(producer); c && c->output_quantizer) {
    c->output_quantized_downstream = true;
    return true;
  }
  if (auto l = std::dynamic_pointer_cast<QLinearActImpl>(producer); l && l->output_quantizer) {
    l->output_quantized_downstream = true;
    return true;
  }
  if (auto a = std::dynamic_pointer_cast<QAddActImpl>(producer); a && a->output_quantizer) {
    a->output_quantized_downstream = true;
    return true;
  }
  if (auto p = std::dynamic_pointer_cast<QPointwiseImpl>(producer); p && p->output_quantizer) {
    p->output_quantized_downstream = true;
    return true;
  }
  if (auto c = std::dynamic_pointer_cast<QConcatImpl>(producer); c && c->output_quantizer) {
    c->output_quantized_downstream = true;
    return true;
  }
  return false;
}
}  // namespace


void prepare(models::Net& net, const QatConfig& config) {
  LOWBIT_CHECK(!std::dynamic_pointer_cast<QInputImpl>(net->input_layer()),
               "prepare: model '" + net->model_name() + "' is already prepared for QAT");
  const std::vector<models::Node> nodes = net->nodes();  // a copy: replace_layer edits the list
  std::vector<std::string> names;
  for (const auto& n : nodes) names.push_back(n.name);
  config.check_patterns(names);

  QInput input;
  net->set_input_layer(input.ptr());
  // The quantizer whose grid each value lies on (index 0: the network input), or null.
  std::vector<std::shared_ptr<FakeQuantizeImpl>> grid(nodes.size() + 1);
  grid[0] = input->quantizer.ptr();

  for (size_t i = 0; i < nodes.size(); ++i) {
    const models::Node& node = nodes[i];
    const QuantSettings s = config.settings_for(node.name);
    const bool last = i + 1 == nodes.size();
    const std::shared_ptr<FakeQuantizeImpl> in_grid = node.inputs.empty() ? nullptr : grid[node.inputs[0]];
    const std::string kind = node.layer->kind();
    if (!s.quantize) continue;  // stays float; its output is on no grid
    const std::string where = "prepare: node '" + node.name + "' (" + kind + ")";
    auto output = [&]() -> std::optional<FakeQuantizeOptions> {
      if (last) return std::nullopt;
      try {
        return s.activation_options();
      } catch (const Error& e) {
        throw Error(where + ": " + e.what());
      }
    };
    auto weight = [&] {
      try {
        return s.weight_options();
      } catch (const Error& e) {
        throw Error(where + ": " + e.what());
      }
    };
    if (kind == "conv") {
      auto fp = std::dynamic_pointer_cast<models::ConvBnActImpl>(node.layer);
      LOWBIT_CHECK(fp, where + " is not a float ConvBnAct layer (already prepared?)");
      QConvBnAct q(*fp, weight(), output(), config.bn_freeze_step);
      q->input_grid = in_grid;
      grid[i + 1] = q->output_quantizer ? q->output_quantizer.ptr() : nullptr;
      net->replace_layer(node.name, q.ptr());
    } else if (kind == "linear" && uses_token_activations(s)) {
      auto fp = std::dynamic_pointer_cast<models::LinearActImpl>(node.layer);
      LOWBIT_CHECK(fp, where + " is not a float LinearAct layer (already prepared?)");
      net->replace_layer(node.name, std::make_shared<QTokenLinearImpl>(*fp, weight()));
      grid[i + 1] = nullptr;  // float output; the consumer quantizes per token if it is a linear
    } else if (kind == "add" && uses_token_activations(s)) {
      grid[i + 1] = nullptr;  // float residual stream (no static activation quantizer)
    } else if (kind == "linear") {
      auto fp = std::dynamic_pointer_cast<models::LinearActImpl>(node.layer);
      LOWBIT_CHECK(fp, where + " is not a float LinearAct layer (already prepared?)");
      QLinearAct q(*fp, weight(), output());
      q->input_grid = in_grid;
      grid[i + 1] = q->output_quantizer ? q->output_quantizer.ptr() : nullptr;
      net->replace_layer(node.name, q.ptr());
    } else if (kind == "add") {
      auto fp = std::dynamic_pointer_cast<models::AddActImpl>(node.layer);
      LOWBIT_CHECK(fp, where + " is not a float AddAct layer (already prepared?)");
      QAddAct q(fp->activation(), output());
      grid[i + 1] = q->output_quantizer ? q->output_quantizer.ptr() : nullptr;
      net->replace_layer(node.name, q.ptr());
    } else if (kind == "pointwise") {
      auto fp = std::dynamic_pointer_cast<models::PointwiseImpl>(node.layer);
      LOWBIT_CHECK(fp && !std::dynamic_pointer_cast<QPointwiseImpl>(node.layer),
                   where + " is not a float Pointwise layer (already prepared?)");
      LOWBIT_CHECK(in_grid != nullptr, where + ": its input is not quantized (its producer stays float), so the integer "
                                               "runtime's lookup table has no input codes; quantize the producer too");
      QPointwise q(fp->function(), output());
      grid[i + 1] = q->output_quantizer ? q->output_quantizer.ptr() : nullptr;
      net->replace_layer(node.name, q.ptr());
    } else if (kind == "concat") {
      LOWBIT_CHECK(std::dynamic_pointer_cast<models::ConcatImpl>(node.layer) &&
                       !std::dynamic_pointer_cast<QConcatImpl>(node.layer),
                   where + " is not a float Concat layer (already prepared?)");
      for (int v : node.inputs)
        LOWBIT_CHECK(grid[static_cast<size_t>(v)] != nullptr,
                     where + ": its input value " + std::to_string(v) + " is not quantized (its producer stays float), "
                             "so the integer runtime has no codes to concatenate; quantize the producer too");
      LOWBIT_CHECK(!last, where + ": a concat cannot be the last layer (the last layer must be conv or linear)");
      QConcat q(output());
      grid[i + 1] = q->output_quantizer.ptr();
      net->replace_layer(node.name, q.ptr());
    } else if (kind == "avgpool" || kind == "gap") {
      models::PoolSpec pool;
      if (auto ap = std::dynamic_pointer_cast<models::AvgPoolImpl>(node.layer)) pool = ap->spec();
      net->replace_layer(node.name, QPool(kind, pool, in_grid).ptr());
      grid[i + 1] = in_grid;
    } else if (kind == "maxpool" && in_grid && defer_to_max_pool(net, nodes, node)) {
      auto fp = std::dynamic_pointer_cast<models::MaxPoolImpl>(node.layer);
      LOWBIT_CHECK(fp, where + " is not a float MaxPool layer (already prepared?)");
      net->replace_layer(node.name, QMaxPool(fp->spec(), in_grid).ptr());
      grid[i + 1] = in_grid;
    } else if (kind == "embedding") {
      auto fp = std::dynamic_pointer_cast<models::EmbeddingImpl>(node.layer);
      LOWBIT_CHECK(fp, where + " is not a float Embedding layer (already prepared?)");
      net->replace_layer(node.name, QEmbedding(*fp, weight()).ptr());
      grid[i + 1] = nullptr;  // a weight-only quantized lookup: its output is on no activation grid
    } else if (is_float_transformer_kind(kind) || kind == "layernorm" || kind == "tokens" || kind == "token_mean") {
      grid[i + 1] = nullptr;  // float in QAT (quantized_transformer.h; vit-tiny's kinds, models/vit.h)
    } else if (kind == "maxpool" || kind == "flatten") {
      grid[i + 1] = in_grid;  // max and reshape keep values on their input's grid
    } else {
      throw Error(where + ": QAT does not know layer kind '" + kind +
                  "'; add a quantized version in src/qat or set \"quantize\": false for this node");
    }
  }
}

}  // namespace lowbit::qat
