// ONNX import: the zoo's own FP32 exports read back, graphs written here that use each supported
// operator, and bad files. Logits are compared with LibTorch (the net that was exported) and with
// ONNX Runtime on the same file.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <functional>

#include "base/error.h"
#include "convert/integer_simulation.h"
#include "convert/to_runtime.h"
#include "export/export_test_support.h"
#include "export/float_export.h"
#include "export/onnx_graph.h"
#include "export/qdq_export.h"
#include "runtime/session.h"
#include "import/onnx_reader.h"
#include "models/imported_net.h"
#include "train/checkpoint.h"

namespace lowbit {
namespace {

using onnx::Attribute;

// max |a - b| / max(1, max |b|): the tolerance scale for logits.
double relative_difference(const torch::Tensor& a, const torch::Tensor& b) {
  const double scale = std::max(1.0, b.abs().max().item<double>());
  return (a - b).abs().max().item<double>() / scale;
}

torch::Tensor logits_of(models::Net& net, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  net->eval();
  return net->forward(x);
}

// Gives every batch norm running statistics far from (0, 1), so that folding them matters.
void randomise_batch_norms(models::Net& net) {
  torch::NoGradGuard no_grad;
  for (const auto& node : net->nodes()) {
    if (auto c = std::dynamic_pointer_cast<models::ConvBnActImpl>(node.layer); c && c->bn) {
      c->bn->running_mean.uniform_(-0.5, 0.5);
      c->bn->running_var.uniform_(0.5, 2.0);
      c->bn->weight.uniform_(0.5, 1.5);
      c->bn->bias.uniform_(-0.2, 0.2);
    }
  }
}

std::string save_model(const onnx::Model& model, const std::string& path) {
  onnx::save(model, path);
  return path;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(OnnxImport, ZooExportsReadBackWithTheSameLogits) {
  const std::string dir = testing::fresh_test_dir();
  for (const std::string name : {"mlp", "cnn", "resnet8", "mobilenet-tiny"}) {
    SCOPED_TRACE(name);
    torch::manual_seed(3);
    models::Net net = models::make_model(name);
    randomise_batch_norms(net);
    const torch::Tensor x = torch::rand({6, 1, 28, 28});
    const torch::Tensor expected = logits_of(net, x);
    // Opset 17: the newest that Debian's ONNX checker (1.12) knows, so the checker runs too.
    const std::string path = save_model(onnx::float_model(net, 17), dir + "/" + name + ".onnx");

    models::Net imported = train::load_net(path);
    EXPECT_EQ(imported->model_name(), "onnx");
    EXPECT_LT(relative_difference(logits_of(imported, x), expected), 1e-5);
    // Each zoo layer comes back as one lowbit layer: batch norm and activation fold into their
    // conv, and the Flatten the exporter puts between global pooling and the classifier is a new
    // name for the pooled [N, C] tensor.
    EXPECT_EQ(imported->nodes().size(), net->nodes().size());
    const import::ImportedModel m = import::read_onnx_model(path);
    EXPECT_EQ(m.input_shape, (std::vector<int64_t>{1, 28, 28}));
    EXPECT_EQ(m.num_outputs, 10);
    if (name == "cnn") {
      const auto& conv1 = m.layers.at(0);
      EXPECT_EQ(conv1.kind, "conv");
      EXPECT_TRUE(conv1.batch_norm);
      EXPECT_EQ(conv1.activation, "relu");
    }
  }
}

TEST(OnnxImport, ZooExportsMatchOnnxRuntime) {
  LOWBIT_SKIP_WITHOUT_ORT();
  const std::string dir = testing::fresh_test_dir();
  for (const std::string name : {"cnn", "resnet8", "mobilenet-tiny"}) {
    SCOPED_TRACE(name);
    torch::manual_seed(4);
    models::Net net = models::make_model(name);
    randomise_batch_norms(net);
    const std::string path = save_model(onnx::float_model(net, 17), dir + "/" + name + ".onnx");
    const torch::Tensor x = torch::rand({8, 1, 28, 28});
    models::Net imported = train::load_net(path);
    const torch::Tensor ort = testing::run_ort(path, x, dir);
    ASSERT_TRUE(ort.defined());
    EXPECT_LT(relative_difference(logits_of(imported, x), ort), 1e-4);
  }
}

// ---- graphs written here, one feature each --------------------------------------------------

struct GraphBuilder {
  onnx::Model model;
  explicit GraphBuilder(std::vector<int64_t> input_dims, int64_t opset = 17) {
    model.opset = opset;
    model.producer_name = "lowbit-test";
    model.graph.name = "test";
    model.graph.inputs.push_back({"x", onnx::DataType::Float, std::move(input_dims)});
  }
  std::string weight(const std::string& name, std::vector<int64_t> dims, float scale = 0.3f) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    const torch::Tensor t = torch::randn({n}) * scale;
    model.graph.initializers.push_back(onnx::make_float_tensor(name, dims, std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + n)));
    return name;
  }
  std::string floats(const std::string& name, std::vector<int64_t> dims, const std::vector<float>& v) {
    model.graph.initializers.push_back(onnx::make_float_tensor(name, std::move(dims), v));
    return name;
  }
  std::string ints(const std::string& name, const std::vector<int64_t>& v) {
    model.graph.initializers.push_back(onnx::make_int64_tensor(name, {static_cast<int64_t>(v.size())}, v));
    return name;
  }
  std::string node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                   std::vector<Attribute> attributes = {}) {
    model.graph.nodes.push_back(onnx::Node{op, name, std::move(inputs), {name + "_out"}, std::move(attributes)});
    return name + "_out";
  }
  std::string finish(const std::string& output, int64_t classes, const std::string& path) {
    model.graph.nodes.back().outputs[0] = "logits";
    (void)output;
    model.graph.outputs.push_back({"logits", onnx::DataType::Float, {-1, classes}});
    return save_model(model, path);
  }
};

