#include "export/qdq_export.h"

#include <algorithm>
#include <cstdlib>

#include "base/error.h"
#include "runtime/weight_format.h"

namespace lowbit::onnx {
namespace {

using runtime::ActQParams;
using runtime::OpKind;

// State of one runtime value in the ONNX graph: its uint8 tensor, and the float tensor that
// dequantizes it (created when first needed).
struct ValueTensors {
  std::string quantized;    // uint8 codes
  std::string dequantized;  // empty until a float consumer asks
  std::string scale;        // scalar initializers shared by the value's Q and DQ nodes
  std::string zero_point;
  ActQParams qparams;
  int rank = 4;             // 4: [N, C, H, W]; 2: [N, K] after Flatten / Gemm
};

class QdqBuilder {
 public:
  QdqBuilder(const runtime::Model& m, const std::vector<convert::ConvertedOp>& record, const QdqOptions& options)
      : m_(m), record_(record), options_(options) {}

  Model build();

 private:
  std::string where(size_t op) const { return "onnx export: layer '" + record_[op].node + "'"; }
  Node& add_node(std::string op_type, std::string name, std::vector<std::string> inputs,
                 std::vector<std::string> outputs, std::vector<Attribute> attributes = {});
  std::string add_scalar_float(const std::string& name, float v);
  // Scale and zero point initializers of a value's quantization.
  void add_qparams(ValueTensors& v, const std::string& prefix);
  // Float tensor of value `index` (DequantizeLinear on first use).
  const std::string& dequantized(int32_t index);
  // Clamp of a fused activation (runtime: [act_min, act_max] on the codes) then QuantizeLinear:
  // returns the quantized tensor of the new value.
  ValueTensors quantize_output(const std::string& x, const std::string& prefix, const ActQParams& q);
  ValueTensors weighted_op(size_t i, const runtime::Op& op, bool last);
  std::string weight_tensor(size_t i, const runtime::Op& op);
  std::string bias_tensor(size_t i, const runtime::Op& op, float s_x);

