// The .lbq model file: what the converter writes and the runtime loads.
//
// Layout (all integers little-endian, see docs/runtime.md for the field list):
//   [0, 64)        header: magic "LBQMODEL", format version, endianness marker 0x01020304,
//                  file size, graph section offset/size, data offset, tensor count,
//                  CRC-32 of the graph section, CRC-32 of the whole file (this field read as 0)
//   [64, ...)      graph section: input shape and qparams, ops, tensor table
//                  (dtype, offset, size, CRC-32 of each tensor)
//   data_offset..  tensor data, every tensor starting on a 64-byte boundary, zero padding between
// The loader checks every count, size, offset, enum, input index, shape and checksum before
// using any of it; every violation is a lowbit::Error naming the file and the field.
#pragma once
#include <cstdint>
#include <string>

#include "runtime/model.h"

namespace lowbit::runtime {

constexpr uint32_t kModelFormatVersion = 1;

// Writes `model` (validated first) to `path` atomically (temporary file + rename).
void save_model(const Model& model, const std::string& path);
Model load_model(const std::string& path);

// The same, in memory. `name` is used in error messages (a file name).
std::string serialize_model(const Model& model);
Model parse_model(const std::string& bytes, const std::string& name);

// CRC-32 (IEEE 802.3 polynomial 0xEDB88320, reflected, init and final xor 0xFFFFFFFF).
uint32_t crc32(const void* data, size_t n, uint32_t crc = 0);

// Recomputes the graph and whole-file checksums of a serialized model in place (for tests that
// need to reach the structural checks behind the checksums, e.g. fuzzing the graph section).
// Does nothing to a buffer too short to hold a header.
void reseal_model_bytes(std::string& bytes);

}  // namespace lowbit::runtime