Attribute ints_attr(const char* name, std::vector<int64_t> v) { return Attribute::make_ints(name, std::move(v)); }

// Conv with bias -> BatchNormalization (epsilon 1e-3) -> Clip(0, 6) -> Relu; average pooling; a
// grouped conv without bias -> Relu -> Clip(0, 6) (PyTorch's relu6); max pooling with padding; Identity and Dropout; a flatten computed
// as Shape -> Gather -> Unsqueeze -> Concat -> Reshape; MatMul + Add + Relu; Gemm with transB = 0,
// alpha and beta; a weight given as Transpose(initializer) and a bias as Mul(initializer, 2).
std::string write_chain_graph(const std::string& path) {
  GraphBuilder g({-1, 3, 12, 12});
  std::string v = g.node("Conv", "stem/conv", {"x", g.weight("w1", {8, 3, 3, 3}), g.weight("b1", {8})},
                         {ints_attr("pads", {1, 1, 1, 1}), ints_attr("strides", {1, 1})});
  std::vector<float> scale(8), bias(8), mean(8), var(8);
  for (int k = 0; k < 8; ++k) {
    scale[k] = 0.8f + 0.05f * k;
    bias[k] = 0.1f * (k - 4);
    mean[k] = 0.05f * k - 0.2f;
    var[k] = 0.5f + 0.1f * k;
  }
  v = g.node("BatchNormalization", "stem/bn",
             {v, g.floats("s", {8}, scale), g.floats("bb", {8}, bias), g.floats("m", {8}, mean), g.floats("var", {8}, var)},
             {Attribute::make_float("epsilon", 1e-3f)});
  v = g.node("Clip", "stem/relu6", {v, g.floats("lo", {}, {0.0f}), g.floats("hi", {}, {6.0f})});
  v = g.node("Relu", "stem/relu_again", {v});  // ReLU6 then ReLU: still ReLU6
  v = g.node("AveragePool", "pool1", {v}, {ints_attr("kernel_shape", {2, 2}), ints_attr("strides", {2, 2})});  // 6x6
  v = g.node("Conv", "dw", {v, g.weight("w2", {8, 4, 3, 3})},
             {ints_attr("pads", {1, 1, 1, 1}), Attribute::make_int("group", 2), ints_attr("kernel_shape", {3, 3})});
  v = g.node("Relu", "dw_relu", {v});
  v = g.node("Clip", "dw_relu6", {v, g.floats("lo2", {}, {0.0f}), g.floats("hi2", {}, {6.0f})});  // PyTorch's relu6: Relu -> Clip
  v = g.node("MaxPool", "pool2", {v}, {ints_attr("kernel_shape", {3, 3}), ints_attr("strides", {2, 2}), ints_attr("pads", {1, 1, 1, 1})});  // 3x3
  v = g.node("Identity", "id", {v});
  v = g.node("Dropout", "drop", {v});
  const std::string shape = g.node("Shape", "shape", {v});
  const std::string batch = g.node("Gather", "batch", {shape, g.ints("zero", {0})});
  const std::string minus_one = g.ints("minus_one", {-1});
  const std::string target = g.node("Concat", "target", {batch, minus_one}, {Attribute::make_int("axis", 0)});
  v = g.node("Reshape", "flatten", {v, target});  // [N, 72]
  const std::string wt = g.node("Transpose", "w3_t", {g.weight("w3", {16, 72})});  // [72, 16]
  v = g.node("MatMul", "fc1", {v, wt});
  const std::string b3 = g.node("Mul", "b3_x2", {g.weight("b3", {16}), g.floats("two", {}, {2.0f})});
  v = g.node("Add", "fc1_bias", {v, b3});
  v = g.node("Relu", "fc1_relu", {v});
  v = g.node("Gemm", "fc2", {v, g.weight("w4", {16, 5}), g.weight("b4", {1, 5})},
             {Attribute::make_float("alpha", 0.5f), Attribute::make_float("beta", 2.0f)});
  return g.finish(v, 5, path);
}

// Residual: conv -> Relu -> conv, Add with the block input, Relu; GlobalAveragePool -> Flatten ->
// Gemm(transB = 1). Opset 13 (Clip, Squeeze inputs).
std::string write_residual_graph(const std::string& path) {
  GraphBuilder g({-1, 4, 8, 8}, 13);
  std::string stem = g.node("Conv", "stem", {"x", g.weight("w0", {6, 4, 1, 1}), g.weight("b0", {6})});
  stem = g.node("Relu", "stem_relu", {stem});
  std::string h = g.node("Conv", "block_conv1", {stem, g.weight("w1", {6, 6, 3, 3})}, {ints_attr("pads", {1, 1, 1, 1})});
  h = g.node("Relu", "block_relu1", {h});
  h = g.node("Conv", "block_conv2", {h, g.weight("w2", {6, 6, 3, 3}), g.weight("b2", {6})}, {ints_attr("pads", {1, 1, 1, 1})});
  h = g.node("Add", "block_add", {h, stem});
  h = g.node("Relu", "block_relu2", {h});
  h = g.node("GlobalAveragePool", "gap", {h});
  h = g.node("Flatten", "flat", {h});
  h = g.node("Gemm", "head", {h, g.weight("w3", {3, 6}), g.weight("b3", {3})}, {Attribute::make_int("transB", 1)});
  return g.finish(h, 3, path);
}

