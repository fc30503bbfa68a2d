// A lowbit model: a named graph of layers executed in order.
//
// Values are numbered: 0 is the network input, i + 1 is the output of node i; a node lists the
// values it reads. The output of the last node is the network output (logits). Training, QAT's
// prepare (which swaps layers by node name), conversion to the integer runtime and ONNX export
// all walk this one list, so there is no second description of a model to keep in sync.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/layer.h"

namespace lowbit::models {

struct Node {
  std::string name;         // unique, [a-z0-9_]+, e.g. "conv1", "block1_conv2", "fc2"
  std::vector<int> inputs;  // value indices
  std::shared_ptr<LayerImpl> layer;
};

class NetImpl : public torch::nn::Module {
 public:
  explicit NetImpl(std::string model_name);

  // Appends a node and registers its layer as a submodule under `name`; returns the index of
  // the value it produces. Throws lowbit::Error for a duplicate or malformed name or an input
  // index that does not exist yet.
  int add(const std::string& name, std::shared_ptr<LayerImpl> layer, std::vector<int> inputs);

  torch::Tensor forward(const torch::Tensor& x);

  const std::vector<Node>& nodes() const { return nodes_; }
  const Node& node(const std::string& name) const;  // throws lowbit::Error naming the node
  // Swaps the layer of node `name` (and its registered submodule); used by qat::prepare.
  void replace_layer(const std::string& name, std::shared_ptr<LayerImpl> layer);
  // Optional layer applied to the network input before node 0 (qat's input quantizer).
  void set_input_layer(std::shared_ptr<LayerImpl> layer);
  const std::shared_ptr<LayerImpl>& input_layer() const { return input_layer_; }
  // Input normalisation x' = (x - mean[c]) / std[c] in float32 (quant::normalise_input), applied
  // in forward before the input layer: the run's --mean / --std (data/input_normalisation.h).
  // Both empty (none), one value for all channels, or one per channel. train::build_net sets it.
  void set_input_normalisation(std::vector<float> mean, std::vector<float> std_dev);
  const std::vector<float>& input_mean() const { return input_mean_; }
  const std::vector<float>& input_std() const { return input_std_; }
  // x normalised as forward does (x itself when there is no normalisation).
  torch::Tensor normalise_input(const torch::Tensor& x) const;

  const std::string& model_name() const { return model_name_; }

  // The shape of one input example: {1, 28, 28} for the zoo's image models (the default), the
  // file's for an imported model (models/imported_net.h), {} for gpt-tiny (token ids).
  const std::vector<int64_t>& input_shape() const { return input_shape_; }
  void set_input_shape(std::vector<int64_t> shape) { input_shape_ = std::move(shape); }

 private:
  std::string model_name_;
  std::vector<int64_t> input_shape_{1, 28, 28};
  std::vector<Node> nodes_;
  std::shared_ptr<LayerImpl> input_layer_;
  std::vector<float> input_mean_, input_std_;
};
TORCH_MODULE(Net);

// `batch` examples of the net's input shape, uniform in [0, 1] (what the zoo's images hold): for
// shape-only uses such as a stand-in calibration or a benchmark. Throws for gpt-tiny (tokens).
torch::Tensor random_inputs(const Net& net, int64_t batch);

// The zoo. Inputs are [N, 1, 28, 28] in [0, 1] (pixel / 255; no mean/std normalisation, so that
// the input quantizer with scale 1/255 represents every pixel exactly); outputs are 10 logits.
//   mlp             flatten, linear 784->256 ReLU, linear 256->128 ReLU, linear 128->10
//   cnn             the reference CNN: conv 1->32 3x3 pad 1 + BN + ReLU, maxpool 2,
//                   conv 32->64 3x3 pad 1 + BN + ReLU, maxpool 2, flatten,
//                   linear 3136->128 ReLU, linear 128->10
//   resnet8         stem conv, three residual stages (add + ReLU), global average pool, linear
//   mobilenet-tiny  stem conv, depthwise-separable blocks (depthwise 3x3 + pointwise 1x1),
//                   global average pool, linear
//   gpt-tiny        byte-level language model (models/gpt.h): int64 bytes [N, T] -> logits
//                   [N, T, 256]; make_model gives the default sizes, train::build_net the
//                   sizes of a config's "lm" section
//   vit-tiny        Vision Transformer on 4x4 patches (models/vit.h): images -> 10 logits; float
//                   only kinds (layernorm, attention), so no integer runtime / ONNX export yet;
//                   make_model gives the default sizes, train::build_net those of a config's
//                   "vit" section
Net make_model(const std::string& name);  // throws lowbit::Error listing the known names
std::vector<std::string> model_names();      // the CNN / MLP image models (Fashion-MNIST, convertible)
std::vector<std::string> vit_model_names();  // {"vit-tiny"} (Fashion-MNIST; QAT / PTQ runs convert to an encoder .lbq)
std::vector<std::string> lm_model_names();   // {"gpt-tiny"}
std::vector<std::string> all_model_names();  // all of the above

}  // namespace lowbit::models
