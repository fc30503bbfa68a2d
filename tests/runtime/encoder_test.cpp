// The encoder runtime (encoder_model.h, encoder_session.h, ops/static_quant_gemm.h,
// ops/encoder_linear_op.h): the static-grid integer GEMM on every kernel level against the
// reference for every weight format, grouping and zero point; whole-model logits identical on
// every level; the version-2 encoder file format (round trip, truncation, corruption, validation
// naming the layer and field). Tiny random models, no LibTorch (tests/qat/vit_runtime_test.cpp
// compares with the QAT model).
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>

#include "base/error.h"
#include "quant/quantize.h"
#include "runtime/encoder_model_file.h"
#include "runtime/encoder_session.h"
#include "runtime/model_file.h"
#include "runtime/ops/encoder_linear_op.h"
#include "runtime/ops/static_quant_gemm.h"
#include "test_models.h"
#include "transformer_test_models.h"

using namespace lowbit;
using namespace lowbit::runtime;
using rtest::Format;
using rtest::kFormats;
using rtest::random_encoder;
using rtest::random_images;
using rtest::random_quant_linear;
using rtest::tmp_file;

namespace {

std::vector<Isa> levels() {
  std::vector<Isa> v{Isa::Ref};
  for (const std::string& name : rtest::optimized_isas()) v.push_back(parse_isa(name));
  return v;
}

}  // namespace

TEST(StaticQuantGemm, EveryLevelEqualsTheReferenceForEveryFormatGroupAndZeroPoint) {
  std::mt19937 rng(11);
  for (const Format& f : kFormats)
    for (int32_t group : {8, 24, 37})
      for (int32_t zp : {0, 7, 128, 255}) {
        const int32_t in = 37, out = 21, rows = 13;
        const QuantLinear w = random_quant_linear(rng, in, out, std::min(group, in), f, 0.01f, 0.05f);
        std::vector<uint8_t> codes(static_cast<size_t>(rows) * in);
        for (uint8_t& c : codes) c = static_cast<uint8_t>(rng() % 256);
        const ops::StaticQuantGemm ref(w, zp, Isa::Ref);
        std::vector<int32_t> want(static_cast<size_t>(rows) * out * ref.groups());
        ref.run(codes.data(), rows, want.data());
        // The reference against the formula.
        const std::vector<int8_t> v = w.values();
        for (int32_t m = 0; m < rows; ++m)
          for (int32_t o = 0; o < out; ++o)
            for (int32_t g = 0; g < ref.groups(); ++g) {
              int32_t s = 0;
              for (int32_t k = g * w.group_size; k < std::min(in, (g + 1) * w.group_size); ++k)
                s += (codes[static_cast<size_t>(m) * in + k] - zp) * v[static_cast<size_t>(o) * in + k];
              ASSERT_EQ(want[(static_cast<size_t>(m) * out + o) * ref.groups() + g], s) << f.name;
            }
        for (Isa isa : levels()) {
          const ops::StaticQuantGemm op(w, zp, isa);
          std::vector<int32_t> got(want.size(), -1);
          op.run(codes.data(), rows, got.data());
          EXPECT_EQ(got, want) << f.name << " group " << group << " zp " << zp << " on " << isa_name(isa) << " ("
                               << op.kernel_name() << ")";
        }
      }
}

TEST(EncoderSession, EveryLevelGivesTheReferenceLogitsBitForBit) {
  const std::vector<float> images = random_images(5, 6);
  for (const Format& f : {kFormats[0], kFormats[1], kFormats[2], kFormats[5]})
    for (int act_bits : {8, 4}) {
      const EncoderModel m = random_encoder(7, f, f.bits == 8 ? 16 : 8, act_bits);
      EncoderOptions ro;
      ro.isa = "ref";
      EncoderSession ref(m, ro);
      const std::vector<float> want = ref.run(images.data(), 6);
      for (float x : want) ASSERT_TRUE(std::isfinite(x));
      for (Isa isa : levels()) {
        for (int threads : {1, 2}) {
          EncoderOptions o;
          o.isa = isa_name(isa);
          o.threads = threads;
          EncoderSession s(m, o);
          EXPECT_EQ(s.run(images.data(), 6), want) << f.name << " a" << act_bits << " on " << isa_name(isa) << ", "
                                                   << threads << " threads";
        }
      }
    }
}