// Element-wise functions that are not a clamp, each after a different producer: conv ->
// LeakyRelu(0.2); depthwise conv -> HardSwish; 1x1 conv -> Sigmoid; 1x1 conv -> HardSigmoid
// (PyTorch's alpha 1/6); 1x1 conv -> x * Sigmoid(x) (SiLU); 1x1 conv -> HardSigmoid(x) * x (hard
// swish); GlobalAveragePool -> Flatten -> Gemm -> Tanh -> Gemm.
std::string write_pointwise_graph(const std::string& path) {
  GraphBuilder g({-1, 3, 8, 8});
  std::string v = g.node("Conv", "conv1", {"x", g.weight("w1", {8, 3, 3, 3}), g.weight("b1", {8})}, {ints_attr("pads", {1, 1, 1, 1})});
  v = g.node("LeakyRelu", "leaky", {v}, {Attribute::make_float("alpha", 0.2f)});
  v = g.node("Conv", "dw", {v, g.weight("w2", {8, 1, 3, 3}, 0.5f), g.weight("b2", {8})},
             {ints_attr("pads", {1, 1, 1, 1}), Attribute::make_int("group", 8)});
  v = g.node("HardSwish", "hswish", {v});
  v = g.node("Conv", "pw1", {v, g.weight("w3", {8, 8, 1, 1}), g.weight("b3", {8})});
  v = g.node("Sigmoid", "sig", {v});
  v = g.node("Conv", "pw2", {v, g.weight("w4", {8, 8, 1, 1}, 1.0f), g.weight("b4", {8})});
  v = g.node("HardSigmoid", "hsig", {v}, {Attribute::make_float("alpha", 1.0f / 6.0f), Attribute::make_float("beta", 0.5f)});
  v = g.node("Conv", "pw3", {v, g.weight("w7", {8, 8, 1, 1}, 1.0f), g.weight("b7", {8})});
  const std::string gate = g.node("Sigmoid", "silu_gate", {v});
  v = g.node("Mul", "silu", {v, gate});  // PyTorch's SiLU export
  v = g.node("Conv", "pw4", {v, g.weight("w8", {8, 8, 1, 1}, 0.7f), g.weight("b8", {8})});
  const std::string hgate = g.node("HardSigmoid", "hswish_gate", {v},
                                   {Attribute::make_float("alpha", 1.0f / 6.0f), Attribute::make_float("beta", 0.5f)});
  v = g.node("Mul", "hswish2", {hgate, v});  // hardswish below opset 14, gate first
  v = g.node("GlobalAveragePool", "gap", {v});
  v = g.node("Flatten", "flat", {v});
  v = g.node("Gemm", "fc1", {v, g.weight("w5", {6, 8}, 1.0f), g.weight("b5", {6})}, {Attribute::make_int("transB", 1)});
  v = g.node("Tanh", "tanh", {v});
  v = g.node("Gemm", "fc2", {v, g.weight("w6", {4, 6}, 1.0f), g.weight("b6", {4})}, {Attribute::make_int("transB", 1)});
  return g.finish(v, 4, path);
}

// Scaling and shifting by constants: the input normalisation (x - 0.286) / 0.353 exported inside
// the model (Sub, then Div by a [1, 1, 1, 1] constant), conv -> Relu -> Mul 0.5 -> Add 0.25 (not
// foldable into the conv, which has an activation), and 1 - x after a Gemm.
std::string write_affine_graph(const std::string& path) {
  GraphBuilder g({-1, 1, 8, 8});
  std::string v = g.node("Sub", "normalize/sub", {"x", g.floats("mean", {}, {0.286f})});
  v = g.node("Div", "normalize/div", {v, g.floats("std", {1, 1, 1, 1}, {0.353f})});
  v = g.node("Conv", "conv1", {v, g.weight("w1", {6, 1, 3, 3}), g.weight("b1", {6})}, {ints_attr("pads", {1, 1, 1, 1})});
  v = g.node("Relu", "relu1", {v});
  v = g.node("Mul", "half", {v, g.floats("half_c", {}, {0.5f})});
  v = g.node("Add", "shift", {g.floats("quarter", {1}, {0.25f}), v});
  v = g.node("Conv", "conv2", {v, g.weight("w2", {6, 6, 1, 1}), g.weight("b2", {6})});
  v = g.node("Relu", "relu2", {v});
  v = g.node("GlobalAveragePool", "gap", {v});
  v = g.node("Flatten", "flat", {v});
  v = g.node("Gemm", "fc1", {v, g.weight("w3", {5, 6}, 1.0f), g.weight("b3", {5})}, {Attribute::make_int("transB", 1)});
  v = g.node("Sub", "one_minus", {g.floats("one", {}, {1.0f}), v});
  v = g.node("Gemm", "fc2", {v, g.weight("w4", {3, 5}, 1.0f), g.weight("b4", {3})}, {Attribute::make_int("transB", 1)});
  return g.finish(v, 3, path);
}

