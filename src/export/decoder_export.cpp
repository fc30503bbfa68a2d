#include "export/decoder_export.h"

#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <tuple>

#include "base/error.h"
#include "export/graph_builder.h"
#include "quant/per_token.h"
#include "export/qdq_export.h"
#include "runtime/ops/attention_op.h"

namespace lowbit::onnx {
namespace {

constexpr int64_t kCastFloat = 1, kCastDouble = 11;  // TensorProto.DataType for Cast's `to`

using Builder = GraphBuilder;

std::string projection_name(size_t layer, const char* what) { return "block" + std::to_string(layer) + "_" + what; }

// Per-token activation quantization (quant/per_token.h) of x [1, T, K]: returns {codes, s_t}.
std::pair<std::string, std::string> quantize_tokens(Builder& b, const std::string& x, const std::string& scope) {
  const std::string axes = b.ints("axes_last", {-1});
  const std::string amax = b.op("ReduceMax", {b.op("Abs", {x}, scope), axes}, scope, {Attribute::make_int("keepdims", 1)});
  const std::string scaled = b.op("Div", {amax, b.scalar("qmax_127", static_cast<float>(quant::kTokenQMax))}, scope);
  const std::string nonzero = b.op("Greater", {amax, b.scalar("zero", 0.0f)}, scope);
  const std::string s = b.op("Where", {nonzero, scaled, b.scalar("one", 1.0f)}, scope);
  const std::string r = b.op("Round", {b.op("Div", {x, s}, scope)}, scope);  // ONNX Round: half to even
  const std::string c = b.op("Clip", {r, b.scalar("qmin_neg127", -static_cast<float>(quant::kTokenQMax)), "qmax_127"}, scope);
  return {c, s};
}

}  // namespace

std::string qdq_weight(GraphBuilder& b, const runtime::QuantLinear& w, const std::string& name, bool uint8_if_wide,
                       bool matrix_if_8bit_per_channel) {
  const int32_t K = w.in_features, N = w.out_features, groups = w.groups();
  const std::vector<int8_t> values = w.values();  // [N, K]; odd grids: the odd values
  // Codes [1, K, N]: 1-, 2-, 4-bit weights (|value| <= 7 on every grid) as INT4, 8-bit as INT8
  // (or UINT8 value + 128 with zero point 128, see the header). The leading 1 keeps ONNX
  // Runtime's DequantizeLinear -> MatMul fusion (into MatMulNBits with its default accuracy level
  // 4, which re-quantizes the activations per block) off the graph: MatMul broadcasts it away
  // and the float arithmetic stays the model's.
  bool wide = false;
  if (w.bits > 4 && uint8_if_wide)
    for (const int8_t v : values) wide = wide || std::abs(static_cast<int32_t>(v)) > kSaturationFreeWeightCode;
  const DataType type = w.bits <= 4 ? DataType::Int4 : (wide ? DataType::Uint8 : DataType::Int8);
  const int32_t offset = wide ? 128 : 0;
  // [K, N] instead of [1, K, N] (see the header): 8-bit per-channel weights only.
  const bool matrix = matrix_if_8bit_per_channel && w.bits > 4 && groups == 1;
  std::vector<int32_t> t(static_cast<size_t>(K) * N);
  for (int32_t k = 0; k < K; ++k)
    for (int32_t n = 0; n < N; ++n) t[static_cast<size_t>(k) * N + n] = values[static_cast<size_t>(n) * K + k] + offset;
  b.add(make_integer_tensor(name + ".weight_q", type, matrix ? std::vector<int64_t>{K, N} : std::vector<int64_t>{1, K, N}, t));
  std::vector<Attribute> attrs;
  std::vector<int64_t> scale_dims;
  if (groups == 1) {
    b.add(make_float_tensor(name + ".weight_scale", {N}, w.scales));
    scale_dims = {N};
    attrs.push_back(Attribute::make_int("axis", matrix ? 1 : 2));
  } else {
    std::vector<float> st(static_cast<size_t>(groups) * N);
    for (int32_t g = 0; g < groups; ++g)
      for (int32_t n = 0; n < N; ++n) st[static_cast<size_t>(g) * N + n] = w.scales[static_cast<size_t>(n) * groups + g];
    b.add(make_float_tensor(name + ".weight_scale", {1, groups, N}, st));
    scale_dims = {1, groups, N};
    attrs.push_back(Attribute::make_int("axis", 1));
    attrs.push_back(Attribute::make_int("block_size", w.group_size));
  }
  std::vector<std::string> inputs{name + ".weight_q", name + ".weight_scale"};
  if (wide) {
    int64_t count = 1;
    for (const int64_t d : scale_dims) count *= d;
    b.add(make_integer_tensor(name + ".weight_zero_point", DataType::Uint8, scale_dims,
                              std::vector<int32_t>(static_cast<size_t>(count), 128)));
    inputs.push_back(name + ".weight_zero_point");
  }
  return b.op("DequantizeLinear", inputs, name, attrs);
}

namespace {

// y = MatMul(codes, W) * s_t for one projection.
std::string linear(Builder& b, const runtime::QuantLinear& w, const std::pair<std::string, std::string>& xq,
                   const std::string& name, DecoderExportForm form, const std::string& output = "") {
  const int32_t K = w.in_features, N = w.out_features, groups = w.groups();
  const std::vector<int8_t> values = w.values();  // [N, K]; odd grids: the odd values
  std::string y;
  if (form == DecoderExportForm::Qdq) {
    y = b.op("MatMul", {xq.first, qdq_weight(b, w, name)}, name);
  } else {
    const int32_t bs = matmulnbits_block_size(w);
    const int32_t blocks = (K + bs - 1) / bs, blob = bs / 2;
    Tensor packed{name + ".weight_packed", DataType::Uint8, {N, blocks, blob}, {}};
    packed.raw.assign(static_cast<size_t>(N) * blocks * blob, static_cast<char>(0x88));  // padding: code 8 = 0
    std::vector<float> scales(static_cast<size_t>(N) * blocks);
    for (int32_t n = 0; n < N; ++n) {
      for (int32_t k = 0; k < K; ++k) {
        const auto u = static_cast<uint8_t>(values[static_cast<size_t>(n) * K + k] + 8);
        const size_t byte = static_cast<size_t>(n) * blocks * blob + static_cast<size_t>(k / bs) * blob + (k % bs) / 2;
        uint8_t v = static_cast<uint8_t>(packed.raw[byte]);
        v = (k % 2 == 0) ? static_cast<uint8_t>((v & 0xF0) | u) : static_cast<uint8_t>((v & 0x0F) | (u << 4));
        packed.raw[byte] = static_cast<char>(v);
      }
      for (int32_t j = 0; j < blocks; ++j) {
        const int32_t g = groups == 1 ? 0 : (j * bs) / w.group_size;  // bs divides the group size
        scales[static_cast<size_t>(n) * blocks + j] = w.scales[static_cast<size_t>(n) * groups + g];
      }
    }
    b.add(std::move(packed));
    b.add(make_float_tensor(name + ".weight_scales", {N, blocks}, scales));
    y = b.op("MatMulNBits", {xq.first, name + ".weight_packed", name + ".weight_scales"}, name,
             {Attribute::make_int("K", K), Attribute::make_int("N", N), Attribute::make_int("bits", 4),
              Attribute::make_int("block_size", bs), Attribute::make_int("accuracy_level", 1)},
             "", "com.microsoft");
  }
  return b.op("Mul", {y, xq.second}, name, {}, output);
}

// x * (1 / sqrt(mean(x^2) + eps)) * w: the mean in double as runtime/ops/rmsnorm_op.cpp
// (`mean_in_double`), or in float as LibTorch's RMSNormImpl (x * rsqrt(mean(x^2) + eps) * w).
std::string rmsnorm(Builder& b, const std::string& x, const std::vector<float>& w, float eps, const std::string& name,
                    bool mean_in_double = true) {
  b.add(make_float_tensor(name + ".weight", {static_cast<int64_t>(w.size())}, w));
  std::string mean;
  if (mean_in_double) {
    const std::string xd = b.op("Cast", {x}, name, {Attribute::make_int("to", kCastDouble)});
    const std::string mean_d = b.op("ReduceMean", {b.op("Mul", {xd, xd}, name), b.ints("axes_last", {-1})}, name,
                                    {Attribute::make_int("keepdims", 1)});
    mean = b.op("Cast", {mean_d}, name, {Attribute::make_int("to", kCastFloat)});
  } else {
    mean = b.op("ReduceMean", {b.op("Mul", {x, x}, name), b.ints("axes_last", {-1})}, name, {Attribute::make_int("keepdims", 1)});
  }
  const std::string root = b.op("Sqrt", {b.op("Add", {mean, b.scalar(name + ".eps", eps)}, name)}, name);
  const std::string r = b.op("Div", {b.scalar("one", 1.0f), root}, name);
  return b.op("Mul", {b.op("Mul", {x, r}, name), name + ".weight"}, name);
}

void check_matmulnbits(const runtime::QuantLinear& w, const std::string& where, const std::string& name) {
  if (w.bits != 4 || w.grid != quant::Grid::Integer)
    throw Error("export: " + where + ": projection " + name + " has " + w.format() +
                " weights; --format matmulnbits takes int4 projections only (MatMulNBits is int4 weight-only here). "
                "Export with --format onnx (QDQ, every weight format), or train the model with int4 weights");
  if (matmulnbits_block_size(w) == 0)
    throw Error("export: " + where + ": projection " + name + " (" + w.format() + ", " + std::to_string(w.in_features) +
                " inputs) has no MatMulNBits block: its blocks must be a power of two >= 16 dividing the group size. "
                "Export with --format onnx (QDQ), or train with a group size that is a multiple of 16");
}

}  // namespace

DecoderExportForm parse_decoder_export_form(const std::string& name) {
  if (name == "onnx" || name == "qdq") return DecoderExportForm::Qdq;
  if (name == "matmulnbits") return DecoderExportForm::MatMulNBits;
  throw Error("export: unknown decoder export form '" + name + "'; use onnx (QDQ) or matmulnbits");
}

int32_t matmulnbits_block_size(const runtime::QuantLinear& w) {
  if (w.groups() == 1) return w.in_features >= 32 ? 32 : (w.in_features >= 16 ? 16 : 0);  // the scale repeats per block
  for (int32_t bs = 256; bs >= 16; bs /= 2)
    if (w.group_size % bs == 0) return bs;
  return 0;
}

namespace {

// ---- The decoder graph shared by the quantized and the float exports ----------------------

// What the graph needs besides the projections: sizes, the float tables and norms, and which
// float formulas to write (the runtime's, or LibTorch's for the FP32 export).
struct DecoderSkeleton {
  int32_t vocab = 256, width = 0, heads = 0, context = 0;
  float norm_eps = 1e-5f;
  double rope_base = 10000.0;
  const std::vector<float>* embedding = nullptr;  // [vocab, width]
  std::vector<std::pair<const std::vector<float>*, const std::vector<float>*>> norms;  // per layer: norm1, norm2
  const std::vector<float>* norm_f = nullptr;
  bool with_kv_cache = false;
  // true: the runtime's float formulas (RMSNorm's mean in double, SwiGLU as gate / (1 + exp(-gate)) * up);
  // false: LibTorch's (float mean, silu = gate * Sigmoid(gate)).
  bool runtime_formulas = true;
};

// Writes the projections named `names` that all read `x` (produced by node `scope`: q/k/v share
// norm1's output, gate/up norm2's); returns their outputs in order. `output`: the name of the
// (single) output when it is a graph output ("logits"), else "".
using Projector = std::function<std::vector<std::string>(Builder& b, const std::string& x, const std::string& scope,
                                                         const std::vector<std::string>& names, const std::string& output)>;

void build_decoder_graph(Graph& g, const DecoderSkeleton& m, const Projector& project) {
  const int32_t d = m.width, H = m.heads, hd = m.width / m.heads, half = hd / 2;
  const bool kv = m.with_kv_cache;
  const size_t layers = m.norms.size();
  g.inputs.push_back({"tokens", DataType::Int64, {1, -1}, {"T"}});
  g.outputs.push_back({"logits", DataType::Float, {1, -1, m.vocab}, {"T"}});
  if (kv) {
    for (size_t l = 0; l < layers; ++l) {
      const std::string ls = std::to_string(l);
      g.inputs.push_back({"past_key_" + ls, DataType::Float, {1, H, -1, hd}, {"T_past"}});
      g.inputs.push_back({"past_value_" + ls, DataType::Float, {1, H, -1, hd}, {"T_past"}});
      g.outputs.push_back({"present_key_" + ls, DataType::Float, {1, H, -1, hd}, {"T_total"}});  // T_past + T
      g.outputs.push_back({"present_value_" + ls, DataType::Float, {1, H, -1, hd}, {"T_total"}});
    }
  }
  Builder b(g);

  // Positions pos0..pos0+T-1 (pos0 = 0, or T_past with the KV cache): RoPE's cos / sin rows (the
  // runtime's own table) and the causal mask (key position after the query's position).
  const runtime::ops::RopeTable rope(m.context, hd, m.rope_base);
  b.add(make_float_tensor("rope.cos", {m.context, 1, half, 1}, rope.cos));
  b.add(make_float_tensor("rope.sin", {m.context, 1, half, 1}, rope.sin));
  const std::string T1 = b.op("Shape", {"tokens"}, "positions", {Attribute::make_int("start", 1), Attribute::make_int("end", 2)});
  const std::string zero1 = b.ints("zero_1d", {0});
  const std::string T0 = b.op("Squeeze", {T1, zero1}, "positions");
  const std::string zero0 = b.ints("zero_scalar", {0}, true), one0 = b.ints("one_scalar", {1}, true);
  std::string cos_t, sin_t, pos_q, pos_k;
  if (!kv) {
    cos_t = b.op("Slice", {"rope.cos", zero1, T1, zero1}, "positions");  // [T, 1, half, 1]
    sin_t = b.op("Slice", {"rope.sin", zero1, T1, zero1}, "positions");
    pos_q = pos_k = b.op("Range", {zero0, T0, one0}, "positions");
  } else {
    // T_past from past_key_0 [1, H, T_past, hd]: Shape -> Gather(2); the new rows are T_past..T_past+T-1.
    const std::string past0 = b.op("Gather", {b.op("Shape", {"past_key_0"}, "positions"), b.ints("two_scalar", {2}, true)},
                                   "positions", {Attribute::make_int("axis", 0)});
    const std::string past1 = b.op("Unsqueeze", {past0, zero1}, "positions");
    const std::string total1 = b.op("Add", {past1, T1}, "positions");
    cos_t = b.op("Slice", {"rope.cos", past1, total1, zero1}, "positions");  // [T, 1, half, 1]
    sin_t = b.op("Slice", {"rope.sin", past1, total1, zero1}, "positions");
    pos_q = b.op("Range", {past0, b.op("Add", {past0, T0}, "positions"), one0}, "positions");  // [T]
    pos_k = b.op("Range", {zero0, b.op("Squeeze", {total1, zero1}, "positions"), one0}, "positions");  // [T_past + T]
  }
  const std::string rows = b.op("Unsqueeze", {pos_q, b.ints("one_1d", {1})}, "positions");  // [T, 1]
  const std::string cols = b.op("Unsqueeze", {pos_k, zero1}, "positions");                  // [1, T_past + T]
  const std::string future = b.op("Greater", {cols, rows}, "positions");                    // key after query

  b.add(make_float_tensor("embed.weight", {m.vocab, d}, *m.embedding));
  std::string x = b.op("Gather", {"embed.weight", "tokens"}, "embed", {Attribute::make_int("axis", 0)});

  const std::string shape_heads = b.ints("shape_heads", {0, 0, H, hd});
  const std::string shape_pairs = b.ints("shape_pairs", {0, 0, H, half, 2});
  const std::string shape_width = b.ints("shape_width", {0, 0, d});
  b.scalar("minus_inf", -std::numeric_limits<float>::infinity());
  b.scalar("sqrt_head_size", static_cast<float>(std::sqrt(static_cast<double>(hd))));

  // RoPE on [1, T, d] -> [1, T, H, hd]: (a, b) -> (a cos - b sin, a sin + b cos), as apply_rope.
  auto rotate = [&](const std::string& v, const std::string& scope) {
    const std::string p = b.op("Reshape", {v, shape_pairs}, scope);
    const std::vector<std::string> ab =
        b.ops("Split", {p}, 2, scope, {Attribute::make_int("axis", -1), Attribute::make_int("num_outputs", 2)});
    const std::string ac = b.op("Mul", {ab[0], cos_t}, scope), bs = b.op("Mul", {ab[1], sin_t}, scope);
    const std::string as = b.op("Mul", {ab[0], sin_t}, scope), bc = b.op("Mul", {ab[1], cos_t}, scope);
    const std::string r = b.op("Concat", {b.op("Sub", {ac, bs}, scope), b.op("Add", {as, bc}, scope)}, scope,
                               {Attribute::make_int("axis", -1)});
    return b.op("Reshape", {r, shape_heads}, scope);
  };

  for (size_t l = 0; l < layers; ++l) {
    const std::string blk = "block" + std::to_string(l);
    std::string h = rmsnorm(b, x, *m.norms[l].first, m.norm_eps, blk + "_norm1", m.runtime_formulas);
    const std::vector<std::string> qkv = project(b, h, blk + "_norm1", {blk + "_attn_q", blk + "_attn_k", blk + "_attn_v"}, "");
    const std::string &q = qkv[0], &k = qkv[1], &v = qkv[2];
    const std::string att = blk + "_attn";
    const std::string qh = b.op("Transpose", {rotate(q, att + "_rope_q")}, att, {Attribute::make_ints("perm", {0, 2, 1, 3})});
    std::string kt, vh;
    if (!kv) {
      kt = b.op("Transpose", {rotate(k, att + "_rope_k")}, att, {Attribute::make_ints("perm", {0, 2, 3, 1})});
      vh = b.op("Transpose", {b.op("Reshape", {v, shape_heads}, att)}, att, {Attribute::make_ints("perm", {0, 2, 1, 3})});
    } else {
      // The runtime's cache (ops::causal_attention): keys after RoPE, values as projected.
      const std::string kh = b.op("Transpose", {rotate(k, att + "_rope_k")}, att, {Attribute::make_ints("perm", {0, 2, 1, 3})});
      const std::string vn = b.op("Transpose", {b.op("Reshape", {v, shape_heads}, att)}, att, {Attribute::make_ints("perm", {0, 2, 1, 3})});
      const std::string ls = std::to_string(l);
      const std::string pk = b.op("Concat", {"past_key_" + ls, kh}, att, {Attribute::make_int("axis", 2)}, "present_key_" + ls);
      vh = b.op("Concat", {"past_value_" + ls, vn}, att, {Attribute::make_int("axis", 2)}, "present_value_" + ls);
      kt = b.op("Transpose", {pk}, att, {Attribute::make_ints("perm", {0, 1, 3, 2})});
    }
    std::string scores = b.op("Div", {b.op("MatMul", {qh, kt}, att), "sqrt_head_size"}, att);  // [1, H, T, T_past + T]
    scores = b.op("Where", {future, "minus_inf", scores}, att);
    const std::string p = b.op("Softmax", {scores}, att, {Attribute::make_int("axis", -1)});
    const std::string a = b.op("Reshape", {b.op("Transpose", {b.op("MatMul", {p, vh}, att)}, att,
                                                {Attribute::make_ints("perm", {0, 2, 1, 3})}),
                                           shape_width},
                               att);
    const std::string o = project(b, a, att, {blk + "_attn_o"}, "")[0];
    x = b.op("Add", {x, o}, blk + "_add1");
    h = rmsnorm(b, x, *m.norms[l].second, m.norm_eps, blk + "_norm2", m.runtime_formulas);
    const std::vector<std::string> gu = project(b, h, blk + "_norm2", {blk + "_mlp_gate", blk + "_mlp_up"}, "");
    const std::string &gate = gu[0], &up = gu[1];
    const std::string sw = blk + "_swiglu";
    std::string s;
    if (m.runtime_formulas) {  // the runtime's ops/swiglu_op: gate / (1 + exp(-gate)) * up
      const std::string denom = b.op("Add", {b.scalar("one", 1.0f), b.op("Exp", {b.op("Neg", {gate}, sw)}, sw)}, sw);
      s = b.op("Mul", {b.op("Div", {gate, denom}, sw), up}, sw);
    } else {  // torch::silu(gate) * up: gate * Sigmoid(gate) * up
      s = b.op("Mul", {b.op("Mul", {gate, b.op("Sigmoid", {gate}, sw)}, sw), up}, sw);
    }
    const std::string down = project(b, s, sw, {blk + "_mlp_down"}, "")[0];
    x = b.op("Add", {x, down}, blk + "_add2");
  }
  const std::string hf = rmsnorm(b, x, *m.norm_f, m.norm_eps, "norm_f", m.runtime_formulas);
  project(b, hf, "norm_f", {"head"}, "logits");
}

// A float weight [out, in] as the [in, out] initializer `name`.weight and y = MatMul(x, W^T).
std::string float_matmul(Builder& b, const std::string& x, const std::vector<float>& w, int32_t in, int32_t out,
                         const std::string& name, const std::string& output = "") {
  std::vector<float> t(static_cast<size_t>(in) * out);
  for (int32_t o = 0; o < out; ++o)
    for (int32_t k = 0; k < in; ++k) t[static_cast<size_t>(k) * out + o] = w[static_cast<size_t>(o) * in + k];
  b.add(make_float_tensor(name + ".weight", {in, out}, t));
  return b.op("MatMul", {x, name + ".weight"}, name, {}, output);
}

std::string kv_doc(bool kv, int32_t context) {
  return kv ? ", KV cache: tokens int64 [1, T], past_key_<l> / past_value_<l> float [1, heads, T_past, head_size] "
              "-> logits float [1, T, vocab], present_key_<l> / present_value_<l> [1, heads, T_past + T, "
              "head_size] (keys after RoPE), T_past + T <= " + std::to_string(context)
            : ": tokens int64 [1, T] -> logits float [1, T, vocab], T <= " + std::to_string(context);
}

}  // namespace

Model decoder_model(const runtime::DecoderModel& m, const DecoderExportOptions& options, const std::string& where) {
  runtime::validate_decoder_model(m, where);
  const DecoderExportForm form = options.form;
  if (form == DecoderExportForm::MatMulNBits) {
    for (size_t l = 0; l < m.layers.size(); ++l) {
      const runtime::DecoderLayer& L = m.layers[l];
      const std::pair<const runtime::QuantLinear*, const char*> all[] = {
          {&L.q, "attn_q"}, {&L.k, "attn_k"}, {&L.v, "attn_v"}, {&L.o, "attn_o"},
          {&L.gate, "mlp_gate"}, {&L.up, "mlp_up"}, {&L.down, "mlp_down"}};
      for (const auto& [w, what] : all) check_matmulnbits(*w, where, projection_name(l, what));
    }
    if (m.head_quantized) check_matmulnbits(m.head_q, where, "head");
  }

  Model model;
  model.opset = 21;
  if (form == DecoderExportForm::MatMulNBits) model.extra_opsets.push_back({"com.microsoft", 1});
  model.doc_string = "lowbit decoder language model '" + m.name + "' (" +
                     (form == DecoderExportForm::Qdq ? "QDQ" : "MatMulNBits") + ")" +
                     kv_doc(options.with_kv_cache, m.context) +
                     "; per-token int8 activations as in lowbit's runtime";
  Graph& g = model.graph;
  g.name = m.name.empty() ? "gpt" : m.name;

  DecoderSkeleton s;
  s.vocab = m.vocab;
  s.width = m.width;
  s.heads = m.heads;
  s.context = m.context;
  s.norm_eps = m.norm_eps;
  s.rope_base = m.rope_base;
  s.embedding = &m.embedding;
  for (const runtime::DecoderLayer& L : m.layers) s.norms.push_back({&L.norm1, &L.norm2});
  s.norm_f = &m.norm_f;
  s.with_kv_cache = options.with_kv_cache;
  s.runtime_formulas = true;

  // gpt-tiny's node names -> the runtime's projections.
  std::map<std::string, const runtime::QuantLinear*> projections;
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const runtime::DecoderLayer& L = m.layers[l];
    for (const auto& [w, what] : std::initializer_list<std::pair<const runtime::QuantLinear*, const char*>>{
             {&L.q, "attn_q"}, {&L.k, "attn_k"}, {&L.v, "attn_v"}, {&L.o, "attn_o"},
             {&L.gate, "mlp_gate"}, {&L.up, "mlp_up"}, {&L.down, "mlp_down"}})
      projections[projection_name(l, what)] = w;
  }
  // Per-token quantization of the shared input once, then one projection per name; the float
  // head as a float MatMul.
  const Projector project = [&](Builder& b, const std::string& x, const std::string& scope,
                                const std::vector<std::string>& names, const std::string& output) {
    std::vector<std::string> ys;
    if (names.size() == 1 && names[0] == "head") {
      if (m.head_quantized)
        ys.push_back(linear(b, m.head_q, quantize_tokens(b, x, "head_quant"), "head", form, output));
      else
        ys.push_back(float_matmul(b, x, m.head, m.width, m.vocab, "head", output));
      return ys;
    }
    const auto xq = quantize_tokens(b, x, scope + "_quant");
    for (const std::string& n : names) ys.push_back(linear(b, *projections.at(n), xq, n, form, output));
    return ys;
  };
  build_decoder_graph(g, s, project);
  return model;
}

