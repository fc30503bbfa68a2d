#include "export/encoder_export.h"

#include <cmath>

#include "base/error.h"
#include "export/decoder_export.h"
#include "export/graph_builder.h"

namespace lowbit::onnx {
namespace {

// A value on a static grid: its uint8 codes and (when a float op reads it) its float value.
struct GridValue {
  std::string codes, value;
};

class EncoderBuilder {
 public:
  EncoderBuilder(Graph& g, const runtime::EncoderModel& m) : b_(g), m_(m) {}

  // QuantizeLinear of x onto grid `g` (Clip first for a code range narrower than [0, 255]) and
  // DequantizeLinear back.
  GridValue quantize(const std::string& x, const runtime::ActGrid& g, const std::string& name, bool dequantize = true) {
    grid_tensors(g, name);
    std::string in = x;
    if (g.qmin > 0 || g.qmax < 255) {
      // s * (q - z) / s rounds back to q - z exactly for |q - z| < 2^22: the bounds are the codes.
      const std::string lo = b_.scalar(name + ".clip_min", g.scale * static_cast<float>(g.qmin - g.zero_point));
      const std::string hi = b_.scalar(name + ".clip_max", g.scale * static_cast<float>(g.qmax - g.zero_point));
      in = b_.op("Clip", {x, lo, hi}, name);
    }
    GridValue r;
    r.codes = b_.op("QuantizeLinear", {in, name + ".scale", name + ".zero_point"}, name);
    if (dequantize) r.value = b_.op("DequantizeLinear", {r.codes, name + ".scale", name + ".zero_point"}, name);
    return r;
  }

  // One EncoderLinear on x [N, T, in] (a float value, or codes on its input grid): [N, T, out].
  GridValue linear(const runtime::EncoderLinear& l, const std::string& x_value, const std::string& x_codes,
                   const std::string& name) {
    std::string x = x_value;
    if (l.has_input_grid) {
      // The integer GEMM's operand: the codes minus the zero point, times s_x.
      LOWBIT_CHECK(!x_codes.empty(), "export: " + where_ + ": layer " + name + " reads codes that its producer does not make");
      grid_tensors(l.input_grid, name + ".input");
      x = b_.op("DequantizeLinear", {x_codes, name + ".input.scale", name + ".input.zero_point"}, name);
    }
    std::string w;
    if (l.quantized) {
      w = qdq_weight(b_, l.w, name, /*uint8_if_wide=*/true, /*matrix_if_8bit_per_channel=*/true);
    } else {
      std::vector<float> t(static_cast<size_t>(l.in_features) * l.out_features);
      for (int32_t o = 0; o < l.out_features; ++o)
        for (int32_t k = 0; k < l.in_features; ++k)
          t[static_cast<size_t>(k) * l.out_features + o] = l.weight[static_cast<size_t>(o) * l.in_features + k];
      b_.add(make_float_tensor(name + ".weight", {1, l.in_features, l.out_features}, t));
      w = name + ".weight";
    }
    std::string y = b_.op("MatMul", {x, w}, name);
    if (!l.bias.empty()) {
      b_.add(make_float_tensor(name + ".bias", {l.out_features}, l.bias));
      y = b_.op("Add", {y, name + ".bias"}, name);
    }
    if (l.gelu) y = b_.op("Gelu", {y}, name);  // opset 20+: approximate "none", the erf form
    if (!l.has_output_grid) return {"", y};
    return quantize(y, l.output_grid, name + ".output");
  }

  std::string layernorm(const std::string& x, const std::vector<float>& w, const std::vector<float>& bias,
                        const std::string& name) {
    b_.add(make_float_tensor(name + ".weight", {static_cast<int64_t>(w.size())}, w));
    b_.add(make_float_tensor(name + ".bias", {static_cast<int64_t>(bias.size())}, bias));
    return b_.op("LayerNormalization", {x, name + ".weight", name + ".bias"}, name,
                 {Attribute::make_int("axis", -1), Attribute::make_float("epsilon", m_.norm_eps)});
  }

  // Non-causal multi-head attention on q, k, v [N, T, d] (ops::full_attention).
  std::string attention(const std::string& q, const std::string& k, const std::string& v, const std::string& name) {
    const std::string heads = b_.ints("shape_heads", {0, 0, m_.heads, m_.head_size()});
    const std::string width = b_.ints("shape_width", {0, 0, m_.width});
    auto split = [&](const std::string& t, std::vector<int64_t> perm) {
      return b_.op("Transpose", {b_.op("Reshape", {t, heads}, name)}, name, {Attribute::make_ints("perm", std::move(perm))});
    };
    const std::string qh = split(q, {0, 2, 1, 3}), kt = split(k, {0, 2, 3, 1}), vh = split(v, {0, 2, 1, 3});
    const std::string scale = b_.scalar("sqrt_head_size", static_cast<float>(std::sqrt(static_cast<double>(m_.head_size()))));
    const std::string p = b_.op("Softmax", {b_.op("Div", {b_.op("MatMul", {qh, kt}, name), scale}, name)}, name,
                                {Attribute::make_int("axis", -1)});
    const std::string o = b_.op("Transpose", {b_.op("MatMul", {p, vh}, name)}, name, {Attribute::make_ints("perm", {0, 2, 1, 3})});
    return b_.op("Reshape", {o, width}, name);
  }

