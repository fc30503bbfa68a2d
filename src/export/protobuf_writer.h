// A minimal writer of the protocol buffers wire format, enough to serialise an ONNX model
// without a protobuf dependency or a protoc step.
//
// Wire format (https://protobuf.dev/programming-guides/encoding/): a message is a sequence of
// fields, each a key varint (field_number << 3 | wire_type) followed by the value:
//   wire type 0 (varint)            int32/int64/uint64/enum/bool, 7 bits per byte, low first;
//                                   negative int32/int64 take 10 bytes (two's complement as uint64)
//   wire type 2 (length-delimited)  a varint byte count, then the bytes: strings, bytes, nested
//                                   messages, packed repeated scalars
//   wire type 5 (32-bit)            float, 4 bytes little-endian
// Fields may appear in any order; a reader keeps the last value of a singular field.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::onnx {

class ProtoWriter {
 public:
  // Varint fields (wire type 0).
  void add_uint64(int field, uint64_t value);
  void add_int64(int field, int64_t value);  // also int32 and enums
  // 32-bit float (wire type 5).
  void add_float(int field, float value);
  // Length-delimited (wire type 2): strings and bytes, nested messages.
  void add_bytes(int field, std::string_view bytes);
  void add_message(int field, const ProtoWriter& message) { add_bytes(field, message.bytes()); }
  // Packed repeated scalars (one length-delimited field holding all values).
  void add_packed_int64(int field, const std::vector<int64_t>& values);
  void add_packed_float(int field, const std::vector<float>& values);

  const std::string& bytes() const { return bytes_; }

  // Appends the varint encoding of `value` to `out`.
  static void append_varint(std::string& out, uint64_t value);

 private:
  void add_key(int field, int wire_type);
  std::string bytes_;
};

}  // namespace lowbit::onnx
