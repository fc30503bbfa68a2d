// Writes the fuzzers' seed corpora, so that mutations start from real files:
//   OUT_DIR/lbq_model_fuzz: small models (8x8 input) built and serialized by the runtime's own
//     builder, using every op kind (conv, depthwise conv, max / average / global pool, add,
//     lookup, flatten, linear) at every weight format; a parsed model runs in microseconds;
//     and decoders (gpt-tiny, .lbq kind 2) and encoders (vit-tiny, kind 3) at every weight format,
//     the runtime tests' random models (tests/runtime/transformer_test_models.h);
//   OUT_DIR/idx_file_fuzz: IDX image and label files in the Fashion-MNIST layout, plain and gzip;
//   OUT_DIR/text_corpus_fuzz: two parameter bytes (context, validation fraction) and a text: ASCII
//     and UTF-8 prose, and the head of a default-corpus file (fortunes) when it is installed;
//   OUT_DIR/npy_fuzz: a uint8 and a float32 .npy array, and both in a stored .npz.
//   OUT_DIR/onnx_import_fuzz: small FP32 ONNX models (8x8 input) written with ONNX's own protobuf
//     classes, using the operators the importer lowers (conv + batch norm + ReLU / ReLU6, grouped
//     conv, pooling, residual add, Concat of activations, a Shape -> Gather -> Concat -> Reshape flatten, MatMul + Add, Gemm,
//     LeakyRelu, HardSwish, SiLU as x * Sigmoid(x), HardSigmoid, Tanh).
//   OUT_DIR/qat_config_fuzz: per-layer QAT configs as lowbit writes them (config_from_flags, with
//     overrides by pattern, WinQ on, per-group and per-token settings, a mixed-precision search's shape);
//   OUT_DIR/checkpoint_fuzz: a stored zip sealed with the checkpoint trailer (first byte odd), and a
//     run's config JSON with its "qat" section (first byte even).
//   make_fuzz_seeds OUT_DIR
#include <onnx/onnx_pb.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include "qat/qat_config.h"
#include "runtime/model.h"
#include "runtime/model_file.h"
#include "train/checkpoint_trailer.h"
#include "train/train_config.h"
#include "runtime/decoder_model_file.h"
#include "runtime/encoder_model_file.h"
#include "../tests/runtime/transformer_test_models.h"  // the runtime tests' random decoders and encoders