Model float_decoder_model(const FloatDecoder& m, const FloatDecoderExportOptions& options) {
  const std::string where = "onnx export: float decoder '" + m.name + "'";
  LOWBIT_CHECK(m.width > 0 && m.heads > 0 && m.width % m.heads == 0 && (m.width / m.heads) % 2 == 0,
               where + ": width " + std::to_string(m.width) + " and heads " + std::to_string(m.heads) +
                   " do not give an even head size");
  LOWBIT_CHECK(m.context > 0 && m.vocab > 0 && m.hidden > 0 && !m.layers.empty(), where + ": empty sizes");
  const size_t d = static_cast<size_t>(m.width);
  auto check = [&](const std::vector<float>& v, size_t n, const std::string& what) {
    LOWBIT_CHECK(v.size() == n, where + ": " + what + " has " + std::to_string(v.size()) + " values, expected " +
                                    std::to_string(n));
  };
  check(m.embedding, static_cast<size_t>(m.vocab) * d, "embed");
  check(m.norm_f, d, "norm_f");
  check(m.head, static_cast<size_t>(m.vocab) * d, "head");
  std::map<std::string, std::pair<const std::vector<float>*, std::pair<int32_t, int32_t>>> projections;  // name -> (w, (in, out))
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const FloatDecoder::Layer& L = m.layers[l];
    check(L.norm1, d, projection_name(l, "norm1"));
    check(L.norm2, d, projection_name(l, "norm2"));
    const int32_t w = m.width, h = m.hidden;
    for (const auto& [v, what, in, out] :
         std::initializer_list<std::tuple<const std::vector<float>*, const char*, int32_t, int32_t>>{
             {&L.q, "attn_q", w, w}, {&L.k, "attn_k", w, w}, {&L.v, "attn_v", w, w}, {&L.o, "attn_o", w, w},
             {&L.gate, "mlp_gate", w, h}, {&L.up, "mlp_up", w, h}, {&L.down, "mlp_down", h, w}}) {
      check(*v, static_cast<size_t>(in) * out, projection_name(l, what));
      projections[projection_name(l, what)] = {v, {in, out}};
    }
  }
  projections["head"] = {&m.head, {m.width, m.vocab}};

  Model model;
  model.opset = 21;
  model.doc_string = "float32 export of lowbit decoder language model '" + m.name + "'" +
                     kv_doc(options.with_kv_cache, m.context) +
                     "; float weights and activations (LibTorch's FP32 forward)";
  Graph& g = model.graph;
  g.name = m.name.empty() ? "gpt_fp32" : m.name + "_fp32";
  DecoderSkeleton s;
  s.vocab = m.vocab;
  s.width = m.width;
  s.heads = m.heads;
  s.context = m.context;
  s.norm_eps = m.norm_eps;
  s.rope_base = m.rope_base;
  s.embedding = &m.embedding;
  for (const FloatDecoder::Layer& L : m.layers) s.norms.push_back({&L.norm1, &L.norm2});
  s.norm_f = &m.norm_f;
  s.with_kv_cache = options.with_kv_cache;
  s.runtime_formulas = false;
  const Projector project = [&](Builder& b, const std::string& x, const std::string&, const std::vector<std::string>& names,
                                const std::string& output) {
    std::vector<std::string> ys;
    for (const std::string& n : names) {
      const auto& [w, io] = projections.at(n);
      ys.push_back(float_matmul(b, x, *w, io.first, io.second, n, output));
    }
    return ys;
  };
  build_decoder_graph(g, s, project);
  return model;
}

}  // namespace lowbit::onnx
