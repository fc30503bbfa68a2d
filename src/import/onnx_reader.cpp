#include "import/onnx_reader.h"

#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "base/error.h"

namespace lowbit::import {
namespace {

// The batch size inside shape arithmetic (Shape -> Gather -> Concat -> Reshape): unknown until
// run time, so it is carried as a marker, never as a number.
constexpr int64_t kBatch = std::numeric_limits<int64_t>::min();
// Bounds that keep a hostile file from making the importer allocate without limit.
constexpr int64_t kMaxElements = int64_t{1} << 28;
constexpr int64_t kMaxDim = int64_t{1} << 20;

// A tensor known while importing (an initializer, a Constant node, or folded from them).
struct Constant {
  bool is_int = false;
  std::vector<int64_t> dims;
  std::vector<float> f;    // when !is_int
  std::vector<int64_t> i;  // when is_int; may hold kBatch
  int64_t size() const { return is_int ? static_cast<int64_t>(i.size()) : static_cast<int64_t>(f.size()); }
  double at(int64_t k) const { return is_int ? static_cast<double>(i[static_cast<size_t>(k)]) : f[static_cast<size_t>(k)]; }
};

// A tensor computed from the network input: a value of the lowbit Net.
struct Activation {
  int value = 0;               // Net value index
  std::vector<int64_t> shape;  // per example, as ONNX sees it: {C, H, W}, {F}, {C, 1, 1} after GAP
  int net_rank = 4;            // the Net's tensor: 4 = [N, C, H, W], 2 = [N, F]
};

struct Value {
  std::optional<Constant> constant;
  std::optional<Activation> activation;
};

int64_t checked_count(const std::vector<int64_t>& dims, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : dims) {
    LOWBIT_CHECK(d >= 0 && d <= kMaxElements, what + " has a dimension of " + std::to_string(d));
    n *= d;
    LOWBIT_CHECK(n <= kMaxElements, what + " has more than " + std::to_string(kMaxElements) + " elements");
  }
  return n;
}

std::string shape_text(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t k = 0; k < dims.size(); ++k) s += (k ? ", " : "") + (dims[k] == kBatch ? std::string("N") : std::to_string(dims[k]));
  return s + "]";
}

std::string data_type_text(int32_t t) {
  const auto* d = onnx::TensorProto_DataType_descriptor();
  const auto* v = d->FindValueByNumber(t);
  return v != nullptr ? v->name() : "type " + std::to_string(t);
}

template <typename T>
std::vector<T> raw_values(const std::string& raw, int64_t count, const std::string& what) {
  LOWBIT_CHECK(raw.size() == static_cast<size_t>(count) * sizeof(T),
               what + " holds " + std::to_string(raw.size()) + " bytes of raw data, expected " +
                   std::to_string(count * static_cast<int64_t>(sizeof(T))));
  std::vector<T> v(static_cast<size_t>(count));
  if (count > 0) std::memcpy(v.data(), raw.data(), raw.size());  // ONNX raw data is little-endian, as is every CPU lowbit targets
  return v;
}

Constant to_constant(const onnx::TensorProto& t, const std::string& where) {
  const std::string what = where + "tensor '" + t.name() + "'";
  LOWBIT_CHECK(t.data_location() != onnx::TensorProto::EXTERNAL,
               what + " keeps its data in an external file; lowbit reads self-contained models: save the model "
                      "with all tensors inside (onnx.save(model, path, save_as_external_data=False))");
  Constant c;
  c.dims.assign(t.dims().begin(), t.dims().end());
  const int64_t n = checked_count(c.dims, what);
  auto expect_count = [&](int64_t got) {
    LOWBIT_CHECK(got == n, what + " has " + std::to_string(got) + " values for shape " + shape_text(c.dims));
  };
  const bool raw = t.has_raw_data();
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      if (raw) {
        c.f = raw_values<float>(t.raw_data(), n, what);
      } else {
        expect_count(t.float_data_size());
        c.f.assign(t.float_data().begin(), t.float_data().end());
      }
      break;
    case onnx::TensorProto::DOUBLE: {
      std::vector<double> d = raw ? raw_values<double>(t.raw_data(), n, what)
                                  : std::vector<double>(t.double_data().begin(), t.double_data().end());
      expect_count(static_cast<int64_t>(d.size()));
      c.f.assign(d.begin(), d.end());
      break;
    }
    case onnx::TensorProto::INT64:
      c.is_int = true;
      if (raw) {
        c.i = raw_values<int64_t>(t.raw_data(), n, what);
      } else {
        expect_count(t.int64_data_size());
        c.i.assign(t.int64_data().begin(), t.int64_data().end());
      }
      break;
    case onnx::TensorProto::INT32: {
      c.is_int = true;
      std::vector<int32_t> v = raw ? raw_values<int32_t>(t.raw_data(), n, what)
                                   : std::vector<int32_t>(t.int32_data().begin(), t.int32_data().end());
      expect_count(static_cast<int64_t>(v.size()));
      c.i.assign(v.begin(), v.end());
      break;
    }
    default:
      throw Error(what + " has data type " + data_type_text(t.data_type()) +
                  "; the importer reads float32 models (FLOAT, DOUBLE, INT64 and INT32 tensors): convert the model to "
                  "float32 before importing it");
  }
  return c;
}

