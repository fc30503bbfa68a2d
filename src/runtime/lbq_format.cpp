#include "runtime/lbq_format.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include "base/error.h"
#include "runtime/model_file.h"

namespace lowbit::runtime::lbq {
namespace {

constexpr char kMagic[8] = {'L', 'B', 'Q', 'M', 'O', 'D', 'E', 'L'};
constexpr uint32_t kEndianMarker = 0x01020304u;
constexpr size_t kHeaderSize = 64;
constexpr uint64_t kAlign = 64;
constexpr size_t kFileCrcAt = 56, kGraphCrcAt = 52;
constexpr uint32_t kMaxTensors = 1u << 18;

void put_u32(std::string& b, size_t at, uint32_t v) { for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF); }
void put_u64(std::string& b, size_t at, uint64_t v) { for (int i = 0; i < 8; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF); }

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

}  // namespace

void Writer::f32(float v) { uint32_t u; std::memcpy(&u, &v, 4); u32(u); }
void Writer::f64(double v) { uint64_t u; std::memcpy(&u, &v, 8); u64(u); }

void Reader::fail(const std::string& what) const {
  throw Error("model file '" + name + "': " + what + " (at byte " + std::to_string(pos) +
              "); the file is damaged or not a lowbit model, re-export it");
}
void Reader::need(size_t n, const char* field) {
  if (n > end - pos) fail(std::string("truncated while reading ") + field);
}
uint32_t Reader::u32(const char* field) {
  need(4, field);
  const uint32_t v = read_u32_at(b, pos);
  pos += 4;
  return v;
}
uint64_t Reader::u64(const char* field) {
  need(8, field);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<uint8_t>(b[pos + i])} << (8 * i);
  pos += 8;
  return v;
}
float Reader::f32(const char* field) { uint32_t u = u32(field); float f; std::memcpy(&f, &u, 4); return f; }
double Reader::f64(const char* field) { uint64_t u = u64(field); double f; std::memcpy(&f, &u, 8); return f; }
std::string Reader::str(const char* field, uint32_t max_len) {
  const uint32_t n = u32(field);
  if (n > max_len) fail(std::string(field) + " length " + std::to_string(n) + " exceeds " + std::to_string(max_len));
  need(n, field);
  std::string s = b.substr(pos, n);
  pos += n;
  return s;
}

void reseal(std::string& b) {
  if (b.size() < kHeaderSize) return;
  uint64_t goff = 0, gsize = 0;
  for (int i = 0; i < 8; ++i) {
    goff |= uint64_t{static_cast<uint8_t>(b[24 + i])} << (8 * i);
    gsize |= uint64_t{static_cast<uint8_t>(b[32 + i])} << (8 * i);
  }
  if (goff <= b.size() && gsize <= b.size() - goff) put_u32(b, kGraphCrcAt, crc32(b.data() + goff, gsize));
  put_u32(b, kFileCrcAt, file_crc(b));
}

std::string assemble(uint32_t version, uint32_t kind, Writer& g, const std::vector<TensorOut>& tensors) {
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
  put_u32(file, 8, version);
  put_u32(file, 12, kEndianMarker);
  put_u64(file, 24, kHeaderSize);
  put_u64(file, 32, g.b.size());
  put_u64(file, 40, data_offset);
  put_u32(file, 48, static_cast<uint32_t>(tensors.size()));
  if (version >= 2) put_u32(file, kKindHeaderAt, kind);
  file += g.b;
  file.resize(data_offset, '\0');
  for (size_t i = 0; i < tensors.size(); ++i) {
    file.resize(offsets[i], '\0');
    file += tensors[i].bytes;
  }
  file.resize(off, '\0');
  put_u64(file, 16, file.size());
  reseal(file);
  return file;
}

