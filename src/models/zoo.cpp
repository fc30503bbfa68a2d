// The model zoo. Each builder writes the graph once with lowbit layers; QAT swaps layers by node
// name, so node names are part of the interface (keep them stable).
#include "base/error.h"
#include "models/gpt.h"
#include "models/net.h"
#include "models/vit.h"

namespace lowbit::models {
namespace {

std::shared_ptr<ConvBnActImpl> conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, Activation act,
                                    int64_t groups = 1) {
  ConvSpec s;
  s.in_channels = in;
  s.out_channels = out;
  s.kernel = kernel;
  s.stride = stride;
  s.padding = kernel / 2;  // "same" padding for odd kernels
  s.groups = groups;
  s.batch_norm = true;
  s.activation = act;
  return std::make_shared<ConvBnActImpl>(s);
}

std::shared_ptr<LinearActImpl> linear(int64_t in, int64_t out, Activation act) {
  return std::make_shared<LinearActImpl>(LinearSpec{in, out, act});
}

std::shared_ptr<MaxPoolImpl> maxpool2() { return std::make_shared<MaxPoolImpl>(PoolSpec{2, 2, 0}); }

Net make_mlp() {
  Net net("mlp");
  int v = net->add("flatten", std::make_shared<FlattenImpl>(), {0});
  v = net->add("fc1", linear(784, 256, Activation::ReLU), {v});
  v = net->add("fc2", linear(256, 128, Activation::ReLU), {v});
  net->add("fc3", linear(128, 10, Activation::None), {v});
  return net;
}

Net make_cnn() {
  Net net("cnn");
  int v = net->add("conv1", conv(1, 32, 3, 1, Activation::ReLU), {0});
  v = net->add("pool1", maxpool2(), {v});
  v = net->add("conv2", conv(32, 64, 3, 1, Activation::ReLU), {v});
  v = net->add("pool2", maxpool2(), {v});
  v = net->add("flatten", std::make_shared<FlattenImpl>(), {v});
  v = net->add("fc1", linear(64 * 7 * 7, 128, Activation::ReLU), {v});
  net->add("fc2", linear(128, 10, Activation::None), {v});
  return net;
}

// Basic block: conv-BN-ReLU, conv-BN, plus a shortcut (identity, or 1x1 conv + BN when the shape
// changes), then add + ReLU.
int add_basic_block(Net& net, const std::string& prefix, int in_value, int64_t in, int64_t out, int64_t stride) {
  int h = net->add(prefix + "_conv1", conv(in, out, 3, stride, Activation::ReLU), {in_value});
  h = net->add(prefix + "_conv2", conv(out, out, 3, 1, Activation::None), {h});
  int shortcut = in_value;
  if (stride != 1 || in != out) {
    shortcut = net->add(prefix + "_shortcut", conv(in, out, 1, stride, Activation::None), {in_value});
  }
  return net->add(prefix + "_add", std::make_shared<AddActImpl>(Activation::ReLU), {h, shortcut});
}

Net make_resnet8() {
  Net net("resnet8");
  int v = net->add("stem", conv(1, 16, 3, 1, Activation::ReLU), {0});
  v = add_basic_block(net, "stage1", v, 16, 16, 1);  // 28x28
  v = add_basic_block(net, "stage2", v, 16, 32, 2);  // 14x14
  v = add_basic_block(net, "stage3", v, 32, 64, 2);  // 7x7
  v = net->add("gap", std::make_shared<GlobalAvgPoolImpl>(), {v});
  net->add("fc", linear(64, 10, Activation::None), {v});
  return net;
}

// Depthwise 3x3 (groups = channels) + BN + ReLU6, then pointwise 1x1 + BN + ReLU6.
int add_separable_block(Net& net, const std::string& prefix, int in_value, int64_t in, int64_t out, int64_t stride) {
  int v = net->add(prefix + "_dw", conv(in, in, 3, stride, Activation::ReLU6, /*groups=*/in), {in_value});
  return net->add(prefix + "_pw", conv(in, out, 1, 1, Activation::ReLU6), {v});
}

Net make_mobilenet_tiny() {
  Net net("mobilenet-tiny");
  int v = net->add("stem", conv(1, 16, 3, 1, Activation::ReLU6), {0});
  v = add_separable_block(net, "block1", v, 16, 32, 2);   // 14x14
  v = add_separable_block(net, "block2", v, 32, 64, 1);   // 14x14
  v = add_separable_block(net, "block3", v, 64, 128, 2);  // 7x7
  v = add_separable_block(net, "block4", v, 128, 128, 1); // 7x7
  v = net->add("gap", std::make_shared<GlobalAvgPoolImpl>(), {v});
  net->add("fc", linear(128, 10, Activation::None), {v});
  return net;
}

}  // namespace

std::vector<std::string> model_names() { return {"mlp", "cnn", "resnet8", "mobilenet-tiny"}; }
std::vector<std::string> vit_model_names() { return {"vit-tiny"}; }
std::vector<std::string> lm_model_names() { return {"gpt-tiny"}; }
std::vector<std::string> all_model_names() {
  auto names = model_names();
  for (const auto& n : vit_model_names()) names.push_back(n);
  for (const auto& n : lm_model_names()) names.push_back(n);
  return names;
}

Net make_model(const std::string& name) {
  if (name == "mlp") return make_mlp();
  if (name == "cnn") return make_cnn();
  if (name == "resnet8") return make_resnet8();
  if (name == "mobilenet-tiny") return make_mobilenet_tiny();
  if (name == "gpt-tiny") return make_gpt(GptOptions{});  // sizes from the config: train::build_net
  if (name == "vit-tiny") return make_vit(VitOptions{});  // likewise
  std::string known;
  for (const auto& n : all_model_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown model '" + name + "' (known models: " + known + ")");
}

}  // namespace lowbit::models