std::string lowercase(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// ONNX node names ("/layer1/conv1/Conv") as lowbit node names ("layer1_conv1_conv").
std::string sanitized(const std::string& name) {
  std::string out;
  for (char ch : lowercase(name)) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
    if (ok) out += ch;
    else if (!out.empty() && out.back() != '_') out += '_';
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

class Lowering {
 public:
  Lowering(const onnx::ModelProto& model, std::string label) : model_(model), label_(std::move(label)) {}
  ImportedModel run();

 private:
  const onnx::GraphProto& graph() const { return model_.graph(); }
  [[noreturn]] void fail(const onnx::NodeProto& n, const std::string& what) const {
    throw Error(label_ + ": node '" + n.name() + "' (" + n.op_type() + ", opset " + std::to_string(opset_) + "): " + what);
  }
  std::string describe(const onnx::NodeProto& n) const { return (n.name().empty() ? "unnamed" : n.name()) + " (" + n.op_type() + ")"; }

  // Inputs.
  const Value& input(const onnx::NodeProto& n, int k) const;
  bool has_input(const onnx::NodeProto& n, int k) const { return k < n.input_size() && !n.input(k).empty(); }
  const Constant& constant_input(const onnx::NodeProto& n, int k, const std::string& role) const;
  const Activation& activation_input(const onnx::NodeProto& n, int k) const;
  const onnx::AttributeProto* attribute(const onnx::NodeProto& n, const std::string& name) const;
  int64_t attr_int(const onnx::NodeProto& n, const std::string& name, int64_t fallback) const;
  float attr_float(const onnx::NodeProto& n, const std::string& name, float fallback) const;
  std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const std::string& name, std::vector<int64_t> fallback) const;
  std::string attr_string(const onnx::NodeProto& n, const std::string& name, const std::string& fallback) const;

  // Outputs.
  void set_constant(const std::string& name, Constant c) { values_[name].constant = std::move(c); }
  void set_activation(const onnx::NodeProto& n, const std::string& name, Activation a, int consumed_uses);
  int add_layer(const onnx::NodeProto& n, ImportedLayer layer, std::vector<int64_t> shape, int net_rank);
  // The layer that produced `a` when this node is its only consumer (so an activation, batch norm
  // or bias may be folded into it); null otherwise.
  ImportedLayer* sole_producer(const Activation& a);

  void lower(const onnx::NodeProto& n);
  void lower_constant_op(const onnx::NodeProto& n);
  void lower_conv(const onnx::NodeProto& n);
  void lower_batch_norm(const onnx::NodeProto& n);
  void lower_activation(const onnx::NodeProto& n, const std::string& activation);
  void lower_clip(const onnx::NodeProto& n);
  void lower_pointwise(const onnx::NodeProto& n, const std::string& function, float alpha, float beta);
  void lower_mul(const onnx::NodeProto& n);
  void lower_affine(const onnx::NodeProto& n);
  void lower_gemm(const onnx::NodeProto& n);
  void lower_matmul(const onnx::NodeProto& n);
  void lower_add(const onnx::NodeProto& n);
  void lower_concat(const onnx::NodeProto& n);
  void lower_pool(const onnx::NodeProto& n, bool max);
  void lower_flatten_like(const onnx::NodeProto& n, const std::vector<int64_t>& target);
  void lower_reshape(const onnx::NodeProto& n);
  void lower_squeeze(const onnx::NodeProto& n, bool squeeze);
  bool fold_constants(const onnx::NodeProto& n);  // true when every input is constant and the op folds
  Constant binary_constant(const onnx::NodeProto& n, const Constant& a, const Constant& b) const;
  std::vector<int64_t> axes_of(const onnx::NodeProto& n) const;

  struct Window {
    int64_t kernel, stride, padding;
    int64_t dilation = 1;
    int64_t extent() const { return dilation * (kernel - 1) + 1; }  // input rows (columns) one window spans
  };
  // dilated: the node may have dilations (Conv); the pools' must be 1.
  Window square_window(const onnx::NodeProto& n, const std::vector<int64_t>& kernel_shape, bool dilated = false) const;

  const onnx::ModelProto& model_;
  std::string label_;
  int64_t opset_ = 0;
  int64_t fixed_batch_ = 0;  // the input's batch dimension when the file fixes it, else 0
  std::map<std::string, Value> values_;
  std::map<std::string, int> consumers_;  // node inputs and graph outputs that read each name
  std::vector<int> uses_;                 // per Net value: readers still to come
  std::set<std::string> names_;
  ImportedModel out_;
};

const Value& Lowering::input(const onnx::NodeProto& n, int k) const {
  if (!has_input(n, k)) fail(n, "input " + std::to_string(k) + " is missing");
  auto it = values_.find(n.input(k));
  if (it == values_.end()) fail(n, "input '" + n.input(k) + "' is not produced by any earlier node, initializer or graph input");
  return it->second;
}

const Constant& Lowering::constant_input(const onnx::NodeProto& n, int k, const std::string& role) const {
  const Value& v = input(n, k);
  if (!v.constant) {
    fail(n, "its " + role + " ('" + n.input(k) + "') is computed from the network input; lowbit needs it to be an "
            "initializer or a constant expression of initializers");
  }
  return *v.constant;
}

const Activation& Lowering::activation_input(const onnx::NodeProto& n, int k) const {
  const Value& v = input(n, k);
  if (!v.activation) fail(n, "input '" + n.input(k) + "' is a constant where lowbit expects a tensor computed from the network input");
  return *v.activation;
}

const onnx::AttributeProto* Lowering::attribute(const onnx::NodeProto& n, const std::string& name) const {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

int64_t Lowering::attr_int(const onnx::NodeProto& n, const std::string& name, int64_t fallback) const {
  const auto* a = attribute(n, name);
  return a == nullptr ? fallback : a->i();
}

float Lowering::attr_float(const onnx::NodeProto& n, const std::string& name, float fallback) const {
  const auto* a = attribute(n, name);
  return a == nullptr ? fallback : a->f();
}

std::vector<int64_t> Lowering::attr_ints(const onnx::NodeProto& n, const std::string& name, std::vector<int64_t> fallback) const {
  const auto* a = attribute(n, name);
  return a == nullptr ? fallback : std::vector<int64_t>(a->ints().begin(), a->ints().end());
}

std::string Lowering::attr_string(const onnx::NodeProto& n, const std::string& name, const std::string& fallback) const {
  const auto* a = attribute(n, name);
  return a == nullptr ? fallback : a->s();
}

void Lowering::set_activation(const onnx::NodeProto& n, const std::string& name, Activation a, int consumed_uses) {
  if (values_.count(name) != 0) fail(n, "output '" + name + "' is produced twice");
  // The value's readers: the ones still to come of its earlier names (less those this node
  // consumed) plus the readers of this new name.
  int& uses = uses_.at(static_cast<size_t>(a.value));
  uses += consumers_[name] - consumed_uses;
  values_[name].activation = std::move(a);
}

int Lowering::add_layer(const onnx::NodeProto& n, ImportedLayer layer, std::vector<int64_t> shape, int net_rank) {
  std::string base = sanitized(n.name());
  if (base.empty()) base = lowercase(n.op_type()) + std::to_string(out_.layers.size());
  if (base == "input") base = "input_node";
  std::string name = base;
  for (int k = 2; names_.count(name) != 0; ++k) name = base + "_" + std::to_string(k);
  names_.insert(name);
  layer.name = name;
  layer.onnx_nodes = describe(n);
  int64_t elements = 1;
  for (int64_t d : shape) {
    elements *= std::max<int64_t>(d, 1);
    if (elements > kMaxElements) fail(n, "its output " + shape_text(shape) + " per example is too large");
  }
  for (int v : layer.inputs) uses_.at(static_cast<size_t>(v)) -= 1;
  out_.layers.push_back(std::move(layer));
  const int value = static_cast<int>(out_.layers.size());
  uses_.push_back(0);
  set_activation(n, n.output(0), Activation{value, std::move(shape), net_rank}, 0);
  return value;
}

ImportedLayer* Lowering::sole_producer(const Activation& a) {
  if (a.value == 0 || uses_.at(static_cast<size_t>(a.value)) != 1) return nullptr;
  return &out_.layers.at(static_cast<size_t>(a.value - 1));
}

Lowering::Window Lowering::square_window(const onnx::NodeProto& n, const std::vector<int64_t>& kernel_shape, bool dilated) const {
  if (kernel_shape.size() != 2) fail(n, "kernel_shape " + shape_text(kernel_shape) + " is not 2-D; lowbit has 2-D layers only");
  if (kernel_shape[0] != kernel_shape[1] || kernel_shape[0] < 1 || kernel_shape[0] > 64)
    fail(n, "kernel_shape " + shape_text(kernel_shape) + ": lowbit's layers take square kernels of 1 to 64");
  const auto strides = attr_ints(n, "strides", {1, 1});
  if (strides.size() != 2 || strides[0] != strides[1] || strides[0] < 1 || strides[0] > 64)
    fail(n, "strides " + shape_text(strides) + ": lowbit's layers take equal strides of 1 to 64");
  const auto dilations = attr_ints(n, "dilations", {1, 1});
  if (!dilated) {
    for (int64_t d : dilations)
      if (d != 1) fail(n, "dilations " + shape_text(dilations) + ": lowbit's pooling layers have no dilation (Conv has)");
  } else if (dilations.size() != 2 || dilations[0] != dilations[1] || dilations[0] < 1 || dilations[0] > 64) {
    fail(n, "dilations " + shape_text(dilations) + ": lowbit's convolutions take equal dilations of 1 to 64 "
            "(a dilated window is square, as the kernel is)");
  }
  Window win{kernel_shape[0], strides[0], 0, dilated ? dilations[0] : 1};
  const int64_t extent = win.extent();
  std::vector<int64_t> pads = attr_ints(n, "pads", {0, 0, 0, 0});
  const std::string auto_pad = attr_string(n, "auto_pad", "NOTSET");
  if (auto_pad == "VALID") {
    pads = {0, 0, 0, 0};
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    if (strides[0] != 1 || extent % 2 == 0)
      fail(n, "auto_pad " + auto_pad + " with stride " + std::to_string(strides[0]) + " and kernel " +
                  std::to_string(kernel_shape[0]) + (win.dilation != 1 ? " dilated by " + std::to_string(win.dilation) : "") +
                  " pads unevenly; lowbit pads every side alike: export with explicit pads");
    const int64_t p = (extent - 1) / 2;
    pads = {p, p, p, p};
  } else if (auto_pad != "NOTSET") {
    fail(n, "auto_pad '" + auto_pad + "' is not an ONNX value");
  }
  if (pads.size() != 4 || !std::all_of(pads.begin(), pads.end(), [&](int64_t p) { return p == pads[0]; }) || pads[0] < 0 ||
      pads[0] >= extent)
    fail(n, "pads " + shape_text(pads) + ": lowbit's layers pad all four sides alike, by less than the " +
                (win.dilation != 1 ? "dilated kernel's extent (" + std::to_string(extent) + ")" : std::string("kernel size")));
  win.padding = pads[0];
  return win;
}

// ---- constants ----------------------------------------------------------------------------

std::vector<int64_t> broadcast_dims(std::vector<int64_t> a, std::vector<int64_t> b, bool* ok) {
  const size_t r = std::max(a.size(), b.size());
  a.insert(a.begin(), r - a.size(), 1);
  b.insert(b.begin(), r - b.size(), 1);
  std::vector<int64_t> out(r);
  *ok = true;
  for (size_t k = 0; k < r; ++k) {
    if (a[k] == b[k] || b[k] == 1) out[k] = a[k];
    else if (a[k] == 1) out[k] = b[k];
    else *ok = false;
  }
  return out;
}

// Element index into a tensor of shape `dims` broadcast to `out` for the output position `pos`.
int64_t broadcast_index(const std::vector<int64_t>& dims, const std::vector<int64_t>& out, int64_t pos) {
  int64_t index = 0, stride = 1;
  const size_t offset = out.size() - dims.size();
  for (size_t k = out.size(); k-- > 0;) {
    const int64_t coord = pos % out[k];
    pos /= out[k];
    if (k >= offset) {
      const int64_t d = dims[k - offset];
      if (d != 1) index += coord * stride;
      stride *= d;
    }
  }
  return index;
}

Constant Lowering::binary_constant(const onnx::NodeProto& n, const Constant& a, const Constant& b) const {
  bool ok = false;
  Constant c;
  c.dims = broadcast_dims(a.dims, b.dims, &ok);
  if (!ok) fail(n, "shapes " + shape_text(a.dims) + " and " + shape_text(b.dims) + " do not broadcast");
  const int64_t count = checked_count(c.dims, label_ + ": the result of node '" + n.name() + "'");
  const std::string& op = n.op_type();
  c.is_int = a.is_int && b.is_int;
  for (int64_t k = 0; k < count; ++k) {
    const int64_t ia = broadcast_index(a.dims, c.dims, k), ib = broadcast_index(b.dims, c.dims, k);
    if (c.is_int) {
      const int64_t x = a.i[static_cast<size_t>(ia)], y = b.i[static_cast<size_t>(ib)];
      int64_t r = kBatch;
      if (x != kBatch && y != kBatch) {
        if (op == "Add") r = x + y;
        else if (op == "Sub") r = x - y;
        else if (op == "Mul") r = x * y;
        else if (y == 0) fail(n, "division by zero in a constant expression");
        else r = x / y;
      }
      c.i.push_back(r);
    } else {
      const float x = static_cast<float>(a.at(ia)), y = static_cast<float>(b.at(ib));
      c.f.push_back(op == "Add" ? x + y : op == "Sub" ? x - y : op == "Mul" ? x * y : x / y);
    }
  }
  return c;
}

std::vector<int64_t> Lowering::axes_of(const onnx::NodeProto& n) const {
  // Opset 13 moved Squeeze's and Unsqueeze's axes from an attribute to an input.
  if (has_input(n, 1)) {
    const Constant& axes = constant_input(n, 1, "axes");
    if (!axes.is_int) fail(n, "axes must be integers");
    return axes.i;
  }
  return attr_ints(n, "axes", {});
}

bool Lowering::fold_constants(const onnx::NodeProto& n) {
  for (int k = 0; k < n.input_size(); ++k)
    if (has_input(n, k) && !input(n, k).constant) return false;
  const std::string& op = n.op_type();
  auto rank_axis = [&](int64_t axis, size_t rank) {
    const int64_t r = static_cast<int64_t>(rank);
    if (axis < -r || axis >= r) fail(n, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(r));
    return static_cast<size_t>(axis < 0 ? axis + r : axis);
  };
  if (op == "Identity" || op == "Dropout") {
    set_constant(n.output(0), *input(n, 0).constant);
  } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
    set_constant(n.output(0), binary_constant(n, *input(n, 0).constant, *input(n, 1).constant));
  } else if (op == "Neg" || op == "Sqrt" || op == "Reciprocal") {
    Constant c = *input(n, 0).constant;
    if (c.is_int) fail(n, "integer " + op + " is not folded");
    for (float& x : c.f) x = op == "Neg" ? -x : op == "Sqrt" ? std::sqrt(x) : 1.0f / x;
    set_constant(n.output(0), std::move(c));
  } else if (op == "Cast") {
    Constant c = *input(n, 0).constant;
    const int64_t to = attr_int(n, "to", 0);
    if (to == onnx::TensorProto::FLOAT || to == onnx::TensorProto::DOUBLE) {
      if (c.is_int) {
        for (int64_t v : c.i) {
          if (v == kBatch) fail(n, "casts the batch size to float");
          c.f.push_back(static_cast<float>(v));
        }
        c.i.clear();
        c.is_int = false;
      }
    } else if (to == onnx::TensorProto::INT64 || to == onnx::TensorProto::INT32) {
      if (!c.is_int) {
        for (float v : c.f) c.i.push_back(static_cast<int64_t>(v));
        c.f.clear();
        c.is_int = true;
      }
    } else {
      fail(n, "casts to " + data_type_text(static_cast<int32_t>(to)) + ", which the importer does not fold");
    }
    set_constant(n.output(0), std::move(c));
  } else if (op == "Reshape") {
    Constant c = *input(n, 0).constant;
    const Constant& shape = constant_input(n, 1, "shape");
    std::vector<int64_t> dims(shape.i.begin(), shape.i.end());
    int64_t known = 1, infer = -1;
    for (size_t k = 0; k < dims.size(); ++k) {
      if (dims[k] == 0 && k < c.dims.size()) dims[k] = c.dims[k];
      if (dims[k] == -1) {
        if (infer >= 0) fail(n, "shape " + shape_text(dims) + " has two -1");
        infer = static_cast<int64_t>(k);
      } else if (dims[k] < 0) {
        fail(n, "shape " + shape_text(dims) + " is not a constant shape");
      } else {
        known *= std::max<int64_t>(dims[k], 1);
        if (known > kMaxElements) fail(n, "shape " + shape_text(dims) + " is too large");
      }
    }
    if (infer >= 0) dims[static_cast<size_t>(infer)] = known == 0 ? 0 : c.size() / known;
    if (checked_count(dims, label_ + ": node '" + n.name() + "'") != c.size())
      fail(n, "cannot reshape " + shape_text(c.dims) + " to " + shape_text(dims));
    c.dims = dims;
    set_constant(n.output(0), std::move(c));
  } else if (op == "Unsqueeze" || op == "Squeeze") {
    Constant c = *input(n, 0).constant;
    std::vector<int64_t> axes = axes_of(n);
    if (op == "Unsqueeze") {
      const size_t rank = c.dims.size() + axes.size();
      std::vector<size_t> at;
      for (int64_t a : axes) at.push_back(rank_axis(a, rank));
      std::sort(at.begin(), at.end());
      for (size_t a : at) c.dims.insert(c.dims.begin() + static_cast<std::ptrdiff_t>(std::min(a, c.dims.size())), 1);
    } else {
      std::vector<int64_t> dims;
      std::set<size_t> drop;
      for (int64_t a : axes) drop.insert(rank_axis(a, c.dims.size()));
      for (size_t k = 0; k < c.dims.size(); ++k)
        if (!(axes.empty() ? c.dims[k] == 1 : drop.count(k) != 0)) dims.push_back(c.dims[k]);
      c.dims = dims;
    }
    set_constant(n.output(0), std::move(c));
  } else if (op == "Transpose") {
    const Constant& c = *input(n, 0).constant;
    std::vector<int64_t> perm = attr_ints(n, "perm", {});
    if (perm.empty())
      for (size_t k = c.dims.size(); k-- > 0;) perm.push_back(static_cast<int64_t>(k));
    if (perm.size() != c.dims.size()) fail(n, "perm has " + std::to_string(perm.size()) + " entries for rank " + std::to_string(c.dims.size()));
    std::vector<int64_t> dims, in_strides(c.dims.size(), 1);
    for (size_t k = c.dims.size(); k-- > 1;) in_strides[k - 1] = in_strides[k] * c.dims[k];
    std::vector<bool> seen(perm.size(), false);
    for (int64_t p : perm) {
      if (p < 0 || p >= static_cast<int64_t>(perm.size()) || seen[static_cast<size_t>(p)]) fail(n, "perm " + shape_text(perm) + " is not a permutation");
      seen[static_cast<size_t>(p)] = true;
      dims.push_back(c.dims[static_cast<size_t>(p)]);
    }
    Constant t;
    t.is_int = c.is_int;
    t.dims = dims;
    for (int64_t pos = 0; pos < c.size(); ++pos) {
      int64_t rest = pos, src = 0;
      for (size_t k = dims.size(); k-- > 0;) {
        src += (rest % dims[k]) * in_strides[static_cast<size_t>(perm[k])];
        rest /= dims[k];
      }
      if (c.is_int) t.i.push_back(c.i[static_cast<size_t>(src)]);
      else t.f.push_back(c.f[static_cast<size_t>(src)]);
    }
    set_constant(n.output(0), std::move(t));
  } else if (op == "Concat") {
    Constant c;
    c.is_int = input(n, 0).constant->is_int;
    for (int k = 0; k < n.input_size(); ++k) {
      const Constant& part = constant_input(n, k, "input");
      if (part.dims.size() != 1 || part.is_int != c.is_int) fail(n, "only 1-D constants of one type are concatenated");
      c.i.insert(c.i.end(), part.i.begin(), part.i.end());
      c.f.insert(c.f.end(), part.f.begin(), part.f.end());
    }
    c.dims = {c.size()};
    set_constant(n.output(0), std::move(c));
  } else if (op == "Gather") {
    const Constant& data = *input(n, 0).constant;
    const Constant& idx = constant_input(n, 1, "indices");
    if (data.dims.size() != 1 || !idx.is_int || idx.dims.size() > 1 || attr_int(n, "axis", 0) != 0)
      fail(n, "only Gather along axis 0 of a 1-D constant (shape arithmetic) is folded");
    Constant c;
    c.is_int = data.is_int;
    c.dims = idx.dims;
    for (int64_t k : idx.i) {
      if (k < 0) k += data.size();
      if (k < 0 || k >= data.size()) fail(n, "index out of range");
      if (c.is_int) c.i.push_back(data.i[static_cast<size_t>(k)]);
      else c.f.push_back(data.f[static_cast<size_t>(k)]);
    }
    set_constant(n.output(0), std::move(c));
  } else {
    return false;
  }
  return true;
}

void Lowering::lower_constant_op(const onnx::NodeProto& n) {
  const onnx::AttributeProto* a = nullptr;
  for (const auto& at : n.attribute()) a = &at;
  if (a == nullptr) fail(n, "has no value attribute");
  Constant c;
  if (a->name() == "value") {
    c = to_constant(a->t(), label_ + ": node '" + n.name() + "': ");
  } else if (a->name() == "value_float") {
    c.f = {a->f()};
  } else if (a->name() == "value_floats") {
    c.f.assign(a->floats().begin(), a->floats().end());
    c.dims = {c.size()};
  } else if (a->name() == "value_int") {
    c.is_int = true;
    c.i = {a->i()};
  } else if (a->name() == "value_ints") {
    c.is_int = true;
    c.i.assign(a->ints().begin(), a->ints().end());
    c.dims = {c.size()};
  } else {
    fail(n, "attribute '" + a->name() + "' is not read by the importer (value, value_float(s) and value_int(s) are)");
  }
  set_constant(n.output(0), std::move(c));
}

// ---- layers ---------------------------------------------------------------------------------

void Lowering::lower_conv(const onnx::NodeProto& n) {
  const Activation x = activation_input(n, 0);
  if (x.net_rank != 4 || x.shape.size() != 3)
    fail(n, "its input has shape " + shape_text(x.shape) + " (after global pooling or a flatten); lowbit convolves [N, C, H, W] maps only");
  const Constant& w = constant_input(n, 1, "weight");
  if (w.is_int || w.dims.size() != 4) fail(n, "the weight has shape " + shape_text(w.dims) + "; a 2-D convolution's is [M, C / group, kH, kW]");
  const int64_t groups = attr_int(n, "group", 1);
  const int64_t c = x.shape[0], m = w.dims[0];
  if (groups < 1 || c % groups != 0 || m % groups != 0 || w.dims[1] * groups != c)
    fail(n, "weight " + shape_text(w.dims) + " with group " + std::to_string(groups) + " does not fit an input of " +
                std::to_string(c) + " channels");
  const Window win = square_window(n, attr_ints(n, "kernel_shape", {w.dims[2], w.dims[3]}), true);
  if (win.kernel != w.dims[2] || win.kernel != w.dims[3]) fail(n, "kernel_shape does not match the weight " + shape_text(w.dims));
  const int64_t e = win.extent();
  const int64_t h = (x.shape[1] + 2 * win.padding - e) / win.stride + 1;
  const int64_t wd = (x.shape[2] + 2 * win.padding - e) / win.stride + 1;
  if (x.shape[1] + 2 * win.padding < e || x.shape[2] + 2 * win.padding < e)
    fail(n, "a " + std::to_string(win.kernel) + "x" + std::to_string(win.kernel) + " kernel" +
                (win.dilation != 1 ? " dilated by " + std::to_string(win.dilation) + " (extent " + std::to_string(e) + ")" : "") +
                " does not fit the input " + shape_text(x.shape));
  ImportedLayer l;
  l.kind = "conv";
  l.inputs = {x.value};
  l.in_channels = c;
  l.out_channels = m;
  l.kernel = win.kernel;
  l.stride = win.stride;
  l.padding = win.padding;
  l.dilation = win.dilation;
  l.groups = groups;
  l.weights["weight"] = WeightArray{w.dims, w.f};
  WeightArray bias{{m}, std::vector<float>(static_cast<size_t>(m), 0.0f)};
  if (has_input(n, 2)) {
    const Constant& b = constant_input(n, 2, "bias");
    if (b.is_int || b.size() != m) fail(n, "the bias has shape " + shape_text(b.dims) + ", expected [" + std::to_string(m) + "]");
    bias.values = b.f;
  }
  l.weights["bias"] = std::move(bias);
  add_layer(n, std::move(l), {m, h, wd}, 4);
}

void Lowering::lower_batch_norm(const onnx::NodeProto& n) {
  const Activation x = activation_input(n, 0);
  if (n.output_size() > 1 || attr_int(n, "training_mode", 0) != 0)
    fail(n, "is in training mode; export the model in evaluation mode (model.eval())");
  ImportedLayer* conv = sole_producer(x);
  if (conv == nullptr || conv->kind != "conv" || conv->batch_norm || conv->activation != "none")
    fail(n, "does not follow a convolution whose only reader it is; lowbit folds batch normalization into the "
            "preceding Conv (Conv -> BatchNormalization -> activation)");
  const int64_t m = conv->out_channels;
  const char* roles[] = {"scale", "bias", "mean", "var"};
  std::vector<std::vector<float>> p;
  for (int k = 0; k < 4; ++k) {
    const Constant& c = constant_input(n, k + 1, roles[k]);
    if (c.is_int || c.size() != m) fail(n, std::string("its ") + roles[k] + " has shape " + shape_text(c.dims) + ", expected [" + std::to_string(m) + "]");
    p.push_back(c.f);
  }
  // The conv's bias moves into the mean (BN(z + b) = BN'(z) with mean' = mean - b), and the
  // file's epsilon into the variance, since lowbit's batch norm uses epsilon = 1e-5.
  const float eps = attr_float(n, "epsilon", 1e-5f);
  const std::vector<float>& b = conv->weights.at("bias").values;
  for (int64_t k = 0; k < m; ++k) {
    const size_t j = static_cast<size_t>(k);
    p[2][j] -= b[j];
    p[3][j] = p[3][j] + eps - 1e-5f;
    if (!(p[3][j] > 0.0f)) fail(n, "channel " + std::to_string(k) + " has a variance + epsilon of " + std::to_string(p[3][j] + 1e-5f) + " that is not positive");
  }
  conv->weights.erase("bias");
  conv->batch_norm = true;
  conv->onnx_nodes += " + " + describe(n);
  conv->weights["bn_weight"] = WeightArray{{m}, p[0]};
  conv->weights["bn_bias"] = WeightArray{{m}, p[1]};
  conv->weights["bn_mean"] = WeightArray{{m}, p[2]};
  conv->weights["bn_var"] = WeightArray{{m}, p[3]};
  set_activation(n, n.output(0), x, 1);
}

void Lowering::lower_activation(const onnx::NodeProto& n, const std::string& activation) {
  const Activation x = activation_input(n, 0);
  ImportedLayer* layer = sole_producer(x);
  if (layer == nullptr || (layer->kind != "conv" && layer->kind != "linear" && layer->kind != "add"))
    fail(n, "cannot be fused: lowbit applies ReLU and ReLU6 inside the convolution, linear or residual add layer that "
            "produces their input, and that layer must have no other reader");
  // ReLU and ReLU6 compose to the narrower of the two: PyTorch exports relu6 as Relu -> Clip(0, 6).
  layer->activation = layer->activation == "relu6" || activation == "relu6" ? "relu6" : activation;
  layer->onnx_nodes += " + " + describe(n);
  set_activation(n, n.output(0), x, 1);
}

void Lowering::lower_clip(const onnx::NodeProto& n) {
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  if (opset_ < 11) {
    lo = attr_float(n, "min", lo);
    hi = attr_float(n, "max", hi);
  } else {
    auto bound = [&](int k, float fallback) {
      if (!has_input(n, k)) return fallback;
      const Constant& c = constant_input(n, k, k == 1 ? "min" : "max");
      if (c.size() != 1) fail(n, "its bounds must be scalars");
      return static_cast<float>(c.at(0));
    };
    lo = bound(1, lo);
    hi = bound(2, hi);
  }
  if (lo == 0.0f && std::isinf(hi) && hi > 0) return lower_activation(n, "relu");
  if (lo == 0.0f && hi == 6.0f) return lower_activation(n, "relu6");
  fail(n, "Clip(" + std::to_string(lo) + ", " + std::to_string(hi) + ") is neither ReLU (min 0) nor ReLU6 (min 0, max 6), "
          "the clips lowbit's layers and runtime have");
}

// An element-wise function that is not a clamp: a layer of its own (models::PointwiseImpl), which
// the integer runtime computes as a lookup table between two quantized tensors.
void Lowering::lower_pointwise(const onnx::NodeProto& n, const std::string& function, float alpha, float beta) {
  if (!std::isfinite(alpha) || !std::isfinite(beta)) fail(n, "its alpha / beta attributes are not finite");
  const Activation x = activation_input(n, 0);
  ImportedLayer l;
  l.kind = "pointwise";
  l.function = function;
  l.alpha = alpha;
  l.beta = beta;
  l.inputs = {x.value};
  add_layer(n, std::move(l), x.shape, x.net_rank);
}

// x * Sigmoid(x) (PyTorch's SiLU) and x * HardSigmoid(x) with alpha 1/6, beta 1/2 (PyTorch's
// hardswish below opset 14): the gate's layer becomes the one function of x. Other products of
// two tensors have no layer in lowbit.
void Lowering::lower_mul(const onnx::NodeProto& n) {
  const Value& a = input(n, 0);
  const Value& b = input(n, 1);
  if (!a.activation || !b.activation) return lower_affine(n);
  for (int gate_side : {1, 0}) {
    const Activation x = gate_side == 1 ? *a.activation : *b.activation;
    const Activation gate = gate_side == 1 ? *b.activation : *a.activation;
    ImportedLayer* g = sole_producer(gate);
    if (g == nullptr || g->kind != "pointwise" || g->inputs != std::vector<int>{x.value}) continue;
    const bool hard_swish = g->function == "hard_sigmoid" && std::fabs(g->alpha - 1.0f / 6.0f) < 1e-6f && g->beta == 0.5f;
    if (g->function != "sigmoid" && !hard_swish) continue;
    g->function = hard_swish ? "hard_swish" : "silu";
    g->alpha = g->beta = 0.0f;
    g->onnx_nodes += " + " + describe(n);
    uses_.at(static_cast<size_t>(x.value)) -= 1;  // this node's read of x; the gate's read is the layer's
    set_activation(n, n.output(0), gate, 1);
    return;
  }
  fail(n, "multiplies two tensors; lowbit supports this only as x * Sigmoid(x) (SiLU) or x * HardSigmoid(x) "
          "(hard swish) where the gate has no other reader");
}

// Add, Sub, Mul or Div of a tensor and a constant holding one value (a scalar, or any shape of
// equal elements that broadcasts without growing the tensor): an "affine" pointwise layer,
// alpha * x + beta, which the integer runtime computes as a lookup table. This is how an input
// normalisation (x - mean) / std exported inside the model arrives. A chain of them becomes one
// layer. A per-channel constant with different values has no layer in lowbit (one alpha, one beta).
void Lowering::lower_affine(const onnx::NodeProto& n) {
  const std::string& op = n.op_type();
  const Value& a = input(n, 0);
  const Value& b = input(n, 1);
  if (a.activation && b.activation) fail(n, "takes two tensors computed from the network input; lowbit's " + op + " takes a tensor and a constant");
  const bool tensor_first = a.activation.has_value();
  const Activation x = tensor_first ? *a.activation : *b.activation;
  const Constant& c = tensor_first ? *b.constant : *a.constant;
  if (c.size() < 1 || c.is_int) fail(n, "its constant is empty or not float");
  // The constant must broadcast onto [N, ...shape] without enlarging it.
  std::vector<int64_t> full{1};
  full.insert(full.end(), x.shape.begin(), x.shape.end());
  bool fits = c.dims.size() <= full.size();
  for (size_t k = 0; fits && k < c.dims.size(); ++k) {
    const int64_t d = c.dims[c.dims.size() - 1 - k], t = full[full.size() - 1 - k];
    fits = d == 1 || (d == t && k + 1 < full.size());
  }
  if (!fits) fail(n, "its constant of shape " + shape_text(c.dims) + " would broadcast the tensor " + shape_text(x.shape) + " per example to a larger shape");
  const double v = c.at(0);
  for (int64_t k = 1; k < c.size(); ++k)
    if (c.at(k) != v)
      fail(n, "its constant " + shape_text(c.dims) + " holds different values (e.g. a per-channel mean or std); lowbit's "
              "affine layer has one scale and one offset for the whole tensor. Normalise with one mean and one std, "
              "or fold per-channel factors into the next convolution before exporting");
  const float k = static_cast<float>(v);
  if (!std::isfinite(k)) fail(n, "its constant is not finite");
  if (op == "Div" && !tensor_first) fail(n, "divides a constant by a tensor; lowbit's Div takes a tensor divided by a constant");
  if (op == "Div" && k == 0.0f) fail(n, "divides by zero");
  // y = alpha * x + beta, composed onto an affine layer that only this node reads.
  ImportedLayer* prev = sole_producer(x);
  const bool compose = prev != nullptr && prev->kind == "pointwise" && prev->function == "affine";
  float alpha = compose ? prev->alpha : 1.0f, beta = compose ? prev->beta : 0.0f;
  if (op == "Add") {
    beta += k;
  } else if (op == "Sub" && tensor_first) {
    beta -= k;
  } else if (op == "Sub") {  // k - x
    alpha = -alpha;
    beta = k - beta;
  } else if (op == "Mul") {
    alpha *= k;
    beta *= k;
  } else {
    alpha /= k;
    beta /= k;
  }
  if (!std::isfinite(alpha) || !std::isfinite(beta)) fail(n, "the combined scale or offset is not finite");
  if (compose) {
    prev->alpha = alpha;
    prev->beta = beta;
    prev->onnx_nodes += " + " + describe(n);
    set_activation(n, n.output(0), x, 1);
    return;
  }
  ImportedLayer l;
  l.kind = "pointwise";
  l.function = "affine";
  l.alpha = alpha;
  l.beta = beta;
  l.inputs = {x.value};
  add_layer(n, std::move(l), x.shape, x.net_rank);
}

void Lowering::lower_gemm(const onnx::NodeProto& n) {
  const Activation x = activation_input(n, 0);
  if (x.net_rank != 2 || x.shape.size() != 1) fail(n, "its input has shape " + shape_text(x.shape) + "; Gemm takes [N, K]");
  if (attr_int(n, "transA", 0) != 0) fail(n, "transA = 1 transposes the batch; lowbit needs [N, K] inputs");
  const Constant& b = constant_input(n, 1, "weight");
  if (b.is_int || b.dims.size() != 2) fail(n, "the weight has shape " + shape_text(b.dims) + ", expected 2-D");
  const bool trans_b = attr_int(n, "transB", 0) != 0;
  const float alpha = attr_float(n, "alpha", 1.0f), beta = attr_float(n, "beta", 1.0f);
  const int64_t k_in = trans_b ? b.dims[1] : b.dims[0], out = trans_b ? b.dims[0] : b.dims[1];
  if (k_in != x.shape[0]) fail(n, "the weight " + shape_text(b.dims) + " takes " + std::to_string(k_in) + " features, the input has " + std::to_string(x.shape[0]));
  ImportedLayer l;
  l.kind = "linear";
  l.inputs = {x.value};
  l.in_features = k_in;
  l.out_features = out;
  std::vector<float> w(static_cast<size_t>(out * k_in));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < k_in; ++i)
      w[static_cast<size_t>(o * k_in + i)] = alpha * b.f[static_cast<size_t>(trans_b ? o * k_in + i : i * out + o)];
  l.weights["weight"] = WeightArray{{out, k_in}, std::move(w)};
  l.bias = has_input(n, 2);
  if (l.bias) {
    const Constant& c = constant_input(n, 2, "bias");
    std::vector<float> bias(static_cast<size_t>(out));
    const bool per_row = c.size() == out && (c.dims.size() == 1 || (c.dims.size() == 2 && c.dims[0] == 1));
    if (c.is_int || !(per_row || c.size() == 1))
      fail(n, "the bias has shape " + shape_text(c.dims) + "; lowbit takes a bias of [" + std::to_string(out) + "] or [1, " + std::to_string(out) + "]");
    for (int64_t o = 0; o < out; ++o) bias[static_cast<size_t>(o)] = beta * c.f[static_cast<size_t>(per_row ? o : 0)];
    l.weights["bias"] = WeightArray{{out}, std::move(bias)};
  }
  add_layer(n, std::move(l), {out}, 2);
}

