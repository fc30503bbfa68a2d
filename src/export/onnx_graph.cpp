#include "export/onnx_graph.h"

#include <cstring>
#include <set>

#include "base/atomic_file.h"
#include "base/error.h"
#include "export/protobuf_writer.h"

namespace lowbit::onnx {
namespace {

// Field numbers of onnx/onnx.proto (the ONNX IR specification).
namespace model_field { constexpr int kIrVersion = 1, kProducerName = 2, kProducerVersion = 3, kDocString = 6, kGraph = 7, kOpsetImport = 8; }
namespace opset_field { constexpr int kDomain = 1, kVersion = 2; }
namespace graph_field { constexpr int kNode = 1, kName = 2, kInitializer = 5, kInput = 11, kOutput = 12; }
namespace node_field { constexpr int kInput = 1, kOutput = 2, kName = 3, kOpType = 4, kAttribute = 5, kDomain = 7; }
namespace attribute_field { constexpr int kName = 1, kF = 2, kI = 3, kS = 4, kInts = 8, kType = 20; }
namespace attribute_type { constexpr int kFloat = 1, kInt = 2, kString = 3, kInts = 7; }
namespace tensor_field { constexpr int kDims = 1, kDataType = 2, kName = 8, kRawData = 9; }
namespace value_info_field { constexpr int kName = 1, kType = 2; }
namespace type_field { constexpr int kTensorType = 1; }
namespace tensor_type_field { constexpr int kElemType = 1, kShape = 2; }
namespace shape_field { constexpr int kDim = 1; }
namespace dimension_field { constexpr int kDimValue = 1, kDimParam = 2; }

bool is_4bit(DataType t) { return t == DataType::Int4 || t == DataType::Uint4; }

int64_t raw_size(DataType t, int64_t count) {
  switch (t) {
    case DataType::Float:
    case DataType::Int32: return 4 * count;
    case DataType::Int64: return 8 * count;
    case DataType::Uint8:
    case DataType::Int8: return count;
    case DataType::Uint4:
    case DataType::Int4: return (count + 1) / 2;
  }
  throw Error("onnx: unknown data type " + std::to_string(static_cast<int>(t)));
}

ProtoWriter encode_attribute(const Attribute& a) {
  ProtoWriter w;
  w.add_bytes(attribute_field::kName, a.name);
  switch (a.kind) {
    case Attribute::Kind::Int:
      w.add_int64(attribute_field::kI, a.i);
      w.add_int64(attribute_field::kType, attribute_type::kInt);
      break;
    case Attribute::Kind::Ints:
      // onnx.proto declares `repeated int64 ints` without [packed]; proto2 readers accept both
      // forms, but the unpacked one is what every ONNX writer emits.
      for (int64_t v : a.ints) w.add_int64(attribute_field::kInts, v);
      w.add_int64(attribute_field::kType, attribute_type::kInts);
      break;
    case Attribute::Kind::Float:
      w.add_float(attribute_field::kF, a.f);
      w.add_int64(attribute_field::kType, attribute_type::kFloat);
      break;
    case Attribute::Kind::String:
      w.add_bytes(attribute_field::kS, a.s);
      w.add_int64(attribute_field::kType, attribute_type::kString);
      break;
  }
  return w;
}

ProtoWriter encode_tensor(const Tensor& t) {
  LOWBIT_CHECK(static_cast<int64_t>(t.raw.size()) == raw_size(t.type, t.element_count()),
               "onnx: tensor '" + t.name + "' holds " + std::to_string(t.raw.size()) + " bytes; its type " +
                   data_type_name(t.type) + " and shape need " + std::to_string(raw_size(t.type, t.element_count())));
  ProtoWriter w;
  for (int64_t d : t.dims) w.add_int64(tensor_field::kDims, d);
  w.add_int64(tensor_field::kDataType, static_cast<int64_t>(t.type));
  w.add_bytes(tensor_field::kName, t.name);
  w.add_bytes(tensor_field::kRawData, t.raw);
  return w;
}

ProtoWriter encode_value_info(const ValueInfo& v) {
  ProtoWriter shape;
  size_t symbolic = 0;
  for (int64_t d : v.dims) {
    ProtoWriter dim;
    if (d >= 0) {
      dim.add_int64(dimension_field::kDimValue, d);
    } else {
      dim.add_bytes(dimension_field::kDimParam, symbolic < v.symbols.size() ? v.symbols[symbolic] : "N");
      ++symbolic;
    }
    shape.add_message(shape_field::kDim, dim);
  }
  ProtoWriter tensor_type;
  tensor_type.add_int64(tensor_type_field::kElemType, static_cast<int64_t>(v.type));
  tensor_type.add_message(tensor_type_field::kShape, shape);
  ProtoWriter type;
  type.add_message(type_field::kTensorType, tensor_type);
  ProtoWriter w;
  w.add_bytes(value_info_field::kName, v.name);
  w.add_message(value_info_field::kType, type);
  return w;
}

ProtoWriter encode_node(const Node& n) {
  ProtoWriter w;
  for (const std::string& in : n.inputs) w.add_bytes(node_field::kInput, in);
  for (const std::string& out : n.outputs) w.add_bytes(node_field::kOutput, out);
  w.add_bytes(node_field::kName, n.name);
  w.add_bytes(node_field::kOpType, n.op_type);
  for (const Attribute& a : n.attributes) w.add_message(node_field::kAttribute, encode_attribute(a));
  if (!n.domain.empty()) w.add_bytes(node_field::kDomain, n.domain);
  return w;
}

// Every node input must be defined before the node (ONNX requires topological order).
void check_topological(const Graph& g) {
  std::set<std::string> defined;
  for (const ValueInfo& v : g.inputs) defined.insert(v.name);
  for (const Tensor& t : g.initializers) defined.insert(t.name);
  for (const Node& n : g.nodes) {
    for (const std::string& in : n.inputs)
      LOWBIT_CHECK(in.empty() || defined.count(in),
                   "onnx: node '" + n.name + "' (" + n.op_type + ") reads '" + in + "', which nothing defined before it");
    for (const std::string& out : n.outputs) defined.insert(out);
  }
  for (const ValueInfo& v : g.outputs)
    LOWBIT_CHECK(defined.count(v.name), "onnx: graph output '" + v.name + "' is not produced by any node");
}

template <typename T>
std::string to_raw(const std::vector<T>& values) {
  // Little-endian hosts only (lowbit's runtime makes the same assumption for .lbq files).
  std::string raw(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(raw.data(), values.data(), raw.size());
  return raw;
}

int64_t product(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

}  // namespace

const char* data_type_name(DataType t) {
  switch (t) {
    case DataType::Float: return "float";
    case DataType::Uint8: return "uint8";
    case DataType::Int8: return "int8";
    case DataType::Int32: return "int32";
    case DataType::Int64: return "int64";
    case DataType::Uint4: return "uint4";
    case DataType::Int4: return "int4";
  }
  return "unknown";
}

int64_t Tensor::element_count() const { return product(dims); }

Attribute Attribute::make_int(std::string name, int64_t v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Kind::Int;
  a.i = v;
  return a;
}
Attribute Attribute::make_ints(std::string name, std::vector<int64_t> v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Kind::Ints;
  a.ints = std::move(v);
  return a;
}
Attribute Attribute::make_float(std::string name, float v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Kind::Float;
  a.f = v;
  return a;
}
Attribute Attribute::make_string(std::string name, std::string v) {
  Attribute a;
  a.name = std::move(name);
  a.kind = Kind::String;
  a.s = std::move(v);
  return a;
}

const Attribute* Node::attribute(const std::string& attribute_name) const {
  for (const Attribute& a : attributes)
    if (a.name == attribute_name) return &a;
  return nullptr;
}

const Tensor* Graph::initializer(const std::string& tensor_name) const {
  for (const Tensor& t : initializers)
    if (t.name == tensor_name) return &t;
  return nullptr;
}

const Node* Graph::producer(const std::string& output) const {
  for (const Node& n : nodes)
    for (const std::string& o : n.outputs)
      if (o == output) return &n;
  return nullptr;
}

int64_t ir_version_for_opset(int64_t opset) {
  LOWBIT_CHECK(opset >= 13 && opset <= 21, "onnx: opset " + std::to_string(opset) +
                                               " is not supported; lowbit writes opsets 13 to 21");
  if (opset >= 21) return 10;
  if (opset >= 19) return 9;
  if (opset >= 15) return 8;
  return 7;
}

std::string serialize(const Model& model) {
  check_topological(model.graph);
  ProtoWriter graph;
  for (const Node& n : model.graph.nodes) graph.add_message(graph_field::kNode, encode_node(n));
  graph.add_bytes(graph_field::kName, model.graph.name);
  for (const Tensor& t : model.graph.initializers) graph.add_message(graph_field::kInitializer, encode_tensor(t));
  for (const ValueInfo& v : model.graph.inputs) graph.add_message(graph_field::kInput, encode_value_info(v));
  for (const ValueInfo& v : model.graph.outputs) graph.add_message(graph_field::kOutput, encode_value_info(v));

  ProtoWriter opset;
  opset.add_bytes(opset_field::kDomain, "");  // the default ai.onnx domain
  opset.add_int64(opset_field::kVersion, model.opset);

  ProtoWriter m;
  m.add_int64(model_field::kIrVersion, ir_version_for_opset(model.opset));
  m.add_bytes(model_field::kProducerName, model.producer_name);
  m.add_bytes(model_field::kProducerVersion, model.producer_version);
  if (!model.doc_string.empty()) m.add_bytes(model_field::kDocString, model.doc_string);
  m.add_message(model_field::kGraph, graph);
  m.add_message(model_field::kOpsetImport, opset);
  for (const auto& [domain, version] : model.extra_opsets) {
    ProtoWriter extra;
    extra.add_bytes(opset_field::kDomain, domain);
    extra.add_int64(opset_field::kVersion, version);
    m.add_message(model_field::kOpsetImport, extra);
  }
  return m.bytes();
}

void save(const Model& model, const std::string& path) { write_file_atomically(path, serialize(model)); }

Tensor make_float_tensor(std::string name, std::vector<int64_t> dims, const std::vector<float>& values) {
  LOWBIT_CHECK(product(dims) == static_cast<int64_t>(values.size()), "onnx: tensor '" + name + "': value count does not match its shape");
  return Tensor{std::move(name), DataType::Float, std::move(dims), to_raw(values)};
}

Tensor make_int32_tensor(std::string name, std::vector<int64_t> dims, const std::vector<int32_t>& values) {
  LOWBIT_CHECK(product(dims) == static_cast<int64_t>(values.size()), "onnx: tensor '" + name + "': value count does not match its shape");
  return Tensor{std::move(name), DataType::Int32, std::move(dims), to_raw(values)};
}

Tensor make_int64_tensor(std::string name, std::vector<int64_t> dims, const std::vector<int64_t>& values) {
  LOWBIT_CHECK(product(dims) == static_cast<int64_t>(values.size()), "onnx: tensor '" + name + "': value count does not match its shape");
  return Tensor{std::move(name), DataType::Int64, std::move(dims), to_raw(values)};
}

Tensor make_integer_tensor(std::string name, DataType type, std::vector<int64_t> dims, const std::vector<int32_t>& values) {
  LOWBIT_CHECK(product(dims) == static_cast<int64_t>(values.size()), "onnx: tensor '" + name + "': value count does not match its shape");
  int32_t lo = 0, hi = 0;
  switch (type) {
    case DataType::Int8: lo = -128, hi = 127; break;
    case DataType::Uint8: lo = 0, hi = 255; break;
    case DataType::Int4: lo = -8, hi = 7; break;
    case DataType::Uint4: lo = 0, hi = 15; break;
    default: throw Error("onnx: tensor '" + name + "': make_integer_tensor takes 8- or 4-bit types");
  }
  Tensor t{std::move(name), type, std::move(dims), {}};
  t.raw.assign(static_cast<size_t>(raw_size(type, static_cast<int64_t>(values.size()))), '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    const int32_t v = values[i];
    LOWBIT_CHECK(v >= lo && v <= hi, "onnx: tensor '" + t.name + "': value " + std::to_string(v) + " is outside the " +
                                         data_type_name(type) + " range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    const auto bits = static_cast<uint8_t>(v);  // two's complement
    if (is_4bit(type)) t.raw[i / 2] = static_cast<char>(static_cast<uint8_t>(t.raw[i / 2]) | ((bits & 0x0F) << (4 * (i % 2))));
    else t.raw[i] = static_cast<char>(bits);
  }
  return t;
}

}  // namespace lowbit::onnx
