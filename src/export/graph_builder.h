// Appending nodes and initializers to an onnx::Graph with unique names (the decoder and encoder
// exporters): every helper returns its output's name. Node names are `scope/OpType_<n>`; outputs
// `name:<k>` unless an explicit output name is given (a graph output such as "logits").
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "export/onnx_graph.h"

namespace lowbit::onnx {

class GraphBuilder {
 public:
  explicit GraphBuilder(Graph& g) : g_(g) {}

  std::string op(const std::string& type, std::vector<std::string> inputs, const std::string& scope,
                 std::vector<Attribute> attributes = {}, const std::string& output = "", const std::string& domain = "") {
    return ops(type, std::move(inputs), 1, scope, std::move(attributes), output, domain)[0];
  }

  std::vector<std::string> ops(const std::string& type, std::vector<std::string> inputs, int outputs,
                               const std::string& scope, std::vector<Attribute> attributes = {},
                               const std::string& output = "", const std::string& domain = "") {
    Node n;
    n.op_type = type;
    n.domain = domain;
    n.name = scope + "/" + type + "_" + std::to_string(counter_++);
    n.inputs = std::move(inputs);
    for (int i = 0; i < outputs; ++i)
      n.outputs.push_back(!output.empty() && outputs == 1 ? output : n.name + ":" + std::to_string(i));
    n.attributes = std::move(attributes);
    g_.nodes.push_back(std::move(n));
    return g_.nodes.back().outputs;
  }

  // Scalar constants, shared by name.
  std::string scalar(const std::string& name, float v) {
    if (g_.initializer(name) == nullptr) g_.initializers.push_back(make_float_tensor(name, {}, {v}));
    return name;
  }
  std::string ints(const std::string& name, const std::vector<int64_t>& v, bool scalar_shape = false) {
    if (g_.initializer(name) == nullptr)
      g_.initializers.push_back(
          make_int64_tensor(name, scalar_shape ? std::vector<int64_t>{} : std::vector<int64_t>{static_cast<int64_t>(v.size())}, v));
    return name;
  }
  void add(Tensor t) { g_.initializers.push_back(std::move(t)); }
  bool has(const std::string& name) const { return g_.initializer(name) != nullptr; }

 private:
  Graph& g_;
  int counter_ = 0;
};

}  // namespace lowbit::onnx