// Channel concatenation of activations: an Inception-style block (1x1 conv, 3x3 conv and a 3x3
// max pool of one input, concatenated), then a DenseNet-style concat of a conv's output with its
// own input (axis -3), GlobalAveragePool -> Flatten -> Gemm.
std::string write_concat_graph(const std::string& path) {
  GraphBuilder g({-1, 3, 8, 8}, 13);
  std::string stem = g.node("Conv", "stem", {"x", g.weight("w0", {6, 3, 3, 3}), g.weight("b0", {6})}, {ints_attr("pads", {1, 1, 1, 1})});
  stem = g.node("Relu", "stem_relu", {stem});
  std::string a = g.node("Conv", "branch_1x1", {stem, g.weight("w1", {4, 6, 1, 1}), g.weight("b1", {4})});
  a = g.node("Relu", "branch_1x1_relu", {a});
  std::string b = g.node("Conv", "branch_3x3", {stem, g.weight("w2", {5, 6, 3, 3}), g.weight("b2", {5})}, {ints_attr("pads", {1, 1, 1, 1})});
  b = g.node("Relu", "branch_3x3_relu", {b});
  const std::string c = g.node("MaxPool", "branch_pool", {stem},
                               {ints_attr("kernel_shape", {3, 3}), ints_attr("strides", {1, 1}), ints_attr("pads", {1, 1, 1, 1})});
  std::string v = g.node("Concat", "inception_cat", {a, b, c}, {Attribute::make_int("axis", 1)});  // 15 channels
  std::string d = g.node("Conv", "dense_conv", {v, g.weight("w3", {7, 15, 3, 3}), g.weight("b3", {7})}, {ints_attr("pads", {1, 1, 1, 1})});
  d = g.node("Relu", "dense_relu", {d});
  v = g.node("Concat", "dense_cat", {v, d}, {Attribute::make_int("axis", -3)});  // 22 channels
  v = g.node("GlobalAveragePool", "gap", {v});
  v = g.node("Flatten", "flat", {v});
  v = g.node("Gemm", "head", {v, g.weight("w4", {4, 22}, 1.0f), g.weight("b4", {4})}, {Attribute::make_int("transB", 1)});
  return g.finish(v, 4, path);
}

// Dilated convolutions: dense (dilation 2, bias), depthwise (dilation 3, stride 2), grouped
// (dilation 2, padding less than the dilated extent) and a dilation 2 conv padded by 2, explicitly or
// (same_upper) by auto_pad SAME_UPPER, which ONNX Runtime 1.30 refuses with dilations; GlobalAveragePool
// -> Flatten -> Gemm.
std::string write_dilated_graph(const std::string& path, bool same_upper = false) {
  GraphBuilder g({-1, 3, 12, 12});
  std::string v = g.node("Conv", "dil_dense", {"x", g.weight("w1", {8, 3, 3, 3}), g.weight("b1", {8})},
                         {ints_attr("pads", {2, 2, 2, 2}), ints_attr("dilations", {2, 2})});  // 12x12
  v = g.node("Relu", "dil_dense_relu", {v});
  v = g.node("Conv", "dil_dw", {v, g.weight("w2", {8, 1, 3, 3}), g.weight("b2", {8})},
             {ints_attr("pads", {3, 3, 3, 3}), ints_attr("dilations", {3, 3}), ints_attr("strides", {2, 2}),
              Attribute::make_int("group", 8)});  // 6x6
  v = g.node("Relu", "dil_dw_relu", {v});
  v = g.node("Conv", "dil_grouped", {v, g.weight("w3", {8, 4, 3, 3})},
             {ints_attr("pads", {1, 1, 1, 1}), ints_attr("dilations", {2, 2}), Attribute::make_int("group", 2)});  // 4x4
  v = g.node("Relu", "dil_grouped_relu", {v});
  v = g.node("Conv", "dil_same", {v, g.weight("w4", {6, 8, 3, 3}), g.weight("b4", {6})},
             {same_upper ? Attribute::make_string("auto_pad", "SAME_UPPER") : ints_attr("pads", {2, 2, 2, 2}),
              ints_attr("dilations", {2, 2})});  // 4x4
  v = g.node("GlobalAveragePool", "gap", {v});
  v = g.node("Flatten", "flat", {v});
  v = g.node("Gemm", "head", {v, g.weight("w5", {4, 6}, 1.0f), g.weight("b5", {4})}, {Attribute::make_int("transB", 1)});
  return g.finish(v, 4, path);
}

