#include "export/decoder_export.h"

#include <cmath>
#include <limits>

#include "base/error.h"
#include "quant/per_token.h"
#include "runtime/ops/attention_op.h"

namespace lowbit::onnx {
namespace {

constexpr int64_t kCastFloat = 1, kCastDouble = 11;  // TensorProto.DataType for Cast's `to`

// Appends nodes and initializers with unique names; every helper returns its output's name.
class Builder {
 public:
  explicit Builder(Graph& g) : g_(g) {}

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

 private:
  Graph& g_;
  int counter_ = 0;
};

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

// y = MatMul(codes, W) * s_t for one projection.
std::string linear(Builder& b, const runtime::QuantLinear& w, const std::pair<std::string, std::string>& xq,
                   const std::string& name, DecoderExportForm form, const std::string& output = "") {
  const int32_t K = w.in_features, N = w.out_features, groups = w.groups();
  const std::vector<int8_t> values = w.values();  // [N, K]; odd grids: the odd values
  std::string y;
  if (form == DecoderExportForm::Qdq) {
    // Codes [1, K, N]: 1-, 2-, 4-bit weights (|value| <= 7 on every grid) as INT4, 8-bit as INT8.
    // The leading 1 keeps ONNX Runtime's DequantizeLinear -> MatMul fusion (into MatMulNBits
    // with its default accuracy level 4, which re-quantizes the activations per block) off the
    // graph: MatMul broadcasts it away and the float arithmetic stays the model's.
    const DataType type = w.bits <= 4 ? DataType::Int4 : DataType::Int8;
    std::vector<int32_t> t(static_cast<size_t>(K) * N);
    for (int32_t k = 0; k < K; ++k)
      for (int32_t n = 0; n < N; ++n) t[static_cast<size_t>(k) * N + n] = values[static_cast<size_t>(n) * K + k];
    b.add(make_integer_tensor(name + ".weight_q", type, {1, K, N}, t));
    std::vector<Attribute> attrs;
    if (groups == 1) {
      b.add(make_float_tensor(name + ".weight_scale", {N}, w.scales));
      attrs.push_back(Attribute::make_int("axis", 2));
    } else {
      std::vector<float> st(static_cast<size_t>(groups) * N);
      for (int32_t g = 0; g < groups; ++g)
        for (int32_t n = 0; n < N; ++n) st[static_cast<size_t>(g) * N + n] = w.scales[static_cast<size_t>(n) * groups + g];
      b.add(make_float_tensor(name + ".weight_scale", {1, groups, N}, st));
      attrs.push_back(Attribute::make_int("axis", 1));
      attrs.push_back(Attribute::make_int("block_size", w.group_size));
    }
    const std::string wd = b.op("DequantizeLinear", {name + ".weight_q", name + ".weight_scale"}, name, attrs);
    y = b.op("MatMul", {xq.first, wd}, name);
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

// x * (1 / sqrt(mean(x^2) + eps)) * w, the mean in double (runtime/ops/rmsnorm_op.cpp).
std::string rmsnorm(Builder& b, const std::string& x, const std::vector<float>& w, float eps, const std::string& name) {
  b.add(make_float_tensor(name + ".weight", {static_cast<int64_t>(w.size())}, w));
  const std::string xd = b.op("Cast", {x}, name, {Attribute::make_int("to", kCastDouble)});
  const std::string mean_d = b.op("ReduceMean", {b.op("Mul", {xd, xd}, name), b.ints("axes_last", {-1})}, name,
                                  {Attribute::make_int("keepdims", 1)});
  const std::string mean = b.op("Cast", {mean_d}, name, {Attribute::make_int("to", kCastFloat)});
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
                     (form == DecoderExportForm::Qdq ? "QDQ" : "MatMulNBits") +
                     ")" + (options.with_kv_cache
                              ? ", KV cache: tokens int64 [1, T], past_key_<l> / past_value_<l> float [1, heads, T_past, head_size] "
                                "-> logits float [1, T, vocab], present_key_<l> / present_value_<l> [1, heads, T_past + T, "
                                "head_size] (keys after RoPE), T_past + T <= " + std::to_string(m.context)
                              : ": tokens int64 [1, T] -> logits float [1, T, vocab], T <= " + std::to_string(m.context)) +
                     "; per-token int8 activations as in lowbit's runtime";
  Graph& g = model.graph;
  g.name = m.name.empty() ? "gpt" : m.name;
  const int32_t d = m.width, H = m.heads, hd = m.head_size(), half = hd / 2;
  const bool kv = options.with_kv_cache;
  g.inputs.push_back({"tokens", DataType::Int64, {1, -1}, {"T"}});
  g.outputs.push_back({"logits", DataType::Float, {1, -1, m.vocab}, {"T"}});
  if (kv) {
    for (size_t l = 0; l < m.layers.size(); ++l) {
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

  b.add(make_float_tensor("embed.weight", {m.vocab, d}, m.embedding));
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

  for (size_t l = 0; l < m.layers.size(); ++l) {
    const runtime::DecoderLayer& L = m.layers[l];
    const std::string blk = "block" + std::to_string(l);
    std::string h = rmsnorm(b, x, L.norm1, m.norm_eps, blk + "_norm1");
    auto hq = quantize_tokens(b, h, blk + "_norm1_quant");
    const std::string q = linear(b, L.q, hq, blk + "_attn_q", form);
    const std::string k = linear(b, L.k, hq, blk + "_attn_k", form);
    const std::string v = linear(b, L.v, hq, blk + "_attn_v", form);
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
    const std::string o = linear(b, L.o, quantize_tokens(b, a, blk + "_attn_quant"), blk + "_attn_o", form);
    x = b.op("Add", {x, o}, blk + "_add1");
    h = rmsnorm(b, x, L.norm2, m.norm_eps, blk + "_norm2");
    hq = quantize_tokens(b, h, blk + "_norm2_quant");
    const std::string gate = linear(b, L.gate, hq, blk + "_mlp_gate", form);
    const std::string up = linear(b, L.up, hq, blk + "_mlp_up", form);
    const std::string sw = blk + "_swiglu";
    const std::string denom = b.op("Add", {b.scalar("one", 1.0f), b.op("Exp", {b.op("Neg", {gate}, sw)}, sw)}, sw);
    const std::string s = b.op("Mul", {b.op("Div", {gate, denom}, sw), up}, sw);
    const std::string down = linear(b, L.down, quantize_tokens(b, s, blk + "_swiglu_quant"), blk + "_mlp_down", form);
    x = b.op("Add", {x, down}, blk + "_add2");
  }
  const std::string hf = rmsnorm(b, x, m.norm_f, m.norm_eps, "norm_f");
  if (m.head_quantized) {
    linear(b, m.head_q, quantize_tokens(b, hf, "head_quant"), "head", form, "logits");
  } else {
    std::vector<float> t(static_cast<size_t>(d) * m.vocab);  // [d, vocab]
    for (int32_t o = 0; o < m.vocab; ++o)
      for (int32_t k = 0; k < d; ++k) t[static_cast<size_t>(k) * m.vocab + o] = m.head[static_cast<size_t>(o) * d + k];
    b.add(make_float_tensor("head.weight", {d, m.vocab}, t));
    b.op("MatMul", {hf, "head.weight"}, "head", {}, "logits");
  }
  return model;
}

}  // namespace lowbit::onnx