void Lowering::lower_matmul(const onnx::NodeProto& n) {
  const Activation x = activation_input(n, 0);
  if (x.net_rank != 2 || x.shape.size() != 1)
    fail(n, "its input has shape " + shape_text(x.shape) + "; lowbit lowers MatMul of [N, K] by a constant [K, M] to a linear layer");
  const Constant& b = constant_input(n, 1, "weight");
  if (b.is_int || b.dims.size() != 2 || b.dims[0] != x.shape[0])
    fail(n, "the weight has shape " + shape_text(b.dims) + "; expected [" + std::to_string(x.shape[0]) + ", M]");
  const int64_t k_in = b.dims[0], out = b.dims[1];
  ImportedLayer l;
  l.kind = "linear";
  l.inputs = {x.value};
  l.in_features = k_in;
  l.out_features = out;
  l.bias = false;  // a following Add of a constant becomes the bias
  std::vector<float> w(static_cast<size_t>(out * k_in));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < k_in; ++i) w[static_cast<size_t>(o * k_in + i)] = b.f[static_cast<size_t>(i * out + o)];
  l.weights["weight"] = WeightArray{{out, k_in}, std::move(w)};
  add_layer(n, std::move(l), {out}, 2);
}

void Lowering::lower_add(const onnx::NodeProto& n) {
  const Value& a = input(n, 0);
  const Value& b = input(n, 1);
  if (a.activation && b.activation) {
    const Activation x = *a.activation, y = *b.activation;
    if (x.shape != y.shape || x.net_rank != y.net_rank)
      fail(n, "adds " + shape_text(x.shape) + " and " + shape_text(y.shape) + "; lowbit's residual add takes two tensors of one shape");
    ImportedLayer l;
    l.kind = "add";
    l.inputs = {x.value, y.value};
    add_layer(n, std::move(l), x.shape, x.net_rank);
    return;
  }
  // Tensor + constant: a bias, folded into the layer that produced the tensor.
  const Activation x = a.activation ? *a.activation : *b.activation;
  const Constant& c = a.activation ? *b.constant : *a.constant;
  ImportedLayer* layer = sole_producer(x);
  const bool foldable = layer != nullptr && layer->activation == "none" &&
                        ((layer->kind == "linear") || (layer->kind == "conv" && !layer->batch_norm));
  if (!foldable || c.is_int) return lower_affine(n);  // one offset for every element, or an error
  const int64_t out = layer->kind == "linear" ? layer->out_features : layer->out_channels;
  const bool per_channel = c.size() == out && (layer->kind == "linear" ? (c.dims == std::vector<int64_t>{out} || c.dims == std::vector<int64_t>{1, out})
                                                                       : (c.dims == std::vector<int64_t>{out, 1, 1} || c.dims == std::vector<int64_t>{1, out, 1, 1}));
  if (!per_channel && c.size() != 1)
    fail(n, "the constant has shape " + shape_text(c.dims) + ", which is not one value per output channel of '" + layer->name + "'");
  WeightArray& bias = layer->weights["bias"];
  if (bias.values.empty()) bias = WeightArray{{out}, std::vector<float>(static_cast<size_t>(out), 0.0f)};
  for (int64_t o = 0; o < out; ++o) bias.values[static_cast<size_t>(o)] += c.f[static_cast<size_t>(per_channel ? o : 0)];
  layer->bias = true;
  layer->onnx_nodes += " + " + describe(n);
  set_activation(n, n.output(0), x, 1);
}

