#include <gtest/gtest.h>

#include "base/error.h"
#include "models/net.h"

namespace lowbit::models {
namespace {

int64_t count_parameters(Net& net) {
  int64_t n = 0;
  for (const auto& p : net->parameters()) n += p.numel();
  return n;
}

template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(ModelZoo, EveryModelMapsImagesToTenLogits) {
  torch::manual_seed(0);
  for (const auto& name : model_names()) {
    Net net = make_model(name);
    EXPECT_EQ(net->model_name(), name);
    auto y = net->forward(torch::rand({3, 1, 28, 28}));
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{3, 10})) << name;
    EXPECT_TRUE(torch::isfinite(y).all().item<bool>()) << name;
  }
}

TEST(ModelZoo, CnnParameterCountByHand) {
  Net net = make_model("cnn");
  const int64_t conv1 = 32 * 1 * 3 * 3 + 2 * 32;   // weights (no bias: BN follows) + BN gamma, beta
  const int64_t conv2 = 64 * 32 * 3 * 3 + 2 * 64;
  const int64_t fc1 = 64 * 7 * 7 * 128 + 128;
  const int64_t fc2 = 128 * 10 + 10;
  EXPECT_EQ(count_parameters(net), conv1 + conv2 + fc1 + fc2);
  EXPECT_EQ(count_parameters(net), 421738);
  std::vector<std::string> names;
  for (const auto& n : net->nodes()) names.push_back(n.name);
  EXPECT_EQ(names, (std::vector<std::string>{"conv1", "pool1", "conv2", "pool2", "flatten", "fc1", "fc2"}));
  // BN running statistics are buffers, saved with the model.
  EXPECT_TRUE(net->named_buffers().contains("conv1.bn.running_mean"));
}

TEST(ModelZoo, Resnet8Structure) {
  Net net = make_model("resnet8");
  const auto& add = net->node("stage2_add");
  EXPECT_EQ(add.layer->kind(), "add");
  ASSERT_EQ(add.inputs.size(), 2u);
  // stage2 changes shape: its shortcut is a 1x1 stride-2 conv without activation.
  auto shortcut = std::dynamic_pointer_cast<ConvBnActImpl>(net->node("stage2_shortcut").layer);
  ASSERT_TRUE(shortcut);
  EXPECT_EQ(shortcut->spec().kernel, 1);
  EXPECT_EQ(shortcut->spec().stride, 2);
  EXPECT_EQ(shortcut->spec().activation, Activation::None);
  // stage1 keeps the shape: identity shortcut, reading the stem's output.
  EXPECT_THROW(net->node("stage1_shortcut"), Error);
  const auto& stage1_add = net->node("stage1_add");
  EXPECT_EQ(stage1_add.inputs[1], 1);  // value 1 = output of node 0 (stem)
  int convs = 0;
  for (const auto& n : net->nodes()) convs += n.layer->kind() == "conv" && n.name.find("shortcut") == std::string::npos;
  EXPECT_EQ(convs, 7);  // stem + 3 blocks x 2 (+ fc = 8 weight layers on the main path)
}

TEST(ModelZoo, MobilenetTinyUsesDepthwiseConvs) {
  Net net = make_model("mobilenet-tiny");
  auto dw = std::dynamic_pointer_cast<ConvBnActImpl>(net->node("block1_dw").layer);
  ASSERT_TRUE(dw);
  EXPECT_EQ(dw->spec().groups, dw->spec().in_channels);
  EXPECT_EQ(dw->spec().groups, dw->spec().out_channels);
  EXPECT_EQ(dw->conv->weight.size(1), 1);
  auto pw = std::dynamic_pointer_cast<ConvBnActImpl>(net->node("block1_pw").layer);
  ASSERT_TRUE(pw);
  EXPECT_EQ(pw->spec().kernel, 1);
}

TEST(ModelZoo, InitialisationIsDeterministicUnderManualSeed) {
  torch::manual_seed(42);
  Net a = make_model("resnet8");
  torch::manual_seed(42);
  Net b = make_model("resnet8");
  auto pa = a->parameters();
  auto pb = b->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i]));
  torch::manual_seed(43);
  Net c = make_model("resnet8");
  EXPECT_FALSE(torch::equal(pa[0], c->parameters()[0]));
}

TEST(ModelZoo, UnknownModelListsKnownNames) {
  const auto msg = error_of([] { make_model("vgg16"); });
  EXPECT_NE(msg.find("'vgg16'"), std::string::npos) << msg;
  for (const auto& name : model_names()) EXPECT_NE(msg.find(name), std::string::npos) << msg;
}