namespace {

using lowbit::runtime::ActQParams;
using lowbit::runtime::Model;
using lowbit::runtime::Op;

// Random codes of the format and per-channel scales; hidden layers requantize to [0, 255].
void fill(std::mt19937& rng, Op& op, int bits, lowbit::quant::Grid grid, float s_x, bool output_layer) {
  const bool odd = grid == lowbit::quant::Grid::Odd;
  const int32_t lo = odd ? -(1 << (bits - 1)) : -(1 << (bits - 1)) + (bits == 2 ? 1 : 0);
  const int32_t hi = (1 << (bits - 1)) - 1;
  std::uniform_int_distribution<int32_t> code(lo, hi);
  std::vector<int32_t> w(static_cast<size_t>(op.weight_count()));
  for (auto& v : w) v = odd ? 2 * code(rng) + 1 : code(rng);
  lowbit::runtime::set_weight_values(op.weight, bits, grid, w);
  std::uniform_real_distribution<float> u(0.01f, 0.1f), b(-0.1f, 0.1f);
  std::vector<float> s_w(op.out_channels), bias(op.out_channels);
  for (int32_t o = 0; o < op.out_channels; ++o) {
    s_w[o] = u(rng);
    bias[o] = b(rng);
  }
  if (output_layer) {
    lowbit::runtime::set_output_layer(op, s_x, s_w, bias);
  } else {
    lowbit::runtime::set_requantization(op, s_x, s_w, bias, ActQParams{0.05f, 0, 0, 255});
  }
}

Model small_model(uint32_t seed, int bits, lowbit::quant::Grid grid) {
  namespace rt = lowbit::runtime;
  std::mt19937 rng(seed);
  Model m;
  m.name = "fuzz seed " + std::to_string(bits) + "-bit";
  m.in_channels = 1;
  m.in_height = m.in_width = 8;
  m.input = {1.0f / 255.0f, 0, 0, 255};
  Op c1 = rt::make_conv2d(0, 1, 4, 3, 1, 1);
  fill(rng, c1, bits, grid, m.input.scale, false);
  const int32_t a = m.add(c1);
  Op dw = rt::make_conv2d(a, 4, 4, 3, 1, 1, /*groups=*/4);
  fill(rng, dw, bits, grid, m.ops.back().out.scale, false);
  const int32_t b = m.add(dw);
  Op add = rt::make_add(a, b);
  add.out = ActQParams{0.1f, 0, 0, 255};
  int32_t v = m.add(add);
  Op mp = rt::make_max_pool(v, 2, 2);
  mp.out = m.ops.back().out;
  v = m.add(mp);
  Op ap = rt::make_avg_pool(v, 2, 1, 1);
  ap.out = m.ops.back().out;
  v = m.add(ap);
  {  // an element-wise function as a table (here x^2 / 255 on the codes)
    std::vector<uint8_t> table(256);
    for (int q = 0; q < 256; ++q) table[static_cast<size_t>(q)] = static_cast<uint8_t>(q * q / 255);
    Op lut = rt::make_lookup(v, table);
    lut.out = ActQParams{0.02f, 0, 0, 255};
    v = m.add(lut);
  }
  if (seed % 2 == 0) {
    Op gp = rt::make_global_avg_pool(v);
    gp.out = m.ops.back().out;
    v = m.add(gp);
  }
  Op fl = rt::make_flatten(v);
  fl.out = m.ops.back().out;
  v = m.add(fl);
  const int32_t features = seed % 2 == 0 ? 4 : 4 * 5 * 5;
  Op f = rt::make_linear(v, features, 10);
  fill(rng, f, bits, grid, m.ops.back().out.scale, true);
  m.add(f);
  return m;
}

void put_be32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xFF));
}

// An IDX images file (magic 2051, count, rows, cols, pixels) or labels file (2049, count, labels).
std::string idx_bytes(bool images, uint32_t count, uint32_t rows, uint32_t cols, uint32_t seed) {
  std::string s;
  put_be32(s, images ? 2051 : 2049);
  put_be32(s, count);
  if (images) {
    put_be32(s, rows);
    put_be32(s, cols);
  }
  std::mt19937 rng(seed);
  const uint32_t n = images ? count * rows * cols : count;
  for (uint32_t i = 0; i < n; ++i) s.push_back(static_cast<char>(images ? rng() % 256 : rng() % 10));
  return s;
}

bool write_file(const std::string& path, const std::string& bytes, bool gzip) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    if (f == nullptr) return false;
    const int wrote = gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    return gzclose(f) == Z_OK && wrote == static_cast<int>(bytes.size());
  }
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

// ---- ONNX seeds ----
struct OnnxWriter {
  onnx::ModelProto model;
  onnx::GraphProto* graph = model.mutable_graph();
  std::mt19937 rng{7};

