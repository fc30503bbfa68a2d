// Structure of the QDQ graph: every number in it is the integer model's, per-channel scales sit on
// the right axis, activations are clamped as the runtime clamps them, and what QDQ ONNX cannot
// express is refused with the layer's name.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "base/error.h"
#include "export/export_test_support.h"
#include "export/float_export.h"
#include "export/proto_reader.h"
#include "export/qdq_export.h"

namespace lowbit::onnx {
namespace {

struct Exported {
  runtime::Model model;
  std::vector<convert::ConvertedOp> record;
  Model onnx;
};

Exported export_net(const std::string& model, const std::string& config, int64_t opset = 21,
                    WeightEncoding encoding = WeightEncoding::Auto) {
  models::Net net = testing::calibrated_on_noise(model, config);
  Exported e;
  e.model = convert::to_runtime_model(net, model, &e.record);
  QdqOptions options;
  options.opset = opset;
  options.weight_encoding = encoding;
  e.onnx = qdq_model(e.model, e.record, options);
  return e;
}

std::vector<float> floats_of(const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.element_count()));
  std::memcpy(v.data(), t.raw.data(), t.raw.size());
  return v;
}

std::vector<int32_t> int32s_of(const Tensor& t) {
  std::vector<int32_t> v(static_cast<size_t>(t.element_count()));
  std::memcpy(v.data(), t.raw.data(), t.raw.size());
  return v;
}

int32_t code_at(const Tensor& t, size_t i) {
  if (t.type == DataType::Int8) return static_cast<int8_t>(t.raw[i]);
  if (t.type == DataType::Uint8) return static_cast<uint8_t>(t.raw[i]);
  const auto nibble = static_cast<uint8_t>((static_cast<uint8_t>(t.raw[i / 2]) >> (4 * (i % 2))) & 0x0F);
  return nibble >= 8 ? nibble - 16 : nibble;
}

int count_ops(const Graph& g, const std::string& op_type) {
  int n = 0;
  for (const Node& node : g.nodes) n += node.op_type == op_type;
  return n;
}

const Node& node_named(const Graph& g, const std::string& name) {
  for (const Node& n : g.nodes)
    if (n.name == name) return n;
  throw std::runtime_error("no node " + name);
}

// Every weighted op's weight and bias in the graph equal the integer model's, on axis 0: stored
// codes minus the stored zero point (128 for UINT8 weights, else 0) are the runtime's codes.
void expect_weights_match(const Exported& e, DataType weight_type) {
  const int32_t zero_point = weight_type == DataType::Uint8 ? 128 : 0;
  const Graph& g = e.onnx.graph;
  for (size_t i = 0; i < e.model.ops.size(); ++i) {
    const runtime::Op& op = e.model.ops[i];
    if (!op.has_weights()) continue;
    const std::string& name = e.record[i].node;
    const Node& compute = node_named(g, name);
    EXPECT_EQ(compute.op_type, op.kind == runtime::OpKind::Conv2d ? "Conv" : "Gemm") << name;

    const Node* wdq = g.producer(compute.inputs.at(1));
    ASSERT_NE(wdq, nullptr) << name;
    EXPECT_EQ(wdq->op_type, "DequantizeLinear");
    ASSERT_NE(wdq->attribute("axis"), nullptr);
    EXPECT_EQ(wdq->attribute("axis")->i, 0);
    const Tensor* w = g.initializer(wdq->inputs.at(0));
    const Tensor* ws = g.initializer(wdq->inputs.at(1));
    const Tensor* wz = g.initializer(wdq->inputs.at(2));
    ASSERT_TRUE(w && ws && wz) << name;
    EXPECT_EQ(w->type, weight_type) << name;
    EXPECT_EQ(wz->type, weight_type) << name;
    EXPECT_EQ(w->dims.at(0), op.out_channels) << name;
    EXPECT_EQ(w->element_count(), op.weight_count()) << name;
    EXPECT_EQ(ws->dims, std::vector<int64_t>{op.out_channels}) << name;
    EXPECT_EQ(floats_of(*ws), e.record[i].weight_scales) << name;
    for (size_t k = 0; k < static_cast<size_t>(op.weight_count()); ++k)
      ASSERT_EQ(code_at(*w, k) - zero_point, op.weight.value(k)) << name << " weight " << k;
    for (int64_t o = 0; o < op.out_channels; ++o) EXPECT_EQ(code_at(*wz, static_cast<size_t>(o)), zero_point);

    const Node* bdq = g.producer(compute.inputs.at(2));
    ASSERT_NE(bdq, nullptr) << name;
    const Tensor* b = g.initializer(bdq->inputs.at(0));
    const Tensor* bs = g.initializer(bdq->inputs.at(1));
    ASSERT_TRUE(b && bs) << name;
    EXPECT_EQ(b->type, DataType::Int32);
    EXPECT_EQ(int32s_of(*b), op.bias_q) << name;
    // Bias scale = input scale * weight scale, the accumulator's unit.
    const Node* xdq = g.producer(compute.inputs.at(0));
    while (xdq->op_type == "Flatten") xdq = g.producer(xdq->inputs.at(0));
    ASSERT_EQ(xdq->op_type, "DequantizeLinear") << name;
    const float s_x = floats_of(*g.initializer(xdq->inputs.at(1))).at(0);
    const std::vector<float> bias_scales = floats_of(*bs);
    for (size_t o = 0; o < bias_scales.size(); ++o) EXPECT_EQ(bias_scales[o], s_x * e.record[i].weight_scales[o]) << name;
  }
}

