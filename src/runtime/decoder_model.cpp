#include "runtime/decoder_model.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "base/error.h"
#include "quant/bit_packing.h"
#include "runtime/model_checks.h"

namespace lowbit::runtime {
namespace {

constexpr int32_t kMaxDim = 1 << 16;     // width, hidden, context
constexpr int32_t kMaxLayers = 1024;
constexpr int64_t kMaxCacheBytes = int64_t{1} << 30;  // the KV cache a session allocates

using model_checks::bad;
using model_checks::check_finite;
using model_checks::check_vector;

void check_linear(const std::string& where, const std::string& name, const QuantLinear& w, int32_t in, int32_t out) {
  const std::string f = name + ": ";
  if (w.in_features != in || w.out_features != out)
    bad(where, f + "shape [" + std::to_string(w.out_features) + ", " + std::to_string(w.in_features) +
                   "] differs from the expected [" + std::to_string(out) + ", " + std::to_string(in) + "]");
  model_checks::check_quant_weights(where, f, w, "scales");
}

std::string grid_name(const QuantLinear& w) {
  if (w.grid == quant::Grid::Odd) return w.bits == 1 ? "binary" : "seq2";
  if (w.bits == 2) {
    for (int8_t v : w.values())
      if (v < -1) return "int2";
    return "ternary";
  }
  return "int" + std::to_string(w.bits);
}

}  // namespace

std::vector<int8_t> QuantLinear::values() const {
  const size_t n = static_cast<size_t>(in_features) * static_cast<size_t>(out_features);
  std::vector<int8_t> v = quant::unpack_codes(packed, n, bits);
  if (grid == quant::Grid::Odd)
    for (int8_t& c : v) c = static_cast<int8_t>(2 * c + 1);
  return v;
}

std::string QuantLinear::format() const {
  return grid_name(*this) + (group_size >= in_features ? " per-channel" : " group" + std::to_string(group_size));
}

void set_quant_linear(QuantLinear& w, int32_t in_features, int32_t out_features, int32_t group_size, int32_t bits,
                      quant::Grid grid, const std::vector<int32_t>& values, std::vector<float> scales) {
  LOWBIT_CHECK(values.size() == static_cast<size_t>(in_features) * static_cast<size_t>(out_features),
               "set_quant_linear: " + std::to_string(values.size()) + " weight values for a [" +
                   std::to_string(out_features) + ", " + std::to_string(in_features) + "] projection");
  std::vector<int8_t> codes(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const int32_t v = values[i];
    codes[i] = static_cast<int8_t>(grid == quant::Grid::Odd ? (v - 1) / 2 : v);
  }
  w.in_features = in_features;
  w.out_features = out_features;
  w.group_size = group_size;
  w.bits = bits;
  w.grid = grid;
  w.packed = quant::pack_codes(codes, bits);  // throws for a code that does not fit
  w.scales = std::move(scales);
}

void validate_decoder_model(const DecoderModel& m, const std::string& where) {
  if (m.vocab != 256) bad(where, "vocabulary size " + std::to_string(m.vocab) + " is not 256 (a byte model)");
  if (m.width < 2 || m.width > kMaxDim) bad(where, "width " + std::to_string(m.width) + " is outside [2, 65536]");
  if (m.heads < 1 || m.width % m.heads != 0 || m.head_size() % 2 != 0)
    bad(where, "heads " + std::to_string(m.heads) + " must divide the width " + std::to_string(m.width) +
                   " into even head sizes");
  if (m.hidden < 1 || m.hidden > kMaxDim) bad(where, "hidden size " + std::to_string(m.hidden) + " is outside [1, 65536]");
  if (m.context < 1 || m.context > kMaxDim) bad(where, "context " + std::to_string(m.context) + " is outside [1, 65536]");
  if (!(m.rope_base > 1.0) || !std::isfinite(m.rope_base)) bad(where, "rope_base " + std::to_string(m.rope_base) + " must be > 1");
  if (!(m.norm_eps > 0.0f) || !std::isfinite(m.norm_eps)) bad(where, "norm_eps must be a positive finite number");
  if (m.layers.empty() || m.layers.size() > static_cast<size_t>(kMaxLayers))
    bad(where, "layer count " + std::to_string(m.layers.size()) + " is outside [1, 1024]");
  const int64_t cache = int64_t{2} * static_cast<int64_t>(m.layers.size()) * m.context * m.width * 4;
  if (cache > kMaxCacheBytes)
    bad(where, "its KV cache would take " + std::to_string(cache >> 20) + " MiB (layers x context x width), over 1024 MiB");
  check_vector(where, "embedding", m.embedding.size(), int64_t{m.vocab} * m.width);
  check_finite(where, "embedding", m.embedding, false);
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const DecoderLayer& L = m.layers[l];
    const std::string p = "layer " + std::to_string(l) + " ";
    check_vector(where, p + "norm1", L.norm1.size(), m.width);
    check_vector(where, p + "norm2", L.norm2.size(), m.width);
    check_finite(where, p + "norm1", L.norm1, false);
    check_finite(where, p + "norm2", L.norm2, false);
    check_linear(where, p + "attn_q", L.q, m.width, m.width);
    check_linear(where, p + "attn_k", L.k, m.width, m.width);
    check_linear(where, p + "attn_v", L.v, m.width, m.width);
    check_linear(where, p + "attn_o", L.o, m.width, m.width);
    check_linear(where, p + "mlp_gate", L.gate, m.width, m.hidden);
    check_linear(where, p + "mlp_up", L.up, m.width, m.hidden);
    check_linear(where, p + "mlp_down", L.down, m.hidden, m.width);
  }
  check_vector(where, "norm_f", m.norm_f.size(), m.width);
  check_finite(where, "norm_f", m.norm_f, false);
  if (m.head_quantized) {
    check_linear(where, "head", m.head_q, m.width, m.vocab);
    check_vector(where, "float head", m.head.size(), 0);
  } else {
    check_vector(where, "head", m.head.size(), int64_t{m.vocab} * m.width);
    check_finite(where, "head", m.head, false);
  }
}