// Concat of tensors computed from the input, along the channels (axis 1): DenseNet and Inception
// blocks, torch.cat([a, b], dim=1). Concat of constants (shape arithmetic) is folded instead.
void Lowering::lower_concat(const onnx::NodeProto& n) {
  if (n.input_size() < 2) fail(n, "has " + std::to_string(n.input_size()) + " input; lowbit's concat takes 2 or more");
  if (n.input_size() > 64) fail(n, "has " + std::to_string(n.input_size()) + " inputs; lowbit's concat takes at most 64");
  const Activation first = activation_input(n, 0);
  const int64_t rank = static_cast<int64_t>(first.shape.size()) + 1;  // with the batch
  int64_t axis = attr_int(n, "axis", 1);
  if (axis < 0) axis += rank;
  if (axis != 1)
    fail(n, "axis " + std::to_string(attr_int(n, "axis", 1)) + " of a rank-" + std::to_string(rank) +
                " tensor; lowbit concatenates along the channels (axis 1) only");
  ImportedLayer l;
  l.kind = "concat";
  std::vector<int64_t> shape = first.shape;
  shape[0] = 0;
  for (int k = 0; k < n.input_size(); ++k) {
    const Activation x = activation_input(n, k);
    bool same_rest = x.net_rank == first.net_rank && x.shape.size() == first.shape.size();
    for (size_t d = 1; same_rest && d < x.shape.size(); ++d) same_rest = x.shape[d] == first.shape[d];
    if (!same_rest)
      fail(n, "input " + std::to_string(k) + " has shape " + shape_text(x.shape) + " and input 0 " + shape_text(first.shape) +
                  "; concatenated tensors must agree in every dimension but the channels");
    shape[0] += x.shape[0];
    l.inputs.push_back(x.value);
  }
  add_layer(n, std::move(l), shape, first.net_rank);
}

