#include "runtime/model_file.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "base/atomic_file.h"
#include "base/error.h"

namespace lowbit::runtime {
namespace {

constexpr char kMagic[8] = {'L', 'B', 'Q', 'M', 'O', 'D', 'E', 'L'};
constexpr uint32_t kEndianMarker = 0x01020304u;
constexpr size_t kHeaderSize = 64;
constexpr uint64_t kAlign = 64;
constexpr uint32_t kNone = 0xFFFFFFFFu;
constexpr size_t kFileCrcAt = 56, kGraphCrcAt = 52;
constexpr uint32_t kMaxOps = 1u << 16, kMaxTensors = 1u << 18, kMaxName = 4096;

enum class DType : uint32_t { U8 = 1, I32 = 2, F32 = 3, FixedPoint = 4 };  // FixedPoint: (int32 m, int32 shift)

// ---- writing ----------------------------------------------------------------------------------
struct Writer {
  std::string b;
  void u32(uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>((v >> (8 * i)) & 0xFF)); }
  void i32(int32_t v) { u32(static_cast<uint32_t>(v)); }
  void u64(uint64_t v) { for (int i = 0; i < 8; ++i) b.push_back(static_cast<char>((v >> (8 * i)) & 0xFF)); }
  void f32(float v) { uint32_t u; std::memcpy(&u, &v, 4); u32(u); }
  void str(const std::string& s) { u32(static_cast<uint32_t>(s.size())); b += s; }
};

void put_u32(std::string& b, size_t at, uint32_t v) { for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF); }
void put_u64(std::string& b, size_t at, uint64_t v) { for (int i = 0; i < 8; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF); }

struct TensorOut {
  DType dtype;
  std::string bytes;
};

void write_act(Writer& w, const ActQParams& q) {
  w.f32(q.scale);
  w.i32(q.zero_point);
  w.i32(q.qmin);
  w.i32(q.qmax);
}

// ---- reading ----------------------------------------------------------------------------------
struct Reader {
  const std::string& b;
  const std::string& name;
  size_t pos, end;
  [[noreturn]] void fail(const std::string& what) const {
    throw Error("model file '" + name + "': " + what + " (at byte " + std::to_string(pos) +
                "); the file is damaged or not a lowbit model, re-export it");
  }
  void need(size_t n, const char* field) {
    if (n > end - pos) fail(std::string("truncated while reading ") + field);
  }
  uint32_t u32(const char* field) {
    need(4, field);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(b[pos + i])} << (8 * i);
    pos += 4;
    return v;
  }
  int32_t i32(const char* field) { return static_cast<int32_t>(u32(field)); }
  uint64_t u64(const char* field) {
    need(8, field);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<uint8_t>(b[pos + i])} << (8 * i);
    pos += 8;
    return v;
  }
  float f32(const char* field) { uint32_t u = u32(field); float f; std::memcpy(&f, &u, 4); return f; }
  std::string str(const char* field, uint32_t max_len) {
    const uint32_t n = u32(field);
    if (n > max_len) fail(std::string(field) + " length " + std::to_string(n) + " exceeds " + std::to_string(max_len));
    need(n, field);
    std::string s = b.substr(pos, n);
    pos += n;
    return s;
  }
};

ActQParams read_act(Reader& r) {
  ActQParams q;
  q.scale = r.f32("activation scale");
  q.zero_point = r.i32("activation zero point");
  q.qmin = r.i32("activation qmin");
  q.qmax = r.i32("activation qmax");
  return q;
}

uint32_t read_u32_at(const std::string& b, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(b[at + i])} << (8 * i);
  return v;
}

uint32_t file_crc(const std::string& b) {
  uint32_t c = crc32(b.data(), kFileCrcAt);
  const char zero[4] = {0, 0, 0, 0};
  c = crc32(zero, 4, c);
  return crc32(b.data() + kFileCrcAt + 4, b.size() - kFileCrcAt - 4, c);
}

struct TensorRef {
  DType dtype;
  uint64_t offset, size;
};

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

