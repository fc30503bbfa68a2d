// Input normalisation in the integer runtime (Model::input_mean / input_std): the .lbq round trip
// (format version 2 only when a model has it), validation, and Session::run / run_u8 equal to
// quantizing the normalised floats (x - mean[c]) / std[c] at every kernel level, bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "quant/input_normalisation.h"
#include "runtime/model_file.h"
#include "runtime/session.h"
#include "test_models.h"

using namespace lowbit::runtime;
using namespace lowbit;

namespace {

uint32_t file_version(const std::string& bytes) {
  uint32_t v = 0;
  std::memcpy(&v, bytes.data() + 8, 4);  // little-endian hosts (the runtime's targets)
  return v;
}

ActQParams normalised_input_qparams() {
  ActQParams q;
  q.scale = 5.0f / 255.0f;  // [-2.2, 2.8] in 255 steps: ImageNet-normalised pixels
  q.zero_point = 112;
  q.qmin = 0;
  q.qmax = 255;
  return q;
}

// A random graph of 3 input channels with an ImageNet-style normalisation.
Model normalised_model(uint32_t seed) {
  Model m;
  for (uint32_t s = seed;; ++s) {  // random_graph picks 1..3 channels
    m = rtest::random_graph(s);
    if (m.in_channels == 3) break;
  }
  m.input_mean = {0.485f, 0.456f, 0.406f};
  m.input_std = {0.229f, 0.224f, 0.225f};
  m.input = normalised_input_qparams();
  return m;
}

// 3 x 5 x 4 input -> conv 3x3 (3 -> 6, pad 1) -> flatten -> linear output layer: every input code
// moves the integer logits. Normalised like normalised_model.
Model small_normalised_model(uint32_t seed) {
  std::mt19937 rng(seed);
  Model m;
  m.name = "small normalised";
  m.in_channels = 3;
  m.in_height = 5;
  m.in_width = 4;
  m.input = normalised_input_qparams();
  m.input_mean = {0.485f, 0.456f, 0.406f};
  m.input_std = {0.229f, 0.224f, 0.225f};
  Op conv = make_conv2d(0, 3, 6, 3, 1, 1);
  rtest::fill_layer(rng, conv, {8, quant::Grid::Integer}, m.input, false);
  conv.out.qmin = 0;
  conv.out.qmax = 255;
  conv.out.zero_point = 128;
  int32_t v = m.add(conv);
  Op flat = make_flatten(v);
  flat.out = m.ops[0].out;
  v = m.add(flat);
  Op fc = make_linear(v, 6 * 5 * 4, 7);
  rtest::fill_layer(rng, fc, {8, quant::Grid::Integer}, m.ops[0].out, true);
  m.add(fc);
  return m;
}

std::vector<float> pixels_in_unit_range(const Model& m, int64_t batch, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(0, 255);
  std::vector<float> x(static_cast<size_t>(batch * m.in_channels * m.in_height * m.in_width));
  for (float& v : x) v = static_cast<float>(d(rng)) / 255.0f;
  return x;
}

TEST(InputNormalisation, ModelFileRoundTripWritesVersion2OnlyWhenPresent) {
  Model plain = rtest::random_graph(11);
  for (const Op& op : plain.ops) ASSERT_EQ(op.dilation_h, 1);  // no dilation: version 1 stays possible
  const std::string v1 = serialize_model(plain);
  EXPECT_EQ(file_version(v1), 1u);
  const Model back1 = parse_model(v1, "plain.lbq");
  EXPECT_TRUE(back1.input_mean.empty());
  EXPECT_TRUE(back1.input_std.empty());
  EXPECT_EQ(serialize_model(back1), v1);  // a version-1 file loads and writes back byte for byte

  const Model norm = normalised_model(20);
  const std::string v2 = serialize_model(norm);
  EXPECT_EQ(file_version(v2), 2u);
  const Model back2 = parse_model(v2, "norm.lbq");
  EXPECT_EQ(back2.input_mean, norm.input_mean);
  EXPECT_EQ(back2.input_std, norm.input_std);
  EXPECT_EQ(back2.in_channels, 3);
  EXPECT_EQ(serialize_model(back2), v2);
  // A file claiming a normalisation of 2 channels for a 3-channel model is refused when loaded.
  Model bad = norm;
  bad.input_mean.resize(2);
  bad.input_std.resize(2);
  EXPECT_THROW(serialize_model(bad), Error);
}

TEST(InputNormalisation, ValidationNamesTheProblem) {
  Model m = normalised_model(20);
  m.input_std = {0.229f, 0.224f};
  try {
    validate_model(m, "model");
    FAIL() << "two standard deviations for three channels validated";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("one per input channel"), std::string::npos) << e.what();
  }
  m = normalised_model(20);
  m.input_std[1] = 0.0f;
  EXPECT_THROW(validate_model(m, "model"), Error);
  m = normalised_model(20);
  m.input_mean[2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(validate_model(m, "model"), Error);
}

// Session::run on [0, 1] images of a normalising model equals Session::run of the same model
// without normalisation on the floats quant::normalise_input gives: the normalisation is the
// scalar float expression, then the unchanged quantize kernel. run_u8 equals run on pixel / 255.
TEST(InputNormalisation, SessionNormalisesBeforeQuantizingAtEveryLevel) {
  for (const Model& norm : {small_normalised_model(3), normalised_model(30)}) {
  Model plain = norm;
  plain.input_mean.clear();
  plain.input_std.clear();
  const int64_t batch = 5;
  const std::vector<float> x = pixels_in_unit_range(norm, batch, 4);
  std::vector<float> normalised(x.size());
  const int64_t hw = int64_t{norm.in_height} * norm.in_width;
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t c = static_cast<size_t>((static_cast<int64_t>(i) / hw) % norm.in_channels);
    normalised[i] = quant::normalise_input(x[i], norm.input_mean[c], norm.input_std[c]);
  }
  std::vector<uint8_t> pixels(x.size());
  for (size_t i = 0; i < x.size(); ++i) pixels[i] = static_cast<uint8_t>(std::lround(x[i] * 255.0f));

  std::vector<std::string> isas{"ref"};
  for (const std::string& isa : rtest::optimized_isas()) isas.push_back(isa);
  Session ref_plain(plain, {1, "ref"});
  const RunResult expected = ref_plain.run(normalised.data(), batch);
  for (const std::string& isa : isas) {
    Session s(norm, {2, isa});
    const RunResult r = s.run(x.data(), batch);
    EXPECT_EQ(r.int_logits, expected.int_logits) << isa;
    EXPECT_EQ(r.argmax, expected.argmax) << isa;
    const RunResult u8 = s.run_u8(pixels.data(), batch);
    EXPECT_EQ(u8.int_logits, expected.int_logits) << isa << " run_u8";
  }
  // The normalisation matters: the same images unnormalised give other logits.
  if (norm.name == "small normalised") EXPECT_NE(ref_plain.run(x.data(), batch).int_logits, expected.int_logits);
  }
}

}  // namespace