void Lowering::lower_pool(const onnx::NodeProto& n, bool max) {
  const Activation x = activation_input(n, 0);
  if (x.net_rank != 4 || x.shape.size() != 3) fail(n, "its input has shape " + shape_text(x.shape) + "; pooling takes [N, C, H, W]");
  if (n.output_size() > 1 && !n.output(1).empty()) fail(n, "its Indices output is not supported");
  const Window win = square_window(n, attr_ints(n, "kernel_shape", {}));
  if (!max && win.padding > 0 && attr_int(n, "count_include_pad", 0) != 0)
    fail(n, "count_include_pad = 1 with padding; lowbit's average pooling excludes the padding (count_include_pad = 0)");
  if (x.shape[1] + 2 * win.padding < win.kernel || x.shape[2] + 2 * win.padding < win.kernel)
    fail(n, "a " + std::to_string(win.kernel) + "x" + std::to_string(win.kernel) + " window does not fit the input " + shape_text(x.shape));
  const int64_t h = (x.shape[1] + 2 * win.padding - win.kernel) / win.stride + 1;
  const int64_t w = (x.shape[2] + 2 * win.padding - win.kernel) / win.stride + 1;
  if (attr_int(n, "ceil_mode", 0) != 0) {
    const int64_t hc = (x.shape[1] + 2 * win.padding - win.kernel + win.stride - 1) / win.stride + 1;
    const int64_t wc = (x.shape[2] + 2 * win.padding - win.kernel + win.stride - 1) / win.stride + 1;
    if (hc != h || wc != w) fail(n, "ceil_mode = 1 changes the output size here; lowbit pools with floor (ceil_mode = 0)");
  }
  ImportedLayer l;
  l.kind = max ? "maxpool" : "avgpool";
  l.inputs = {x.value};
  l.pool_kernel = win.kernel;
  l.pool_stride = win.stride;
  l.pool_padding = win.padding;
  add_layer(n, std::move(l), {x.shape[0], h, w}, 4);
}

