#include "models/net.h"

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

torch::Tensor NetImpl::forward(const torch::Tensor& x) {
  LOWBIT_CHECK(!nodes_.empty(), "model '" + model_name_ + "' has no nodes");
  std::vector<torch::Tensor> values;
  values.reserve(nodes_.size() + 1);
  values.push_back(input_layer_ ? input_layer_->forward({x}) : x);
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