std::string serialize_model(const Model& model) {
  validate_model(model, model.name.empty() ? "model" : "model '" + model.name + "'");
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
  g.u32(static_cast<uint32_t>(model.ops.size()));
  for (const Op& op : model.ops) {
    g.u32(static_cast<uint32_t>(op.kind));
    g.u32(static_cast<uint32_t>(op.inputs.size()));
    for (int32_t v : op.inputs) g.i32(v);
    for (int32_t v : {op.kernel_h, op.kernel_w, op.stride_h, op.stride_w, op.pad_h, op.pad_w, op.groups, op.in_channels,
                      op.out_channels})
      g.i32(v);
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
    }
    for (uint32_t t : {tw, tb, tm, ts}) g.u32(t);
  }
  // Tensor table: offsets are known once the graph size is known (the table has a fixed size).
  const uint64_t graph_size = g.b.size() + 4 + tensors.size() * 32;
  const uint64_t data_offset = (kHeaderSize + graph_size + kAlign - 1) / kAlign * kAlign;
  uint64_t off = data_offset;
  std::vector<uint64_t> offsets;
  g.u32(static_cast<uint32_t>(tensors.size()));
  for (const TensorOut& t : tensors) {
    offsets.push_back(off);
    g.u32(static_cast<uint32_t>(t.dtype));
    g.u32(0);
    g.u64(off);
    g.u64(t.bytes.size());
    g.u32(crc32(t.bytes.data(), t.bytes.size()));
    g.u32(0);
    off = (off + t.bytes.size() + kAlign - 1) / kAlign * kAlign;
  }
  std::string file(kHeaderSize, '\0');
  std::memcpy(&file[0], kMagic, 8);
  put_u32(file, 8, kModelFormatVersion);
  put_u32(file, 12, kEndianMarker);
  put_u64(file, 24, kHeaderSize);
  put_u64(file, 32, g.b.size());
  put_u64(file, 40, data_offset);
  put_u32(file, 48, static_cast<uint32_t>(tensors.size()));
  file += g.b;
  file.resize(data_offset, '\0');
  for (size_t i = 0; i < tensors.size(); ++i) {
    file.resize(offsets[i], '\0');
    file += tensors[i].bytes;
  }
  file.resize(off, '\0');
  put_u64(file, 16, file.size());
  reseal_model_bytes(file);
  return file;
}

void reseal_model_bytes(std::string& b) {
  if (b.size() < kHeaderSize) return;
  uint64_t goff = 0, gsize = 0;
  for (int i = 0; i < 8; ++i) {
    goff |= uint64_t{static_cast<uint8_t>(b[24 + i])} << (8 * i);
    gsize |= uint64_t{static_cast<uint8_t>(b[32 + i])} << (8 * i);
  }
  if (goff <= b.size() && gsize <= b.size() - goff) put_u32(b, kGraphCrcAt, crc32(b.data() + goff, gsize));
  put_u32(b, kFileCrcAt, file_crc(b));
}

