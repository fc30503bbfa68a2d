#include "ptq/weight_layers.h"

#include "base/error.h"

namespace lowbit::ptq {
namespace F = torch::nn::functional;

WeightLayer::WeightLayer(std::string name, size_t node_index, std::shared_ptr<models::LayerImpl> layer)
    : name_(std::move(name)), node_index_(node_index) {
  conv_ = std::dynamic_pointer_cast<qat::QConvBnActImpl>(layer);
  linear_ = std::dynamic_pointer_cast<qat::QLinearActImpl>(layer);
  LOWBIT_CHECK(conv_ || linear_, "node '" + name_ + "' is not a quantized conv or linear layer");
}

int64_t WeightLayer::groups() const { return conv_ ? conv_->spec().groups : 1; }

qat::FakeQuantizeImpl& WeightLayer::weight_quantizer() const {
  return conv_ ? *conv_->weight_quantizer : *linear_->weight_quantizer;
}

torch::Tensor WeightLayer::fold_factor() const {
  LOWBIT_CHECK(has_batch_norm(), "layer '" + name_ + "' has no batch norm to fold");
  const auto& bn = conv_->bn;
  return (bn->weight * torch::rsqrt(bn->running_var + bn->options.eps())).detach();
}

torch::Tensor WeightLayer::effective_weight() const {
  torch::NoGradGuard no_grad;
  if (conv_) return conv_->folded_weight_and_bias().first.clone();
  return linear_->linear->weight.detach().clone();
}

torch::Tensor WeightLayer::effective_bias() const {
  torch::NoGradGuard no_grad;
  torch::Tensor b;
  int64_t out = 0;
  if (conv_) {
    b = conv_->folded_weight_and_bias().second;
    out = conv_->spec().out_channels;
  } else {
    b = linear_->linear->bias;
    out = linear_->spec().out_features;
  }
  return b.defined() ? b.detach().clone() : torch::zeros({out});
}

torch::Tensor WeightLayer::deployed_weight() const {
  torch::NoGradGuard no_grad;
  auto& wq = weight_quantizer();
  const bool was_training = wq.is_training();
  wq.eval();
  torch::Tensor w = wq.forward(effective_weight());
  wq.train(was_training);
  return w.detach();
}

torch::Tensor WeightLayer::pre_activation(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) const {
  if (conv_) {
    const auto& o = conv_->conv->options;
    return F::conv2d(x, w, F::Conv2dFuncOptions().bias(b).stride(o.stride()).padding(o.padding()).dilation(o.dilation()).groups(o.groups()));
  }
  return F::linear(x, w, b);
}

torch::Tensor WeightLayer::input_rows(const torch::Tensor& x) const {
  if (!conv_) return x.reshape({-1, x.size(-1)});  // [N, K] or tokens [N, T, K]
  LOWBIT_CHECK(groups() == 1, "layer '" + name_ + "': input rows need an ungrouped convolution");
  const models::ConvSpec& s = conv_->spec();
  const torch::Tensor cols = F::unfold(x, F::UnfoldFuncOptions({s.kernel, s.kernel}).padding(s.padding).stride(s.stride).dilation(s.dilation));
  // [N, C*kh*kw, L] -> [N*L, C*kh*kw]: the order matches weight.reshape({out, -1}).
  return cols.transpose(1, 2).reshape({-1, cols.size(1)});
}

void WeightLayer::set_effective_weight(const torch::Tensor& w) {
  torch::NoGradGuard no_grad;
  if (!conv_) {
    linear_->linear->weight.copy_(w.reshape(linear_->linear->weight.sizes()));
    return;
  }
  torch::Tensor raw = w.reshape(conv_->conv->weight.sizes());
  if (has_batch_norm()) {
    const torch::Tensor f = fold_factor().view({-1, 1, 1, 1});
    // A channel with gamma = 0 has a zero folded weight whatever the conv weight is.
    raw = torch::where(f != 0, raw / f, torch::zeros_like(raw));
  }
  conv_->conv->weight.copy_(raw);
}

void WeightLayer::shift_bias(const torch::Tensor& delta) {
  torch::NoGradGuard no_grad;
  torch::Tensor target;
  if (has_batch_norm()) {
    target = conv_->bn->bias;  // folded bias = beta - factor * mean (+ factor * conv bias)
  } else if (conv_) {
    target = conv_->conv->bias;
  } else {
    target = linear_->linear->bias;
  }
  LOWBIT_CHECK(target.defined(), "bias correction: layer '" + name_ + "' has no bias to correct");
  target.add_(delta.to(target.dtype()).reshape(target.sizes()));
}

std::vector<WeightLayer> weight_layers(models::Net& net) {
  std::vector<WeightLayer> out;
  const auto& nodes = net->nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto& layer = nodes[i].layer;
    if (std::dynamic_pointer_cast<qat::QConvBnActImpl>(layer) || std::dynamic_pointer_cast<qat::QLinearActImpl>(layer)) {
      out.emplace_back(nodes[i].name, i, layer);
    }
  }
  return out;
}

std::vector<torch::Tensor> forward_values(const std::vector<models::Node>& nodes,
                                          const std::shared_ptr<models::LayerImpl>& input_layer,
                                          const torch::Tensor& x, size_t upto) {
  LOWBIT_CHECK(upto <= nodes.size(), "forward_values: node index out of range");
  std::vector<torch::Tensor> values;
  values.push_back(input_layer ? input_layer->forward({x}) : x);
  std::vector<torch::Tensor> args;
  for (size_t i = 0; i < upto; ++i) {
    args.clear();
    for (int v : nodes[i].inputs) args.push_back(values[static_cast<size_t>(v)]);
    values.push_back(nodes[i].layer->forward(args));
  }
  return values;
}

std::vector<torch::Tensor> node_inputs(const std::vector<models::Node>& nodes,
                                       const std::shared_ptr<models::LayerImpl>& input_layer,
                                       const std::vector<torch::Tensor>& batches, size_t index) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (const auto& b : batches) {
    const auto values = forward_values(nodes, input_layer, b, index);
    out.push_back(values[static_cast<size_t>(nodes[index].inputs.at(0))]);
  }
  return out;
}

}  // namespace lowbit::ptq