// Flatten, or a Reshape / Squeeze to [N, features]: a flatten layer for a [N, C, H, W] tensor, a
// new name for one the Net already holds as [N, F] (after global average pooling).
void Lowering::lower_flatten_like(const onnx::NodeProto& n, const std::vector<int64_t>& target) {
  const Activation x = activation_input(n, 0);
  int64_t features = 1;
  for (int64_t d : x.shape) features *= d;
  if (target.size() != 1 || target[0] != features)
    fail(n, "reshapes " + shape_text(x.shape) + " to " + shape_text(target) + " per example; lowbit reshapes only to [N, features] (a flatten)");
  if (x.net_rank == 2) {
    Activation y = x;
    y.shape = target;
    set_activation(n, n.output(0), y, 1);
    return;
  }
  ImportedLayer l;
  l.kind = "flatten";
  l.inputs = {x.value};
  add_layer(n, std::move(l), target, 2);
}

void Lowering::lower_reshape(const onnx::NodeProto& n) {
  const Activation x = activation_input(n, 0);
  const Constant& shape = constant_input(n, 1, "shape");
  if (!shape.is_int || shape.dims.size() != 1) fail(n, "its shape input is not a 1-D integer tensor");
  std::vector<int64_t> t = shape.i;
  int64_t features = 1;
  for (int64_t d : x.shape) features *= d;
  if (t.size() != 2) fail(n, "reshapes to " + shape_text(t) + "; lowbit reshapes only to [N, features] (a flatten)");
  // The first entry must keep the batch: copied (0), the batch itself, -1 with the features
  // given, or the batch size the file fixes.
  const bool keeps_batch = t[0] == 0 || t[0] == kBatch || (t[0] == -1 && t[1] == features) ||
                           (fixed_batch_ > 0 && t[0] == fixed_batch_);
  if (!keeps_batch) fail(n, "reshapes to " + shape_text(t) + ", which does not keep the batch dimension first");
  if (t[1] == -1 || t[1] == 0) t[1] = features;
  lower_flatten_like(n, {t[1]});
}