Header read_header(const std::string& b, const std::string& name, const std::vector<uint32_t>& versions,
                   void (*wrong_version)(const Reader& r, uint32_t version, uint32_t kind)) {
  Reader h{b, name, 0, b.size()};
  if (b.size() < kHeaderSize) h.fail("file is " + std::to_string(b.size()) + " bytes, shorter than the 64-byte header");
  if (std::memcmp(b.data(), kMagic, 8) != 0) h.fail("bad magic (expected \"LBQMODEL\")");
  h.pos = 8;
  Header out;
  out.version = h.u32("version");
  if (std::find(versions.begin(), versions.end(), out.version) == versions.end()) {
    if (wrong_version) wrong_version(h, out.version, read_u32_at(b, kKindHeaderAt));
    std::string reads;
    for (uint32_t v : versions) reads += (reads.empty() ? "" : " or ") + std::to_string(v);
    h.fail("format version " + std::to_string(out.version) + " is not supported (this runtime reads version " + reads +
           ")");
  }
  if (h.u32("endianness marker") != kEndianMarker) h.fail("endianness marker is not 0x01020304 (little-endian)");
  const uint64_t file_size = h.u64("file size");
  if (file_size != b.size())
    h.fail("header says the file has " + std::to_string(file_size) + " bytes but it has " + std::to_string(b.size()) +
           " (truncated or appended to)");
  const uint32_t stored_crc = read_u32_at(b, kFileCrcAt);
  if (stored_crc != file_crc(b)) h.fail("whole-file CRC-32 mismatch");
  out.graph_offset = h.u64("graph offset");
  out.graph_size = h.u64("graph size");
  out.data_offset = h.u64("data offset");
  out.tensor_count = h.u32("tensor count");
  const uint64_t goff = out.graph_offset, gsize = out.graph_size, data_offset = out.data_offset;
  if (goff != kHeaderSize || gsize > b.size() - goff) h.fail("graph section [" + std::to_string(goff) + ", +" + std::to_string(gsize) + ") is outside the file");
  if (data_offset < goff + gsize || data_offset > b.size() || data_offset % kAlign != 0)
    h.fail("data offset " + std::to_string(data_offset) + " is invalid");
  if (out.tensor_count > kMaxTensors) h.fail("tensor count " + std::to_string(out.tensor_count) + " is too large");
  if (read_u32_at(b, kGraphCrcAt) != crc32(b.data() + goff, gsize)) h.fail("graph section CRC-32 mismatch");
  out.kind = read_u32_at(b, kKindHeaderAt);
  if (out.version == 1 && out.kind != 0) h.fail("reserved header field is not zero");
  if (out.version >= 2 && out.kind != static_cast<uint32_t>(ModelKind::Graph) &&
      out.kind != static_cast<uint32_t>(ModelKind::Decoder) && out.kind != static_cast<uint32_t>(ModelKind::Encoder))
    h.fail("model kind " + std::to_string(out.kind) + " is unknown (1: op graph, 2: decoder, 3: encoder)");
  return out;
}

bool bytes_have_kind(const std::string& b, uint32_t version, ModelKind kind) {
  return b.size() >= kHeaderSize && std::memcmp(b.data(), kMagic, 8) == 0 && read_u32_at(b, 8) == version &&
         read_u32_at(b, kKindHeaderAt) == static_cast<uint32_t>(kind);
}

bool file_has_kind(const std::string& path, uint32_t version, ModelKind kind) {
  std::ifstream f(path, std::ios::binary);
  std::string h(kHeaderSize, '\0');
  if (!f.read(&h[0], static_cast<std::streamsize>(h.size()))) return false;
  return bytes_have_kind(h, version, kind);
}

void TensorRequests::resolve(const Reader& r, const std::vector<TensorRef>& refs, const std::string& owner) const {
  std::vector<bool> used(refs.size(), false);
  for (const Request& p : requests) {
    if (p.index >= refs.size() || used[p.index] || refs[p.index].dtype != p.dtype)
      r.fail(p.field + ": tensor index " + std::to_string(p.index) + " is out of range, reused or of the wrong dtype");
    used[p.index] = true;
    const TensorRef& t = refs[p.index];
    const char* src = r.b.data() + t.offset;
    if (p.u8) p.u8->assign(src, src + t.size);
    if (p.f32) {
      p.f32->resize(t.size / 4);
      copy_tensor_bytes(p.f32->data(), src, t.size);
    }
  }
  for (size_t t = 0; t < refs.size(); ++t)
    if (!used[t]) r.fail("tensor " + std::to_string(t) + " is not referenced by " + owner);
}

std::vector<TensorRef> read_tensor_table(Reader& r, const Header& h) {
  const uint32_t tensor_count = h.tensor_count;
  const uint32_t table_count = r.u32("tensor table count");
  if (table_count != tensor_count) r.fail("tensor table has " + std::to_string(table_count) + " entries but the header says " + std::to_string(tensor_count));
  std::vector<TensorRef> refs;
  uint64_t prev_end = h.data_offset;
  for (uint32_t t = 0; t < tensor_count; ++t) {
    const std::string tn = "tensor " + std::to_string(t) + ": ";
    const uint32_t dt = r.u32("tensor dtype");
    if (dt < 1 || dt > 4) r.fail(tn + "dtype " + std::to_string(dt) + " is unknown");
    if (r.u32("tensor reserved") != 0) r.fail(tn + "reserved field is not zero");
    TensorRef ref{static_cast<DType>(dt), r.u64("tensor offset"), r.u64("tensor size")};
    const uint32_t crc = r.u32("tensor checksum");
    if (r.u32("tensor padding") != 0) r.fail(tn + "padding field is not zero");
    if (ref.offset % kAlign != 0 || ref.offset < prev_end || ref.offset > r.b.size() || ref.size > r.b.size() - ref.offset)
      r.fail(tn + "data [" + std::to_string(ref.offset) + ", +" + std::to_string(ref.size) +
             ") is misaligned, overlaps the previous tensor or lies outside the file");
    const uint64_t elem = ref.dtype == DType::U8 ? 1 : (ref.dtype == DType::FixedPoint ? 8 : 4);
    if (ref.size % elem != 0) r.fail(tn + "size " + std::to_string(ref.size) + " is not a multiple of its element size");
    if (crc32(r.b.data() + ref.offset, ref.size) != crc) r.fail(tn + "CRC-32 mismatch");
    prev_end = ref.offset + ref.size;
    refs.push_back(ref);
  }
  if (r.pos != r.end) r.fail("graph section has " + std::to_string(r.end - r.pos) + " unexpected trailing bytes");
  return refs;
}

}  // namespace lowbit::runtime::lbq
