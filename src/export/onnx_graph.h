// An ONNX model held in memory as lowbit builds it (nodes, initializers, graph inputs and
// outputs), and its serialisation to the ONNX protobuf format (onnx/onnx.proto, IR version 10).
//
// Only what lowbit's exporters need is modelled: tensors carry raw little-endian data, attributes
// are int, ints, float or string. Keeping the graph as plain structs lets tests inspect it
// directly, and keeps the wire format in one place (onnx_graph.cpp).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lowbit::onnx {

// TensorProto.DataType values (part of the ONNX format: never renumber).
enum class DataType : int32_t {
  Float = 1,
  Uint8 = 2,
  Int8 = 3,
  Int32 = 6,
  Int64 = 7,
  Uint4 = 21,  // opset 21+
  Int4 = 22,   // opset 21+
};
const char* data_type_name(DataType t);

struct Tensor {
  std::string name;
  DataType type = DataType::Float;
  std::vector<int64_t> dims;
  // Little-endian element data; 4-bit types hold two elements per byte, the first in the low
  // nibble, the last byte padded with zero when the count is odd.
  std::string raw;
  int64_t element_count() const;
};

struct Attribute {
  enum class Kind { Int, Ints, Float, String };
  std::string name;
  Kind kind = Kind::Int;
  int64_t i = 0;
  std::vector<int64_t> ints;
  float f = 0.0f;
  std::string s;

  static Attribute make_int(std::string name, int64_t v);
  static Attribute make_ints(std::string name, std::vector<int64_t> v);
  static Attribute make_float(std::string name, float v);
  static Attribute make_string(std::string name, std::string v);
};

struct Node {
  std::string op_type;  // e.g. "QuantizeLinear", "Conv"
  std::string name;
  std::vector<std::string> inputs;  // "" marks an omitted optional input
  std::vector<std::string> outputs;
  std::vector<Attribute> attributes;
  // "" (the default ai.onnx domain) or e.g. "com.microsoft" (Model::extra_opsets); last, with an
  // initializer, so that Node{op_type, name, inputs, outputs, attributes} stays valid.
  std::string domain = {};
  const Attribute* attribute(const std::string& name) const;  // null when absent
};

// A graph input or output: a tensor type with a shape; a negative dimension is symbolic, named
// by `symbols` in order (the k-th negative dimension gets symbols[k]; "N" when there is none).
// Dimensions of one name are equal sizes for ONNX tools, so unrelated ones get different names.
struct ValueInfo {
  std::string name;
  DataType type = DataType::Float;
  std::vector<int64_t> dims;
  std::vector<std::string> symbols = {};  // a default: ValueInfo{name, type, dims} stays complete
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;  // in topological order
  std::vector<Tensor> initializers;
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;

  const Tensor* initializer(const std::string& name) const;  // null when absent
  // The node that produces `output`; null for graph inputs and initializers.
  const Node* producer(const std::string& output) const;
};

struct Model {
  Graph graph;
  int64_t opset = 21;  // default ("ai.onnx") domain
  // Opsets of other domains that nodes use, e.g. {"com.microsoft", 1} for MatMulNBits.
  std::vector<std::pair<std::string, int64_t>> extra_opsets;
  std::string producer_name = "lowbit";
  std::string producer_version = "0.1";
  std::string doc_string;
};

// The IR version that goes with an opset (opset 21 -> IR 10, 19/20 -> 9, 15-18 -> 8, 13/14 -> 7).
int64_t ir_version_for_opset(int64_t opset);

// ONNX protobuf bytes of `model`. Throws lowbit::Error for a tensor whose data size does not
// match its type and dims, or a node input that no node, initializer or graph input provides.
std::string serialize(const Model& model);

// Writes serialize(model) to `path` atomically.
void save(const Model& model, const std::string& path);

// ---- Helpers that build tensors from values ----
Tensor make_float_tensor(std::string name, std::vector<int64_t> dims, const std::vector<float>& values);
Tensor make_int32_tensor(std::string name, std::vector<int64_t> dims, const std::vector<int32_t>& values);
Tensor make_int64_tensor(std::string name, std::vector<int64_t> dims, const std::vector<int64_t>& values);
// Int8 / Uint8 / Int4 / Uint4; each value must be in the type's range (lowbit::Error otherwise).
Tensor make_integer_tensor(std::string name, DataType type, std::vector<int64_t> dims, const std::vector<int32_t>& values);

}  // namespace lowbit::onnx
