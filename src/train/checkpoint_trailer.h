// The checksum trailer after a checkpoint's torch archive (checkpoint.h). LibTorch's zip reader
// does not verify every entry's CRC, so without it a flipped weight byte could load silently.
// No LibTorch here: the trailer is checked before LibTorch sees a byte, and fuzzed on its own
// (fuzz/checkpoint_fuzz.cpp).
//
// Layout, 24 bytes after the archive:
//   bytes 0..7   magic "LBCKSUM1"
//   bytes 8..15  archive length in bytes (uint64, little endian)
//   bytes 16..19 CRC-32 (IEEE, zlib's) of the archive bytes
//   bytes 20..23 CRC-32 of bytes 0..19 of the trailer
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace lowbit::train {

constexpr const char* kCheckpointFormat = "lowbit-checkpoint-v2";
constexpr size_t kCheckpointTrailerSize = 24;

// CRC-32 (zlib's) of any number of bytes.
uint32_t crc32_of(const char* data, size_t n);

// `archive` followed by its trailer: the bytes a checkpoint file holds.
std::string with_checksum_trailer(const std::string& archive);

// Checks the trailer of `file` (the bytes of the file at `path`) and returns the archive bytes
// before it. Throws lowbit::Error naming `path`: "is not a lowbit checkpoint" (too short, no
// trailer) or "is damaged" (trailer corrupt, length or CRC-32 mismatch), with what to do.
std::string verified_checkpoint_archive(const std::string& path, const std::string& file);

}  // namespace lowbit::train