  void build(const std::string& where) {
    where_ = where;
    const runtime::EncoderModel& m = m_;
    const int32_t p = m.patch, side = m.grid_side(), T = m.tokens(), P = m.patch_features(), C = m.channels;
    // Patches [N, T, P]: [N, C, side, p, side, p] -> [N, side, side, C, p, p] -> [N, T, P].
    auto patches = [&](const std::string& x) {
      const std::string r = b_.op("Reshape", {x, b_.ints("shape_image_patches", {0, C, side, p, side, p})}, "patches");
      const std::string t = b_.op("Transpose", {r}, "patches", {Attribute::make_ints("perm", {0, 2, 4, 1, 3, 5})});
      return b_.op("Reshape", {t, b_.ints("shape_patches", {0, T, P})}, "patches");
    };
    GridValue in;
    if (m.input_quantized) {
      // An integer patch embedding reads the codes (rearranged exactly); a float one their values.
      const bool integer = m.patch_embed.has_input_grid;
      const GridValue q = quantize("input", m.input_grid, "input", /*dequantize=*/!integer);
      if (integer) in.codes = patches(q.codes);
      else in.value = patches(q.value);
    } else {
      in.value = patches("input");
    }
    const GridValue pe = linear(m.patch_embed, in.value, in.codes, "patch_embed");
    b_.add(make_float_tensor("tokens.position", {T, m.width}, m.position));
    std::string x = b_.op("Add", {pe.value, "tokens.position"}, "tokens");
    for (size_t l = 0; l < m.layers.size(); ++l) {
      const runtime::EncoderLayer& L = m.layers[l];
      const std::string blk = "block" + std::to_string(l);
      std::string h = layernorm(x, L.norm1_w, L.norm1_b, blk + "_norm1");
      const GridValue q = linear(L.q, h, "", blk + "_attn_q");
      const GridValue k = linear(L.k, h, "", blk + "_attn_k");
      const GridValue v = linear(L.v, h, "", blk + "_attn_v");
      const std::string a = attention(q.value, k.value, v.value, blk + "_attn");
      const GridValue o = linear(L.o, a, "", blk + "_attn_o");
      x = b_.op("Add", {x, o.value}, blk + "_add1");
      if (L.has_add1_grid) x = quantize(x, L.add1_grid, blk + "_add1").value;
      h = layernorm(x, L.norm2_w, L.norm2_b, blk + "_norm2");
      const GridValue f1 = linear(L.fc1, h, "", blk + "_mlp_fc1");
      const GridValue f2 = linear(L.fc2, f1.value, f1.codes, blk + "_mlp_fc2");
      x = b_.op("Add", {x, f2.value}, blk + "_add2");
      if (L.has_add2_grid) x = quantize(x, L.add2_grid, blk + "_add2").value;
    }
    // Mean over the tokens, kept as [N, 1, d] so that the head's MatMul broadcasts like the others.
    const std::string pooled = b_.op("ReduceMean", {x, b_.ints("axes_tokens", {1})}, "pool", {Attribute::make_int("keepdims", 1)});
    const std::string hf = layernorm(pooled, m.norm_f_w, m.norm_f_b, "norm_f");
    const GridValue logits = linear(m.head, hf, "", "head");
    b_.op("Reshape", {logits.value, b_.ints("shape_logits", {0, m.classes})}, "head", {}, "logits");
  }

 private:
  // name.scale (float) and name.zero_point (uint8) of a grid, once.
  void grid_tensors(const runtime::ActGrid& g, const std::string& name) {
    if (b_.has(name + ".scale")) return;
    b_.add(make_float_tensor(name + ".scale", {}, {g.scale}));
    b_.add(make_integer_tensor(name + ".zero_point", DataType::Uint8, {}, {g.zero_point}));
  }

  GraphBuilder b_;
  const runtime::EncoderModel& m_;
  std::string where_;
};

}  // namespace

Model encoder_qdq_model(const runtime::EncoderModel& m, const std::string& where) {
  runtime::validate_encoder_model(m, where);
  Model model;
  model.opset = 21;
  model.doc_string = "lowbit encoder image model '" + m.name + "' (QDQ): input float [N, " + std::to_string(m.channels) + ", " +
                     std::to_string(m.image_size) + ", " + std::to_string(m.image_size) + "] (pixel / 255) -> logits float [N, " +
                     std::to_string(m.classes) + "]; static per-tensor uint8 activation grids as in lowbit's runtime";
  Graph& g = model.graph;
  g.name = m.name.empty() ? "vit" : m.name;
  g.inputs.push_back({"input", DataType::Float, {-1, m.channels, m.image_size, m.image_size}});
  g.outputs.push_back({"logits", DataType::Float, {-1, m.classes}});
  EncoderBuilder(g, m).build(where);
  return model;
}

}  // namespace lowbit::onnx
