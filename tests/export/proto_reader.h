// A tiny protobuf wire-format reader for tests: decodes one message level into its fields, so
// tests can check what the writer produced without a protobuf library.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace lowbit::testing {

struct ProtoField {
  int number = 0;
  int wire_type = 0;
  uint64_t varint = 0;  // wire type 0
  uint32_t fixed32 = 0; // wire type 5
  std::string bytes;    // wire type 2
};

inline uint64_t read_varint(const std::string& s, size_t& pos) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= s.size()) throw std::runtime_error("truncated varint");
    const auto b = static_cast<uint8_t>(s[pos++]);
    v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) return v;
  }
  throw std::runtime_error("varint longer than 10 bytes");
}

inline std::vector<ProtoField> read_fields(const std::string& s) {
  std::vector<ProtoField> fields;
  size_t pos = 0;
  while (pos < s.size()) {
    const uint64_t key = read_varint(s, pos);
    ProtoField f;
    f.number = static_cast<int>(key >> 3);
    f.wire_type = static_cast<int>(key & 7);
    if (f.wire_type == 0) {
      f.varint = read_varint(s, pos);
    } else if (f.wire_type == 2) {
      const uint64_t n = read_varint(s, pos);
      if (n > s.size() - pos) throw std::runtime_error("length-delimited field runs past the end");
      f.bytes = s.substr(pos, n);
      pos += n;
    } else if (f.wire_type == 5) {
      if (s.size() - pos < 4) throw std::runtime_error("truncated fixed32");
      for (int i = 0; i < 4; ++i) f.fixed32 |= static_cast<uint32_t>(static_cast<uint8_t>(s[pos + i])) << (8 * i);
      pos += 4;
    } else {
      throw std::runtime_error("unexpected wire type " + std::to_string(f.wire_type));
    }
    fields.push_back(f);
  }
  return fields;
}

inline std::vector<ProtoField> fields_numbered(const std::string& s, int number) {
  std::vector<ProtoField> out;
  for (const ProtoField& f : read_fields(s))
    if (f.number == number) out.push_back(f);
  return out;
}

}  // namespace lowbit::testing
