#include "runtime/encoder_model.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "base/error.h"
#include "quant/bit_packing.h"
#include "runtime/model_checks.h"

namespace lowbit::runtime {
namespace {

constexpr int32_t kMaxDim = 1 << 16;  // width, hidden, classes
constexpr int32_t kMaxLayers = 1024;

using model_checks::bad;
using model_checks::check_finite;
using model_checks::check_vector;

void check_grid(const std::string& where, const std::string& field, const ActGrid& g) {
  if (!std::isfinite(g.scale) || !(g.scale > 0.0f))
    bad(where, field + " scale " + std::to_string(g.scale) + " is not a positive finite number");
  if (g.qmin < 0 || g.qmax > 255 || g.qmin >= g.qmax)
    bad(where, field + " code range [" + std::to_string(g.qmin) + ", " + std::to_string(g.qmax) +
                   "] is not within [0, 255]");
  if (g.zero_point < g.qmin || g.zero_point > g.qmax)
    bad(where, field + " zero point " + std::to_string(g.zero_point) + " is outside its code range [" +
                   std::to_string(g.qmin) + ", " + std::to_string(g.qmax) + "]");
}

void check_linear(const std::string& where, const std::string& name, const EncoderLinear& l, int32_t in, int32_t out,
                  bool output_grid_allowed) {
  const std::string f = name + ": ";
  if (l.in_features != in || l.out_features != out)
    bad(where, f + "shape [" + std::to_string(l.out_features) + ", " + std::to_string(l.in_features) +
                   "] differs from the expected [" + std::to_string(out) + ", " + std::to_string(in) + "]");
  if (l.quantized) {
    const QuantLinear& w = l.w;
    if (w.in_features != in || w.out_features != out)
      bad(where, f + "quantized weight shape [" + std::to_string(w.out_features) + ", " + std::to_string(w.in_features) +
                     "] differs from the layer's [" + std::to_string(out) + ", " + std::to_string(in) + "]");
    model_checks::check_quant_weights(where, f, w, "weight scales");
    check_vector(where, f + "float weights", l.weight.size(), 0);
  } else {
    check_vector(where, f + "weights", l.weight.size(), int64_t{in} * out);
    check_finite(where, f + "weights", l.weight, false);
  }
  if (!l.bias.empty()) {
    check_vector(where, f + "bias", l.bias.size(), out);
    check_finite(where, f + "bias", l.bias, false);
  }
  if (l.has_input_grid) check_grid(where, f + "input grid", l.input_grid);
  if (l.has_output_grid) {
    if (!output_grid_allowed) bad(where, f + "has an output grid; the logits are not quantized");
    check_grid(where, f + "output grid", l.output_grid);
  }
}

// The integer GEMM of `consumer` reads the codes its producer wrote: the two grids must be one.
void check_chain(const std::string& where, const std::string& name, const EncoderLinear& consumer, bool producer_has,
                 const ActGrid& producer) {
  if (!consumer.has_input_grid) return;
  if (!producer_has || producer != consumer.input_grid)
    bad(where, name + ": input grid " + consumer.input_grid.describe() + " is not its producer's output grid " +
                   (producer_has ? producer.describe() : std::string("(none: float)")));
}

std::string grid_or_float(bool has, const ActGrid& g) { return has ? g.describe() : "float"; }

}  // namespace

std::string ActGrid::describe() const {
  int bits = 1;
  while (bits < 8 && (1 << bits) - 1 < qmax) ++bits;
  char s[96];
  std::snprintf(s, sizeof s, "u%d s=%.6g z=%d", bits, static_cast<double>(scale), zero_point);
  return s;
}

void validate_encoder_model(const EncoderModel& m, const std::string& where) {
  if (m.channels != 1) bad(where, "channels " + std::to_string(m.channels) + " is not 1 (Fashion-MNIST images)");
  if (m.image_size != 28) bad(where, "image size " + std::to_string(m.image_size) + " is not 28");
  if (m.patch < 1 || m.image_size % m.patch != 0)
    bad(where, "patch " + std::to_string(m.patch) + " does not divide the image size " + std::to_string(m.image_size));
  if (m.width < 1 || m.width > kMaxDim) bad(where, "width " + std::to_string(m.width) + " is outside [1, 65536]");
  if (m.heads < 1 || m.width % m.heads != 0)
    bad(where, "heads " + std::to_string(m.heads) + " does not divide the width " + std::to_string(m.width));
  if (m.hidden < 1 || m.hidden > kMaxDim) bad(where, "hidden size " + std::to_string(m.hidden) + " is outside [1, 65536]");
  if (m.classes < 1 || m.classes > kMaxDim) bad(where, "class count " + std::to_string(m.classes) + " is outside [1, 65536]");
  if (!(m.norm_eps > 0.0f) || !std::isfinite(m.norm_eps)) bad(where, "norm_eps must be a positive finite number");
  if (m.layers.empty() || m.layers.size() > static_cast<size_t>(kMaxLayers))
    bad(where, "layer count " + std::to_string(m.layers.size()) + " is outside [1, 1024]");
  if (m.input_quantized) check_grid(where, "input grid", m.input_grid);
  const int32_t d = m.width;
  check_linear(where, "patch_embed", m.patch_embed, m.patch_features(), d, true);
  check_chain(where, "patch_embed", m.patch_embed, m.input_quantized, m.input_grid);
  check_vector(where, "position embedding", m.position.size(), int64_t{m.tokens()} * d);
  check_finite(where, "position embedding", m.position, false);
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const EncoderLayer& L = m.layers[l];
    const std::string p = "layer " + std::to_string(l) + " ";
    for (const auto& [name, v] : {std::pair<const char*, const std::vector<float>*>{"norm1 weight", &L.norm1_w},
                                  {"norm1 bias", &L.norm1_b}, {"norm2 weight", &L.norm2_w}, {"norm2 bias", &L.norm2_b}}) {
      check_vector(where, p + name, v->size(), d);
      check_finite(where, p + name, *v, false);
    }
    check_linear(where, p + "attn_q", L.q, d, d, true);
    check_linear(where, p + "attn_k", L.k, d, d, true);
    check_linear(where, p + "attn_v", L.v, d, d, true);
    check_linear(where, p + "attn_o", L.o, d, d, true);
    check_linear(where, p + "mlp_fc1", L.fc1, d, m.hidden, true);
    check_linear(where, p + "mlp_fc2", L.fc2, m.hidden, d, true);
    // Inputs that come from a LayerNorm or the attention are float.
    for (const auto& [name, lin] : {std::pair<const char*, const EncoderLinear*>{"attn_q", &L.q}, {"attn_k", &L.k},
                                    {"attn_v", &L.v}, {"attn_o", &L.o}, {"mlp_fc1", &L.fc1}})
      if (lin->has_input_grid) bad(where, p + name + ": has an input grid, but its input (a LayerNorm or the attention) is float");
    check_chain(where, p + "mlp_fc2", L.fc2, L.fc1.has_output_grid, L.fc1.output_grid);
    if (L.has_add1_grid) check_grid(where, p + "add1 grid", L.add1_grid);
    if (L.has_add2_grid) check_grid(where, p + "add2 grid", L.add2_grid);
  }
  check_vector(where, "norm_f weight", m.norm_f_w.size(), d);
  check_vector(where, "norm_f bias", m.norm_f_b.size(), d);
  check_finite(where, "norm_f weight", m.norm_f_w, false);
  check_finite(where, "norm_f bias", m.norm_f_b, false);
  check_linear(where, "head", m.head, d, m.classes, false);
  if (m.head.has_input_grid) bad(where, "head: has an input grid, but its input (norm_f) is float");
}

