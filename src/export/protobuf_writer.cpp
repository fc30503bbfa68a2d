#include "export/protobuf_writer.h"

#include <cstring>

#include "base/error.h"

namespace lowbit::onnx {
namespace {

constexpr int kVarint = 0;
constexpr int kLengthDelimited = 2;
constexpr int kFixed32 = 5;

void append_float_le(std::string& out, float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
}

}  // namespace

void ProtoWriter::append_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void ProtoWriter::add_key(int field, int wire_type) {
  // Field numbers 1 .. 2^29 - 1 are valid; 19000-19999 are reserved by protobuf itself.
  LOWBIT_CHECK(field >= 1 && field < (1 << 29), "protobuf writer: invalid field number " + std::to_string(field));
  append_varint(bytes_, (static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type));
}

void ProtoWriter::add_uint64(int field, uint64_t value) {
  add_key(field, kVarint);
  append_varint(bytes_, value);
}

void ProtoWriter::add_int64(int field, int64_t value) {
  add_key(field, kVarint);
  append_varint(bytes_, static_cast<uint64_t>(value));  // two's complement: negatives take 10 bytes
}

void ProtoWriter::add_float(int field, float value) {
  add_key(field, kFixed32);
  append_float_le(bytes_, value);
}

void ProtoWriter::add_bytes(int field, std::string_view bytes) {
  add_key(field, kLengthDelimited);
  append_varint(bytes_, bytes.size());
  bytes_.append(bytes.data(), bytes.size());
}

void ProtoWriter::add_packed_int64(int field, const std::vector<int64_t>& values) {
  std::string payload;
  for (int64_t v : values) append_varint(payload, static_cast<uint64_t>(v));
  add_bytes(field, payload);
}

void ProtoWriter::add_packed_float(int field, const std::vector<float>& values) {
  std::string payload;
  payload.reserve(values.size() * 4);
  for (float v : values) append_float_le(payload, v);
  add_bytes(field, payload);
}

}  // namespace lowbit::onnx
