#include "runtime/model_file.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "base/atomic_file.h"
#include "base/error.h"
#include "runtime/lbq_format.h"

namespace lowbit::runtime {
namespace {

using lbq::copy_tensor_bytes;
using lbq::DType;
using lbq::Reader;
using lbq::TensorOut;
using lbq::TensorRef;
using lbq::Writer;
constexpr uint32_t kNone = 0xFFFFFFFFu;
constexpr uint32_t kMaxOps = 1u << 16, kMaxName = 4096;

void write_act(Writer& w, const ActQParams& q) {
  w.f32(q.scale);
  w.i32(q.zero_point);
  w.i32(q.qmin);
  w.i32(q.qmax);
}

ActQParams read_act(Reader& r) {
  ActQParams q;
  q.scale = r.f32("activation scale");
  q.zero_point = r.i32("activation zero point");
  q.qmin = r.i32("activation qmin");
  q.qmax = r.i32("activation qmax");
  return q;
}

// A decoder or encoder file (format version 2) handed to the op-graph loader: say what it is.
void reject_decoder(const Reader& r, uint32_t version, uint32_t kind) {
  if (version == 2 && kind == static_cast<uint32_t>(lbq::ModelKind::Decoder))
    r.fail("this is a decoder language model (format version 2, model kind 2), not an op graph; load it with "
           "runtime::load_decoder_model or run it with `lowbit generate`");
  if (version == 2 && kind == static_cast<uint32_t>(lbq::ModelKind::Encoder))
    r.fail("this is an encoder image model (vit-tiny; format version 2, model kind 3), not an op graph; load it "
           "with runtime::load_encoder_model or evaluate it with `lowbit eval --model`");
}

}  // namespace

uint32_t crc32(const void* data, size_t n, uint32_t crc) {
  static const auto table = [] {
    struct T { uint32_t v[256]; } t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t.v[i] = c;
    }
    return t;
  }();
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table.v[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

namespace {

// Version 2 (model kind 1) adds input normalisation and conv dilation; a model that uses neither
// is written as version 1, byte for byte what earlier runtimes read.
bool needs_graph_v2(const Model& model) {
  if (!model.input_mean.empty()) return true;
  for (const Op& op : model.ops)
    if (op.dilation_h != 1 || op.dilation_w != 1) return true;
  return false;
}

}  // namespace

std::string serialize_model(const Model& model) {
  validate_model(model, model.name.empty() ? "model" : "model '" + model.name + "'");
  const bool v2 = needs_graph_v2(model);
  std::vector<TensorOut> tensors;
  auto add_tensor = [&](DType dt, const void* p, size_t n) {
    tensors.push_back({dt, std::string(static_cast<const char*>(p), n)});
    return static_cast<uint32_t>(tensors.size() - 1);
  };
  Writer g;
  g.str(model.name);
  g.i32(model.in_channels);
  g.i32(model.in_height);
  g.i32(model.in_width);
  write_act(g, model.input);
  if (v2) {
    g.u32(static_cast<uint32_t>(model.input_mean.size()));
    for (float v : model.input_mean) g.f32(v);
    for (float v : model.input_std) g.f32(v);
  }
  g.u32(static_cast<uint32_t>(model.ops.size()));
  for (const Op& op : model.ops) {
    g.u32(static_cast<uint32_t>(op.kind));
    g.u32(static_cast<uint32_t>(op.inputs.size()));
    for (int32_t v : op.inputs) g.i32(v);
    for (int32_t v : {op.kernel_h, op.kernel_w, op.stride_h, op.stride_w, op.pad_h, op.pad_w, op.groups, op.in_channels,
                      op.out_channels})
      g.i32(v);
    if (v2) {
      g.i32(op.dilation_h);
      g.i32(op.dilation_w);
    }
    g.u32(op.output_layer ? 1 : 0);
    write_act(g, op.out);
    g.i32(op.weight.bits);
    g.u32(static_cast<uint32_t>(op.weight.grid));
    uint32_t tw = kNone, tb = kNone, tm = kNone, ts = kNone;
    if (op.has_weights()) {
      tw = add_tensor(DType::U8, op.weight.packed.data(), op.weight.packed.size());
      tb = add_tensor(DType::I32, op.bias_q.data(), op.bias_q.size() * 4);
      if (op.output_layer) {
        ts = add_tensor(DType::F32, op.out_scale.data(), op.out_scale.size() * 4);
      } else {
        std::vector<int32_t> pairs;
        for (const auto& m : op.multipliers) { pairs.push_back(m.multiplier); pairs.push_back(m.shift); }
        tm = add_tensor(DType::FixedPoint, pairs.data(), pairs.size() * 4);
      }
    } else if (op.kind == OpKind::Lookup || op.kind == OpKind::Concat) {
      tw = add_tensor(DType::U8, op.table.data(), op.table.size());  // the weight slot holds the table(s)
    }
    for (uint32_t t : {tw, tb, tm, ts}) g.u32(t);
  }
  return v2 ? lbq::assemble(2, static_cast<uint32_t>(lbq::ModelKind::Graph), g, tensors)
            : lbq::assemble(kModelFormatVersion, 0, g, tensors);
}

void reseal_model_bytes(std::string& b) { lbq::reseal(b); }

Model parse_model(const std::string& b, const std::string& name) {
  const lbq::Header h = lbq::read_header(b, name, {kModelFormatVersion, 2}, reject_decoder);
  if (h.version == 2 && h.kind != static_cast<uint32_t>(lbq::ModelKind::Graph)) {
    const Reader header{b, name, 0, 64};
    reject_decoder(header, h.version, h.kind);
  }
  const bool v2 = h.version == 2;
  const uint32_t tensor_count = h.tensor_count;
  Reader r{b, name, static_cast<size_t>(h.graph_offset), static_cast<size_t>(h.graph_offset + h.graph_size)};
  Model m;
  m.name = r.str("model name", kMaxName);
  m.in_channels = r.i32("input channels");
  m.in_height = r.i32("input height");
  m.in_width = r.i32("input width");
  m.input = read_act(r);
  if (v2) {
    const uint32_t n = r.u32("input normalisation channel count");
    if (n != 0 && n != static_cast<uint32_t>(m.in_channels))
      r.fail("input normalisation has " + std::to_string(n) + " channels; expected 0 or " + std::to_string(m.in_channels));
    for (uint32_t c = 0; c < n; ++c) m.input_mean.push_back(r.f32("input mean"));
    for (uint32_t c = 0; c < n; ++c) m.input_std.push_back(r.f32("input std"));
  }
  const uint32_t op_count = r.u32("op count");
  if (op_count > kMaxOps) r.fail("op count " + std::to_string(op_count) + " exceeds " + std::to_string(kMaxOps));
  struct OpTensors { uint32_t w, b, m, s; };
  std::vector<OpTensors> op_tensors;
  for (uint32_t i = 0; i < op_count; ++i) {
    Op op;
    const uint32_t kind = r.u32("op kind");
    if (kind < 1 || kind > static_cast<uint32_t>(OpKind::Concat)) r.fail("op " + std::to_string(i) + ": kind " + std::to_string(kind) + " is unknown");
    op.kind = static_cast<OpKind>(kind);
    const uint32_t n_in = r.u32("op input count");
    if (n_in > (op.kind == OpKind::Concat ? kMaxConcatInputs : 2)) r.fail("op " + std::to_string(i) + ": input count " + std::to_string(n_in) + " is invalid");
    for (uint32_t k = 0; k < n_in; ++k) op.inputs.push_back(r.i32("op input"));
    int32_t* geometry[] = {&op.kernel_h, &op.kernel_w, &op.stride_h, &op.stride_w, &op.pad_h, &op.pad_w, &op.groups,
                           &op.in_channels, &op.out_channels};
    for (int32_t* f : geometry) *f = r.i32("op geometry");
    if (v2) {
      op.dilation_h = r.i32("op dilation");
      op.dilation_w = r.i32("op dilation");
    }
    const uint32_t output_layer = r.u32("output layer flag");
    if (output_layer > 1) r.fail("op " + std::to_string(i) + ": output layer flag " + std::to_string(output_layer) + " is not 0 or 1");
    op.output_layer = output_layer == 1;
    op.out = read_act(r);
    op.weight.bits = r.i32("weight bits");
    const uint32_t grid = r.u32("weight grid");
    if (grid > 1) r.fail("op " + std::to_string(i) + ": weight grid " + std::to_string(grid) + " is unknown");
    op.weight.grid = static_cast<quant::Grid>(grid);
    OpTensors t;
    t.w = r.u32("weight tensor index");
    t.b = r.u32("bias tensor index");
    t.m = r.u32("multiplier tensor index");
    t.s = r.u32("out_scale tensor index");
    op_tensors.push_back(t);
    m.ops.push_back(std::move(op));
  }
  const std::vector<TensorRef> refs = lbq::read_tensor_table(r, h);

  std::vector<bool> used(tensor_count, false);
  auto take = [&](uint32_t index, DType want, size_t op, const char* what) -> const TensorRef* {
    if (index == kNone) return nullptr;
    if (index >= tensor_count || used[index] || refs[index].dtype != want)
      r.fail("op " + std::to_string(op) + ": " + what + " tensor index " + std::to_string(index) +
             " is out of range, reused or of the wrong dtype");
    used[index] = true;
    return &refs[index];
  };
  for (size_t i = 0; i < m.ops.size(); ++i) {
    Op& op = m.ops[i];
    const OpTensors& t = op_tensors[i];
    const TensorRef* w = take(t.w, DType::U8, i, "weight");
    const TensorRef* bias = take(t.b, DType::I32, i, "bias");
    const TensorRef* mult = take(t.m, DType::FixedPoint, i, "multiplier");
    const TensorRef* scale = take(t.s, DType::F32, i, "out_scale");
    const bool lookup = op.kind == OpKind::Lookup || op.kind == OpKind::Concat;  // a table in the weight slot
    if (lookup ? (w == nullptr || bias || mult || scale)
               : (op.has_weights() != (w != nullptr && bias != nullptr) || (!op.has_weights() && (w || mult || scale))))
      r.fail("op " + std::to_string(i) + ": tensors do not match the op kind");
    if (w && lookup) op.table.assign(b.data() + w->offset, b.data() + w->offset + w->size);
    if (w && !lookup) op.weight.packed.assign(b.data() + w->offset, b.data() + w->offset + w->size);
    if (bias) {
      op.bias_q.resize(bias->size / 4);
      copy_tensor_bytes(op.bias_q.data(), b.data() + bias->offset, bias->size);  // little-endian host (checked below)
    }
    if (mult) {
      std::vector<int32_t> pairs(mult->size / 4);
      copy_tensor_bytes(pairs.data(), b.data() + mult->offset, mult->size);
      for (size_t k = 0; k + 1 < pairs.size(); k += 2) op.multipliers.push_back({pairs[k], pairs[k + 1]});
    }
    if (scale) {
      op.out_scale.resize(scale->size / 4);
      copy_tensor_bytes(op.out_scale.data(), b.data() + scale->offset, scale->size);
    }
  }
  for (uint32_t t = 0; t < tensor_count; ++t)
    if (!used[t]) r.fail("tensor " + std::to_string(t) + " is not referenced by any op");
  validate_model(m, "model file '" + name + "'");
  return m;
}

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the .lbq reader copies int32/float tensors as they are");

void save_model(const Model& model, const std::string& path) { write_file_atomically(path, serialize_model(model)); }

Model load_model(const std::string& path) { return parse_model(read_whole_file(path), path); }

}  // namespace lowbit::runtime
