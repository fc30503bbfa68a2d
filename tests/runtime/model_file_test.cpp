// .lbq files: round trip, and damaged files always give a clean lowbit::Error (never a crash or an
// out-of-bounds read; run this binary under -fsanitize=address to check the latter).
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include "base/atomic_file.h"
#include "runtime/model_file.h"
#include "runtime/session.h"
#include "test_models.h"

using namespace lowbit::runtime;
using namespace lowbit;

namespace {

std::string tmp_path(const std::string& name) {
  const char* dir = std::getenv("LOWBIT_TEST_TMP");
  std::string d = dir ? dir : "/tmp";
  std::system(("mkdir -p '" + d + "'").c_str());
  return d + "/" + name;
}

// Either a clean error or a model that validates and runs.
void load_or_error(const std::string& bytes, const std::vector<float>& x) {
  try {
    Model m = parse_model(bytes, "fuzz.lbq");
    Session s(std::move(m), {1, "ref"});
    const auto& mm = s.model();
    std::vector<float> in(static_cast<size_t>(mm.in_channels) * mm.in_height * mm.in_width, 0.5f);
    s.run(in.data(), 1);
  } catch (const Error& e) {
    ASSERT_NE(std::string(e.what()).find("fuzz.lbq"), std::string::npos) << e.what();
  }
  (void)x;
}

}  // namespace

TEST(ModelFile, RoundTripGivesIdenticalModelAndResults) {
  for (uint32_t seed = 0; seed < 10; ++seed) {
    const Model m = rtest::random_graph(seed);
    const std::string path = tmp_path("roundtrip_" + std::to_string(seed) + ".lbq");
    save_model(m, path);
    const std::string bytes = read_whole_file(path);
    EXPECT_EQ(bytes.size() % 64, 0u);
    EXPECT_EQ(bytes.substr(0, 8), "LBQMODEL");
    const Model back = load_model(path);
    ASSERT_EQ(back.ops.size(), m.ops.size());
    EXPECT_EQ(back.name, m.name);
    for (size_t i = 0; i < m.ops.size(); ++i) {
      EXPECT_EQ(back.ops[i].weight.packed, m.ops[i].weight.packed);
      EXPECT_EQ(back.ops[i].bias_q, m.ops[i].bias_q);
      EXPECT_EQ(back.ops[i].out, m.ops[i].out);
      EXPECT_EQ(back.ops[i].out_scale, m.ops[i].out_scale);
      EXPECT_EQ(back.ops[i].table, m.ops[i].table);
      ASSERT_EQ(back.ops[i].multipliers.size(), m.ops[i].multipliers.size());
    }
    EXPECT_EQ(serialize_model(back), bytes);  // deterministic
    const auto x = rtest::random_input(m, 2, seed);
    Session a(m, {1, "ref"}), b(back, {1, "ref"});
    EXPECT_EQ(a.run(x.data(), 2).int_logits, b.run(x.data(), 2).int_logits);
  }
}

TEST(ModelFile, EveryTruncationIsACleanError) {
  const std::string bytes = serialize_model(rtest::random_graph(7));
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_THROW(parse_model(bytes.substr(0, n), "fuzz.lbq"), Error) << "length " << n;
  }
}

TEST(ModelFile, RandomByteFlipsAreCleanErrorsOrValidModels) {
  const Model m = rtest::random_graph(8);
  const std::string good = serialize_model(m);
  const auto x = rtest::random_input(m, 1, 1);
  std::mt19937 rng(99);
  std::uniform_int_distribution<size_t> pos(0, good.size() - 1);
  std::uniform_int_distribution<int> bit(0, 7);
  for (int i = 0; i < 3000; ++i) {
    std::string b = good;
    const int flips = 1 + i % 3;
    for (int f = 0; f < flips; ++f) b[pos(rng)] ^= static_cast<char>(1 << bit(rng));
    load_or_error(b, x);  // checksums catch these
    // Resealed: the checksums now match, so the structural checks behind them are exercised.
    reseal_model_bytes(b);
    load_or_error(b, x);
    if (HasFatalFailure()) return;
  }
  // Flips confined to the graph section (the densest part of the structure), resealed.
  const size_t graph_end = 64 + 400 < good.size() ? 64 + 400 : good.size();
  std::uniform_int_distribution<size_t> gpos(64, graph_end - 1);
  for (int i = 0; i < 3000; ++i) {
    std::string b = good;
    b[gpos(rng)] ^= static_cast<char>(1 << bit(rng));
    reseal_model_bytes(b);
    load_or_error(b, x);
    if (HasFatalFailure()) return;
  }
}