TEST(OnnxImport, DilatedConvsAreReadAndSurviveJson) {
  const std::string dir = testing::fresh_test_dir();
  torch::manual_seed(12);
  const import::ImportedModel m = import::read_onnx_model(write_dilated_graph(dir + "/dilated.onnx", true));
  std::vector<int64_t> dilations, paddings;
  for (const auto& l : m.layers)
    if (l.kind == "conv") {
      dilations.push_back(l.dilation);
      paddings.push_back(l.padding);
    }
  EXPECT_EQ(dilations, (std::vector<int64_t>{2, 3, 2, 2}));
  EXPECT_EQ(paddings, (std::vector<int64_t>{2, 3, 1, 2}));  // SAME_UPPER: (extent 5 - 1) / 2
  const import::ImportedModel back = import::structure_from_json(import::structure_to_json(m));
  ASSERT_EQ(back.layers.size(), m.layers.size());
  for (size_t k = 0; k < m.layers.size(); ++k) EXPECT_EQ(back.layers[k].dilation, m.layers[k].dilation);
  // A config written before dilation existed (no key) reads as dilation 1.
  nlohmann::json old = import::structure_to_json(m);
  old["layers"][0].erase("dilation");
  EXPECT_EQ(import::structure_from_json(old).layers[0].dilation, 1);
  EXPECT_FALSE(import::structure_to_json(import::read_onnx_model(write_residual_graph(dir + "/residual.onnx")))
                   .dump()
                   .find("dilation") != std::string::npos);  // undilated models' configs are unchanged
}

TEST(OnnxImport, EachOperatorMatchesOnnxRuntime) {
  LOWBIT_SKIP_WITHOUT_ORT();
  const std::string dir = testing::fresh_test_dir();
  torch::manual_seed(5);
  struct Case {
    std::string path;
    torch::Tensor x;
  };
  const std::vector<Case> cases = {{write_chain_graph(dir + "/chain.onnx"), torch::randn({5, 3, 12, 12})},
                                   {write_residual_graph(dir + "/residual.onnx"), torch::randn({4, 4, 8, 8})},
                                   {write_pointwise_graph(dir + "/pointwise.onnx"), torch::randn({6, 3, 8, 8}) * 2},
                                   {write_affine_graph(dir + "/affine.onnx"), torch::rand({6, 1, 8, 8})},
                                   {write_concat_graph(dir + "/concat.onnx"), torch::randn({5, 3, 8, 8})},
                                   {write_dilated_graph(dir + "/dilated.onnx"), torch::randn({4, 3, 12, 12})}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    models::Net net = train::load_net(c.path);
    const torch::Tensor ort = testing::run_ort(c.path, c.x, dir);
    ASSERT_TRUE(ort.defined());
    const torch::Tensor ours = logits_of(net, c.x);
    ASSERT_EQ(ours.sizes(), ort.sizes());
    EXPECT_LT(relative_difference(ours, ort), 1e-4);
  }
}

TEST(OnnxImport, LowersToFusedLayers) {
  const std::string dir = testing::fresh_test_dir();
  torch::manual_seed(6);
  const import::ImportedModel chain = import::read_onnx_model(write_chain_graph(dir + "/chain.onnx"));
  std::vector<std::string> kinds;
  for (const auto& l : chain.layers) kinds.push_back(l.kind + ":" + l.activation);
  EXPECT_EQ(kinds, (std::vector<std::string>{"conv:relu6", "avgpool:none", "conv:relu6", "maxpool:none", "flatten:none",
                                             "linear:relu", "linear:none"}));
  EXPECT_EQ(chain.layers[0].name, "stem_conv");
  EXPECT_TRUE(chain.layers[0].batch_norm);
  EXPECT_EQ(chain.layers[2].groups, 2);
  EXPECT_TRUE(chain.layers[5].bias);  // MatMul + Add
  EXPECT_EQ(chain.input_shape, (std::vector<int64_t>{3, 12, 12}));
  const import::ImportedModel res = import::read_onnx_model(write_residual_graph(dir + "/residual.onnx"));
  ASSERT_EQ(res.layers.size(), 6u);  // stem, conv1, conv2, add, gap, head (the Flatten after GAP is a new name)
  EXPECT_EQ(res.layers[3].kind, "add");
  EXPECT_EQ(res.layers[3].activation, "relu");
  EXPECT_EQ(res.layers[3].inputs, (std::vector<int>{3, 1}));

  // The structure survives JSON (a run's config), and build_net rebuilds the same net from it.
  const nlohmann::json config = {{"model", "onnx"}, {"onnx", import::structure_to_json(res)}};
  models::Net rebuilt = train::build_net(config);
  ASSERT_EQ(rebuilt->nodes().size(), res.layers.size());
  for (size_t k = 0; k < res.layers.size(); ++k) EXPECT_EQ(rebuilt->nodes()[k].name, res.layers[k].name);
}

TEST(OnnxImport, PointwiseFunctionsAreLayersThatSurviveJson) {
  const std::string dir = testing::fresh_test_dir();
  torch::manual_seed(9);
  const import::ImportedModel m = import::read_onnx_model(write_pointwise_graph(dir + "/pointwise.onnx"));
  std::vector<std::string> kinds;
  for (const auto& l : m.layers) kinds.push_back(l.kind + (l.kind == "pointwise" ? ":" + l.function : ""));
  EXPECT_EQ(kinds, (std::vector<std::string>{"conv", "pointwise:leaky_relu", "conv", "pointwise:hard_swish", "conv",
                                             "pointwise:sigmoid", "conv", "pointwise:hard_sigmoid", "conv",
                                             "pointwise:silu", "conv", "pointwise:hard_swish", "gap", "linear",
                                             "pointwise:tanh", "linear"}));
  EXPECT_FLOAT_EQ(m.layers[1].alpha, 0.2f);
  EXPECT_FLOAT_EQ(m.layers[7].alpha, 1.0f / 6.0f);
  EXPECT_FLOAT_EQ(m.layers[7].beta, 0.5f);
  const import::ImportedModel back = import::structure_from_json(import::structure_to_json(m));
  ASSERT_EQ(back.layers.size(), m.layers.size());
  for (size_t k = 0; k < m.layers.size(); ++k) {
    EXPECT_EQ(back.layers[k].function, m.layers[k].function);
    EXPECT_EQ(back.layers[k].alpha, m.layers[k].alpha);
    EXPECT_EQ(back.layers[k].beta, m.layers[k].beta);
  }
  nlohmann::json bad = import::structure_to_json(m);
  bad["layers"][1]["function"] = "swish";
  const std::string message = error_of([&] { import::structure_from_json(bad); });
  EXPECT_NE(message.find("layer 'leaky'"), std::string::npos) << message;
  EXPECT_NE(message.find("swish"), std::string::npos) << message;
}