  const runtime::Model& m_;
  const std::vector<convert::ConvertedOp>& record_;
  QdqOptions options_;
  Model out_;
  std::vector<ValueTensors> values_;
  std::vector<runtime::ValueShape> shapes_;
};

Node& QdqBuilder::add_node(std::string op_type, std::string name, std::vector<std::string> inputs,
                           std::vector<std::string> outputs, std::vector<Attribute> attributes) {
  out_.graph.nodes.push_back(Node{std::move(op_type), std::move(name), std::move(inputs), std::move(outputs), std::move(attributes)});
  return out_.graph.nodes.back();
}

std::string QdqBuilder::add_scalar_float(const std::string& name, float v) {
  out_.graph.initializers.push_back(make_float_tensor(name, {}, {v}));
  return name;
}

void QdqBuilder::add_qparams(ValueTensors& v, const std::string& prefix) {
  v.scale = add_scalar_float(prefix + "_scale", v.qparams.scale);
  v.zero_point = prefix + "_zero_point";
  out_.graph.initializers.push_back(make_integer_tensor(v.zero_point, DataType::Uint8, {}, {v.qparams.zero_point}));
}

const std::string& QdqBuilder::dequantized(int32_t index) {
  ValueTensors& v = values_.at(static_cast<size_t>(index));
  if (v.dequantized.empty()) {
    v.dequantized = v.quantized + "_dequantized";
    add_node("DequantizeLinear", v.dequantized, {v.quantized, v.scale, v.zero_point}, {v.dequantized});
  }
  return v.dequantized;
}

ValueTensors QdqBuilder::quantize_output(const std::string& x, const std::string& prefix, const ActQParams& q) {
  ValueTensors v;
  v.qparams = q;
  add_qparams(v, prefix);
  std::string clamped = x;
  // QuantizeLinear clamps to uint8's [0, 255] by itself; a narrower code range (fused ReLU, ReLU6,
  // activations of fewer than 8 bits) is a clamp in the float domain at the codes' real values.
  if (q.qmin == 0 && q.qmax == 255) {
    // nothing to add
  } else if (q.qmin == q.zero_point && q.qmax == 255) {
    clamped = prefix + "_relu";
    add_node("Relu", clamped, {x}, {clamped});
  } else {
    clamped = prefix + "_clip";
    const std::string lo = add_scalar_float(prefix + "_clip_min", q.scale * static_cast<float>(q.qmin - q.zero_point));
    const std::string hi = add_scalar_float(prefix + "_clip_max", q.scale * static_cast<float>(q.qmax - q.zero_point));
    add_node("Clip", clamped, {x, lo, hi}, {clamped});
  }
  v.quantized = prefix + "_quantized";
  add_node("QuantizeLinear", v.quantized, {clamped, v.scale, v.zero_point}, {v.quantized});
  return v;
}

std::string QdqBuilder::weight_tensor(size_t i, const runtime::Op& op) {
  const runtime::WeightTensor& w = op.weight;
  const runtime::WeightFormat* format = runtime::find_weight_format(w.bits, w.grid);  // validate_model admitted it
  LOWBIT_CHECK(w.grid == quant::Grid::Integer || format->qdq_type != runtime::QdqWeightType::None,
               where(i) + ": its weights are on the odd grid (binary or SEQ: values 2c+1); ONNX QDQ weights are int8 or "
                          "int4 codes with zero point 0, so this format cannot be exported (train with --weight-format int)");
  LOWBIT_CHECK(format->qdq_type != runtime::QdqWeightType::None,
               where(i) + ": " + std::to_string(w.bits) + "-bit weights (" + format->name +
                   (*format->also ? std::string(" or ") + format->also : std::string()) +
                   ") cannot be exported: ONNX has no " + std::to_string(w.bits) +
                   "-bit integer type (QDQ takes int8, and int4 from opset 21)");
  LOWBIT_CHECK(options_.opset >= format->qdq_min_opset,
               where(i) + ": " + format->name + " weights need the ONNX " +
                   (format->qdq_type == runtime::QdqWeightType::Int4 ? "INT4" : "INT8") +
                   " type, which DequantizeLinear accepts from opset " + std::to_string(format->qdq_min_opset) +
                   "; export with --opset " + std::to_string(format->qdq_min_opset) + " (this export asked for opset " +
                   std::to_string(options_.opset) + ")");
  const std::vector<float>& scales = record_[i].weight_scales;
  LOWBIT_CHECK(static_cast<int32_t>(scales.size()) == op.out_channels,
               where(i) + ": conversion recorded " + std::to_string(scales.size()) + " weight scales for " +
                   std::to_string(op.out_channels) + " output channels");
  std::vector<int32_t> codes(static_cast<size_t>(op.weight_count()));
  int32_t largest = 0;
  for (size_t k = 0; k < codes.size(); ++k) {
    codes[k] = w.value(k);
    largest = std::max(largest, std::abs(codes[k]));
  }
  // 8-bit codes as UINT8 + 128 where int8 could saturate ONNX Runtime's u8s8 kernels (header).
  const bool as_uint8 = format->qdq_type == runtime::QdqWeightType::Int8 && (options_.weight_encoding == WeightEncoding::Uint8 ||
                                        (options_.weight_encoding == WeightEncoding::Auto && largest > kSaturationFreeWeightCode));
  const DataType type = format->qdq_type == runtime::QdqWeightType::Int4 ? DataType::Int4
                        : as_uint8                                        ? DataType::Uint8
                                                                          : DataType::Int8;
  const int32_t zero_point = as_uint8 ? 128 : 0;
  if (as_uint8)
    for (int32_t& c : codes) c += zero_point;
  std::vector<int64_t> dims{op.out_channels};
  if (op.kind == OpKind::Conv2d) dims.insert(dims.end(), {op.in_channels / op.groups, op.kernel_h, op.kernel_w});
  else dims.push_back(op.in_channels);

  const std::string& name = record_[i].node;
  out_.graph.initializers.push_back(make_integer_tensor(name + "_weight_quantized", type, dims, codes));
  out_.graph.initializers.push_back(make_float_tensor(name + "_weight_scale", {op.out_channels}, scales));
  out_.graph.initializers.push_back(make_integer_tensor(name + "_weight_zero_point", type, {op.out_channels},
                                                        std::vector<int32_t>(scales.size(), zero_point)));
  // Per output channel: axis 0 of [O, C/groups, KH, KW] and of Gemm's B = [O, I] with transB = 1.
  const std::string out = name + "_weight";
  add_node("DequantizeLinear", out, {name + "_weight_quantized", name + "_weight_scale", name + "_weight_zero_point"}, {out},
           {Attribute::make_int("axis", 0)});
  return out;
}

std::string QdqBuilder::bias_tensor(size_t i, const runtime::Op& op, float s_x) {
  // bias_q[o] is in units of s_x * s_w[o] (the accumulator's scale); int32 has no zero point.
  const std::string& name = record_[i].node;
  std::vector<float> scales;
  for (float s_w : record_[i].weight_scales) scales.push_back(s_x * s_w);
  out_.graph.initializers.push_back(make_int32_tensor(name + "_bias_quantized", {op.out_channels}, op.bias_q));
  out_.graph.initializers.push_back(make_float_tensor(name + "_bias_scale", {op.out_channels}, scales));
  const std::string out = name + "_bias";
  add_node("DequantizeLinear", out, {name + "_bias_quantized", name + "_bias_scale"}, {out}, {Attribute::make_int("axis", 0)});
  return out;
}

ValueTensors QdqBuilder::weighted_op(size_t i, const runtime::Op& op, bool last) {
  const std::string& name = record_[i].node;
  const int32_t x_index = op.inputs.at(0);
  const float s_x = values_.at(static_cast<size_t>(x_index)).qparams.scale;
  std::string x;
  if (op.kind == OpKind::Linear && values_.at(static_cast<size_t>(x_index)).rank != 2) {
    // The runtime's Linear reads [C, H, W] as C*H*W features in C-major order, as Flatten does.
    // Flattening the uint8 codes (not the floats) keeps DQ -> Gemm adjacent, the pattern ONNX
    // Runtime fuses into an integer QGemm.
    ValueTensors flat = values_[static_cast<size_t>(x_index)];
    flat.quantized = name + "_input_flatten";
    flat.dequantized.clear();
    flat.rank = 2;
    add_node("Flatten", flat.quantized, {values_[static_cast<size_t>(x_index)].quantized}, {flat.quantized},
             {Attribute::make_int("axis", 1)});
    flat.dequantized = flat.quantized + "_dequantized";
    add_node("DequantizeLinear", flat.dequantized, {flat.quantized, flat.scale, flat.zero_point}, {flat.dequantized});
    x = flat.dequantized;
  } else {
    x = dequantized(x_index);
  }
  const std::string w = weight_tensor(i, op);
  const std::string b = bias_tensor(i, op, s_x);
  std::string y = name + "_output";
  int rank = 4;
  if (op.kind == OpKind::Conv2d) {
    LOWBIT_CHECK(values_[static_cast<size_t>(x_index)].rank == 4, where(i) + ": a convolution needs an [N, C, H, W] input");
    add_node("Conv", name, {x, w, b}, {y},
             {Attribute::make_ints("kernel_shape", {op.kernel_h, op.kernel_w}),
              Attribute::make_ints("strides", {op.stride_h, op.stride_w}),
              Attribute::make_ints("pads", {op.pad_h, op.pad_w, op.pad_h, op.pad_w}),
              Attribute::make_ints("dilations", {op.dilation_h, op.dilation_w}), Attribute::make_int("group", op.groups)});
  } else {
    add_node("Gemm", name, {x, w, b}, {y}, {Attribute::make_int("transB", 1)});
    rank = 2;
  }
  if (last) {
    // The output layer keeps no requantization: its float logits are acc * s_x * s_w[o].
    if (rank == 4) {
      add_node("Flatten", name + "_flatten", {y}, {"logits"}, {Attribute::make_int("axis", 1)});
    } else {
      out_.graph.nodes.back().outputs[0] = "logits";
    }
    return {};
  }
  ValueTensors v = quantize_output(y, name, op.out);
  v.rank = rank;
  return v;
}

Model QdqBuilder::build() {
  shapes_ = runtime::validate_model(m_, "onnx export");
  LOWBIT_CHECK(record_.size() == m_.ops.size(), "onnx export: the conversion record has " + std::to_string(record_.size()) +
                                                   " entries for " + std::to_string(m_.ops.size()) + " ops");
  out_.opset = options_.opset;
  ir_version_for_opset(options_.opset);  // rejects opsets lowbit does not write
  out_.graph.name = "lowbit_qdq";
  out_.doc_string = "QDQ export of lowbit integer model '" + m_.name + "'";
  out_.graph.inputs.push_back({"input", DataType::Float, {-1, m_.in_channels, m_.in_height, m_.in_width}});

  // The model's input normalisation (x - mean[c]) / std[c] as float Sub then Div on [1, C, 1, 1]
  // constants, so the graph takes images in [0, 1] as lowbit's runtime does; both are exact IEEE
  // float32 operations, the same as quant::normalise_input.
  std::string input = "input";
  if (!m_.input_mean.empty()) {
    const std::vector<int64_t> dims{1, m_.in_channels, 1, 1};
    out_.graph.initializers.push_back(make_float_tensor("input_mean", dims, m_.input_mean));
    out_.graph.initializers.push_back(make_float_tensor("input_std", dims, m_.input_std));
    add_node("Sub", "input_centred", {"input", "input_mean"}, {"input_centred"});
    add_node("Div", "input_normalised", {"input_centred", "input_std"}, {"input_normalised"});
    input = "input_normalised";
  }
  values_.push_back(quantize_output(input, "input", m_.input));
  for (size_t i = 0; i < m_.ops.size(); ++i) {
    const runtime::Op& op = m_.ops[i];
    const bool last = i + 1 == m_.ops.size();
    const std::string& name = record_[i].node;
    LOWBIT_CHECK(!last || op.output_layer, where(i) + ": the last op must be the output layer");
    ValueTensors v;
    switch (op.kind) {
      case OpKind::Conv2d:
      case OpKind::Linear:
        v = weighted_op(i, op, last);
        break;
      case OpKind::MaxPool2d: {
        // Max pooling commutes with the monotonic dequantization: it runs on the uint8 codes.
        const ValueTensors& in = values_.at(static_cast<size_t>(op.inputs[0]));
        v = in;
        v.dequantized.clear();
        v.quantized = name + "_quantized";
        add_node("MaxPool", name, {in.quantized}, {v.quantized},
                 {Attribute::make_ints("kernel_shape", {op.kernel_h, op.kernel_w}),
                  Attribute::make_ints("strides", {op.stride_h, op.stride_w}),
                  Attribute::make_ints("pads", {op.pad_h, op.pad_w, op.pad_h, op.pad_w})});
        break;
      }
      case OpKind::Flatten: {
        const ValueTensors& in = values_.at(static_cast<size_t>(op.inputs[0]));
        v = in;
        v.dequantized.clear();
        v.quantized = name + "_quantized";
        v.rank = 2;
        add_node("Flatten", name, {in.quantized}, {v.quantized}, {Attribute::make_int("axis", 1)});
        break;
      }
      case OpKind::AvgPool2d: {
        const std::string y = name + "_output";
        add_node("AveragePool", name, {dequantized(op.inputs[0])}, {y},
                 {Attribute::make_ints("kernel_shape", {op.kernel_h, op.kernel_w}),
                  Attribute::make_ints("strides", {op.stride_h, op.stride_w}),
                  Attribute::make_ints("pads", {op.pad_h, op.pad_w, op.pad_h, op.pad_w}),
                  Attribute::make_int("count_include_pad", 0)});
        v = quantize_output(y, name, op.out);
        break;
      }
      case OpKind::GlobalAvgPool: {
        const std::string y = name + "_output";
        add_node("GlobalAveragePool", name, {dequantized(op.inputs[0])}, {y});
        v = quantize_output(y, name, op.out);
        break;
      }
      case OpKind::Lookup: {
        // The table itself, indexed by the uint8 codes: ONNX Runtime computes exactly the runtime's
        // codes, with no float evaluation of the function that could round differently.
        const ValueTensors& in = values_.at(static_cast<size_t>(op.inputs[0]));
        const std::string index = name + "_index";
        add_node("Cast", index, {in.quantized}, {index}, {Attribute::make_int("to", static_cast<int64_t>(DataType::Int32))});
        const std::string table = name + "_table";
        out_.graph.initializers.push_back(
            make_integer_tensor(table, DataType::Uint8, {256}, std::vector<int32_t>(op.table.begin(), op.table.end())));
        v.qparams = op.out;
        add_qparams(v, name);
        v.quantized = name + "_quantized";
        v.rank = in.rank;
        add_node("Gather", name, {table, index}, {v.quantized}, {Attribute::make_int("axis", 0)});
        break;
      }
      case OpKind::Concat: {
        // Each input's codes through its table onto the output grid (as for Lookup: exact in ONNX
        // Runtime), then the uint8 codes side by side.
        std::vector<std::string> parts;
        for (size_t k = 0; k < op.inputs.size(); ++k) {
          const ValueTensors& in = values_.at(static_cast<size_t>(op.inputs[k]));
          const std::string part = name + "_input" + std::to_string(k);
          add_node("Cast", part + "_index", {in.quantized}, {part + "_index"},
                   {Attribute::make_int("to", static_cast<int64_t>(DataType::Int32))});
          out_.graph.initializers.push_back(make_integer_tensor(
              part + "_table", DataType::Uint8, {256},
              std::vector<int32_t>(op.table.begin() + 256 * static_cast<std::ptrdiff_t>(k),
                                   op.table.begin() + 256 * static_cast<std::ptrdiff_t>(k + 1))));
          add_node("Gather", part, {part + "_table", part + "_index"}, {part}, {Attribute::make_int("axis", 0)});
          parts.push_back(part);
        }
        v.qparams = op.out;
        add_qparams(v, name);
        v.quantized = name + "_quantized";
        v.rank = values_.at(static_cast<size_t>(op.inputs[0])).rank;
        add_node("Concat", name, parts, {v.quantized}, {Attribute::make_int("axis", 1)});
        break;
      }
      case OpKind::Add: {
        const std::string y = name + "_output";
        const std::string a = dequantized(op.inputs[0]);
        const std::string b = dequantized(op.inputs[1]);
        add_node("Add", name, {a, b}, {y});
        v = quantize_output(y, name, op.out);
        v.rank = values_.at(static_cast<size_t>(op.inputs[0])).rank;
        break;
      }
    }
    values_.push_back(v);
  }
  const runtime::ValueShape& logits = shapes_.back();
  out_.graph.outputs.push_back({"logits", DataType::Float, {-1, logits.size()}});
  return std::move(out_);
}

}  // namespace

WeightEncoding parse_weight_encoding(const std::string& name) {
  if (name == "auto") return WeightEncoding::Auto;
  if (name == "int8") return WeightEncoding::Int8;
  if (name == "uint8") return WeightEncoding::Uint8;
  throw Error("onnx export: unknown weight type '" + name + "': use auto (default: exact in ONNX Runtime on every CPU), "
              "int8 (fastest, exact only on VNNI or ARM CPUs) or uint8");
}

Model qdq_model(const runtime::Model& model, const std::vector<convert::ConvertedOp>& record, const QdqOptions& options) {
  return QdqBuilder(model, record, options).build();
}

Model qdq_model_from_net(models::Net& net, const QdqOptions& options) {
  std::vector<convert::ConvertedOp> record;
  const runtime::Model m = convert::to_runtime_model(net, net->model_name(), &record);
  return qdq_model(m, record, options);
}

}  // namespace lowbit::onnx
