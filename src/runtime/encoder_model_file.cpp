#include "runtime/encoder_model_file.h"

#include "base/atomic_file.h"
#include "base/error.h"
#include "runtime/lbq_format.h"
#include "runtime/quant_linear_io.h"

namespace lowbit::runtime {
namespace {

constexpr uint32_t kMaxName = 4096, kMaxLayers = 1024;
enum LinearFlags : uint32_t { kQuantized = 1, kBias = 2, kGelu = 4, kInputGrid = 8, kOutputGrid = 16 };

struct Out {
  lbq::Writer g;
  lbq::TensorList t;
  void grid(const ActGrid& a) {
    g.f32(a.scale);
    for (int32_t v : {a.zero_point, a.qmin, a.qmax}) g.i32(v);
  }
  void linear(const EncoderLinear& l) {
    g.i32(l.in_features);
    g.i32(l.out_features);
    g.u32((l.quantized ? kQuantized : 0u) | (l.bias.empty() ? 0u : kBias) | (l.gelu ? kGelu : 0u) |
          (l.has_input_grid ? kInputGrid : 0u) | (l.has_output_grid ? kOutputGrid : 0u));
    if (l.quantized) {
      lbq::write_quant_weights(g, t, l.w);
    } else {
      g.u32(t.floats(l.weight));
    }
    if (!l.bias.empty()) g.u32(t.floats(l.bias));
    if (l.has_input_grid) grid(l.input_grid);
    if (l.has_output_grid) grid(l.output_grid);
  }
};

struct In {
  lbq::Reader& r;
  lbq::TensorRequests t;