TEST(OnnxImport, ScalingByConstantsBecomesOneAffineLayerPerChain) {
  const std::string dir = testing::fresh_test_dir();
  torch::manual_seed(11);
  const import::ImportedModel m = import::read_onnx_model(write_affine_graph(dir + "/affine.onnx"));
  std::vector<std::string> kinds;
  for (const auto& l : m.layers) kinds.push_back(l.kind + (l.kind == "pointwise" ? ":" + l.function : ""));
  EXPECT_EQ(kinds, (std::vector<std::string>{"pointwise:affine", "conv", "pointwise:affine", "conv", "gap", "linear",
                                             "pointwise:affine", "linear"}));
  // (x - 0.286) / 0.353 = x / 0.353 - 0.286 / 0.353 (float arithmetic, as the importer composes it)
  EXPECT_FLOAT_EQ(m.layers[0].alpha, 1.0f / 0.353f);
  EXPECT_FLOAT_EQ(m.layers[0].beta, -0.286f / 0.353f);
  EXPECT_EQ(m.layers[0].inputs, (std::vector<int>{0}));
  EXPECT_NE(m.layers[0].onnx_nodes.find("normalize/div"), std::string::npos) << m.layers[0].onnx_nodes;
  EXPECT_EQ(m.layers[2].alpha, 0.5f);
  EXPECT_EQ(m.layers[2].beta, 0.25f);
  EXPECT_EQ(m.layers[6].alpha, -1.0f);  // 1 - x
  EXPECT_EQ(m.layers[6].beta, 1.0f);

  // The FP32 export writes each as Mul + Add; reading that back gives the same logits.
  models::Net net = train::load_net(dir + "/affine.onnx");
  const std::string again = save_model(onnx::float_model(net, 17), dir + "/affine_again.onnx");
  models::Net reread = train::load_net(again);
  const torch::Tensor x = torch::rand({5, 1, 8, 8});
  EXPECT_LT(relative_difference(logits_of(reread, x), logits_of(net, x)), 1e-6);
}

// The element-wise functions through the whole deployment path: QAT-prepare (W8A8) and calibrate
// the imported net on x, convert (each function becomes a lookup op), then the integer runtime on every
// level equals the converter's integer simulation exactly, the fake-quantized model predicts the
// same classes, and ONNX Runtime on the QDQ export (the tables as Gather) gives the runtime's
// predictions.
void expect_exact_lookup_conversion(const std::string& dir, const std::string& path, const std::function<torch::Tensor()>& inputs,
                                    int expected_lookups, runtime::OpKind counted = runtime::OpKind::Lookup) {
  models::Net net = train::load_net(path);
  qat::prepare(net, qat::QatConfig::from_json(nlohmann::json::parse(R"({"weight_bits": 8, "act_bits": 8})")));
  const torch::Tensor x = inputs();
  {
    torch::NoGradGuard no_grad;
    net->train();
    for (int i = 0; i < 4; ++i) net->forward(x);
  }
  const torch::Tensor fake_quant = logits_of(net, x);
  std::vector<convert::ConvertedOp> record;
  const runtime::Model m = convert::to_runtime_model(net, "pointwise", &record);
  int lookups = 0;
  for (const auto& op : m.ops) lookups += op.kind == counted;
  EXPECT_EQ(lookups, expected_lookups);

  const convert::IntegerOutputs sim = convert::simulate_integer(m, x);
  const torch::Tensor xc = x.contiguous();
  std::vector<std::string> levels{"ref"};
  for (const char* isa : {"avx2", "avx512vnni", "neon", "neondot"})
    if (runtime::cpu_supports(runtime::parse_isa(isa))) levels.push_back(isa);
  for (const std::string& isa : levels) {
    runtime::Session session(m, {2, isa});
    const runtime::RunResult r = session.run(xc.data_ptr<float>(), x.size(0));
    const torch::Tensor ints = torch::tensor(std::vector<int64_t>(r.int_logits.begin(), r.int_logits.end())).view({x.size(0), -1});
    EXPECT_TRUE(ints.equal(sim.int_logits)) << isa;
  }
  const double agree = (fake_quant.argmax(1) == sim.predictions).to(torch::kFloat64).mean().item<double>();
  std::cout << path << " W8A8: fake-quant vs integer predictions agree on " << agree * 100 << "%, relative logit difference "
            << relative_difference(sim.logits, fake_quant) << "\n";
  EXPECT_GE(agree, 0.95) << "fake quantization and the integer model predict different classes";
  EXPECT_LT(relative_difference(sim.logits, fake_quant), 0.05);

  LOWBIT_SKIP_WITHOUT_ORT();
  const std::string qdq = dir + "/pointwise_qdq.onnx";
  onnx::save(onnx::qdq_model(m, record), qdq);
  const torch::Tensor ort = testing::run_ort(qdq, x, dir);
  ASSERT_TRUE(ort.defined());
  // The lookups are exact in ONNX Runtime; its float requantization of the convs may round a code
  // differently from lowbit's fixed point (docs/export.md), hence a tolerance, not equality.
  std::cout << path << " W8A8: ONNX Runtime vs lowbit predictions agree on " << (ort.argmax(1) == sim.predictions).sum().item<int64_t>()
            << "/64, relative logit difference " << relative_difference(ort, sim.logits) << "\n";
  EXPECT_GE((ort.argmax(1) == sim.predictions).sum().item<int64_t>(), 63);
  EXPECT_LT(relative_difference(ort, sim.logits), 1e-3);  // 0 when this test was written
}