void Lowering::lower_squeeze(const onnx::NodeProto& n, bool squeeze) {
  const Activation x = activation_input(n, 0);
  if (!squeeze) fail(n, "Unsqueeze of a tensor computed from the input is not supported");
  std::vector<int64_t> axes = axes_of(n);
  for (int64_t a : axes)
    if (a != 2 && a != 3 && a != -1 && a != -2) fail(n, "squeezes axis " + std::to_string(a) + "; lowbit squeezes only the 1x1 spatial axes of [N, C, 1, 1]");
  if (x.shape.size() != 3 || x.shape[1] != 1 || x.shape[2] != 1) fail(n, "its input " + shape_text(x.shape) + " is not [N, C, 1, 1]");
  lower_flatten_like(n, {x.shape[0]});
}

void Lowering::lower(const onnx::NodeProto& n) {
  if (!n.domain().empty() && n.domain() != "ai.onnx")
    fail(n, "is in domain '" + n.domain() + "'; the importer reads operators of the default ONNX domain");
  if (n.output_size() < 1 || n.output(0).empty()) fail(n, "has no output");
  const std::string& op = n.op_type();
  if (op == "Constant") return lower_constant_op(n);
  if (op == "Shape") {
    // The shape of a tensor computed from the input is known but for the batch (kBatch).
    const Value& x = input(n, 0);
    Constant c;
    c.is_int = true;
    if (x.activation) {
      c.i.push_back(kBatch);
      for (int64_t d : x.activation->shape) c.i.push_back(d);
      uses_.at(static_cast<size_t>(x.activation->value)) -= 1;
    } else {
      c.i = x.constant->dims;
    }
    const int64_t rank = c.size();
    int64_t start = attr_int(n, "start", 0), end = attr_int(n, "end", rank);
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    start = std::clamp<int64_t>(start, 0, rank);
    end = std::clamp<int64_t>(end, start, rank);
    c.i = std::vector<int64_t>(c.i.begin() + start, c.i.begin() + end);
    c.dims = {c.size()};
    return set_constant(n.output(0), std::move(c));
  }
  if (fold_constants(n)) return;
  if (op == "Conv") return lower_conv(n);
  if (op == "BatchNormalization") return lower_batch_norm(n);
  if (op == "Relu") return lower_activation(n, "relu");
  if (op == "Clip") return lower_clip(n);
  if (op == "LeakyRelu") return lower_pointwise(n, "leaky_relu", attr_float(n, "alpha", 0.01f), 0.0f);
  if (op == "Sigmoid") return lower_pointwise(n, "sigmoid", 0.0f, 0.0f);
  if (op == "HardSigmoid") return lower_pointwise(n, "hard_sigmoid", attr_float(n, "alpha", 0.2f), attr_float(n, "beta", 0.5f));
  if (op == "HardSwish") return lower_pointwise(n, "hard_swish", 0.0f, 0.0f);
  if (op == "Tanh") return lower_pointwise(n, "tanh", 0.0f, 0.0f);
  if (op == "Mul") return lower_mul(n);
  if (op == "Gemm") return lower_gemm(n);
  if (op == "MatMul") return lower_matmul(n);
  if (op == "Add") return lower_add(n);
  if (op == "Concat") return lower_concat(n);
  if (op == "Sub" || op == "Div") return lower_affine(n);
  if (op == "MaxPool") return lower_pool(n, true);
  if (op == "AveragePool") return lower_pool(n, false);
  if (op == "GlobalAveragePool") {
    const Activation x = activation_input(n, 0);
    if (x.net_rank != 4 || x.shape.size() != 3) fail(n, "its input has shape " + shape_text(x.shape) + "; it takes [N, C, H, W]");
    ImportedLayer l;
    l.kind = "gap";
    l.inputs = {x.value};
    // The Net's global pooling gives [N, C]; ONNX's [N, C, 1, 1] is kept as the shape so that a
    // following Flatten, Reshape or Squeeze becomes a new name for it.
    add_layer(n, std::move(l), {x.shape[0], 1, 1}, 2);
    return;
  }
  if (op == "Flatten") {
    if (attr_int(n, "axis", 1) != 1) fail(n, "axis " + std::to_string(attr_int(n, "axis", 1)) + "; lowbit flattens with axis 1");
    const Activation x = activation_input(n, 0);
    int64_t features = 1;
    for (int64_t d : x.shape) features *= d;
    return lower_flatten_like(n, {features});
  }
  if (op == "Reshape") return lower_reshape(n);
  if (op == "Squeeze" || op == "Unsqueeze") return lower_squeeze(n, op == "Squeeze");
  if (op == "Identity" || op == "Dropout") {
    if (op == "Dropout" && n.output_size() > 1 && !n.output(1).empty() && consumers_[n.output(1)] > 0)
      fail(n, "its mask output is read; lowbit imports models for inference, where Dropout is the identity");
    return set_activation(n, n.output(0), activation_input(n, 0), 1);
  }
  if (op == "Softmax" || op == "LogSoftmax")
    fail(n, "lowbit models output logits (their argmax is the class); export the model without the final " + op);
  std::string known;
  for (const auto& s : supported_onnx_operators()) known += (known.empty() ? "" : ", ") + s;
  fail(n, "this operator is not supported: lowbit's layers and integer runtime have no " + op +
              " yet. Supported: " + known + " (plus constant folding of initializer-only expressions)");
}