TEST(QdqGraph, CnnW4A8MatchesTheIntegerModel) {
  const Exported e = export_net("cnn", R"({"weight_bits": 4, "act_bits": 8})");
  const Graph& g = e.onnx.graph;
  EXPECT_EQ(e.onnx.opset, 21);
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.inputs[0].dims, (std::vector<int64_t>{-1, 1, 28, 28}));
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.outputs[0].name, "logits");
  EXPECT_EQ(g.outputs[0].dims, (std::vector<int64_t>{-1, 10}));
  expect_weights_match(e, DataType::Int4);

  // Input: Q(1/255, zero point 0) as the runtime quantizes it.
  const Node& q_in = *g.producer("input_quantized");
  EXPECT_EQ(q_in.op_type, "QuantizeLinear");
  EXPECT_EQ(q_in.inputs[0], "input");
  EXPECT_EQ(floats_of(*g.initializer(q_in.inputs[1])).at(0), 1.0f / 255.0f);
  EXPECT_EQ(g.initializer(q_in.inputs[2])->type, DataType::Uint8);

  // One QuantizeLinear per quantized value: input, conv1, conv2, fc1 (pools, flatten reuse codes).
  EXPECT_EQ(count_ops(g, "QuantizeLinear"), 4);
  EXPECT_EQ(count_ops(g, "Conv"), 2);
  EXPECT_EQ(count_ops(g, "Gemm"), 2);
  // A fused ReLU is the runtime's clamp at the zero point: nothing to add when that is code 0
  // (QuantizeLinear clamps there), a Relu before the QuantizeLinear otherwise.
  for (size_t i : {0, 2, 5}) {
    const runtime::ActQParams& q = e.model.ops[i].out;
    const Node& quantize = *g.producer(e.record[i].node + "_quantized");
    const std::string expected = q.qmin == 0 ? e.record[i].node : "Relu";
    const Node& before = *g.producer(quantize.inputs[0]);
    EXPECT_EQ(q.qmin == 0 ? before.name : before.op_type, expected) << e.record[i].node;
    EXPECT_EQ(q.qmin, q.zero_point) << e.record[i].node;
  }
  // Max pooling and flatten run on the uint8 codes.
  EXPECT_EQ(node_named(g, "pool1").inputs[0], "conv1_quantized");
  EXPECT_EQ(g.producer(node_named(g, "flatten").inputs[0])->name, "pool2");
  // Conv attributes from the model.
  const Node& conv2 = node_named(g, "conv2");
  EXPECT_EQ(conv2.attribute("pads")->ints, (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(conv2.attribute("kernel_shape")->ints, (std::vector<int64_t>{3, 3}));
  // The output layer's Gemm gives the float logits directly.
  EXPECT_EQ(g.producer("logits")->name, "fc2");

  // Activation scales and zero points are the runtime's.
  const Node& q1 = *g.producer("conv1_quantized");
  EXPECT_EQ(floats_of(*g.initializer(q1.inputs[1])).at(0), e.model.ops[0].out.scale);
  EXPECT_EQ(static_cast<uint8_t>(g.initializer(q1.inputs[2])->raw[0]), e.model.ops[0].out.zero_point);
}

int32_t largest_code(const runtime::Op& op) {
  int32_t largest = 0;
  for (size_t k = 0; k < static_cast<size_t>(op.weight_count()); ++k) largest = std::max(largest, std::abs(op.weight.value(k)));
  return largest;
}

// Full-range 8-bit weights (|code| up to 128) could saturate ONNX Runtime's u8s8 pair sums on
// CPUs without VNNI: by default they are stored as UINT8 + 128 (its exact u8u8 path).
TEST(QdqGraph, W8A8WeightsAreUint8WithZeroPoint128AndOpset13Works) {
  const Exported e = export_net("resnet8", R"({"weight_bits": 8, "act_bits": 8})", 13);
  EXPECT_EQ(e.onnx.opset, 13);
  for (const runtime::Op& op : e.model.ops)
    if (op.has_weights()) EXPECT_GT(largest_code(op), kSaturationFreeWeightCode) << "the test needs full-range codes";
  expect_weights_match(e, DataType::Uint8);
  EXPECT_GT(count_ops(e.onnx.graph, "Add"), 0);
  EXPECT_EQ(count_ops(e.onnx.graph, "GlobalAveragePool"), 1);
  // The final Gemm reads the pooled [N, C, 1, 1] codes flattened, then dequantized (DQ -> Gemm
  // stays adjacent, which ONNX Runtime fuses).
  const Node& fc = node_named(e.onnx.graph, "fc");
  const Node& fc_dq = *e.onnx.graph.producer(fc.inputs[0]);
  EXPECT_EQ(fc_dq.op_type, "DequantizeLinear");
  EXPECT_EQ(e.onnx.graph.producer(fc_dq.inputs[0])->op_type, "Flatten");
  const std::string bytes = serialize(e.onnx);
  EXPECT_EQ(testing::fields_numbered(bytes, 1).at(0).varint, 7u);  // IR 7 for opset 13
}

// 7-bit weights (codes within +-64) cannot saturate: they stay INT8, ONNX Runtime's fast path.
TEST(QdqGraph, SevenBitWeightsStayInt8) {
  const Exported e = export_net("cnn", R"({"weight_bits": 7, "act_bits": 8})");
  for (const runtime::Op& op : e.model.ops)
    if (op.has_weights()) EXPECT_LE(largest_code(op), kSaturationFreeWeightCode);
  expect_weights_match(e, DataType::Int8);
}

TEST(QdqGraph, WeightTypeCanBeForced) {
  expect_weights_match(export_net("cnn", R"({"weight_bits": 8, "act_bits": 8})", 21, WeightEncoding::Int8), DataType::Int8);
  expect_weights_match(export_net("cnn", R"({"weight_bits": 7, "act_bits": 8})", 21, WeightEncoding::Uint8), DataType::Uint8);
  // int4 has no uint8 form to switch to, and cannot saturate anyway.
  expect_weights_match(export_net("cnn", R"({"weight_bits": 4, "act_bits": 8})", 21, WeightEncoding::Uint8), DataType::Int4);
  EXPECT_EQ(parse_weight_encoding("auto"), WeightEncoding::Auto);
  EXPECT_EQ(parse_weight_encoding("uint8"), WeightEncoding::Uint8);
  try {
    parse_weight_encoding("u8");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'u8'"), std::string::npos) << e.what();
  }
}

// Narrow code ranges (ReLU6, 4-bit activations) become a float Clip at the codes' real values.
TEST(QdqGraph, NarrowActivationRangesBecomeClips) {
  const Exported e = export_net("mobilenet-tiny", R"({"weight_bits": 8, "act_bits": 4})");
  const Graph& g = e.onnx.graph;
  int clips = 0;
  for (size_t i = 0; i + 1 < e.model.ops.size(); ++i) {
    const runtime::Op& op = e.model.ops[i];
    if (!op.has_weights()) continue;
    const std::string& name = e.record[i].node;
    const Node& q = *g.producer(name + "_quantized");
    const Node* clip = g.producer(q.inputs[0]);
    ASSERT_EQ(clip->op_type, "Clip") << name;
    const float lo = floats_of(*g.initializer(clip->inputs[1])).at(0);
    const float hi = floats_of(*g.initializer(clip->inputs[2])).at(0);
    EXPECT_EQ(lo, op.out.scale * static_cast<float>(op.out.qmin - op.out.zero_point)) << name;
    EXPECT_EQ(hi, op.out.scale * static_cast<float>(op.out.qmax - op.out.zero_point)) << name;
    EXPECT_LE(op.out.qmax, 15) << name;
    ++clips;
  }
  EXPECT_GT(clips, 5);
  // Depthwise convolutions keep their group count.
  EXPECT_EQ(node_named(g, "block1_dw").attribute("group")->i, e.model.ops[1].groups);
}

TEST(QdqGraph, SerializedModelHoldsEveryNodeAndInitializer) {
  const Exported e = export_net("cnn", R"({"weight_bits": 8, "act_bits": 8})");
  const std::string bytes = serialize(e.onnx);
  const std::string graph = testing::fields_numbered(bytes, 7).at(0).bytes;
  EXPECT_EQ(testing::fields_numbered(graph, 1).size(), e.onnx.graph.nodes.size());
  EXPECT_EQ(testing::fields_numbered(graph, 5).size(), e.onnx.graph.initializers.size());
}

std::string export_error(const std::string& model, const std::string& config, int64_t opset = 21) {
  models::Net net = testing::calibrated_on_noise(model, config);
  try {
    qdq_model_from_net(net, {opset});
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_contains(const std::string& s, const std::string& part) {
  EXPECT_NE(s.find(part), std::string::npos) << "'" << part << "' not in: " << s;
}

TEST(QdqGraph, InexpressibleModelsAreRefusedNamingTheLayer) {
  const std::string ternary = export_error("cnn", R"({"weight_format": "ternary", "act_bits": 8})");
  expect_contains(ternary, "conv1");
  expect_contains(ternary, "2-bit");
  const std::string binary = export_error("cnn", R"({"weight_format": "binary", "act_bits": 8})");
  expect_contains(binary, "conv1");
  expect_contains(binary, "odd grid");
  const std::string int4_old_opset = export_error("cnn", R"({"weight_bits": 4, "act_bits": 8})", 19);
  expect_contains(int4_old_opset, "conv1");
  expect_contains(int4_old_opset, "opset 21");
  const std::string grouped = export_error("cnn", R"({"weight_bits": 4, "act_bits": 8, "weight_granularity": "group", "weight_group_size": 16})");
  expect_contains(grouped, "conv1");
  expect_contains(grouped, "per-group");
  models::Net fp = models::make_model("cnn");
  EXPECT_THROW(qdq_model_from_net(fp), Error);
}

TEST(FloatGraph, Fp32ModelKeepsBatchNormAndQatModelFoldsIt) {
  torch::manual_seed(1);
  models::Net fp = models::make_model("mobilenet-tiny");
  const Model m = float_model(fp);
  EXPECT_GT(count_ops(m.graph, "BatchNormalization"), 0);
  EXPECT_EQ(count_ops(m.graph, "QuantizeLinear"), 0);
  EXPECT_GT(count_ops(m.graph, "Clip"), 0);  // ReLU6
  EXPECT_EQ(m.graph.producer("logits")->name, "fc");

  models::Net q = testing::calibrated_on_noise("cnn", R"({"weight_bits": 4, "act_bits": 4})");
  const Model mq = float_model(q);
  EXPECT_EQ(count_ops(mq.graph, "BatchNormalization"), 0);
  EXPECT_EQ(count_ops(mq.graph, "DequantizeLinear"), 0);
  EXPECT_EQ(count_ops(mq.graph, "Conv"), 2);
  EXPECT_NO_THROW(serialize(mq));
}

}  // namespace
}  // namespace lowbit::onnx