int64_t decoder_parameter_count(const DecoderModel& m) {
  int64_t n = static_cast<int64_t>(m.embedding.size() + m.norm_f.size() + m.head.size());
  auto lin = [](const QuantLinear& w) { return int64_t{w.in_features} * w.out_features; };
  for (const DecoderLayer& L : m.layers)
    n += static_cast<int64_t>(L.norm1.size() + L.norm2.size()) + lin(L.q) + lin(L.k) + lin(L.v) + lin(L.o) +
         lin(L.gate) + lin(L.up) + lin(L.down);
  if (m.head_quantized) n += lin(m.head_q);
  return n;
}

std::string describe_decoder_model(const DecoderModel& m, const std::vector<std::string>& kernels) {
  std::ostringstream s;
  char line[256];
  const std::string gemm = kernels.empty() ? "-" : kernels[0];
  s << "decoder: " << m.layers.size() << " layers, width " << m.width << ", heads " << m.heads << ", hidden " << m.hidden
    << ", context " << m.context << ", vocab " << m.vocab << ", rope_base " << m.rope_base << "\n";
  std::snprintf(line, sizeof line, "%-16s %-10s %-8s %-22s %10s  %s\n", "op", "kind", "math", "weights", "bytes", "kernel");
  s << line;
  int64_t bytes_total = 0;
  auto row = [&](const std::string& name, const char* kind, const char* math, const std::string& w, int64_t bytes,
                 const std::string& kernel) {
    std::snprintf(line, sizeof line, "%-16s %-10s %-8s %-22s %10lld  %s\n", name.c_str(), kind, math, w.c_str(),
                  static_cast<long long>(bytes), kernel.c_str());
    s << line;
    bytes_total += bytes;
  };
  auto lin = [&](const std::string& name, const QuantLinear& w) {
    const int64_t bytes = static_cast<int64_t>(w.packed.size() + w.scales.size() * 4);
    row(name, "linear", "integer",
        w.format() + " " + std::to_string(w.out_features) + "x" + std::to_string(w.in_features), bytes,
        "per-token int8 x " + gemm);
  };
  // Float ops: the kernel DecoderSession::kernel_names lists as "<family>: <symbol>", else scalar.
  auto fkern = [&](const std::string& family) -> std::string {
    for (const std::string& k : kernels)
      if (k.rfind(family + ": ", 0) == 0) return "float " + k.substr(family.size() + 2);
    return "float (scalar)";
  };
  const std::string fk = "float (scalar)";
  row("embed", "embedding", "float", "f32 " + std::to_string(m.vocab) + "x" + std::to_string(m.width),
      static_cast<int64_t>(m.embedding.size() * 4), fk);
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const DecoderLayer& L = m.layers[l];
    const std::string p = "block" + std::to_string(l) + "_";
    row(p + "norm1", "rmsnorm", "float", "f32 " + std::to_string(m.width), m.width * 4, fkern("rmsnorm"));
    lin(p + "attn_q", L.q);
    lin(p + "attn_k", L.k);
    lin(p + "attn_v", L.v);
    row(p + "attn", "attention", "float", "RoPE, KV cache", 0,
        fkern("attention (softmax, KV cache)") + ", RoPE " + fkern("rope").substr(6));
    lin(p + "attn_o", L.o);
    row(p + "add1", "add", "float", "-", 0, fk);
    row(p + "norm2", "rmsnorm", "float", "f32 " + std::to_string(m.width), m.width * 4, fkern("rmsnorm"));
    lin(p + "mlp_gate", L.gate);
    lin(p + "mlp_up", L.up);
    row(p + "swiglu", "swiglu", "float", "-", 0, fkern("swiglu"));
    lin(p + "mlp_down", L.down);
    row(p + "add2", "add", "float", "-", 0, fk);
  }
  row("norm_f", "rmsnorm", "float", "f32 " + std::to_string(m.width), m.width * 4, fkern("rmsnorm"));
  if (m.head_quantized) {
    lin("head", m.head_q);
  } else {
    row("head", "linear", "float", "f32 " + std::to_string(m.vocab) + "x" + std::to_string(m.width),
        static_cast<int64_t>(m.head.size() * 4), fkern("head"));
  }
  const int64_t params = decoder_parameter_count(m);
  s << "parameters " << params << ", stored bytes " << bytes_total << " (FP32: " << params * 4 << ")\n";
  return s.str();
}

}  // namespace lowbit::runtime
