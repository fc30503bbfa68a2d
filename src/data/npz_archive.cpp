#include "data/npz_archive.h"

#include <zlib.h>

#include <algorithm>

#include "base/error.h"

namespace lowbit::data {
namespace {

constexpr uint32_t kEndOfDirectory = 0x06054b50;
constexpr uint32_t kDirectoryEntry = 0x02014b50;
constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint64_t kMaxMember = uint64_t{1} << 31;  // as the .npy reader's limit

uint64_t le(const std::vector<uint8_t>& b, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | b[at + static_cast<size_t>(i)];
  return v;
}

std::string strip_npy(const std::string& name) {
  return name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0 ? name.substr(0, name.size() - 4) : name;
}

}  // namespace

NpzArchive::NpzArchive(const std::string& path) : bytes_(read_whole_file(path)), name_(path) { read_directory(); }

NpzArchive::NpzArchive(std::vector<uint8_t> bytes, std::string name) : bytes_(std::move(bytes)), name_(std::move(name)) {
  read_directory();
}

void NpzArchive::read_directory() {
  const std::string help = " (write it with numpy.savez or numpy.savez_compressed)";
  auto fail = [&](const std::string& what) { throw Error("'" + name_ + "' is not a readable .npz archive: " + what + help); };
  const size_t n = bytes_.size();
  if (n < 22) fail("it is too short to be a zip file");
  // The end-of-directory record is the last 22 bytes plus a comment of up to 64 KiB.
  size_t eocd = std::string::npos;
  for (size_t back = 22; back <= std::min<size_t>(n, 22 + 65535); ++back) {
    if (le(bytes_, n - back, 4) == kEndOfDirectory) {
      eocd = n - back;
      break;
    }
  }
  if (eocd == std::string::npos) fail("no zip end-of-directory record (not a zip file, or truncated)");
  uint64_t entries = le(bytes_, eocd + 10, 2);
  uint64_t dir_size = le(bytes_, eocd + 12, 4);
  uint64_t dir_offset = le(bytes_, eocd + 16, 4);
  if (entries == 0xFFFF || dir_offset == 0xFFFFFFFF || dir_size == 0xFFFFFFFF) {
    // zip64: the locator sits right before the end record and points at the zip64 end record.
    if (eocd < 20 || le(bytes_, eocd - 20, 4) != 0x07064b50) fail("a zip64 archive without its locator");
    const uint64_t z64 = le(bytes_, eocd - 20 + 8, 8);
    if (z64 > n - 56 || le(bytes_, static_cast<size_t>(z64), 4) != 0x06064b50) fail("a bad zip64 end record");
    entries = le(bytes_, static_cast<size_t>(z64) + 32, 8);
    dir_size = le(bytes_, static_cast<size_t>(z64) + 40, 8);
    dir_offset = le(bytes_, static_cast<size_t>(z64) + 48, 8);
  }
  if (dir_offset > n || dir_size > n - dir_offset) fail("its central directory lies outside the file (truncated?)");
  size_t p = static_cast<size_t>(dir_offset);
  const size_t end = static_cast<size_t>(dir_offset + dir_size);
  for (uint64_t e = 0; e < entries; ++e) {
    if (p + 46 > end || le(bytes_, p, 4) != kDirectoryEntry) fail("a damaged central directory entry");
    Member m;
    m.method = static_cast<uint16_t>(le(bytes_, p + 10, 2));
    m.crc = static_cast<uint32_t>(le(bytes_, p + 16, 4));
    m.compressed = le(bytes_, p + 20, 4);
    m.size = le(bytes_, p + 24, 4);
    const size_t name_len = static_cast<size_t>(le(bytes_, p + 28, 2));
    const size_t extra_len = static_cast<size_t>(le(bytes_, p + 30, 2));
    const size_t comment_len = static_cast<size_t>(le(bytes_, p + 32, 2));
    m.local_offset = le(bytes_, p + 42, 4);
    if (p + 46 + name_len + extra_len + comment_len > end) fail("a central directory entry runs past its end");
    m.name.assign(reinterpret_cast<const char*>(&bytes_[p + 46]), name_len);
    // zip64 extra field: the 64-bit values of the fields that hold 0xFFFFFFFF, in this order.
    for (size_t x = p + 46 + name_len; x + 4 <= p + 46 + name_len + extra_len;) {
      const uint64_t id = le(bytes_, x, 2);
      const size_t len = static_cast<size_t>(le(bytes_, x + 2, 2));
      if (x + 4 + len > p + 46 + name_len + extra_len) fail("a damaged extra field in '" + m.name + "'");
      if (id == 0x0001) {
        size_t q = x + 4;
        auto take = [&](uint64_t& field) {
          if (field != 0xFFFFFFFF) return;
          if (q + 8 > x + 4 + len) fail("a short zip64 field in '" + m.name + "'");
          field = le(bytes_, q, 8);
          q += 8;
        };
        take(m.size);
        take(m.compressed);
        take(m.local_offset);
      }
      x += 4 + len;
    }
    members_.push_back(std::move(m));
    p += 46 + name_len + extra_len + comment_len;
  }
}

std::vector<std::string> NpzArchive::array_names() const {
  std::vector<std::string> names;
  for (const auto& m : members_) names.push_back(strip_npy(m.name));
  return names;
}

bool NpzArchive::has(const std::string& array) const {
  return std::any_of(members_.begin(), members_.end(), [&](const Member& m) { return strip_npy(m.name) == array; });
}

NpyArray NpzArchive::array(const std::string& array) const {
  const std::string where = name_ + ":" + array;
  auto it = std::find_if(members_.begin(), members_.end(), [&](const Member& m) { return strip_npy(m.name) == array; });
  if (it == members_.end()) {
    std::string names;
    for (const auto& a : array_names()) names += (names.empty() ? "" : ", ") + a;
    throw Error("'" + name_ + "' has no array '" + array + "' (it holds: " + (names.empty() ? "nothing" : names) + ")");
  }
  const Member& m = *it;
  auto fail = [&](const std::string& what) {
    throw Error("'" + where + "' cannot be read: " + what + " (re-create the archive with numpy.savez)");
  };
  const size_t n = bytes_.size();
  if (m.local_offset > n || n - m.local_offset < 30 || le(bytes_, static_cast<size_t>(m.local_offset), 4) != kLocalHeader)
    fail("its local zip header is missing (truncated archive?)");
  const size_t lo = static_cast<size_t>(m.local_offset);
  const size_t data_at = lo + 30 + static_cast<size_t>(le(bytes_, lo + 26, 2)) + static_cast<size_t>(le(bytes_, lo + 28, 2));
  if (data_at > n || m.compressed > n - data_at) fail("its data runs past the end of the file (truncated archive?)");
  if (m.size > kMaxMember) fail("it declares " + std::to_string(m.size) + " bytes, more than lowbit can hold (2 GiB)");
  std::vector<uint8_t> out;
  if (m.method == 0) {
    if (m.compressed != m.size) fail("a stored member whose sizes disagree");
    out.assign(bytes_.begin() + static_cast<std::ptrdiff_t>(data_at),
               bytes_.begin() + static_cast<std::ptrdiff_t>(data_at + m.compressed));
  } else if (m.method == 8) {
    // The output grows as data arrives (doubling from 64 KiB or 4x the compressed size): a
    // corrupt directory that declares gigabytes costs at most twice what really inflates.
    const size_t target = static_cast<size_t>(m.size);
    out.resize(std::min<size_t>(target, std::max<size_t>(size_t{64} << 10, static_cast<size_t>(m.compressed) * 4)));
    z_stream z{};
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) fail("zlib could not start");
    // inflate takes 32-bit lengths: feed and drain in pieces. Once the declared size is reached,
    // a one-byte probe catches a stream that would inflate to more.
    const uint8_t* src = bytes_.data() + data_at;
    uint64_t src_left = m.compressed;
    size_t produced = 0;
    unsigned char probe = 0;
    int rc = Z_OK;
    for (;;) {
      if (z.avail_in == 0 && src_left > 0) {
        const uInt piece = static_cast<uInt>(std::min<uint64_t>(src_left, 1u << 30));
        z.next_in = const_cast<Bytef*>(src);
        z.avail_in = piece;
        src += piece;
        src_left -= piece;
      }
      if (produced == out.size() && out.size() < target) out.resize(std::min(target, out.size() * 2));
      const bool full = produced == target;
      const uInt room = full ? 1u : static_cast<uInt>(std::min<uint64_t>(out.size() - produced, 1u << 30));
      z.next_out = full ? &probe : out.data() + produced;
      z.avail_out = room;
      const uInt in_before = z.avail_in;
      rc = inflate(&z, Z_NO_FLUSH);
      if (full && z.avail_out == 0) {
        rc = Z_DATA_ERROR;  // more data than declared
        break;
      }
      if (!full) produced += room - z.avail_out;
      if (rc != Z_OK) break;
      if (z.avail_out == room && z.avail_in == in_before && src_left == 0) {
        rc = Z_DATA_ERROR;  // no progress: the stream ends early
        break;
      }
    }
    inflateEnd(&z);
    if (rc != Z_STREAM_END || produced != target) fail("its deflate data is corrupt or shorter than declared");
  } else {
    fail("zip compression method " + std::to_string(m.method) + "; lowbit reads stored (0) and deflated (8) members");
  }
  const uLong crc = crc32(crc32(0L, Z_NULL, 0), out.data(), static_cast<uInt>(out.size()));
  if (out.size() <= 0xFFFFFFFFu && crc != m.crc) fail("its CRC-32 does not match (corrupt archive)");
  return parse_npy(out.data(), out.size(), where);
}

}  // namespace lowbit::data
