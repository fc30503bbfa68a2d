// The protobuf writer against the encodings of the protobuf specification, and the ONNX tensor
// and model serialisation read back with an independent decoder.
#include <gtest/gtest.h>

#include <cstring>

#include "base/error.h"
#include "export/onnx_graph.h"
#include "export/protobuf_writer.h"
#include "export/proto_reader.h"

namespace lowbit::onnx {
namespace {

std::string hex(const std::string& s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (char c : s) {
    if (!out.empty()) out += ' ';
    out += digits[static_cast<uint8_t>(c) >> 4];
    out += digits[static_cast<uint8_t>(c) & 15];
  }
  return out;
}

std::string varint(uint64_t v) {
  std::string s;
  ProtoWriter::append_varint(s, v);
  return s;
}

TEST(ProtobufWriter, Varints) {
  EXPECT_EQ(hex(varint(0)), "00");
  EXPECT_EQ(hex(varint(1)), "01");
  EXPECT_EQ(hex(varint(127)), "7f");
  EXPECT_EQ(hex(varint(128)), "80 01");
  EXPECT_EQ(hex(varint(300)), "ac 02");
  EXPECT_EQ(hex(varint(UINT64_MAX)), "ff ff ff ff ff ff ff ff ff 01");
}

// The examples of https://protobuf.dev/programming-guides/encoding/.
TEST(ProtobufWriter, SpecificationExamples) {
  ProtoWriter a;
  a.add_int64(1, 150);
  EXPECT_EQ(hex(a.bytes()), "08 96 01");

  ProtoWriter b;
  b.add_bytes(2, "testing");
  EXPECT_EQ(hex(b.bytes()), "12 07 74 65 73 74 69 6e 67");

  ProtoWriter c;
  c.add_message(3, a);
  EXPECT_EQ(hex(c.bytes()), "1a 03 08 96 01");

  ProtoWriter d;
  d.add_packed_int64(4, {3, 270, 86942});
  EXPECT_EQ(hex(d.bytes()), "22 06 03 8e 02 9e a7 05");
}

TEST(ProtobufWriter, NegativeIntegersTakeTenBytes) {
  ProtoWriter w;
  w.add_int64(1, -1);
  EXPECT_EQ(hex(w.bytes()), "08 ff ff ff ff ff ff ff ff ff 01");
  size_t pos = 1;
  EXPECT_EQ(static_cast<int64_t>(testing::read_varint(w.bytes(), pos)), -1);
}

TEST(ProtobufWriter, FloatsAreFixed32LittleEndian) {
  ProtoWriter w;
  w.add_float(5, 1.0f);
  EXPECT_EQ(hex(w.bytes()), "2d 00 00 80 3f");
  ProtoWriter p;
  p.add_packed_float(4, {1.0f, -2.0f});
  EXPECT_EQ(hex(p.bytes()), "22 08 00 00 80 3f 00 00 00 c0");
}

TEST(ProtobufWriter, LargeFieldNumbersAndLongPayloads) {
  ProtoWriter w;
  const std::string payload(300, 'x');
  w.add_bytes(20, payload);  // key (20 << 3 | 2) = 162 needs two bytes, so does the length 300
  const auto fields = testing::read_fields(w.bytes());
  ASSERT_EQ(fields.size(), 1u);
  EXPECT_EQ(fields[0].number, 20);
  EXPECT_EQ(fields[0].bytes, payload);
  EXPECT_EQ(hex(w.bytes().substr(0, 4)), "a2 01 ac 02");
}

TEST(ProtobufWriter, RejectsInvalidFieldNumbers) {
  ProtoWriter w;
  EXPECT_THROW(w.add_int64(0, 1), Error);
  EXPECT_THROW(w.add_int64(1 << 29, 1), Error);
}

// ONNX INT4: two elements per byte, the first in the low nibble, two's complement.
TEST(OnnxTensor, Int4PackingAndRanges) {
  const Tensor t = make_integer_tensor("w", DataType::Int4, {5}, {1, -1, 7, -8, 3});
  EXPECT_EQ(hex(t.raw), "f1 87 03");
  const Tensor u = make_integer_tensor("u", DataType::Uint4, {2}, {15, 0});
  EXPECT_EQ(hex(u.raw), "0f");
  const Tensor i8 = make_integer_tensor("i", DataType::Int8, {2}, {-128, 127});
  EXPECT_EQ(hex(i8.raw), "80 7f");
  EXPECT_THROW(make_integer_tensor("w", DataType::Int4, {1}, {8}), Error);
  EXPECT_THROW(make_integer_tensor("w", DataType::Uint8, {1}, {-1}), Error);
  EXPECT_THROW(make_integer_tensor("w", DataType::Int8, {3}, {1, 2}), Error);  // shape mismatch
}

TEST(OnnxModel, SerializesModelGraphNodeAndTensorFields) {
  Model m;
  m.opset = 21;
  m.graph.name = "g";
  m.graph.inputs.push_back({"x", DataType::Float, {-1, 3}});
  m.graph.initializers.push_back(make_float_tensor("two", {}, {2.0f}));
  m.graph.nodes.push_back(Node{"Mul", "mul", {"x", "two"}, {"y"}, {Attribute::make_ints("dummy", {1, -2})}});
  m.graph.outputs.push_back({"y", DataType::Float, {-1, 3}});
  const std::string bytes = serialize(m);

  using testing::fields_numbered;
  ASSERT_EQ(fields_numbered(bytes, 1).size(), 1u);
  EXPECT_EQ(fields_numbered(bytes, 1)[0].varint, 10u);  // ir_version for opset 21
  EXPECT_EQ(fields_numbered(bytes, 2)[0].bytes, "lowbit");
  const auto opset = fields_numbered(bytes, 8);
  ASSERT_EQ(opset.size(), 1u);
  EXPECT_EQ(fields_numbered(opset[0].bytes, 2)[0].varint, 21u);

  const std::string graph = fields_numbered(bytes, 7).at(0).bytes;
  EXPECT_EQ(fields_numbered(graph, 2).at(0).bytes, "g");
  const std::string node = fields_numbered(graph, 1).at(0).bytes;
  ASSERT_EQ(fields_numbered(node, 1).size(), 2u);
  EXPECT_EQ(fields_numbered(node, 1)[1].bytes, "two");
  EXPECT_EQ(fields_numbered(node, 2).at(0).bytes, "y");
  EXPECT_EQ(fields_numbered(node, 4).at(0).bytes, "Mul");
  const std::string attribute = fields_numbered(node, 5).at(0).bytes;
  EXPECT_EQ(fields_numbered(attribute, 20).at(0).varint, 7u);  // INTS
  const auto ints = fields_numbered(attribute, 8);
  ASSERT_EQ(ints.size(), 2u);
  EXPECT_EQ(static_cast<int64_t>(ints[1].varint), -2);

  const std::string tensor = fields_numbered(graph, 5).at(0).bytes;
  EXPECT_TRUE(fields_numbered(tensor, 1).empty());                   // a scalar has no dims
  EXPECT_EQ(fields_numbered(tensor, 2).at(0).varint, 1u);            // FLOAT
  EXPECT_EQ(fields_numbered(tensor, 8).at(0).bytes, "two");
  float v = 0;
  const std::string raw = fields_numbered(tensor, 9).at(0).bytes;
  ASSERT_EQ(raw.size(), 4u);
  std::memcpy(&v, raw.data(), 4);
  EXPECT_EQ(v, 2.0f);

  // input x: ValueInfo { name, type { tensor_type { elem_type, shape { dim { dim_param "N" } dim { dim_value 3 } } } } }
  const std::string input = fields_numbered(graph, 11).at(0).bytes;
  EXPECT_EQ(fields_numbered(input, 1).at(0).bytes, "x");
  const std::string tensor_type = fields_numbered(fields_numbered(input, 2).at(0).bytes, 1).at(0).bytes;
  EXPECT_EQ(fields_numbered(tensor_type, 1).at(0).varint, 1u);
  const auto dims = fields_numbered(fields_numbered(tensor_type, 2).at(0).bytes, 1);
  ASSERT_EQ(dims.size(), 2u);
  EXPECT_EQ(fields_numbered(dims[0].bytes, 2).at(0).bytes, "N");
  EXPECT_EQ(fields_numbered(dims[1].bytes, 1).at(0).varint, 3u);
}

TEST(OnnxModel, RejectsDanglingInputsAndBadOpsets) {
  Model m;
  m.graph.inputs.push_back({"x", DataType::Float, {1}});
  m.graph.nodes.push_back(Node{"Relu", "relu", {"missing"}, {"y"}, {}});
  m.graph.outputs.push_back({"y", DataType::Float, {1}});
  try {
    serialize(m);
    FAIL() << "a node reading an undefined tensor must be rejected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ir_version_for_opset(12), Error);
  EXPECT_EQ(ir_version_for_opset(13), 7);
}

}  // namespace
}  // namespace lowbit::onnx