TEST(OnnxImport, PointwiseFunctionsConvertToExactLookupTables) {
  torch::manual_seed(10);
  const std::string dir = testing::fresh_test_dir();
  expect_exact_lookup_conversion(dir, write_pointwise_graph(dir + "/pointwise.onnx"), [] { return torch::randn({64, 3, 8, 8}) * 2; }, 7);
}

// The normalisation on the network input becomes the first op: a table from the input's codes
// (pixels in [0, 1]) to the normalised tensor's codes.
TEST(OnnxImport, InputNormalisationConvertsToAnExactLookupTable) {
  torch::manual_seed(12);
  const std::string dir = testing::fresh_test_dir();
  expect_exact_lookup_conversion(dir, write_affine_graph(dir + "/affine.onnx"), [] { return torch::rand({64, 1, 8, 8}); }, 3);
}

// Concat through the same path: each input's codes through a table onto the output grid, on
// every kernel level as in the integer simulation, and as Gather + Concat in ONNX Runtime.
TEST(OnnxImport, ConcatConvertsToExactPerInputTables) {
  torch::manual_seed(14);
  const std::string dir = testing::fresh_test_dir();
  const std::string path = write_concat_graph(dir + "/concat.onnx");
  const import::ImportedModel imported = import::read_onnx_model(path);
  std::vector<std::string> kinds;
  for (const auto& l : imported.layers) kinds.push_back(l.kind);
  EXPECT_EQ(kinds, (std::vector<std::string>{"conv", "conv", "conv", "maxpool", "concat", "conv", "concat", "gap", "linear"}));
  EXPECT_EQ(import::structure_from_json(import::structure_to_json(imported)).layers[4].inputs, imported.layers[4].inputs);
  expect_exact_lookup_conversion(dir, path, [] { return torch::randn({64, 3, 8, 8}); }, 2, runtime::OpKind::Concat);
}