Model parse_model(const std::string& b, const std::string& name) {
  Reader h{b, name, 0, b.size()};
  if (b.size() < kHeaderSize) h.fail("file is " + std::to_string(b.size()) + " bytes, shorter than the 64-byte header");
  if (std::memcmp(b.data(), kMagic, 8) != 0) h.fail("bad magic (expected \"LBQMODEL\")");
  h.pos = 8;
  const uint32_t version = h.u32("version");
  if (version != kModelFormatVersion)
    h.fail("format version " + std::to_string(version) + " is not supported (this runtime reads version " +
           std::to_string(kModelFormatVersion) + ")");
  if (h.u32("endianness marker") != kEndianMarker) h.fail("endianness marker is not 0x01020304 (little-endian)");
  const uint64_t file_size = h.u64("file size");
  if (file_size != b.size())
    h.fail("header says the file has " + std::to_string(file_size) + " bytes but it has " + std::to_string(b.size()) +
           " (truncated or appended to)");
  const uint32_t stored_crc = read_u32_at(b, kFileCrcAt);
  if (stored_crc != file_crc(b)) h.fail("whole-file CRC-32 mismatch");
  const uint64_t goff = h.u64("graph offset"), gsize = h.u64("graph size"), data_offset = h.u64("data offset");
  const uint32_t tensor_count = h.u32("tensor count");
  if (goff != kHeaderSize || gsize > b.size() - goff) h.fail("graph section [" + std::to_string(goff) + ", +" + std::to_string(gsize) + ") is outside the file");
  if (data_offset < goff + gsize || data_offset > b.size() || data_offset % kAlign != 0)
    h.fail("data offset " + std::to_string(data_offset) + " is invalid");
  if (tensor_count > kMaxTensors) h.fail("tensor count " + std::to_string(tensor_count) + " is too large");
  if (read_u32_at(b, kGraphCrcAt) != crc32(b.data() + goff, gsize)) h.fail("graph section CRC-32 mismatch");
  if (read_u32_at(b, 60) != 0) h.fail("reserved header field is not zero");

  Reader r{b, name, static_cast<size_t>(goff), static_cast<size_t>(goff + gsize)};
  Model m;
  m.name = r.str("model name", kMaxName);
  m.in_channels = r.i32("input channels");
  m.in_height = r.i32("input height");
  m.in_width = r.i32("input width");
  m.input = read_act(r);
  const uint32_t op_count = r.u32("op count");
  if (op_count > kMaxOps) r.fail("op count " + std::to_string(op_count) + " exceeds " + std::to_string(kMaxOps));
  struct OpTensors { uint32_t w, b, m, s; };
  std::vector<OpTensors> op_tensors;
  for (uint32_t i = 0; i < op_count; ++i) {
    Op op;
    const uint32_t kind = r.u32("op kind");
    if (kind < 1 || kind > 7) r.fail("op " + std::to_string(i) + ": kind " + std::to_string(kind) + " is unknown");
    op.kind = static_cast<OpKind>(kind);
    const uint32_t n_in = r.u32("op input count");
    if (n_in > 2) r.fail("op " + std::to_string(i) + ": input count " + std::to_string(n_in) + " is invalid");
    for (uint32_t k = 0; k < n_in; ++k) op.inputs.push_back(r.i32("op input"));
    int32_t* geometry[] = {&op.kernel_h, &op.kernel_w, &op.stride_h, &op.stride_w, &op.pad_h, &op.pad_w, &op.groups,
                           &op.in_channels, &op.out_channels};
    for (int32_t* f : geometry) *f = r.i32("op geometry");
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
  const uint32_t table_count = r.u32("tensor table count");
  if (table_count != tensor_count) r.fail("tensor table has " + std::to_string(table_count) + " entries but the header says " + std::to_string(tensor_count));
  std::vector<TensorRef> refs;
  uint64_t prev_end = data_offset;
  for (uint32_t t = 0; t < tensor_count; ++t) {
    const std::string tn = "tensor " + std::to_string(t) + ": ";
    const uint32_t dt = r.u32("tensor dtype");
    if (dt < 1 || dt > 4) r.fail(tn + "dtype " + std::to_string(dt) + " is unknown");
    if (r.u32("tensor reserved") != 0) r.fail(tn + "reserved field is not zero");
    TensorRef ref{static_cast<DType>(dt), r.u64("tensor offset"), r.u64("tensor size")};
    const uint32_t crc = r.u32("tensor checksum");
    if (r.u32("tensor padding") != 0) r.fail(tn + "padding field is not zero");
    if (ref.offset % kAlign != 0 || ref.offset < prev_end || ref.offset > b.size() || ref.size > b.size() - ref.offset)
      r.fail(tn + "data [" + std::to_string(ref.offset) + ", +" + std::to_string(ref.size) +
             ") is misaligned, overlaps the previous tensor or lies outside the file");
    const uint64_t elem = ref.dtype == DType::U8 ? 1 : (ref.dtype == DType::FixedPoint ? 8 : 4);
    if (ref.size % elem != 0) r.fail(tn + "size " + std::to_string(ref.size) + " is not a multiple of its element size");
    if (crc32(b.data() + ref.offset, ref.size) != crc) r.fail(tn + "CRC-32 mismatch");
    prev_end = ref.offset + ref.size;
    refs.push_back(ref);
  }
  if (r.pos != r.end) r.fail("graph section has " + std::to_string(r.end - r.pos) + " unexpected trailing bytes");

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
    if (op.has_weights() != (w != nullptr && bias != nullptr) || (!op.has_weights() && (mult || scale)))
      r.fail("op " + std::to_string(i) + ": tensors do not match the op kind");
    if (w) op.weight.packed.assign(b.data() + w->offset, b.data() + w->offset + w->size);
    if (bias) {
      op.bias_q.resize(bias->size / 4);
      std::memcpy(op.bias_q.data(), b.data() + bias->offset, bias->size);  // little-endian host (checked below)
    }
    if (mult) {
      std::vector<int32_t> pairs(mult->size / 4);
      std::memcpy(pairs.data(), b.data() + mult->offset, mult->size);
      for (size_t k = 0; k + 1 < pairs.size(); k += 2) op.multipliers.push_back({pairs[k], pairs[k + 1]});
    }
    if (scale) {
      op.out_scale.resize(scale->size / 4);
      std::memcpy(op.out_scale.data(), b.data() + scale->offset, scale->size);
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
