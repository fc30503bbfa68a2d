#include "models/net.h"

#include <cmath>

#include "quant/input_normalisation.h"

#include "base/error.h"

namespace lowbit::models {
namespace {

// The submodule name of the optional input layer; no node may take it.
constexpr const char* kInputLayerName = "input";

bool valid_node_name(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

}  // namespace

NetImpl::NetImpl(std::string model_name) : model_name_(std::move(model_name)) {}

int NetImpl::add(const std::string& name, std::shared_ptr<LayerImpl> layer, std::vector<int> inputs) {
  const std::string where = "model '" + model_name_ + "', node '" + name + "': ";
  LOWBIT_CHECK(valid_node_name(name), where + "node names must match [a-z0-9_]+");
  LOWBIT_CHECK(name != kInputLayerName, where + "'input' is reserved for the input layer");
  for (const auto& n : nodes_) LOWBIT_CHECK(n.name != name, where + "duplicate node name");
  LOWBIT_CHECK(layer != nullptr, where + "layer is null");
  LOWBIT_CHECK(!inputs.empty(), where + "a node needs at least one input value");
  const int produced = static_cast<int>(nodes_.size()) + 1;
  for (int v : inputs) {
    LOWBIT_CHECK(v >= 0 && v < produced, where + "input value " + std::to_string(v) +
                                             " does not exist yet (values 0.." + std::to_string(produced - 1) +
                                             " exist: 0 is the network input, i + 1 the output of node i)");
  }
  register_module(name, layer);
  nodes_.push_back(Node{name, std::move(inputs), std::move(layer)});
  return produced;
}

void NetImpl::set_input_normalisation(std::vector<float> mean, std::vector<float> std_dev) {
  LOWBIT_CHECK(mean.size() == std_dev.size(), "model '" + model_name_ + "': input normalisation has " +
                                                  std::to_string(mean.size()) + " means and " +
                                                  std::to_string(std_dev.size()) + " standard deviations");
  for (float s : std_dev)
    LOWBIT_CHECK(std::isfinite(s) && s > 0.0f, "model '" + model_name_ + "': input normalisation std must be > 0");
  input_mean_ = std::move(mean);
  input_std_ = std::move(std_dev);
}

torch::Tensor NetImpl::normalise_input(const torch::Tensor& x) const {
  if (input_mean_.empty()) return x;
  LOWBIT_CHECK(x.dim() >= 2 && x.scalar_type() == torch::kFloat32,
               "model '" + model_name_ + "': input normalisation needs float32 images [N, C, ...]");
  const int64_t channels = x.size(1);
  LOWBIT_CHECK(input_mean_.size() == 1 || static_cast<int64_t>(input_mean_.size()) == channels,
               "model '" + model_name_ + "': --mean/--std have " + std::to_string(input_mean_.size()) +
                   " values but the input has " + std::to_string(channels) +
                   " channels; give one value per channel or one for all");
  // quant::normalise_input element by element: the runtime's arithmetic exactly (subtract, then
  // divide; no reciprocal). Images never need a gradient.
  const torch::Tensor src = x.detach().to(torch::kCPU).contiguous();
  torch::Tensor out = torch::empty_like(src);
  const float* s = src.data_ptr<float>();
  float* d = out.data_ptr<float>();
  const int64_t inner = src.numel() / std::max<int64_t>(1, src.size(0) * channels);
  const int64_t planes = src.size(0) * channels;
  at::parallel_for(0, planes, 16, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const size_t c = input_mean_.size() == 1 ? 0 : static_cast<size_t>(p % channels);
      const float m = input_mean_[c], sd = input_std_[c];
      for (int64_t i = p * inner; i < (p + 1) * inner; ++i) d[i] = quant::normalise_input(s[i], m, sd);
    }
  });
  return out.to(x.device());
}

torch::Tensor NetImpl::forward(const torch::Tensor& x) {
  LOWBIT_CHECK(!nodes_.empty(), "model '" + model_name_ + "' has no nodes");
  std::vector<torch::Tensor> values;
  values.reserve(nodes_.size() + 1);
  const torch::Tensor input = normalise_input(x);
  values.push_back(input_layer_ ? input_layer_->forward({input}) : input);
  std::vector<torch::Tensor> args;
  for (const auto& n : nodes_) {
    args.clear();
    for (int v : n.inputs) args.push_back(values[static_cast<size_t>(v)]);
    values.push_back(n.layer->forward(args));
  }
  return values.back();
}

const Node& NetImpl::node(const std::string& name) const {
  for (const auto& n : nodes_) {
    if (n.name == name) return n;
  }
  std::string known;
  for (const auto& n : nodes_) known += (known.empty() ? "" : ", ") + n.name;
  throw Error("model '" + model_name_ + "' has no node '" + name + "' (nodes: " + known + ")");
}

void NetImpl::replace_layer(const std::string& name, std::shared_ptr<LayerImpl> layer) {
  LOWBIT_CHECK(layer != nullptr, "replace_layer('" + name + "'): layer is null");
  const Node& found = node(name);  // throws with the list of names
  auto& n = const_cast<Node&>(found);
  replace_module(name, layer);
  n.layer = std::move(layer);
}

void NetImpl::set_input_layer(std::shared_ptr<LayerImpl> layer) {
  if (input_layer_ && layer) {
    replace_module(kInputLayerName, layer);
  } else if (layer) {
    register_module(kInputLayerName, layer);
  } else if (input_layer_) {
    unregister_module(kInputLayerName);
  }
  input_layer_ = std::move(layer);
}

torch::Tensor random_inputs(const Net& net, int64_t batch) {
  const std::vector<int64_t>& shape = net->input_shape();
  LOWBIT_CHECK(!shape.empty(), "model '" + net->model_name() + "' takes token ids, not images");
  std::vector<int64_t> dims{batch};
  dims.insert(dims.end(), shape.begin(), shape.end());
  return torch::rand(dims);
}

}  // namespace lowbit::models
