#include "models/imported_net.h"

#include <algorithm>

#include "base/error.h"

namespace lowbit::models {
namespace {

Activation activation_of(const import::ImportedLayer& l) {
  if (l.activation == "none") return Activation::None;
  if (l.activation == "relu") return Activation::ReLU;
  if (l.activation == "relu6") return Activation::ReLU6;
  throw Error("imported layer '" + l.name + "': unknown activation '" + l.activation + "'");
}

std::shared_ptr<LayerImpl> make_layer(const import::ImportedLayer& l) {
  if (l.kind == "conv") {
    ConvSpec s;
    s.in_channels = l.in_channels;
    s.out_channels = l.out_channels;
    s.kernel = l.kernel;
    s.stride = l.stride;
    s.padding = l.padding;
    s.groups = l.groups;
    s.dilation = l.dilation;
    s.batch_norm = l.batch_norm;
    s.activation = activation_of(l);
    return std::make_shared<ConvBnActImpl>(s);
  }
  if (l.kind == "linear") return std::make_shared<LinearActImpl>(LinearSpec{l.in_features, l.out_features, activation_of(l), l.bias});
  if (l.kind == "maxpool") return std::make_shared<MaxPoolImpl>(PoolSpec{l.pool_kernel, l.pool_stride, l.pool_padding});
  if (l.kind == "avgpool") return std::make_shared<AvgPoolImpl>(PoolSpec{l.pool_kernel, l.pool_stride, l.pool_padding});
  if (l.kind == "gap") return std::make_shared<GlobalAvgPoolImpl>();
  if (l.kind == "flatten") return std::make_shared<FlattenImpl>();
  if (l.kind == "add") return std::make_shared<AddActImpl>(activation_of(l));
  if (l.kind == "concat") return std::make_shared<ConcatImpl>();
  if (l.kind == "pointwise") return std::make_shared<PointwiseImpl>(quant::pointwise_function(l.function, l.alpha, l.beta));
  throw Error("imported layer '" + l.name + "': unknown kind '" + l.kind + "'");
}

void copy_into(torch::Tensor& target, const import::ImportedLayer& l, const std::string& key) {
  auto it = l.weights.find(key);
  LOWBIT_CHECK(it != l.weights.end(), "imported layer '" + l.name + "' has no '" + key + "' array");
  const std::vector<int64_t> dims = it->second.dims;
  LOWBIT_CHECK(target.sizes().vec() == dims && static_cast<int64_t>(it->second.values.size()) == target.numel(),
               "imported layer '" + l.name + "': '" + key + "' does not match the layer's shape");
  torch::NoGradGuard no_grad;
  target.copy_(torch::from_blob(const_cast<float*>(it->second.values.data()), dims, torch::kFloat32));
}

}  // namespace

Net make_imported_net(const import::ImportedModel& model) {
  Net net(kImportedModelName);
  net->set_input_shape(model.input_shape);
  for (const import::ImportedLayer& l : model.layers) net->add(l.name, make_layer(l), l.inputs);
  LOWBIT_CHECK(!model.layers.empty(), "the imported model has no layers");
  return net;
}

void load_imported_weights(Net& net, const import::ImportedModel& model) {
  for (const import::ImportedLayer& l : model.layers) {
    const Node& node = net->node(l.name);
    if (auto c = std::dynamic_pointer_cast<ConvBnActImpl>(node.layer)) {
      copy_into(c->conv->weight, l, "weight");
      if (c->bn) {
        copy_into(c->bn->weight, l, "bn_weight");
        copy_into(c->bn->bias, l, "bn_bias");
        copy_into(c->bn->running_mean, l, "bn_mean");
        copy_into(c->bn->running_var, l, "bn_var");
      } else {
        copy_into(c->conv->bias, l, "bias");
      }
    } else if (auto f = std::dynamic_pointer_cast<LinearActImpl>(node.layer)) {
      copy_into(f->linear->weight, l, "weight");
      if (l.bias) copy_into(f->linear->bias, l, "bias");
    }
  }
}

bool is_image_classifier(const std::string& model_name) {
  const auto& zoo = model_names();
  return model_name == kImportedModelName || std::find(zoo.begin(), zoo.end(), model_name) != zoo.end();
}

}  // namespace lowbit::models