  explicit OnnxWriter(int64_t opset) {
    model.set_ir_version(8);
    model.set_producer_name("make_fuzz_seeds");
    auto* op = model.add_opset_import();
    op->set_domain("");
    op->set_version(opset);
    graph->set_name("seed");
  }
  void value_info(onnx::ValueInfoProto* v, const std::string& name, const std::vector<int64_t>& dims) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) {
      auto* dim = t->mutable_shape()->add_dim();
      if (d < 0) dim->set_dim_param("N");
      else dim->set_dim_value(d);
    }
  }
  // A float initializer whose elements are fill() in order.
  template <class Fill>
  std::string float_initializer(const std::string& name, const std::vector<int64_t>& dims, Fill fill) {
    auto* t = graph->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (int64_t d : dims) {
      t->add_dims(d);
      n *= d;
    }
    for (int64_t k = 0; k < n; ++k) t->add_float_data(fill());
    return name;
  }
  std::string floats(const std::string& name, const std::vector<int64_t>& dims, float lo = -0.5f, float hi = 0.5f) {
    std::uniform_real_distribution<float> u(lo, hi);
    return float_initializer(name, dims, [&] { return u(rng); });
  }
  // Every element `value`: a scaling or offset constant.
  std::string constant(const std::string& name, const std::vector<int64_t>& dims, float value) {
    return float_initializer(name, dims, [value] { return value; });
  }
  std::string ints(const std::string& name, const std::vector<int64_t>& v) {
    auto* t = graph->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(v.size()));
    for (int64_t x : v) t->add_int64_data(x);
    return name;
  }
  onnx::NodeProto* node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs) {
    auto* n = graph->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(name + "_out");
    return n;
  }
  static void ints_attr(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  static void int_attr(onnx::NodeProto* n, const std::string& name, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void float_attr(onnx::NodeProto* n, const std::string& name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  std::string finish(onnx::NodeProto* last, int64_t classes) {
    last->set_output(0, "y");
    value_info(graph->add_output(), "y", {-1, classes});
    return model.SerializeAsString();
  }
};

// Conv + BN + ReLU, max pool, grouped conv + Clip(0, 6), global pool, Flatten, Gemm.
std::string onnx_seed_chain() {
  OnnxWriter w(13);
  w.value_info(w.graph->add_input(), "x", {-1, 1, 8, 8});
  auto* n = w.node("Conv", "conv1", {"x", w.floats("w1", {4, 1, 3, 3}), w.floats("b1", {4})});
  OnnxWriter::ints_attr(n, "pads", {1, 1, 1, 1});
  n = w.node("BatchNormalization", "bn1", {"conv1_out", w.floats("s", {4}, 0.5f, 1.5f), w.floats("bb", {4}),
                                           w.floats("m", {4}), w.floats("v", {4}, 0.5f, 2.0f)});
  n = w.node("Relu", "relu1", {"bn1_out"});
  n = w.node("MaxPool", "pool1", {"relu1_out"});
  OnnxWriter::ints_attr(n, "kernel_shape", {2, 2});
  OnnxWriter::ints_attr(n, "strides", {2, 2});
  n = w.node("Conv", "dw", {"pool1_out", w.floats("w2", {4, 1, 3, 3})});
  OnnxWriter::ints_attr(n, "pads", {1, 1, 1, 1});
  OnnxWriter::int_attr(n, "group", 4);
  n = w.node("Clip", "relu6", {"dw_out", w.floats("lo", {}, 0.0f, 0.0f), w.floats("hi", {}, 6.0f, 6.0f)});
  n = w.node("GlobalAveragePool", "gap", {"relu6_out"});
  n = w.node("Flatten", "flat", {"gap_out"});
  n = w.node("Gemm", "fc", {"flat_out", w.floats("w3", {3, 4}), w.floats("b3", {3})});
  OnnxWriter::int_attr(n, "transB", 1);
  return w.finish(n, 3);
}

// A residual block, average pooling, a Shape -> Gather -> Concat -> Reshape flatten, MatMul + Add.
std::string onnx_seed_residual() {
  OnnxWriter w(17);
  w.value_info(w.graph->add_input(), "x", {-1, 2, 8, 8});
  auto* n = w.node("Conv", "c1", {"x", w.floats("w1", {2, 2, 3, 3}), w.floats("b1", {2})});
  OnnxWriter::ints_attr(n, "pads", {1, 1, 1, 1});
  n = w.node("Relu", "r1", {"c1_out"});
  n = w.node("Conv", "c2", {"r1_out", w.floats("w2", {2, 2, 1, 1})});
  n = w.node("Add", "add", {"c2_out", "x"});
  n = w.node("Relu", "r2", {"add_out"});
  n = w.node("AveragePool", "pool", {"r2_out"});
  OnnxWriter::ints_attr(n, "kernel_shape", {2, 2});
  OnnxWriter::ints_attr(n, "strides", {2, 2});
  n = w.node("Shape", "shape", {"pool_out"});
  n = w.node("Gather", "batch", {"shape_out", w.ints("zero", {0})});
  n = w.node("Concat", "target", {"batch_out", w.ints("minus_one", {-1})});
  OnnxWriter::int_attr(n, "axis", 0);
  n = w.node("Reshape", "flatten", {"pool_out", "target_out"});
  n = w.node("MatMul", "fc", {"flatten_out", w.floats("w3", {32, 5})});
  n = w.node("Add", "fc_bias", {"fc_out", w.floats("b3", {5})});
  return w.finish(n, 5);
}

// Element-wise functions: LeakyRelu, HardSwish, x * Sigmoid(x) (SiLU), HardSigmoid, Tanh.
std::string onnx_seed_pointwise() {
  OnnxWriter w(17);
  w.value_info(w.graph->add_input(), "x", {-1, 2, 8, 8});
  auto* n = w.node("Conv", "c1", {"x", w.floats("w1", {4, 2, 3, 3}), w.floats("b1", {4})});
  OnnxWriter::ints_attr(n, "pads", {1, 1, 1, 1});
  n = w.node("LeakyRelu", "leaky", {"c1_out"});
  OnnxWriter::float_attr(n, "alpha", 0.1f);
  n = w.node("HardSwish", "hswish", {"leaky_out"});
  n = w.node("Conv", "c2", {"hswish_out", w.floats("w2", {4, 4, 1, 1})});
  n = w.node("Sigmoid", "gate", {"c2_out"});
  n = w.node("Mul", "silu", {"c2_out", "gate_out"});
  n = w.node("HardSigmoid", "hsig", {"silu_out"});
  OnnxWriter::float_attr(n, "alpha", 0.2f);
  n = w.node("GlobalAveragePool", "gap", {"hsig_out"});
  n = w.node("Flatten", "flat", {"gap_out"});
  n = w.node("Gemm", "fc", {"flat_out", w.floats("w3", {4, 4}), w.floats("b3", {4})});
  OnnxWriter::int_attr(n, "transB", 1);
  n = w.node("Tanh", "tanh", {"fc_out"});
  n = w.node("Gemm", "fc2", {"tanh_out", w.floats("w4", {3, 4})});
  OnnxWriter::int_attr(n, "transB", 1);
  return w.finish(n, 3);
}

// Scaling by constants: (x - mean) / std on the input, then Mul and Add after a Relu, and
// constant minus tensor after a Gemm: each chain one affine layer.
std::string onnx_seed_affine() {
  OnnxWriter w(17);
  w.value_info(w.graph->add_input(), "x", {-1, 1, 8, 8});
  auto* n = w.node("Sub", "norm_sub", {"x", w.constant("mean", {}, 0.25f)});
  n = w.node("Div", "norm_div", {"norm_sub_out", w.constant("std", {1, 1, 1, 1}, 0.5f)});
  n = w.node("Conv", "c1", {"norm_div_out", w.floats("w1", {4, 1, 3, 3}), w.floats("b1", {4})});
  OnnxWriter::ints_attr(n, "pads", {1, 1, 1, 1});
  n = w.node("Relu", "relu", {"c1_out"});
  n = w.node("Mul", "half", {"relu_out", w.constant("k", {1}, 0.5f)});
  n = w.node("Add", "shift", {"half_out", w.constant("b", {}, 0.25f)});
  n = w.node("GlobalAveragePool", "gap", {"shift_out"});
  n = w.node("Flatten", "flat", {"gap_out"});
  n = w.node("Gemm", "fc", {"flat_out", w.floats("w3", {4, 4}), w.floats("b3", {4})});
  OnnxWriter::int_attr(n, "transB", 1);
  n = w.node("Sub", "one_minus", {w.constant("one", {}, 1.0f), "fc_out"});
  n = w.node("Gemm", "fc2", {"one_minus_out", w.floats("w4", {3, 4})});
  OnnxWriter::int_attr(n, "transB", 1);
  return w.finish(n, 3);
}

// Dilated convolutions: dense (dilation 2), depthwise (dilation 3, stride 2), each padded.
std::string onnx_seed_dilated() {
  OnnxWriter w(17);
  w.value_info(w.graph->add_input(), "x", {-1, 2, 10, 10});
  auto* n = w.node("Conv", "dil", {"x", w.floats("w1", {4, 2, 3, 3}), w.floats("b1", {4})});
  OnnxWriter::ints_attr(n, "pads", {2, 2, 2, 2});
  OnnxWriter::ints_attr(n, "dilations", {2, 2});
  n = w.node("Relu", "relu", {"dil_out"});
  n = w.node("Conv", "dil_dw", {"relu_out", w.floats("w2", {4, 1, 3, 3})});
  OnnxWriter::ints_attr(n, "pads", {3, 3, 3, 3});
  OnnxWriter::ints_attr(n, "dilations", {3, 3});
  OnnxWriter::ints_attr(n, "strides", {2, 2});
  OnnxWriter::int_attr(n, "group", 4);
  n = w.node("GlobalAveragePool", "gap", {"dil_dw_out"});
  n = w.node("Flatten", "flat", {"gap_out"});
  n = w.node("Gemm", "fc", {"flat_out", w.floats("w3", {3, 4}), w.floats("b3", {3})});
  OnnxWriter::int_attr(n, "transB", 1);
  return w.finish(n, 3);
}

// Concat of activations: an Inception-style pair of branches (1x1 conv, 3x3 conv) of one conv,
// concatenated, then a DenseNet-style concat with the stem (axis -3).
std::string onnx_seed_concat() {
  OnnxWriter w(13);
  w.value_info(w.graph->add_input(), "x", {-1, 2, 8, 8});
  auto* n = w.node("Conv", "stem", {"x", w.floats("w0", {4, 2, 3, 3}), w.floats("b0", {4})});
  OnnxWriter::ints_attr(n, "pads", {1, 1, 1, 1});
  n = w.node("Relu", "stem_relu", {"stem_out"});
  n = w.node("Conv", "b1", {"stem_relu_out", w.floats("w1", {3, 4, 1, 1}), w.floats("b1b", {3})});
  n = w.node("Conv", "b2", {"stem_relu_out", w.floats("w2", {2, 4, 3, 3})});
  OnnxWriter::ints_attr(n, "pads", {1, 1, 1, 1});
  n = w.node("Concat", "cat", {"b1_out", "b2_out"});
  OnnxWriter::int_attr(n, "axis", 1);
  n = w.node("Concat", "dense", {"cat_out", "stem_relu_out"});
  OnnxWriter::int_attr(n, "axis", -3);
  n = w.node("GlobalAveragePool", "gap", {"dense_out"});
  n = w.node("Flatten", "flat", {"gap_out"});
  n = w.node("Gemm", "fc", {"flat_out", w.floats("w3", {3, 9}), w.floats("b3", {3})});
  OnnxWriter::int_attr(n, "transB", 1);
  return w.finish(n, 3);
}

// A conv and a depthwise conv of it, concatenated (each through its own table), then pooled.
Model concat_model() {
  namespace rt = lowbit::runtime;
  std::mt19937 rng(11);
  Model m;
  m.name = "fuzz seed concat";
  m.in_channels = 1;
  m.in_height = m.in_width = 8;
  m.input = {1.0f / 255.0f, 0, 0, 255};
  Op c1 = rt::make_conv2d(0, 1, 4, 3, 1, 1);
  fill(rng, c1, 8, lowbit::quant::Grid::Integer, m.input.scale, false);
  const int32_t a = m.add(c1);
  Op dw = rt::make_conv2d(a, 4, 4, 3, 1, 1, /*groups=*/4);
  fill(rng, dw, 8, lowbit::quant::Grid::Integer, m.ops.back().out.scale, false);
  const int32_t b = m.add(dw);
  Op cat = rt::make_concat({a, b});
  cat.out = ActQParams{0.05f, 3, 0, 255};
  for (int k = 0; k < 2; ++k)
    for (int q = 0; q < 256; ++q) cat.table.push_back(static_cast<uint8_t>(k == 0 ? q : q / 2 + 3));
  int32_t v = m.add(cat);
  Op gp = rt::make_global_avg_pool(v);
  gp.out = m.ops.back().out;
  v = m.add(gp);
  Op fl = rt::make_flatten(v);
  fl.out = m.ops.back().out;
  v = m.add(fl);
  Op f = rt::make_linear(v, 8, 10);
  fill(rng, f, 8, lowbit::quant::Grid::Integer, m.ops.back().out.scale, true);
  m.add(f);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const std::string lbq_dir = dir + "/lbq_model_fuzz", idx_dir = dir + "/idx_file_fuzz",
                    text_dir = dir + "/text_corpus_fuzz";
  struct Format {
    const char* name;
    int bits;
    lowbit::quant::Grid grid;
  };
  const Format formats[] = {{"int8", 8, lowbit::quant::Grid::Integer}, {"int4", 4, lowbit::quant::Grid::Integer},
                            {"ternary", 2, lowbit::quant::Grid::Integer}, {"binary", 1, lowbit::quant::Grid::Odd},
                            {"seq2", 2, lowbit::quant::Grid::Odd}};
  int written = 0;
  for (const Format& f : formats) {
    for (uint32_t seed = 1; seed <= 2; ++seed) {
      lowbit::runtime::save_model(small_model(seed, f.bits, f.grid), lbq_dir + "/" + f.name + "_" + std::to_string(seed) + ".lbq");
      ++written;
    }
  }
  {  // format version 2: the depthwise conv dilated by 2 (padding 2 keeps its 8x8 output)
    Model d = small_model(3, 8, lowbit::quant::Grid::Integer);
    d.name += " dilated";
    d.ops[1].dilation_h = d.ops[1].dilation_w = 2;
    d.ops[1].pad_h = d.ops[1].pad_w = 2;
    lowbit::runtime::save_model(d, lbq_dir + "/int8_dilated.lbq");
    ++written;
  }
  lowbit::runtime::save_model(concat_model(), lbq_dir + "/int8_concat.lbq");
  ++written;
  {  // decoders (gpt-tiny, version 2 kind 2) and encoders (vit-tiny, kind 3) of the runtime tests
    namespace rt = lowbit::runtime::rtest;
    rt::DecoderShape tiny;  // width 8, 2 heads of 4, hidden 16, context 8, 1 layer: about 10 KB
    tiny.width = 8;
    tiny.heads = 2;
    tiny.hidden = 16;
    tiny.context = 8;
    tiny.layers = 1;
    uint32_t seed = 1;
    for (const rt::Format& f : rt::kFormats) {
      for (const bool qhead : {false, true}) {
        lowbit::runtime::save_decoder_model(rt::random_decoder(seed++, f, qhead ? 4 : 8, qhead, tiny),
                                            lbq_dir + "/decoder_" + f.name + (qhead ? "_qhead" : "") + ".lbq");
        ++written;
      }
      for (const int act_bits : {8, 4}) {
        const bool qhead = act_bits == 8;
        lowbit::runtime::save_encoder_model(rt::random_encoder(seed++, f, qhead ? 16 : 8, act_bits, qhead),
                                            lbq_dir + "/encoder_" + f.name + "_a" + std::to_string(act_bits) + ".lbq");
        ++written;
      }
    }
  }
  for (const bool gzip : {false, true}) {
    const std::string ext = gzip ? ".gz" : "";
    bool ok = write_file(idx_dir + "/images_3x28x28" + ext, idx_bytes(true, 3, 28, 28, 1), gzip) &&
              write_file(idx_dir + "/images_2x5x7" + ext, idx_bytes(true, 2, 5, 7, 2), gzip) &&
              write_file(idx_dir + "/labels_8" + ext, idx_bytes(false, 8, 0, 0, 3), gzip);
    if (!ok) {
      std::fprintf(stderr, "make_fuzz_seeds: cannot write into %s\n", idx_dir.c_str());
      return 1;
    }
    written += 3;
  }
  // Text: [context - 1 (low 8 bits), fraction and context high bits] + the corpus bytes.
  std::string fortune;
  std::ifstream in("/usr/share/games/fortunes/computers", std::ios::binary);
  if (in.good()) fortune.assign(std::istreambuf_iterator<char>(in), {});
  const std::string texts[] = {
      "The quick brown fox jumps over the lazy dog.\nA second line, with punctuation; and digits 0123.\n",
      "Gr\xc3\xbc\xc3\x9f Gott! \xe2\x80\x94 na\xc3\xafve caf\xc3\xa9, \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\n",
      fortune.substr(0, 4096)};
  int t = 0;
  for (const std::string& text : texts) {
    if (text.empty()) continue;
    const std::string params = {static_cast<char>(15), static_cast<char>(6 << 2)};  // context 16, fraction 7/65
    if (!write_file(text_dir + "/text_" + std::to_string(t++), params + text, false)) {
      std::fprintf(stderr, "make_fuzz_seeds: cannot write into %s\n", text_dir.c_str());
      return 1;
    }
    ++written;
  }
  std::string npz_bytes;  // also the opaque archive of a checkpoint seed below
  // .npy: a uint8 [2, 3, 4] array and a float32 [3] one; .npz: both in a stored zip (numpy.savez's layout).
  {
    const std::string npy_dir = dir + "/npy_fuzz";
    auto npy = [](const std::string& descr, const std::string& shape, const std::string& data) {
      std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
      while ((10 + header.size() + 1) % 64 != 0) header += ' ';
      header += '\n';
      return std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size() & 0xFF) +
             static_cast<char>(header.size() >> 8) + header + data;
    };
    const std::string u8 = npy("|u1", "(2, 3, 4)", std::string(24, '\x07'));
    const std::string f4 = npy("<f4", "(3,)", std::string("\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40", 12));
    auto le = [](uint32_t v, int n) {
      std::string b;
      for (int i = 0; i < n; ++i) b.push_back(static_cast<char>(v >> (8 * i)));
      return b;
    };
    std::string zip, directory;
    int members = 0;
    for (const auto& [name, bytes] : {std::pair<std::string, std::string>{"x_train.npy", u8}, {"y_train.npy", f4}}) {
      const uint32_t crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
      const std::string fields = le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(crc, 4) + le(static_cast<uint32_t>(bytes.size()), 4) +
                                 le(static_cast<uint32_t>(bytes.size()), 4) + le(static_cast<uint32_t>(name.size()), 2) + le(0, 2);
      directory += le(0x02014b50, 4) + le(20, 2) + fields + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) +
                   le(static_cast<uint32_t>(zip.size()), 4) + name;
      zip += le(0x04034b50, 4) + fields + name + bytes;
      ++members;
    }
    const uint32_t dir_at = static_cast<uint32_t>(zip.size());
    zip += directory + le(0x06054b50, 4) + le(0, 4) + le(members, 2) + le(members, 2) +
           le(static_cast<uint32_t>(directory.size()), 4) + le(dir_at, 4) + le(0, 2);
    npz_bytes = zip;
    std::filesystem::create_directories(npy_dir);
    if (!write_file(npy_dir + "/u8.npy", u8, false) || !write_file(npy_dir + "/f4.npy", f4, false) ||
        !write_file(npy_dir + "/two.npz", zip, false)) {
      std::fprintf(stderr, "make_fuzz_seeds: cannot write into %s\n", npy_dir.c_str());
      return 1;
    }
    written += 3;
  }
  const std::string onnx_dir = dir + "/onnx_import_fuzz";
  if (!write_file(onnx_dir + "/chain.onnx", onnx_seed_chain(), false) ||
      !write_file(onnx_dir + "/residual.onnx", onnx_seed_residual(), false) ||
      !write_file(onnx_dir + "/pointwise.onnx", onnx_seed_pointwise(), false) ||
      !write_file(onnx_dir + "/affine.onnx", onnx_seed_affine(), false) ||
      !write_file(onnx_dir + "/dilated.onnx", onnx_seed_dilated(), false) ||
      !write_file(onnx_dir + "/concat.onnx", onnx_seed_concat(), false)) {
    std::fprintf(stderr, "make_fuzz_seeds: cannot write into %s\n", onnx_dir.c_str());
    return 1;
  }
  written += 5;
  // QAT configs as lowbit writes them.
  std::vector<nlohmann::json> qat_configs;
  {
    lowbit::qat::QatFlags flags;
    qat_configs.push_back(lowbit::qat::config_from_flags(flags).to_json());
    flags.wbits = 2;
    flags.granularity = "group";
    flags.group_size = 32;
    flags.winq = true;
    qat_configs.push_back(lowbit::qat::config_from_flags(flags).to_json());
    nlohmann::json mixed = lowbit::qat::config_from_flags(lowbit::qat::QatFlags{}).to_json();
    mixed["overrides"] = nlohmann::json::array(
        {{{"pattern", "conv1"}, {"weight_bits", 8}, {"act_bits", 8}},
         {{"pattern", "block*"}, {"weight_format", "ternary"}},
         {{"pattern", "fc*"}, {"weight_format", "binary"}, {"weight_granularity", "tensor"}},
         {{"pattern", "layers.?.mlp.*"}, {"weight_format", "seq2"}, {"act_granularity", "token"}}});
    qat_configs.push_back(mixed);
  }
  const std::string qat_dir = dir + "/qat_config_fuzz", ckpt_dir = dir + "/checkpoint_fuzz";
  for (size_t i = 0; i < qat_configs.size(); ++i) {
    if (!write_file(qat_dir + "/qat_" + std::to_string(i) + ".json", qat_configs[i].dump(), false)) {
      std::fprintf(stderr, "make_fuzz_seeds: cannot write into %s\n", qat_dir.c_str());
      return 1;
    }
    ++written;
  }
  {
    lowbit::train::TrainConfig run;
    run.model = "resnet8";
    run.epochs = 2;
    run.extra["qat"] = qat_configs[2];
    const std::string config = lowbit::train::to_json(run).dump();
    if (!write_file(ckpt_dir + "/sealed_zip", "\x01" + lowbit::train::with_checksum_trailer(npz_bytes), false) ||
        !write_file(ckpt_dir + "/sealed_config", "\x03" + lowbit::train::with_checksum_trailer(config), false) ||
        !write_file(ckpt_dir + "/config.json", std::string(1, '\0') + config, false)) {
      std::fprintf(stderr, "make_fuzz_seeds: cannot write into %s\n", ckpt_dir.c_str());
      return 1;
    }
    written += 3;
  }
  std::printf("make_fuzz_seeds: %d seed files in %s\n", written, dir.c_str());
  return 0;
}