TEST(NetGraph, ReplaceLayerSwapsNodeAndSubmodule) {
  Net net = make_model("mlp");
  auto replacement = std::make_shared<LinearActImpl>(LinearSpec{128, 10, Activation::None});
  {
    torch::NoGradGuard no_grad;
    replacement->linear->weight.fill_(0.0);
    replacement->linear->bias.fill_(1.5);
  }
  net->replace_layer("fc3", replacement);
  EXPECT_EQ(net->node("fc3").layer.get(), replacement.get());
  auto params = net->named_parameters();
  EXPECT_TRUE(params["fc3.linear.bias"].is_same(replacement->linear->bias));
  auto y = net->forward(torch::rand({2, 1, 28, 28}));
  EXPECT_TRUE(torch::allclose(y, torch::full({2, 10}, 1.5)));
  const auto msg = error_of([&] { net->replace_layer("fc9", replacement); });
  EXPECT_NE(msg.find("'fc9'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("fc1, fc2, fc3"), std::string::npos) << msg;
}

// An input layer that doubles its input, to see that forward applies it first.
class DoubleImpl : public LayerImpl {
 public:
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override { return inputs[0] * 2; }
  std::string kind() const override { return "double"; }
};

TEST(NetGraph, InputLayerRunsBeforeTheFirstNode) {
  Net net("toy");
  net->add("flatten", std::make_shared<FlattenImpl>(), {0});
  auto x = torch::rand({1, 1, 2, 2});
  net->set_input_layer(std::make_shared<DoubleImpl>());
  EXPECT_TRUE(torch::allclose(net->forward(x), x.flatten(1) * 2));
  net->set_input_layer(std::make_shared<DoubleImpl>());  // replacing is allowed too
  EXPECT_TRUE(net->input_layer() != nullptr);
  net->set_input_layer(nullptr);
  EXPECT_TRUE(torch::allclose(net->forward(x), x.flatten(1)));
}

TEST(NetGraph, AddValidatesNamesAndInputs) {
  Net net("toy");
  const int v = net->add("flatten", std::make_shared<FlattenImpl>(), {0});
  EXPECT_EQ(v, 1);
  auto lin = [] { return std::make_shared<LinearActImpl>(LinearSpec{4, 4, Activation::ReLU}); };
  EXPECT_NE(error_of([&] { net->add("flatten", lin(), {1}); }).find("duplicate"), std::string::npos);
  EXPECT_NE(error_of([&] { net->add("FC1", lin(), {1}); }).find("[a-z0-9_]+"), std::string::npos);
  EXPECT_NE(error_of([&] { net->add("", lin(), {1}); }).find("[a-z0-9_]+"), std::string::npos);
  EXPECT_NE(error_of([&] { net->add("input", lin(), {1}); }).find("reserved"), std::string::npos);
  EXPECT_NE(error_of([&] { net->add("fc1", lin(), {2}); }).find("input value 2 does not exist"), std::string::npos);
  EXPECT_NE(error_of([&] { net->add("fc1", lin(), {-1}); }).find("does not exist"), std::string::npos);
  EXPECT_NE(error_of([&] { net->add("fc1", lin(), {}); }).find("at least one input"), std::string::npos);
  EXPECT_NE(error_of([&] { net->add("fc1", nullptr, {1}); }).find("null"), std::string::npos);
  EXPECT_EQ(net->nodes().size(), 1u);
  EXPECT_NE(error_of([] { Net empty("empty"); empty->forward(torch::rand({1, 1, 2, 2})); }).find("no nodes"),
            std::string::npos);
}

TEST(Layers, ActivationsAndPools) {
  auto x = torch::tensor({-1.0f, 3.0f, 8.0f});
  EXPECT_TRUE(torch::equal(apply_activation(x, Activation::ReLU), torch::tensor({0.0f, 3.0f, 8.0f})));
  EXPECT_TRUE(torch::equal(apply_activation(x, Activation::ReLU6), torch::tensor({0.0f, 3.0f, 6.0f})));
  EXPECT_EQ(activation_name(Activation::ReLU6), "relu6");
  auto img = torch::arange(16, torch::kFloat32).reshape({1, 1, 4, 4});
  EXPECT_EQ(MaxPoolImpl(PoolSpec{2, 2, 0}).forward({img}).sizes(), (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_FLOAT_EQ(MaxPoolImpl(PoolSpec{2, 2, 0}).forward({img})[0][0][0][0].item<float>(), 5.0f);
  // count_include_pad = false: the corner window averages its 4 real pixels only.
  EXPECT_FLOAT_EQ(AvgPoolImpl(PoolSpec{3, 2, 1}).forward({img})[0][0][0][0].item<float>(), (0 + 1 + 4 + 5) / 4.0f);
  EXPECT_TRUE(torch::allclose(GlobalAvgPoolImpl().forward({img}), torch::full({1, 1}, 7.5f)));
  EXPECT_TRUE(torch::equal(AddActImpl(Activation::ReLU).forward({x, x}), torch::tensor({0.0f, 6.0f, 16.0f})));
  EXPECT_THROW(AddActImpl(Activation::None).forward({x}), Error);
  ConvSpec bad;
  bad.in_channels = 3;
  bad.out_channels = 4;
  bad.groups = 2;
  EXPECT_THROW(ConvBnActImpl{bad}, Error);
}

}  // namespace
}  // namespace lowbit::models