TEST(ModelFile, ErrorsNameFileAndField) {
  std::string b = serialize_model(rtest::random_graph(2));
  b[8] = 9;  // version
  try {
    parse_model(b, "model.lbq");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.lbq"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("version"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_model(tmp_path("does_not_exist.lbq")), Error);
}

// Found by fuzz/lbq_model_fuzz.cpp (2026-12-02, UBSan): a file declaring a 0-byte out_scale
// tensor made the reader memcpy into an empty vector's null data(), undefined even for 0 bytes.
// The reproducer, resealed as the harness does; under `make sanitize` the old reader aborts here.
TEST(ModelFile, ZeroByteTensorIsReadWithoutUndefinedBehaviour) {
  const std::string path = std::string(LOWBIT_SOURCE_DIR) + "/tests/runtime/data/zero_size_out_scale.lbq";
  std::string bytes = read_whole_file(path);
  ASSERT_EQ(bytes.size(), 1728u) << path;
  reseal_model_bytes(bytes);
  try {
    const Model m = parse_model(bytes, "zero_size_out_scale.lbq");
    validate_model(m);  // accepted: then it is a valid model
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("zero_size_out_scale.lbq"), std::string::npos) << e.what();
  }
}

// A dilated conv is written as format version 2 (its dilations in the op record) and read back as
// it was; the same model without dilation is still version 1.
TEST(ModelFile, DilatedConvRoundTripsAsVersion2) {
  std::mt19937 rng(21);
  Model m;
  m.name = "dilated";
  m.in_channels = 3;
  m.in_height = 12;
  m.in_width = 11;
  m.input = rtest::random_act(rng);
  Op conv = make_conv2d(0, 3, 8, 3, 1, 2, 1, 2);
  conv.dilation_w = 3;
  rtest::fill_layer(rng, conv, {4, quant::Grid::Integer}, m.input, false);
  const int32_t v = m.add(conv);
  Op dw = make_conv2d(v, 8, 8, 3, 2, 1, 8, 2);  // depthwise, dilation 2 (output 5x4)
  rtest::fill_layer(rng, dw, {8, quant::Grid::Integer}, m.ops.back().out, true);
  m.add(dw);
  const auto version = [](const std::string& b) { return static_cast<uint8_t>(b[8]) | static_cast<uint8_t>(b[9]) << 8; };

  const std::string bytes = serialize_model(m);
  EXPECT_EQ(version(bytes), 2);
  const Model back = parse_model(bytes, "dilated.lbq");
  ASSERT_EQ(back.ops.size(), 2u);
  EXPECT_EQ(back.ops[0].dilation_h, 2);
  EXPECT_EQ(back.ops[0].dilation_w, 3);
  EXPECT_EQ(back.ops[1].dilation_h, 2);
  EXPECT_EQ(back.ops[1].dilation_w, 2);
  EXPECT_EQ(validate_model(back).back(), (ValueShape{8, 5, 4}));
  EXPECT_EQ(serialize_model(back), bytes);
  const auto x = rtest::random_input(m, 2, 3);
  Session a(m, {1, "ref"}), b(back, {1, "ref"});
  EXPECT_EQ(a.run(x.data(), 2).int_logits, b.run(x.data(), 2).int_logits);

  // Without dilation: version 1, and the reader gives dilation 1.
  Model plain = m;
  for (Op& op : plain.ops) op.dilation_h = op.dilation_w = 1;
  const std::string plain_bytes = serialize_model(plain);
  EXPECT_EQ(version(plain_bytes), 1);
  EXPECT_EQ(version(serialize_model(rtest::random_graph(4))), 1);
  for (const Op& op : parse_model(plain_bytes, "plain.lbq").ops) EXPECT_EQ(op.dilation_h * op.dilation_w, 1);

  // A version 2 file whose dilation is out of range is a clean error naming the field.
  std::string bad = bytes;
  // op 0's in_channels 3, out_channels 8, dilations 2, 3 (little-endian int32)
  const size_t at = bad.find(std::string("\x03\0\0\0\x08\0\0\0\x02\0\0\0\x03\0\0\0", 16));
  ASSERT_NE(at, std::string::npos);
  bad[at + 8] = 0;
  reseal_model_bytes(bad);
  try {
    parse_model(bad, "bad.lbq");
    FAIL() << "dilation 0 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dilation"), std::string::npos) << e.what();
  }
}

TEST(ModelFile, Crc32KnownValue) {
  EXPECT_EQ(crc32("123456789", 9), 0xCBF43926u);
}