int64_t encoder_parameter_count(const EncoderModel& m) {
  auto lin = [](const EncoderLinear& l) {
    return int64_t{l.in_features} * l.out_features + static_cast<int64_t>(l.bias.size());
  };
  int64_t n = lin(m.patch_embed) + static_cast<int64_t>(m.position.size() + m.norm_f_w.size() + m.norm_f_b.size()) +
              lin(m.head);
  for (const EncoderLayer& L : m.layers)
    n += static_cast<int64_t>(L.norm1_w.size() + L.norm1_b.size() + L.norm2_w.size() + L.norm2_b.size()) + lin(L.q) +
         lin(L.k) + lin(L.v) + lin(L.o) + lin(L.fc1) + lin(L.fc2);
  return n;
}

std::string describe_encoder_model(const EncoderModel& m, const std::vector<std::string>& kernels) {
  std::ostringstream s;
  char line[320];
  s << "encoder (vit): " << m.layers.size() << " layers, width " << m.width << ", heads " << m.heads << ", hidden "
    << m.hidden << ", patch " << m.patch << " (" << m.tokens() << " tokens), classes " << m.classes << ", input "
    << grid_or_float(m.input_quantized, m.input_grid) << "\n";
  std::snprintf(line, sizeof line, "%-16s %-10s %-8s %-26s %9s  %-22s %s\n", "op", "kind", "math", "weights", "bytes",
                "output", "kernel");
  s << line;
  int64_t bytes_total = 0;
  auto row = [&](const std::string& name, const char* kind, const char* math, const std::string& w, int64_t bytes,
                 const std::string& out, const std::string& kernel) {
    std::snprintf(line, sizeof line, "%-16s %-10s %-8s %-26s %9lld  %-22s %s\n", name.c_str(), kind, math, w.c_str(),
                  static_cast<long long>(bytes), out.c_str(), kernel.c_str());
    s << line;
    bytes_total += bytes;
  };
  const std::string gemm = kernels.empty() ? "integer GEMM" : kernels[0];
  const std::string fk = "float (scalar)";
  auto lin = [&](const std::string& name, const EncoderLinear& l) {
    const std::string shape = std::to_string(l.out_features) + "x" + std::to_string(l.in_features);
    const int64_t bias = static_cast<int64_t>(l.bias.size() * 4);
    const std::string out = grid_or_float(l.has_output_grid, l.output_grid) + (l.gelu ? " (gelu)" : "");
    if (!l.quantized) {
      row(name, "linear", "float", "f32 " + shape, static_cast<int64_t>(l.weight.size() * 4) + bias, out, fk);
      return;
    }
    const int64_t bytes = static_cast<int64_t>(l.w.packed.size() + l.w.scales.size() * 4) + bias;
    if (l.integer()) {
      row(name, "linear", "integer", l.w.format() + " " + shape, bytes, out,
          l.input_grid.describe() + " codes x " + gemm);
    } else {
      row(name, "linear", "float", l.w.format() + " " + shape, bytes, out, "float input x dequantized weights, " + fk);
    }
  };
  const std::string d = std::to_string(m.width);
  row("input", "quantize", m.input_quantized ? "integer" : "float", "-", 0,
      grid_or_float(m.input_quantized, m.input_grid), m.input_quantized ? "quant::quantize_integer" : "-");
  lin("patch_embed", m.patch_embed);
  row("tokens", "position", "float", "f32 " + std::to_string(m.tokens()) + "x" + d,
      static_cast<int64_t>(m.position.size() * 4), "float", fk);
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const EncoderLayer& L = m.layers[l];
    const std::string p = "block" + std::to_string(l) + "_";
    row(p + "norm1", "layernorm", "float", "f32 2x" + d, 2 * m.width * 4, "float", fk);
    lin(p + "attn_q", L.q);
    lin(p + "attn_k", L.k);
    lin(p + "attn_v", L.v);
    row(p + "attn", "attention", "float", "non-causal, no RoPE", 0, "float", fk);
    lin(p + "attn_o", L.o);
    row(p + "add1", "add", "float", "-", 0, grid_or_float(L.has_add1_grid, L.add1_grid), fk);
    row(p + "norm2", "layernorm", "float", "f32 2x" + d, 2 * m.width * 4, "float", fk);
    lin(p + "mlp_fc1", L.fc1);
    lin(p + "mlp_fc2", L.fc2);
    row(p + "add2", "add", "float", "-", 0, grid_or_float(L.has_add2_grid, L.add2_grid), fk);
  }
  row("pool", "token_mean", "float", "-", 0, "float", fk);
  row("norm_f", "layernorm", "float", "f32 2x" + d, 2 * m.width * 4, "float", fk);
  lin("head", m.head);
  const int64_t params = encoder_parameter_count(m);
  s << "parameters " << params << ", stored bytes " << bytes_total << " (FP32: " << params * 4 << ")\n";
  return s.str();
}

}  // namespace lowbit::runtime