TEST(OnnxImport, BadModelsGiveErrorsNamingNodeOperatorAndOpset) {
  const std::string dir = testing::fresh_test_dir();
  torch::manual_seed(7);
  auto expect_error = [&](const std::string& path, const std::vector<std::string>& parts) {
    const std::string message = error_of([&] { import::read_onnx_model(path); });
    for (const auto& p : parts) EXPECT_NE(message.find(p), std::string::npos) << "'" << p << "' not in: " << message;
  };
  {  // An operator lowbit has no layer for.
    GraphBuilder g({-1, 8});
    std::string v = g.node("Gemm", "fc", {"x", g.weight("w", {4, 8})}, {Attribute::make_int("transB", 1)});
    v = g.node("Elu", "act/elu", {v});
    expect_error(g.finish(v, 4, dir + "/elu.onnx"), {"node 'act/elu'", "Elu", "opset 17", "not supported", "Supported:"});
  }
  {  // A product of two tensors that is not a gated activation.
    GraphBuilder g({-1, 8});
    std::string v = g.node("Gemm", "fc", {"x", g.weight("w", {8, 8})}, {Attribute::make_int("transB", 1)});
    const std::string t = g.node("Tanh", "t", {v});
    v = g.node("Mul", "product", {v, t});
    v = g.node("Gemm", "fc2", {v, g.weight("w2", {4, 8})}, {Attribute::make_int("transB", 1)});
    expect_error(g.finish(v, 4, dir + "/mul.onnx"), {"node 'product'", "Mul", "x * Sigmoid(x)"});
  }
  {  // A per-channel normalisation with different values per channel.
    GraphBuilder g({-1, 3, 4, 4});
    std::string v = g.node("Sub", "norm/sub", {"x", g.floats("mean", {1, 3, 1, 1}, {0.485f, 0.456f, 0.406f})});
    v = g.node("Flatten", "f", {v});
    expect_error(g.finish(v, 48, dir + "/per_channel.onnx"), {"node 'norm/sub'", "(Sub, opset 17)", "different values", "one mean"});
  }
  {  // A constant divided by a tensor, and a constant that would broadcast the tensor larger.
    GraphBuilder g({-1, 4});
    std::string v = g.node("Div", "inverse", {g.floats("one", {}, {1.0f}), "x"});
    expect_error(g.finish(v, 4, dir + "/inverse.onnx"), {"node 'inverse'", "Div", "tensor divided by a constant"});
    GraphBuilder h({-1, 4});
    std::string u = h.node("Mul", "grow", {"x", h.floats("k", {2, 4}, std::vector<float>(8, 2.0f))});
    expect_error(h.finish(u, 4, dir + "/grow.onnx"), {"node 'grow'", "larger shape"});
  }
  {  // Unequal dilations, padding beyond the dilated extent, a dilated window larger than the input, a dilated pool.
    GraphBuilder g({-1, 1, 8, 8});
    std::string v = g.node("Conv", "dil", {"x", g.weight("w", {2, 1, 3, 3})}, {ints_attr("dilations", {1, 2})});
    v = g.node("Flatten", "f", {v});
    expect_error(g.finish(v, 64, dir + "/dilated.onnx"), {"node 'dil'", "(Conv, opset 17)", "dilations [1, 2]", "equal dilations"});
    GraphBuilder h({-1, 1, 8, 8});
    std::string u = h.node("Conv", "dil_pad", {"x", h.weight("w", {2, 1, 3, 3})},
                           {ints_attr("dilations", {2, 2}), ints_attr("pads", {5, 5, 5, 5})});
    u = h.node("Flatten", "f", {u});
    expect_error(h.finish(u, 2 * 14 * 14, dir + "/dilated_pad.onnx"), {"node 'dil_pad'", "pads", "extent (5)"});
    GraphBuilder k({-1, 1, 4, 4});
    std::string t = k.node("Conv", "dil_big", {"x", k.weight("w", {2, 1, 3, 3})}, {ints_attr("dilations", {3, 3})});
    t = k.node("Flatten", "f", {t});
    expect_error(k.finish(t, 2, dir + "/dilated_big.onnx"), {"node 'dil_big'", "dilated by 3", "does not fit"});
    GraphBuilder p({-1, 1, 8, 8});
    std::string q = p.node("MaxPool", "dil_pool", {"x"}, {ints_attr("kernel_shape", {2, 2}), ints_attr("dilations", {2, 2})});
    q = p.node("Flatten", "f", {q});
    expect_error(p.finish(q, 36, dir + "/dilated_pool.onnx"), {"node 'dil_pool'", "dilations", "pooling"});
  }
  {  // Concat along the height, and of tensors of different spatial sizes.
    GraphBuilder g({-1, 2, 4, 4});
    std::string v = g.node("Concat", "rows", {"x", "x"}, {Attribute::make_int("axis", 2)});
    v = g.node("Flatten", "f", {v});
    expect_error(g.finish(v, 64, dir + "/concat_rows.onnx"), {"node 'rows'", "(Concat, opset 17)", "channels (axis 1) only"});
    GraphBuilder h({-1, 2, 4, 4});
    const std::string p = h.node("Conv", "p", {"x", h.weight("w", {2, 2, 1, 1})}, {ints_attr("strides", {2, 2})});
    std::string u = h.node("Concat", "mixed", {"x", p}, {Attribute::make_int("axis", 1)});
    u = h.node("Flatten", "f", {u});
    expect_error(h.finish(u, 64, dir + "/concat_mixed.onnx"), {"node 'mixed'", "every dimension but the channels"});
  }
  {  // A symbolic spatial size.
    GraphBuilder g({-1, 1, -1, 8});
    std::string v = g.node("Flatten", "f", {"x"});
    expect_error(g.finish(v, 8, dir + "/dynamic.onnx"), {"input 'x'", "dimension 2", "fixed"});
  }
  {  // Batch normalization on its own.
    GraphBuilder g({-1, 2, 4, 4});
    std::string v = g.node("BatchNormalization", "bn",
                           {"x", g.floats("s", {2}, {1, 1}), g.floats("b", {2}, {0, 0}), g.floats("m", {2}, {0, 0}), g.floats("v", {2}, {1, 1})});
    v = g.node("Flatten", "f", {v});
    expect_error(g.finish(v, 32, dir + "/bn.onnx"), {"node 'bn'", "BatchNormalization", "preceding Conv"});
  }
  {  // A final softmax.
    GraphBuilder g({-1, 8});
    std::string v = g.node("Gemm", "fc", {"x", g.weight("w", {4, 8})}, {Attribute::make_int("transB", 1)});
    v = g.node("Softmax", "prob", {v});
    expect_error(g.finish(v, 4, dir + "/softmax.onnx"), {"Softmax", "logits"});
  }
  // Not ONNX at all, empty, truncated, missing.
  {
    std::ofstream(dir + "/text.onnx") << "this is not a model\n";
    expect_error(dir + "/text.onnx", {"text.onnx"});
    std::ofstream(dir + "/empty.onnx").flush();
    expect_error(dir + "/empty.onnx", {"empty.onnx", "empty"});
    torch::manual_seed(8);
    models::Net net = models::make_model("cnn");
    const std::string bytes = onnx::serialize(onnx::float_model(net, 17));
    for (size_t cut : {bytes.size() / 2, bytes.size() - 7, size_t{3}}) {
      std::ofstream(dir + "/cut.onnx", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(cut));
      const std::string message = error_of([&] { import::read_onnx_model(dir + "/cut.onnx"); });
      EXPECT_NE(message.find("cut.onnx"), std::string::npos) << cut << ": " << message;
    }
    expect_error(dir + "/missing.onnx", {"cannot open", "missing.onnx"});
  }
}

}  // namespace
}  // namespace lowbit