ImportedModel Lowering::run() {
  for (const auto& op : model_.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") opset_ = op.version();
  if (opset_ == 0) throw Error(label_ + ": the model imports no default-domain opset; is it an ONNX model?");
  if (opset_ < 7) throw Error(label_ + ": opset " + std::to_string(opset_) + " is older than 7; re-export with a newer opset (e.g. 13 or 17)");
  const onnx::GraphProto& g = graph();
  out_.graph_name = g.name();
  out_.producer = model_.producer_name() + (model_.producer_version().empty() ? "" : " " + model_.producer_version());
  out_.opset = opset_;

  for (const auto& t : g.initializer()) set_constant(t.name(), to_constant(t, label_ + ": initializer "));
  for (const auto& n : g.node())
    for (const auto& in : n.input())
      if (!in.empty()) consumers_[in] += 1;
  if (g.output_size() != 1)
    throw Error(label_ + ": the graph has " + std::to_string(g.output_size()) + " outputs; lowbit imports classifiers with one output (the logits)");
  consumers_[g.output(0).name()] += 1;

  // The network input: the one graph input that is not an initializer.
  const onnx::ValueInfoProto* in = nullptr;
  for (const auto& vi : g.input()) {
    if (values_.count(vi.name()) != 0) continue;
    if (in != nullptr) throw Error(label_ + ": the graph has more than one input ('" + in->name() + "', '" + vi.name() + "'); lowbit imports models with one image input");
    in = &vi;
  }
  if (in == nullptr) throw Error(label_ + ": the graph has no input");
  const std::string in_where = label_ + ": input '" + in->name() + "'";
  if (!in->type().has_tensor_type() || in->type().tensor_type().elem_type() != onnx::TensorProto::FLOAT)
    throw Error(in_where + " is not a float32 tensor");
  const auto& dims = in->type().tensor_type().shape().dim();
  if (dims.size() != 4 && dims.size() != 2)
    throw Error(in_where + " has rank " + std::to_string(dims.size()) + "; lowbit imports models that take [N, C, H, W] images or [N, features]");
  for (int k = 1; k < dims.size(); ++k) {
    if (!dims[k].has_dim_value() || dims[k].dim_value() < 1 || dims[k].dim_value() > kMaxDim)
      throw Error(in_where + ": dimension " + std::to_string(k) + " is " +
                  (dims[k].has_dim_param() ? "symbolic ('" + dims[k].dim_param() + "')" : std::string("unknown or out of range")) +
                  "; lowbit needs a fixed example shape: export with a fixed input size (only the batch may be dynamic)");
    out_.input_shape.push_back(dims[k].dim_value());
  }
  if (dims[0].has_dim_value()) fixed_batch_ = dims[0].dim_value();
  out_.input_name = in->name();
  uses_.push_back(0);
  values_[in->name()].activation = Activation{0, out_.input_shape, dims.size() == 4 ? 4 : 2};
  uses_[0] = consumers_[in->name()];

  for (const auto& n : g.node()) lower(n);

  const std::string& out_name = g.output(0).name();
  out_.output_name = out_name;
  auto it = values_.find(out_name);
  if (it == values_.end() || !it->second.activation)
    throw Error(label_ + ": the graph output '" + out_name + "' is not computed from the input");
  const Activation& y = *it->second.activation;
  if (out_.layers.empty() || y.value != static_cast<int>(out_.layers.size()))
    throw Error(label_ + ": the graph output '" + out_name + "' is not produced by the last layer; lowbit runs a graph's layers in order and returns the last one's output");
  if (y.net_rank != 2 || y.shape.size() != 1)
    throw Error(label_ + ": the graph output has shape " + shape_text(y.shape) + " per example; lowbit imports classifiers whose output is [N, classes]");
  out_.num_outputs = y.shape[0];
  return out_;
}

}  // namespace

bool is_onnx_path(const std::string& path) {
  return path.size() > 5 && lowercase(path.substr(path.size() - 5)) == ".onnx";
}

const std::vector<std::string>& supported_onnx_operators() {
  static const std::vector<std::string> ops = {
      "Conv", "BatchNormalization", "Relu", "Clip (ReLU6)", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Mul (x * Sigmoid(x), x * HardSigmoid(x), x * constant)", "Gemm", "MatMul", "Add", "Sub and Div (by a constant)", "MaxPool", "AveragePool",
      "GlobalAveragePool", "Concat (channels)", "Flatten", "Reshape", "Squeeze", "Identity", "Dropout", "Constant", "Shape"};
  return ops;
}

ImportedModel read_onnx_model_from_bytes(const std::string& bytes, const std::string& label) {
  if (bytes.empty()) throw Error(label + ": the file is empty; expected an ONNX model");
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes))
    throw Error(label + " is not an ONNX model: its protobuf does not parse (a truncated or damaged file, or another format)");
  if (!model.has_graph()) throw Error(label + ": the ONNX model has no graph");
  // ONNX's checker knows the IR versions and opsets of its release (Debian 12's libonnx 1.12: IR 8,
  // opset 17) and rejects newer files outright; those are validated by the lowering's own checks.
  int64_t opset = 0;
  for (const auto& op : model.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") opset = op.version();
  const auto& known = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  const auto range = known.find(onnx::ONNX_DOMAIN);
  const bool checker_knows = model.ir_version() <= onnx::Version::IR_VERSION && range != known.end() && opset <= range->second.second;
  if (checker_knows) {
    try {
      onnx::checker::check_model(model);
    } catch (const std::exception& e) {
      throw Error(label + ": the ONNX checker rejects the model: " + std::string(e.what()));
    }
  }
  ImportedModel m = Lowering(model, label).run();
  m.source = label;
  return m;
}

ImportedModel read_onnx_model(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open the ONNX model '" + path + "': " + std::strerror(errno));
  std::ostringstream bytes;
  bytes << f.rdbuf();
  if (f.bad()) throw Error("cannot read the ONNX model '" + path + "'");
  return read_onnx_model_from_bytes(bytes.str(), path);
}

}  // namespace lowbit::import
