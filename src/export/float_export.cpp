#include "export/float_export.h"

#include <cmath>
#include <map>

#include "base/error.h"
#include "models/gpt.h"
#include "models/vit.h"
#include "qat/quantized_layers.h"
#include "qat/quantized_transformer.h"

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
  std::string attention(const models::Node& node, const std::string& q, const std::string& k, const std::string& v, int64_t heads,
                        int64_t head_size);

  Model out_;
};

std::string FloatBuilder::activation(const std::string& x, const std::string& prefix, models::Activation a) {
  if (a == models::Activation::None) return x;
  if (a == models::Activation::GELU) {  // erf form, as torch::gelu's default
    const std::string y = prefix + "_gelu";
    if (out_.opset >= 20) {
      add_node("Gelu", y, {x}, {y});  // approximate = "none"
    } else {  // 0.5 * x * (1 + Erf(x / sqrt(2)))
      out_.graph.initializers.push_back(make_float_tensor(prefix + "_gelu_sqrt2", {}, {static_cast<float>(std::sqrt(2.0))}));
      out_.graph.initializers.push_back(make_float_tensor(prefix + "_gelu_one", {}, {1.0f}));
      out_.graph.initializers.push_back(make_float_tensor(prefix + "_gelu_half", {}, {0.5f}));
      add_node("Div", y + "_scaled", {x, prefix + "_gelu_sqrt2"}, {y + "_scaled"});
      add_node("Erf", y + "_erf", {y + "_scaled"}, {y + "_erf"});
      add_node("Add", y + "_plus1", {y + "_erf", prefix + "_gelu_one"}, {y + "_plus1"});
      add_node("Mul", y + "_xhalf", {x, prefix + "_gelu_half"}, {y + "_xhalf"});
      add_node("Mul", y, {y + "_xhalf", y + "_plus1"}, {y});
    }
    return y;
  }
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

// Non-causal multi-head attention (vit-tiny, AttentionImpl without RoPE) on q, k, v [N, T, d]:
// softmax(q k^T / sqrt(hd)) v per head, heads concatenated.
std::string FloatBuilder::attention(const models::Node& node, const std::string& q, const std::string& k, const std::string& v,
                                    int64_t heads, int64_t head_size) {
  const std::string n = node.name;
  out_.graph.initializers.push_back(make_int64_tensor(n + "_heads_shape", {4}, {0, 0, heads, -1}));
  out_.graph.initializers.push_back(make_int64_tensor(n + "_width_shape", {3}, {0, 0, -1}));
  auto split = [&](const std::string& t, const std::string& tag, std::vector<int64_t> perm) {
    add_node("Reshape", n + "_" + tag + "_heads", {t, n + "_heads_shape"}, {n + "_" + tag + "_heads"});
    add_node("Transpose", n + "_" + tag + "_t", {n + "_" + tag + "_heads"}, {n + "_" + tag + "_t"},
             {Attribute::make_ints("perm", std::move(perm))});
    return n + "_" + tag + "_t";
  };
  const std::string qh = split(q, "q", {0, 2, 1, 3}), kt = split(k, "k", {0, 2, 3, 1}), vh = split(v, "v", {0, 2, 1, 3});
  add_node("MatMul", n + "_scores", {qh, kt}, {n + "_scores"});
  const float scale = static_cast<float>(std::sqrt(static_cast<double>(head_size)));  // LibTorch: scores / sqrt(hd)
  out_.graph.initializers.push_back(make_float_tensor(n + "_sqrt_head_size", {}, {scale}));
  add_node("Div", n + "_scaled", {n + "_scores", n + "_sqrt_head_size"}, {n + "_scaled"});
  add_node("Softmax", n + "_softmax", {n + "_scaled"}, {n + "_softmax"}, {Attribute::make_int("axis", -1)});
  add_node("MatMul", n + "_context", {n + "_softmax", vh}, {n + "_context"});
  add_node("Transpose", n + "_context_t", {n + "_context"}, {n + "_context_t"}, {Attribute::make_ints("perm", {0, 2, 1, 3})});
  add_node("Reshape", n, {n + "_context_t", n + "_width_shape"}, {n + "_out"});
  return n + "_out";
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
  if (rank == 3) {  // tokens [N, T, in] (vit-tiny): MatMul(x, W^T) [+ bias]
    const std::string y = node.name + "_matmul";
    add_node("MatMul", y, {x, initializer(node.name + "_weight_t", w.t().contiguous())}, {y});
    if (!b.defined()) return y;
    const std::string yb = node.name + "_linear";
    add_node("Add", yb, {y, initializer(node.name + "_bias", b)}, {yb});
    return yb;
  }
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
      y_rank = x_rank == 3 ? 3 : 2;
      classes = l->spec().out_features;
    } else if (auto ql = std::dynamic_pointer_cast<qat::QLinearActImpl>(node.layer)) {
      y = activation(gemm(node, x, x_rank, ql->linear->weight, ql->linear->bias), node.name, ql->spec().activation);
      y_rank = x_rank == 3 ? 3 : 2;
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
    } else if (auto pt = std::dynamic_pointer_cast<models::PatchTokensImpl>(node.layer)) {
      // [N, d, h, w] -> [N, d, h*w] -> [N, h*w, d], + position [h*w, d] (row-major patches).
      LOWBIT_CHECK(x_rank == 4, where(node) + ": patch tokens need a 4-D input");
      out_.graph.initializers.push_back(make_int64_tensor(node.name + "_shape", {3}, {0, 0, -1}));
      add_node("Reshape", node.name + "_flat", {x, node.name + "_shape"}, {node.name + "_flat"});
      add_node("Transpose", node.name + "_tokens", {node.name + "_flat"}, {node.name + "_tokens"},
               {Attribute::make_ints("perm", {0, 2, 1})});
      y = node.name + "_positioned";
      add_node("Add", y, {node.name + "_tokens", initializer(node.name + "_position", pt->position)}, {y});
      y_rank = 3;
    } else if (auto ln = std::dynamic_pointer_cast<models::LayerNormImpl>(node.layer)) {
      LOWBIT_CHECK(out_.opset >= 17, where(node) + ": LayerNormalization needs opset 17 or later (use --opset 17..21)");
      y = node.name + "_layernorm";
      add_node("LayerNormalization", node.name, {x, initializer(node.name + "_weight", ln->weight), initializer(node.name + "_bias", ln->bias)},
               {y}, {Attribute::make_int("axis", -1), Attribute::make_float("epsilon", static_cast<float>(ln->eps))});
    } else if (auto at = std::dynamic_pointer_cast<models::AttentionImpl>(node.layer)) {
      if (at->causal() || at->rope_base() > 0)
        throw Error(where(node) + ": causal or rotary attention is gpt-tiny's; export gpt-tiny checkpoints with "
                    "--format onnx-fp32 as a whole (float_gpt_model)");
      LOWBIT_CHECK(node.inputs.size() == 3 && x_rank == 3, where(node) + ": attention takes q, k, v [N, T, d]");
      // The width from q's producer (a linear node: value v is node v - 1's output).
      const int q_node = node.inputs[0] - 1;
      int64_t width = 0;
      if (q_node >= 0) {
        const auto& producer = net->nodes().at(static_cast<size_t>(q_node)).layer;
        if (auto pl = std::dynamic_pointer_cast<models::LinearActImpl>(producer)) width = pl->spec().out_features;
        else if (auto pq = std::dynamic_pointer_cast<qat::QLinearActImpl>(producer)) width = pq->spec().out_features;
      }
      LOWBIT_CHECK(width > 0 && width % at->heads() == 0,
                   where(node) + ": its query input must come from a linear layer whose width is a multiple of the heads");
      y = attention(node, x, value.at(static_cast<size_t>(node.inputs[1])), value.at(static_cast<size_t>(node.inputs[2])),
                    at->heads(), width / at->heads());
    } else if (node.layer->kind() == "token_mean") {
      LOWBIT_CHECK(x_rank == 3, where(node) + ": token mean takes [N, T, d]");
      y = node.name + "_mean";
      if (out_.opset >= 18) {
        out_.graph.initializers.push_back(make_int64_tensor(node.name + "_axes", {1}, {1}));
        add_node("ReduceMean", node.name, {x, node.name + "_axes"}, {y}, {Attribute::make_int("keepdims", 0)});
      } else {
        add_node("ReduceMean", node.name, {x}, {y}, {Attribute::make_ints("axes", {1}), Attribute::make_int("keepdims", 0)});
      }
      y_rank = 2;
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

namespace {

std::vector<float> linear_weight(const models::Node& node, int64_t in, int64_t out) {
  torch::Tensor w;
  if (auto l = std::dynamic_pointer_cast<models::LinearActImpl>(node.layer)) {
    LOWBIT_CHECK(!l->linear->bias.defined(), "onnx export: gpt-tiny layer '" + node.name + "' has a bias (gpt-tiny's projections have none)");
    w = l->linear->weight;
  } else if (auto q = std::dynamic_pointer_cast<qat::QLinearActImpl>(node.layer)) {
    LOWBIT_CHECK(!q->linear->bias.defined(), "onnx export: gpt-tiny layer '" + node.name + "' has a bias (gpt-tiny's projections have none)");
    w = q->linear->weight;  // the latent float weight: fake quantization removed
  } else {
    throw Error("onnx export: gpt-tiny layer '" + node.name + "' is of kind '" + node.layer->kind() + "', expected a linear layer");
  }
  LOWBIT_CHECK(w.dim() == 2 && w.size(0) == out && w.size(1) == in,
               "onnx export: gpt-tiny layer '" + node.name + "' has weight " + c10::str(w.sizes()) + ", expected [" +
                   std::to_string(out) + ", " + std::to_string(in) + "]");
  return values_of(w);
}

}  // namespace

FloatDecoder float_decoder_of(models::Net& net, int64_t context) {
  torch::NoGradGuard no_grad;
  const auto& nodes = net->nodes();
  std::map<std::string, const models::Node*> by_name;
  for (const models::Node& n : nodes) by_name[n.name] = &n;
  auto node = [&](const std::string& name) -> const models::Node& {
    auto it = by_name.find(name);
    if (it == by_name.end())
      throw Error("onnx export: the model '" + net->model_name() + "' has no layer '" + name +
                  "'; --format onnx-fp32 of a language model takes gpt-tiny's graph (models/gpt.h)");
    return *it->second;
  };
  FloatDecoder m;
  m.name = net->model_name();
  m.context = static_cast<int32_t>(context);
  const models::Node& embed = node("embed");
  torch::Tensor table;
  if (auto e = std::dynamic_pointer_cast<models::EmbeddingImpl>(embed.layer)) table = e->weight;
  else if (auto qe = std::dynamic_pointer_cast<qat::QEmbeddingImpl>(embed.layer)) table = qe->weight;
  else throw Error("onnx export: gpt-tiny layer 'embed' is of kind '" + embed.layer->kind() + "', expected an embedding");
  m.vocab = static_cast<int32_t>(table.size(0));
  m.width = static_cast<int32_t>(table.size(1));
  m.embedding = values_of(table);
  auto norm = [&](const std::string& name) {
    auto r = std::dynamic_pointer_cast<models::RMSNormImpl>(node(name).layer);
    if (!r) throw Error("onnx export: gpt-tiny layer '" + name + "' is of kind '" + node(name).layer->kind() + "', expected rmsnorm");
    m.norm_eps = static_cast<float>(r->eps);
    return values_of(r->weight);
  };
  int32_t layers = 0;
  while (by_name.count("block" + std::to_string(layers) + "_attn")) ++layers;
  LOWBIT_CHECK(layers > 0, "onnx export: '" + net->model_name() + "' has no layer 'block0_attn'; --format onnx-fp32 takes "
                           "gpt-tiny's graph (models/gpt.h) for language models");
  for (int32_t l = 0; l < layers; ++l) {
    const std::string p = "block" + std::to_string(l) + "_";
    auto at = std::dynamic_pointer_cast<models::AttentionImpl>(node(p + "attn").layer);
    if (!at || !at->causal() || at->rope_base() <= 0)
      throw Error("onnx export: gpt-tiny layer '" + p + "attn' must be causal attention with RoPE");
    m.heads = static_cast<int32_t>(at->heads());
    m.rope_base = at->rope_base();
    if (std::dynamic_pointer_cast<models::SwiGLUImpl>(node(p + "swiglu").layer) == nullptr)
      throw Error("onnx export: gpt-tiny layer '" + p + "swiglu' is of kind '" + node(p + "swiglu").layer->kind() + "', expected swiglu");
    if (l == 0) {
      const models::Node& gate = node(p + "mlp_gate");
      if (auto g = std::dynamic_pointer_cast<models::LinearActImpl>(gate.layer)) m.hidden = static_cast<int32_t>(g->spec().out_features);
      else if (auto qg = std::dynamic_pointer_cast<qat::QLinearActImpl>(gate.layer)) m.hidden = static_cast<int32_t>(qg->spec().out_features);
    }
    FloatDecoder::Layer L;
    L.norm1 = norm(p + "norm1");
    L.norm2 = norm(p + "norm2");
    const int64_t d = m.width, h = m.hidden;
    L.q = linear_weight(node(p + "attn_q"), d, d);
    L.k = linear_weight(node(p + "attn_k"), d, d);
    L.v = linear_weight(node(p + "attn_v"), d, d);
    L.o = linear_weight(node(p + "attn_o"), d, d);
    L.gate = linear_weight(node(p + "mlp_gate"), d, h);
    L.up = linear_weight(node(p + "mlp_up"), d, h);
    L.down = linear_weight(node(p + "mlp_down"), h, d);
    m.layers.push_back(std::move(L));
  }
  m.norm_f = norm("norm_f");
  m.head = linear_weight(node("head"), m.width, m.vocab);
  return m;
}

Model float_gpt_model(models::Net& net, int64_t context, const FloatDecoderExportOptions& options) {
  return float_decoder_model(float_decoder_of(net, context), options);
}

}  // namespace lowbit::onnx
