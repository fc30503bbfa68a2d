#include "export/float_export.h"

#include "base/error.h"
#include "qat/quantized_layers.h"

namespace lowbit::onnx {
namespace {

std::vector<float> values_of(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().contiguous().to(torch::kFloat32);
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

std::vector<int64_t> dims_of(const torch::Tensor& t) { return std::vector<int64_t>(t.sizes().begin(), t.sizes().end()); }

class FloatBuilder {
 public:
  explicit FloatBuilder(int64_t opset) { out_.opset = opset; }
  Model build(models::Net& net);

 private:
  std::string where(const models::Node& node) const { return "onnx export: layer '" + node.name + "'"; }
  void add_node(std::string op_type, std::string name, std::vector<std::string> inputs, std::vector<std::string> outputs,
                std::vector<Attribute> attributes = {}) {
    out_.graph.nodes.push_back(Node{std::move(op_type), std::move(name), std::move(inputs), std::move(outputs), std::move(attributes)});
  }
  std::string initializer(const std::string& name, const torch::Tensor& t) {
    out_.graph.initializers.push_back(make_float_tensor(name, dims_of(t), values_of(t)));
    return name;
  }
  std::string activation(const std::string& x, const std::string& prefix, models::Activation a);
  std::string conv(const models::Node& node, const std::string& x, const models::ConvSpec& s, const torch::Tensor& w,
                   const torch::Tensor& b);
  std::string gemm(const models::Node& node, std::string x, int rank, const torch::Tensor& w, const torch::Tensor& b);
  std::string pointwise(const models::Node& node, const std::string& x, const quant::PointwiseFunction& f);

  Model out_;
};

std::string FloatBuilder::activation(const std::string& x, const std::string& prefix, models::Activation a) {
  if (a == models::Activation::None) return x;
  const std::string y = prefix + "_" + (a == models::Activation::ReLU ? "relu" : "relu6");
  if (a == models::Activation::ReLU) {
    add_node("Relu", y, {x}, {y});
  } else {
    out_.graph.initializers.push_back(make_float_tensor(prefix + "_clip_min", {}, {0.0f}));
    out_.graph.initializers.push_back(make_float_tensor(prefix + "_clip_max", {}, {6.0f}));
    add_node("Clip", y, {x, prefix + "_clip_min", prefix + "_clip_max"}, {y});
  }
  return y;
}

std::string FloatBuilder::pointwise(const models::Node& node, const std::string& x, const quant::PointwiseFunction& f) {
  using quant::PointwiseKind;
  const std::string y = node.name + "_" + f.name();
  switch (f.kind) {
    case PointwiseKind::LeakyRelu: add_node("LeakyRelu", node.name, {x}, {y}, {Attribute::make_float("alpha", f.alpha)}); break;
    case PointwiseKind::Sigmoid: add_node("Sigmoid", node.name, {x}, {y}); break;
    case PointwiseKind::Tanh: add_node("Tanh", node.name, {x}, {y}); break;
    case PointwiseKind::HardSigmoid:
      add_node("HardSigmoid", node.name, {x}, {y}, {Attribute::make_float("alpha", f.alpha), Attribute::make_float("beta", f.beta)});
      break;
    case PointwiseKind::Silu: {  // no SiLU operator before opset 24: x * Sigmoid(x), as PyTorch exports it
      const std::string gate = node.name + "_gate";
      add_node("Sigmoid", gate, {x}, {gate});
      add_node("Mul", node.name, {x, gate}, {y});
      break;
    }
    case PointwiseKind::HardSwish:
      if (out_.opset >= 14) {
        add_node("HardSwish", node.name, {x}, {y});
      } else {  // HardSwish arrived in opset 14: x * HardSigmoid(x) with alpha 1/6, beta 0.5
        const std::string gate = node.name + "_gate";
        add_node("HardSigmoid", gate, {x}, {gate}, {Attribute::make_float("alpha", 1.0f / 6.0f), Attribute::make_float("beta", 0.5f)});
        add_node("Mul", node.name, {x, gate}, {y});
      }
      break;
    case PointwiseKind::Affine: {  // x * alpha + beta, in the order the float layer computes it
      const std::string scaled = node.name + "_scaled";
      out_.graph.initializers.push_back(make_float_tensor(node.name + "_alpha", {}, {f.alpha}));
      out_.graph.initializers.push_back(make_float_tensor(node.name + "_beta", {}, {f.beta}));
      add_node("Mul", node.name + "_mul", {x, node.name + "_alpha"}, {scaled});
      add_node("Add", node.name, {scaled, node.name + "_beta"}, {y});
      break;
    }
  }
  return y;
}

std::string FloatBuilder::conv(const models::Node& node, const std::string& x, const models::ConvSpec& s,
                               const torch::Tensor& w, const torch::Tensor& b) {
  std::vector<std::string> inputs{x, initializer(node.name + "_weight", w)};
  if (b.defined()) inputs.push_back(initializer(node.name + "_bias", b));
  const std::string y = node.name + "_conv";
  add_node("Conv", node.name, inputs, {y},
           {Attribute::make_ints("kernel_shape", {s.kernel, s.kernel}), Attribute::make_ints("strides", {s.stride, s.stride}),
            Attribute::make_ints("pads", {s.padding, s.padding, s.padding, s.padding}),
            Attribute::make_ints("dilations", {s.dilation, s.dilation}), Attribute::make_int("group", s.groups)});
  return y;
}

std::string FloatBuilder::gemm(const models::Node& node, std::string x, int rank, const torch::Tensor& w,
                               const torch::Tensor& b) {
  if (rank != 2) {
    const std::string flat = node.name + "_input_flatten";
    add_node("Flatten", flat, {x}, {flat}, {Attribute::make_int("axis", 1)});
    x = flat;
  }
  std::vector<std::string> inputs{x, initializer(node.name + "_weight", w)};
  if (b.defined()) inputs.push_back(initializer(node.name + "_bias", b));
  const std::string y = node.name + "_gemm";
  add_node("Gemm", node.name, inputs, {y}, {Attribute::make_int("transB", 1)});
  return y;
}

Model FloatBuilder::build(models::Net& net) {
  torch::NoGradGuard no_grad;
  ir_version_for_opset(out_.opset);  // rejects opsets lowbit does not write
  out_.graph.name = "lowbit_fp32";
  out_.doc_string = "float32 export of lowbit model '" + net->model_name() + "'";
  std::vector<int64_t> input_dims{-1};
  input_dims.insert(input_dims.end(), net->input_shape().begin(), net->input_shape().end());
  out_.graph.inputs.push_back({"input", DataType::Float, input_dims});

  // Float tensor and rank (4: NCHW, 2: [N, K]) of each Net value; the input quantizer of a QAT
  // net is dropped (the float model takes the float image).
  std::vector<std::string> value{"input"};
  if (!net->input_mean().empty()) {  // the run's --mean / --std: Sub then Div, as models::Net computes them
    LOWBIT_CHECK(input_dims.size() >= 2, "onnx export: input normalisation needs a channel axis");
    const int64_t channels = input_dims[1];
    std::vector<int64_t> dims(input_dims.size(), 1);
    dims[1] = channels;
    const auto per_channel = [&](const std::vector<float>& v) {
      return v.size() == 1 ? std::vector<float>(static_cast<size_t>(channels), v[0]) : v;
    };
    out_.graph.initializers.push_back(make_float_tensor("input_mean", dims, per_channel(net->input_mean())));
    out_.graph.initializers.push_back(make_float_tensor("input_std", dims, per_channel(net->input_std())));
    add_node("Sub", "input_centred", {"input", "input_mean"}, {"input_centred"});
    add_node("Div", "input_normalised", {"input_centred", "input_std"}, {"input_normalised"});
    value = {"input_normalised"};
  }
  std::vector<int> rank{static_cast<int>(input_dims.size())};
  int64_t classes = 0;
  for (const models::Node& node : net->nodes()) {
    const std::string x = value.at(static_cast<size_t>(node.inputs.at(0)));
    const int x_rank = rank.at(static_cast<size_t>(node.inputs.at(0)));
    std::string y;
    int y_rank = x_rank;
    if (auto c = std::dynamic_pointer_cast<models::ConvBnActImpl>(node.layer)) {
      y = conv(node, x, c->spec(), c->conv->weight, c->conv->bias);
      if (c->bn) {
        const std::string bn = node.name + "_bn";
        add_node("BatchNormalization", bn,
                 {y, initializer(bn + "_scale", c->bn->weight), initializer(bn + "_bias", c->bn->bias),
                  initializer(bn + "_mean", c->bn->running_mean), initializer(bn + "_var", c->bn->running_var)},
                 {bn}, {Attribute::make_float("epsilon", static_cast<float>(c->bn->options.eps()))});
        y = bn;
      }
      y = activation(y, node.name, c->spec().activation);
      classes = c->spec().out_channels;
    } else if (auto qc = std::dynamic_pointer_cast<qat::QConvBnActImpl>(node.layer)) {
      auto [w, b] = qc->folded_weight_and_bias();
      y = activation(conv(node, x, qc->spec(), w, b), node.name, qc->spec().activation);
      classes = qc->spec().out_channels;
    } else if (auto l = std::dynamic_pointer_cast<models::LinearActImpl>(node.layer)) {
      y = activation(gemm(node, x, x_rank, l->linear->weight, l->linear->bias), node.name, l->spec().activation);
      y_rank = 2;
      classes = l->spec().out_features;
    } else if (auto ql = std::dynamic_pointer_cast<qat::QLinearActImpl>(node.layer)) {
      y = activation(gemm(node, x, x_rank, ql->linear->weight, ql->linear->bias), node.name, ql->spec().activation);
      y_rank = 2;
      classes = ql->spec().out_features;
    } else if (auto mp = std::dynamic_pointer_cast<models::MaxPoolImpl>(node.layer)) {
      const models::PoolSpec& p = mp->spec();
      y = node.name + "_maxpool";
      add_node("MaxPool", node.name, {x}, {y},
               {Attribute::make_ints("kernel_shape", {p.kernel, p.kernel}), Attribute::make_ints("strides", {p.stride, p.stride}),
                Attribute::make_ints("pads", {p.padding, p.padding, p.padding, p.padding})});
    } else if (node.layer->kind() == "avgpool") {
      models::PoolSpec p;
      if (auto ap = std::dynamic_pointer_cast<models::AvgPoolImpl>(node.layer)) p = ap->spec();
      else if (auto qp = std::dynamic_pointer_cast<qat::QPoolImpl>(node.layer)) p = qp->spec();
      else throw Error(where(node) + ": unknown average pooling layer");
      y = node.name + "_avgpool";
      add_node("AveragePool", node.name, {x}, {y},
               {Attribute::make_ints("kernel_shape", {p.kernel, p.kernel}), Attribute::make_ints("strides", {p.stride, p.stride}),
                Attribute::make_ints("pads", {p.padding, p.padding, p.padding, p.padding}),
                Attribute::make_int("count_include_pad", 0)});
    } else if (node.layer->kind() == "gap") {
      y = node.name + "_gap";
      add_node("GlobalAveragePool", node.name, {x}, {y});  // [N, C, 1, 1]; a following Gemm flattens
    } else if (node.layer->kind() == "flatten") {
      y = node.name + "_flatten";
      add_node("Flatten", node.name, {x}, {y}, {Attribute::make_int("axis", 1)});
      y_rank = 2;
    } else if (node.layer->kind() == "add") {
      models::Activation act = models::Activation::None;
      if (auto a = std::dynamic_pointer_cast<models::AddActImpl>(node.layer)) act = a->activation();
      else if (auto qa = std::dynamic_pointer_cast<qat::QAddActImpl>(node.layer)) act = qa->activation();
      else throw Error(where(node) + ": unknown add layer");
      LOWBIT_CHECK(node.inputs.size() == 2, where(node) + ": a residual add needs two inputs");
      y = node.name + "_add";
      add_node("Add", node.name, {x, value.at(static_cast<size_t>(node.inputs[1]))}, {y});
      y = activation(y, node.name, act);
    } else if (node.layer->kind() == "concat") {
      std::vector<std::string> parts;
      for (int v : node.inputs) parts.push_back(value.at(static_cast<size_t>(v)));
      y = node.name + "_concat";
      add_node("Concat", node.name, parts, {y}, {Attribute::make_int("axis", 1)});
    } else if (auto pw = std::dynamic_pointer_cast<models::PointwiseImpl>(node.layer)) {
      y = pointwise(node, x, pw->function());
    } else {
      throw Error(where(node) + ": layers of kind '" + node.layer->kind() + "' have no ONNX export");
    }
    value.push_back(y);
    rank.push_back(y_rank);
  }
  LOWBIT_CHECK(!net->nodes().empty(), "onnx export: the model has no layers");
  LOWBIT_CHECK(rank.back() == 2, "onnx export: the last layer '" + net->nodes().back().name +
                                     "' must produce [N, classes] logits (a linear layer)");
  // Name the final tensor "logits" (the same graph output name as the QDQ export).
  for (std::string& o : out_.graph.nodes.back().outputs)
    if (o == value.back()) o = "logits";
  out_.graph.outputs.push_back({"logits", DataType::Float, {-1, classes}});
  return std::move(out_);
}

}  // namespace

Model float_model(models::Net& net, int64_t opset) {
  const bool was_training = net->is_training();
  net->eval();
  Model m = FloatBuilder(opset).build(net);
  if (was_training) net->train();
  return m;
}

}  // namespace lowbit::onnx
