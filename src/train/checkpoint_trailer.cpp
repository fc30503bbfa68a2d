// Definitions for checkpoint_trailer.h (no LibTorch: fuzzed by fuzz/checkpoint_fuzz.cpp).
#include "train/checkpoint_trailer.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "base/error.h"

namespace lowbit::train {
namespace {

// Layout: checkpoint_trailer.h.
constexpr char kTrailerMagic[8] = {'L', 'B', 'C', 'K', 'S', 'U', 'M', '1'};
constexpr size_t kTrailerSize = kCheckpointTrailerSize;

void put_le(std::string& s, size_t at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
uint64_t get_le(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<uint8_t>(s[at + i])} << (8 * i);
  return v;
}

}  // namespace

uint32_t crc32_of(const char* data, size_t n) {
  uLong c = ::crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths: feed large archives in pieces.
  while (n > 0) {
    const uInt piece = static_cast<uInt>(std::min<size_t>(n, size_t{1} << 30));
    c = ::crc32(c, reinterpret_cast<const Bytef*>(data), piece);
    data += piece;
    n -= piece;
  }
  return static_cast<uint32_t>(c);
}

std::string with_checksum_trailer(const std::string& archive) {
  std::string trailer(kTrailerSize, '\0');
  std::memcpy(&trailer[0], kTrailerMagic, 8);
  put_le(trailer, 8, archive.size(), 8);
  put_le(trailer, 16, crc32_of(archive.data(), archive.size()), 4);
  put_le(trailer, 20, crc32_of(trailer.data(), 20), 4);
  return archive + trailer;
}

std::string verified_checkpoint_archive(const std::string& path, const std::string& file) {
  const std::string not_ours = "'" + path + "' is not a lowbit checkpoint: ";
  const std::string damaged = "'" + path + "' is damaged: ";
  const std::string advice = " (the file was changed after lowbit wrote it: restore it from a copy or rerun)";
  if (file.size() < kTrailerSize) {
    throw Error(not_ours + "only " + std::to_string(file.size()) + " bytes; pass the checkpoint.pt written by "
                "'lowbit train' or its folder");
  }
  const size_t t = file.size() - kTrailerSize;
  if (std::memcmp(file.data() + t, kTrailerMagic, 8) != 0) {
    // A zip archive without our trailer: an older lowbit, or a torch file that is not ours.
    throw Error(not_ours + "it has no lowbit checksum trailer (it was cut short, changed, or written by "
                "another program or a lowbit older than format " + std::string(kCheckpointFormat) + ")");
  }
  if (get_le(file, t + 20, 4) != crc32_of(file.data() + t, 20)) throw Error(damaged + "its checksum trailer is corrupt" + advice);
  if (get_le(file, t + 8, 8) != t) {
    throw Error(damaged + "the trailer records " + std::to_string(get_le(file, t + 8, 8)) + " archive bytes, the file has " +
                std::to_string(t) + advice);
  }
  const uint32_t want = static_cast<uint32_t>(get_le(file, t + 16, 4));
  const uint32_t got = crc32_of(file.data(), t);
  if (want != got) {
    char hex[40];
    std::snprintf(hex, sizeof hex, "CRC-32 %08x, expected %08x", got, want);
    throw Error(damaged + "its contents do not match their checksum (" + hex + ")" + advice);
  }
  return file.substr(0, t);
}

}  // namespace lowbit::train