TEST(EncoderSession, IntegerLinearEqualsItsFormula) {
  // patch_embed of a 1-image run: y = s_x * sum_g s_w * acc + b, then the output grid.
  EncoderModel m = random_encoder(3, kFormats[1], 8, 8);
  const EncoderLinear& l = m.patch_embed;
  const std::vector<float> image = random_images(9, 1);
  ops::EncoderLinearOp op(l, Isa::Ref);
  const int32_t P = m.patch_features();
  std::vector<uint8_t> codes(static_cast<size_t>(P));
  for (int32_t k = 0; k < P; ++k)  // token 0: the top-left patch
    codes[static_cast<size_t>(k)] = static_cast<uint8_t>(
        quant::quantize_integer(image[static_cast<size_t>((k / m.patch) * 28 + k % m.patch)], 1.0f / 255.0f, 0, 0, 255));
  std::vector<float> y(static_cast<size_t>(l.out_features));
  std::vector<uint8_t> yc(y.size());
  std::vector<int32_t> acc;
  op.run(nullptr, codes.data(), 1, y.data(), yc.data(), acc);
  const std::vector<int8_t> v = l.w.values();
  for (int32_t o = 0; o < l.out_features; ++o) {
    float sum = 0.0f;
    for (int32_t g = 0; g < l.w.groups(); ++g) {
      int32_t a = 0;
      for (int32_t k = g * l.w.group_size; k < std::min(P, (g + 1) * l.w.group_size); ++k)
        a += codes[static_cast<size_t>(k)] * v[static_cast<size_t>(o) * P + k];
      sum += l.w.scales[static_cast<size_t>(o) * l.w.groups() + g] * static_cast<float>(a);
    }
    const float pre = (1.0f / 255.0f) * sum + l.bias[static_cast<size_t>(o)];
    const ActGrid& g = l.output_grid;
    const int32_t q = quant::quantize_integer(pre, g.scale, g.zero_point, g.qmin, g.qmax);
    EXPECT_EQ(yc[static_cast<size_t>(o)], q);
    EXPECT_EQ(y[static_cast<size_t>(o)], quant::dequantize(q, g.scale, g.zero_point));
  }
}

TEST(EncoderFile, RoundTripGivesIdenticalModelAndLogits) {
  const std::vector<float> images = random_images(2, 3);
  for (bool qhead : {true, false}) {
    const EncoderModel m = random_encoder(13, kFormats[4], 8, 4, qhead);
    const std::string path = tmp_file(qhead ? "encoder_qhead.lbq" : "encoder.lbq");
    save_encoder_model(m, path);
    EXPECT_TRUE(is_encoder_model_file(path));
    const EncoderModel back = load_encoder_model(path);
    EXPECT_EQ(serialize_encoder_model(back), serialize_encoder_model(m));
    EncoderSession a(m), b(back);
    EXPECT_EQ(a.run(images.data(), 3), b.run(images.data(), 3));
    EXPECT_NE(describe_encoder_model(back).find("integer"), std::string::npos);
    // The op-graph loader names the file's kind.
    try {
      load_model(path);
      FAIL() << "the op-graph loader read an encoder file";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("encoder"), std::string::npos) << e.what();
    }
  }
}

TEST(EncoderFile, TruncationAndCorruptionAreCleanErrorsNamingFileAndField) {
  const std::string bytes = serialize_encoder_model(random_encoder(9, kFormats[2], 8, 8));
  // Cut at ~97 lengths and 50 flipped bytes (the checksums catch them): clean errors naming the file.
  EXPECT_EQ(rtest::damage_problems(bytes, parse_encoder_model), std::vector<std::string>{});
  // Behind resealed checksums, the structural checks name the field: the patch size.
  std::string b = bytes;
  const size_t at = b.find("test encoder") + 12 + 8;  // channels, image_size, then patch
  ASSERT_EQ(b[at], 7);
  b[at] = 5;
  reseal_model_bytes(b);
  try {
    parse_encoder_model(b, "bad.lbq");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.lbq"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("patch 5"), std::string::npos) << e.what();
  }
}

TEST(EncoderModel, ValidationNamesLayerAndField) {
  auto expect_error = [](const EncoderModel& m, const std::string& what) {
    try {
      validate_encoder_model(m, "m");
      FAIL() << "no error for " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  EncoderModel m = random_encoder(1, kFormats[1], 8, 8);
  validate_encoder_model(m, "m");
  EncoderModel a = m;
  a.layers[1].fc2.input_grid.scale *= 2.0f;  // not fc1's output grid
  expect_error(a, "layer 1 mlp_fc2: input grid");
  EncoderModel b = m;
  b.layers[0].q.w.scales[3] = 0.0f;
  expect_error(b, "layer 0 attn_q: weight scales[3]");
  EncoderModel c = m;
  c.layers[0].add2_grid.zero_point = 300;
  expect_error(c, "layer 0 add2 grid zero point 300");
  EncoderModel d = m;
  d.position.pop_back();
  expect_error(d, "position embedding has");
  EncoderModel e = m;
  e.layers[1].k.has_input_grid = true;
  expect_error(e, "layer 1 attn_k: has an input grid");
}
