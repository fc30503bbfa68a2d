#include "runtime/decoder_model_file.h"

#include <cstring>
#include <fstream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "runtime/lbq_format.h"

namespace lowbit::runtime {
namespace {

using lbq::DType;
constexpr uint32_t kNone = 0xFFFFFFFFu;
constexpr uint32_t kMaxName = 4096, kMaxLayers = 1024;

struct Out {
  lbq::Writer g;
  std::vector<lbq::TensorOut> tensors;
  uint32_t add(DType dt, const void* p, size_t n) {
    tensors.push_back({dt, std::string(static_cast<const char*>(p), n)});
    return static_cast<uint32_t>(tensors.size() - 1);
  }
  uint32_t floats(const std::vector<float>& v) { return add(DType::F32, v.data(), v.size() * 4); }
  void linear(const QuantLinear& w) {
    for (int32_t v : {w.in_features, w.out_features, w.group_size, w.bits}) g.i32(v);
    g.u32(static_cast<uint32_t>(w.grid));
    g.u32(add(DType::U8, w.packed.data(), w.packed.size()));
    g.u32(floats(w.scales));
  }
};

struct In {
  lbq::Reader& r;
  std::vector<lbq::TensorRef> refs;
  std::vector<bool> used;
  struct Pending { uint32_t index; DType dtype; std::string field; std::vector<uint8_t>* u8; std::vector<float>* f32; };
  std::vector<Pending> pending;  // resolved once the tensor table has been read

  void floats(const std::string& field, std::vector<float>& out) {
    pending.push_back({r.u32("tensor index"), DType::F32, field, nullptr, &out});
  }
  void linear(const std::string& field, QuantLinear& w) {
    w.in_features = r.i32("in_features");
    w.out_features = r.i32("out_features");
    w.group_size = r.i32("group_size");
    w.bits = r.i32("weight bits");
    const uint32_t grid = r.u32("weight grid");
    if (grid > 1) r.fail(field + ": weight grid " + std::to_string(grid) + " is unknown");
    w.grid = static_cast<quant::Grid>(grid);
    pending.push_back({r.u32("packed weight tensor index"), DType::U8, field + " weights", &w.packed, nullptr});
    pending.push_back({r.u32("scale tensor index"), DType::F32, field + " scales", nullptr, &w.scales});
  }
  void resolve() {
    used.assign(refs.size(), false);
    for (const Pending& p : pending) {
      if (p.index >= refs.size() || used[p.index] || refs[p.index].dtype != p.dtype)
        r.fail(p.field + ": tensor index " + std::to_string(p.index) + " is out of range, reused or of the wrong dtype");
      used[p.index] = true;
      const lbq::TensorRef& t = refs[p.index];
      const char* src = r.b.data() + t.offset;
      if (p.u8) p.u8->assign(src, src + t.size);
      if (p.f32) {
        p.f32->resize(t.size / 4);
        lbq::copy_tensor_bytes(p.f32->data(), src, t.size);
      }
    }
    for (size_t t = 0; t < refs.size(); ++t)
      if (!used[t]) r.fail("tensor " + std::to_string(t) + " is not referenced by the decoder");
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
  o.g.u32(o.floats(m.embedding));
  o.g.u32(o.floats(m.norm_f));
  o.g.u32(m.head_quantized ? kNone : o.floats(m.head));
  for (const DecoderLayer& L : m.layers) {
    o.g.u32(o.floats(L.norm1));
    o.g.u32(o.floats(L.norm2));
    for (const QuantLinear* w : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) o.linear(*w);
  }
  if (m.head_quantized) o.linear(m.head_q);
  return lbq::assemble(kDecoderFormatVersion, static_cast<uint32_t>(lbq::ModelKind::Decoder), o.g, o.tensors);
}

DecoderModel parse_decoder_model(const std::string& b, const std::string& name) {
  const lbq::Header h = lbq::read_header(b, name, {kDecoderFormatVersion});
  lbq::Reader r{b, name, static_cast<size_t>(h.graph_offset), static_cast<size_t>(h.graph_offset + h.graph_size)};
  if (h.kind != static_cast<uint32_t>(lbq::ModelKind::Decoder))
    r.fail("model kind " + std::to_string(h.kind) + " is not a decoder (2); load op graphs with runtime::load_model");
  DecoderModel m;
  In in{r, {}, {}, {}};
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
  in.refs = lbq::read_tensor_table(r, h);
  in.resolve();
  validate_decoder_model(m, "model file '" + name + "'");
  return m;
}

void save_decoder_model(const DecoderModel& model, const std::string& path) {
  write_file_atomically(path, serialize_decoder_model(model));
}

DecoderModel load_decoder_model(const std::string& path) { return parse_decoder_model(read_whole_file(path), path); }

bool is_decoder_model_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char h[64];
  if (!f.read(h, sizeof h) || std::memcmp(h, "LBQMODEL", 8) != 0) return false;
  auto u32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(h[at + i])} << (8 * i);
    return v;
  };
  return u32(8) == kDecoderFormatVersion && u32(lbq::kKindHeaderAt) == static_cast<uint32_t>(lbq::ModelKind::Decoder);
}

}  // namespace lowbit::runtime