  void floats(const std::string& field, std::vector<float>& out) { t.f32(r.u32("tensor index"), field, out); }
  ActGrid grid() {
    ActGrid a;
    a.scale = r.f32("grid scale");
    a.zero_point = r.i32("grid zero point");
    a.qmin = r.i32("grid qmin");
    a.qmax = r.i32("grid qmax");
    return a;
  }
  void linear(const std::string& field, EncoderLinear& l) {
    l.in_features = r.i32("in_features");
    l.out_features = r.i32("out_features");
    const uint32_t flags = r.u32("linear flags");
    if (flags > 31) r.fail(field + ": linear flags " + std::to_string(flags) + " has unknown bits");
    l.quantized = flags & kQuantized;
    l.gelu = flags & kGelu;
    l.has_input_grid = flags & kInputGrid;
    l.has_output_grid = flags & kOutputGrid;
    if (l.quantized) {
      l.w.in_features = l.in_features;
      l.w.out_features = l.out_features;
      lbq::read_quant_weights(r, t, field, l.w);
    } else {
      floats(field + " weights", l.weight);
    }
    if (flags & kBias) floats(field + " bias", l.bias);
    if (l.has_input_grid) l.input_grid = grid();
    if (l.has_output_grid) l.output_grid = grid();
  }
};

const char* const kLinearNames[] = {"attn_q", "attn_k", "attn_v", "attn_o", "mlp_fc1", "mlp_fc2"};

}  // namespace

std::string serialize_encoder_model(const EncoderModel& m) {
  validate_encoder_model(m, m.name.empty() ? "encoder model" : "encoder model '" + m.name + "'");
  Out o;
  o.g.str(m.name);
  for (int32_t v : {m.channels, m.image_size, m.patch, m.width, m.heads, m.hidden, m.classes}) o.g.i32(v);
  o.g.f32(m.norm_eps);
  o.g.u32(static_cast<uint32_t>(m.layers.size()));
  o.g.u32(m.input_quantized ? 1u : 0u);
  if (m.input_quantized) o.grid(m.input_grid);
  o.linear(m.patch_embed);
  o.g.u32(o.t.floats(m.position));
  for (const EncoderLayer& L : m.layers) {
    for (const auto* v : {&L.norm1_w, &L.norm1_b, &L.norm2_w, &L.norm2_b}) o.g.u32(o.t.floats(*v));
    for (const EncoderLinear* l : {&L.q, &L.k, &L.v, &L.o, &L.fc1, &L.fc2}) o.linear(*l);
    o.g.u32((L.has_add1_grid ? 1u : 0u) | (L.has_add2_grid ? 2u : 0u));
    if (L.has_add1_grid) o.grid(L.add1_grid);
    if (L.has_add2_grid) o.grid(L.add2_grid);
  }
  o.g.u32(o.t.floats(m.norm_f_w));
  o.g.u32(o.t.floats(m.norm_f_b));
  o.linear(m.head);
  return lbq::assemble(kEncoderFormatVersion, static_cast<uint32_t>(lbq::ModelKind::Encoder), o.g, o.t.tensors);
}

EncoderModel parse_encoder_model(const std::string& b, const std::string& name) {
  const lbq::Header h = lbq::read_header(b, name, {kEncoderFormatVersion});
  lbq::Reader r{b, name, static_cast<size_t>(h.graph_offset), static_cast<size_t>(h.graph_offset + h.graph_size)};
  if (h.kind != static_cast<uint32_t>(lbq::ModelKind::Encoder))
    r.fail("model kind " + std::to_string(h.kind) + " is not an encoder (3); load op graphs with runtime::load_model "
           "and decoders with runtime::load_decoder_model");
  EncoderModel m;
  In in{r, {}};
  m.name = r.str("model name", kMaxName);
  int32_t* dims[] = {&m.channels, &m.image_size, &m.patch, &m.width, &m.heads, &m.hidden, &m.classes};
  for (int32_t* d : dims) *d = r.i32("encoder size");
  m.norm_eps = r.f32("norm_eps");
  const uint32_t layers = r.u32("layer count");
  if (layers < 1 || layers > kMaxLayers) r.fail("layer count " + std::to_string(layers) + " is outside [1, 1024]");
  const uint32_t flags = r.u32("flags");
  if (flags > 1) r.fail("flags " + std::to_string(flags) + " has unknown bits");
  m.input_quantized = flags == 1;
  if (m.input_quantized) m.input_grid = in.grid();
  in.linear("patch_embed", m.patch_embed);
  in.floats("position embedding", m.position);
  m.layers.resize(layers);
  for (uint32_t l = 0; l < layers; ++l) {
    EncoderLayer& L = m.layers[l];
    const std::string p = "layer " + std::to_string(l) + " ";
    in.floats(p + "norm1 weight", L.norm1_w);
    in.floats(p + "norm1 bias", L.norm1_b);
    in.floats(p + "norm2 weight", L.norm2_w);
    in.floats(p + "norm2 bias", L.norm2_b);
    EncoderLinear* ls[] = {&L.q, &L.k, &L.v, &L.o, &L.fc1, &L.fc2};
    for (int i = 0; i < 6; ++i) in.linear(p + kLinearNames[i], *ls[i]);
    const uint32_t adds = r.u32("add flags");
    if (adds > 3) r.fail(p + "add flags " + std::to_string(adds) + " has unknown bits");
    L.has_add1_grid = adds & 1u;
    L.has_add2_grid = adds & 2u;
    if (L.has_add1_grid) L.add1_grid = in.grid();
    if (L.has_add2_grid) L.add2_grid = in.grid();
  }
  in.floats("norm_f weight", m.norm_f_w);
  in.floats("norm_f bias", m.norm_f_b);
  in.linear("head", m.head);
  in.t.resolve(r, lbq::read_tensor_table(r, h), "the encoder");
  validate_encoder_model(m, "model file '" + name + "'");
  return m;
}

void save_encoder_model(const EncoderModel& model, const std::string& path) {
  write_file_atomically(path, serialize_encoder_model(model));
}

EncoderModel load_encoder_model(const std::string& path) { return parse_encoder_model(read_whole_file(path), path); }

bool is_encoder_model_file(const std::string& path) {
  return lbq::file_has_kind(path, kEncoderFormatVersion, lbq::ModelKind::Encoder);
}

}  // namespace lowbit::runtime
