#include "runtime/decoder_model_file.h"

#include "base/atomic_file.h"
#include "base/error.h"
#include "runtime/lbq_format.h"
#include "runtime/quant_linear_io.h"

namespace lowbit::runtime {
namespace {

constexpr uint32_t kNone = 0xFFFFFFFFu;
constexpr uint32_t kMaxName = 4096, kMaxLayers = 1024;

struct Out {
  lbq::Writer g;
  lbq::TensorList t;
  void linear(const QuantLinear& w) {
    for (int32_t v : {w.in_features, w.out_features}) g.i32(v);
    lbq::write_quant_weights(g, t, w);
  }
};

struct In {
  lbq::Reader& r;
  lbq::TensorRequests t;

  void floats(const std::string& field, std::vector<float>& out) { t.f32(r.u32("tensor index"), field, out); }
  void linear(const std::string& field, QuantLinear& w) {
    w.in_features = r.i32("in_features");
    w.out_features = r.i32("out_features");
    lbq::read_quant_weights(r, t, field, w);
  }
};

}  // namespace

std::string serialize_decoder_model(const DecoderModel& m) {
  validate_decoder_model(m, m.name.empty() ? "decoder model" : "decoder model '" + m.name + "'");
  Out o;
  o.g.str(m.name);
  for (int32_t v : {m.vocab, m.width, m.heads, m.hidden, m.context}) o.g.i32(v);
  o.g.f64(m.rope_base);
  o.g.f32(m.norm_eps);
  o.g.u32(static_cast<uint32_t>(m.layers.size()));
  o.g.u32(m.head_quantized ? 1u : 0u);
  o.g.u32(o.t.floats(m.embedding));
  o.g.u32(o.t.floats(m.norm_f));
  o.g.u32(m.head_quantized ? kNone : o.t.floats(m.head));
  for (const DecoderLayer& L : m.layers) {
    o.g.u32(o.t.floats(L.norm1));
    o.g.u32(o.t.floats(L.norm2));
    for (const QuantLinear* w : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) o.linear(*w);
  }
  if (m.head_quantized) o.linear(m.head_q);
  return lbq::assemble(kDecoderFormatVersion, static_cast<uint32_t>(lbq::ModelKind::Decoder), o.g, o.t.tensors);
}

DecoderModel parse_decoder_model(const std::string& b, const std::string& name) {
  const lbq::Header h = lbq::read_header(b, name, {kDecoderFormatVersion});
  lbq::Reader r{b, name, static_cast<size_t>(h.graph_offset), static_cast<size_t>(h.graph_offset + h.graph_size)};
  if (h.kind != static_cast<uint32_t>(lbq::ModelKind::Decoder))
    r.fail("model kind " + std::to_string(h.kind) + " is not a decoder (2); load op graphs with runtime::load_model");
  DecoderModel m;
  In in{r, {}};
  m.name = r.str("model name", kMaxName);
  int32_t* dims[] = {&m.vocab, &m.width, &m.heads, &m.hidden, &m.context};
  for (int32_t* d : dims) *d = r.i32("decoder size");
  m.rope_base = r.f64("rope_base");
  m.norm_eps = r.f32("norm_eps");
  const uint32_t layers = r.u32("layer count");
  if (layers < 1 || layers > kMaxLayers) r.fail("layer count " + std::to_string(layers) + " is outside [1, 1024]");
  const uint32_t flags = r.u32("flags");
  if (flags > 1) r.fail("flags " + std::to_string(flags) + " has unknown bits");
  m.head_quantized = flags == 1;
  in.floats("embedding", m.embedding);
  in.floats("norm_f", m.norm_f);
  if (m.head_quantized) {
    if (r.u32("head tensor index") != kNone) r.fail("a quantized head has no float head tensor");
  } else {
    in.floats("head", m.head);
  }
  m.layers.resize(layers);
  for (uint32_t l = 0; l < layers; ++l) {
    DecoderLayer& L = m.layers[l];
    const std::string p = "layer " + std::to_string(l) + " ";
    in.floats(p + "norm1", L.norm1);
    in.floats(p + "norm2", L.norm2);
    const char* names[] = {"attn_q", "attn_k", "attn_v", "attn_o", "mlp_gate", "mlp_up", "mlp_down"};
    QuantLinear* ws[] = {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down};
    for (int i = 0; i < 7; ++i) in.linear(p + names[i], *ws[i]);
  }
  if (m.head_quantized) in.linear("head", m.head_q);
  in.t.resolve(r, lbq::read_tensor_table(r, h), "the decoder");
  validate_decoder_model(m, "model file '" + name + "'");
  return m;
}

void save_decoder_model(const DecoderModel& model, const std::string& path) {
  write_file_atomically(path, serialize_decoder_model(model));
}

DecoderModel load_decoder_model(const std::string& path) { return parse_decoder_model(read_whole_file(path), path); }

bool is_decoder_model_file(const std::string& path) {
  return lbq::file_has_kind(path, kDecoderFormatVersion, lbq::ModelKind::Decoder);
}

}  // namespace lowbit::runtime
