#include "quant/quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "base/error.h"
#include "quant/qparams.h"

using namespace lowbit::quant;

namespace {
std::vector<QuantSpec> all_integer_specs() {
  std::vector<QuantSpec> specs;
  for (int bits = 2; bits <= 8; ++bits)
    for (bool is_signed : {true, false})
      for (bool symmetric : {true, false})
        for (bool narrow : {false, true}) {
          QuantSpec s;
          s.bits = bits;
          s.is_signed = is_signed;
          s.symmetric = symmetric;
          s.narrow_range = narrow;
          if (bits == 2 && narrow && is_signed && !symmetric) continue;  // asymmetric ternary: invalid
          specs.push_back(s);
        }
  return specs;
}
}  // namespace

TEST(QuantSpec, Ranges) {
  EXPECT_EQ(QuantSpec::int_symmetric(8).qmin(), -128);
  EXPECT_EQ(QuantSpec::int_symmetric(8).qmax(), 127);
  EXPECT_EQ(QuantSpec::int_symmetric(4).qmin(), -8);
  EXPECT_EQ(QuantSpec::uint_asymmetric(4).qmax(), 15);
  EXPECT_EQ(QuantSpec::ternary().qmin(), -1);
  EXPECT_EQ(QuantSpec::ternary().qmax(), 1);
  EXPECT_EQ(QuantSpec::ternary().levels(), 3);
  EXPECT_EQ(QuantSpec::binary().qmin(), -1);
  EXPECT_EQ(QuantSpec::binary().qmax(), 1);
  EXPECT_EQ(QuantSpec::binary().levels(), 2);
  EXPECT_EQ(QuantSpec::seq2().qmin(), -3);
  EXPECT_EQ(QuantSpec::seq2().qmax(), 3);
  EXPECT_EQ(QuantSpec::seq2().levels(), 4);
}

TEST(QuantSpec, ValidateRejectsImpossibleCombinations) {
  QuantSpec asym_ternary = QuantSpec::ternary();
  asym_ternary.symmetric = false;
  EXPECT_THROW(asym_ternary.validate(), lowbit::Error);
  QuantSpec asym_binary = QuantSpec::binary();
  asym_binary.symmetric = false;
  EXPECT_THROW(asym_binary.validate(), lowbit::Error);
  QuantSpec nine = QuantSpec::int_symmetric(9);
  EXPECT_THROW(nine.validate(), lowbit::Error);
  QuantSpec one = QuantSpec::int_symmetric(1);
  EXPECT_THROW(one.validate(), lowbit::Error);
  QuantSpec group0 = QuantSpec::int_symmetric(4, Granularity::PerGroup);
  EXPECT_THROW(group0.validate(), lowbit::Error);
  try {
    asym_ternary.validate();
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("ternary"), std::string::npos);
  }
  for (const auto& s : all_integer_specs()) EXPECT_NO_THROW(s.validate()) << s.describe();
  EXPECT_NO_THROW(QuantSpec::binary().validate());
  EXPECT_NO_THROW(QuantSpec::seq2().validate());
}

// Every grid point survives dequantize -> quantize, for every integer spec and zero point.
TEST(Quantize, RoundTripExhaustive) {
  for (const auto& spec : all_integer_specs()) {
    const GridParams g = GridParams::of(spec);
    for (float scale : {1.0f, 0.1f, 0.0078125f, 3.7e-3f}) {
      const int zmin = spec.symmetric ? 0 : spec.qmin();
      const int zmax = spec.symmetric ? 0 : spec.qmax();
      for (int z = zmin; z <= zmax; ++z)
        for (int q = spec.qmin(); q <= spec.qmax(); ++q)
          ASSERT_EQ(quantize(dequantize(q, scale, z), scale, z, g), q) << spec.describe() << " s=" << scale << " z=" << z;
    }
  }
}

// Midpoints between grid points go to the even neighbour; outside the range values clamp.
TEST(Quantize, MidpointsAndClampingExhaustiveInt8AndInt4) {
  for (const auto& spec : {QuantSpec::int_symmetric(8), QuantSpec::int_symmetric(4), QuantSpec::uint_asymmetric(8),
                           QuantSpec::uint_asymmetric(4)}) {
    const GridParams g = GridParams::of(spec);
    const float scale = 0.5f;  // power of two: x / s is exact, so the tie is a real tie
    for (int q = spec.qmin(); q < spec.qmax(); ++q) {
      const float mid = (static_cast<float>(q) + 0.5f) * scale;
      const int expected = (q % 2 == 0) ? q : q + 1;
      ASSERT_EQ(quantize(mid, scale, 0, g), expected) << spec.describe() << " q=" << q;
    }
    EXPECT_EQ(quantize(1e9f, scale, 0, g), spec.qmax());
    EXPECT_EQ(quantize(-1e9f, scale, 0, g), spec.qmin());
    EXPECT_EQ(quantize(std::numeric_limits<float>::infinity(), scale, 0, g), spec.qmax());
    EXPECT_EQ(quantize(-std::numeric_limits<float>::infinity(), scale, 0, g), spec.qmin());
    EXPECT_EQ(quantize(std::numeric_limits<float>::quiet_NaN(), scale, 0, g), 0);
  }
}

// quantize equals the nearest grid point (ties aside) for random inputs: brute force check.
TEST(Quantize, NearestGridPointRandom) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
  for (const auto& spec : all_integer_specs()) {
    const GridParams g = GridParams::of(spec);
    const QParams p = choose_qparams(-1.3f, 2.1f, spec);
    for (int i = 0; i < 2000; ++i) {
      const float x = dist(rng);
      const int q = quantize(x, p.scale, p.zero_point, g);
      // brute force: the grid value closest to x / s + z in the same float arithmetic
      const float t = x / p.scale + static_cast<float>(p.zero_point);
      int best = spec.qmin();
      for (int c = spec.qmin(); c <= spec.qmax(); ++c)
        if (std::fabs(static_cast<float>(c) - t) < std::fabs(static_cast<float>(best) - t)) best = c;
      const float d_best = std::fabs(static_cast<float>(best) - t);
      const float d_q = std::fabs(static_cast<float>(q) - t);
      ASSERT_LE(d_q, d_best + 1e-4f) << spec.describe() << " x=" << x;
    }
  }
}

TEST(Quantize, BinaryIsSignWithZeroToPlusOne) {
  const GridParams g = GridParams::of(QuantSpec::binary());
  EXPECT_EQ(quantize(0.3f, 0.7f, 0, g), 1);
  EXPECT_EQ(quantize(-0.3f, 0.7f, 0, g), -1);
  EXPECT_EQ(quantize(0.0f, 0.7f, 0, g), 1);
  EXPECT_EQ(quantize(-1e-3f, 0.7f, 0, g), -1);
  // |x| below ~1e-7 * s is absorbed by the -0.5 offset in float and maps to +1, like 0.
  EXPECT_EQ(quantize(-1e-20f, 0.7f, 0, g), 1);
  EXPECT_EQ(quantize(100.0f, 0.7f, 0, g), 1);
  EXPECT_EQ(quantize(-100.0f, 0.7f, 0, g), -1);
  EXPECT_FLOAT_EQ(fake_quantize(-5.0f, 0.7f, 0, g), -0.7f);
}

// ParetoQ's SEQ 2-bit: alpha * (round(2 * clamp(w / alpha, -0.99, 0.99) - 0.5) + 0.5) / 2
// with lowbit's scale s = alpha / 4: levels {-3, -1, 1, 3} * s.
TEST(Quantize, Seq2MatchesParetoQFormula) {
  const GridParams g = GridParams::of(QuantSpec::seq2());
  const float alpha = 0.8f;
  const float s = alpha / 4.0f;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1.5f, 1.5f);
  for (int i = 0; i < 20000; ++i) {
    const float w = dist(rng);
    const float u = std::min(std::max(w / alpha, -0.99f), 0.99f);
    const float paretoq = alpha * (std::nearbyint(2.0f * u - 0.5f) + 0.5f) / 2.0f;
    const float ours = fake_quantize(w, s, 0, g);
    // Both are one of four levels; away from decision boundaries (where float paths may
    // differ by one ulp in the argument of round) they pick the same level.
    const float boundary_distance = std::fabs(std::fabs(w / alpha) - 0.5f);
    if (boundary_distance > 1e-5f && std::fabs(w / alpha) > 1e-5f) {
      ASSERT_NEAR(ours, paretoq, 1e-6f) << w;
    }
  }
}

// Ternary (SEQ 1.58-bit): alpha * round(1.5 * clamp(w / alpha, -0.99, 0.99)) / 1.5 with s = alpha / 1.5.
TEST(Quantize, TernaryLevels) {
  const GridParams g = GridParams::of(QuantSpec::ternary());
  const float s = 0.5f;
  EXPECT_EQ(quantize(0.2f, s, 0, g), 0);
  EXPECT_EQ(quantize(0.3f, s, 0, g), 1);
  EXPECT_EQ(quantize(-0.3f, s, 0, g), -1);
  EXPECT_EQ(quantize(9.0f, s, 0, g), 1);
  EXPECT_EQ(quantize(0.25f, s, 0, g), 0);  // tie: 0.5 -> 0 (even)
}

TEST(QParams, SymmetricAndAsymmetric) {
  QParams p = choose_qparams(-1.0f, 0.5f, QuantSpec::int_symmetric(8));
  EXPECT_FLOAT_EQ(p.scale, 1.0f / 127.0f);
  EXPECT_EQ(p.zero_point, 0);
  p = choose_qparams(0.0f, 6.0f, QuantSpec::uint_asymmetric(8));
  EXPECT_FLOAT_EQ(p.scale, 6.0f / 255.0f);
  EXPECT_EQ(p.zero_point, 0);
  p = choose_qparams(-1.0f, 3.0f, QuantSpec::uint_asymmetric(8));
  EXPECT_FLOAT_EQ(p.scale, 4.0f / 255.0f);
  EXPECT_EQ(p.zero_point, 64);  // 0 - round(-1 / (4/255)) = round(63.75) = 64
  p = choose_qparams(0.0f, 0.0f, QuantSpec::int_symmetric(8));
  EXPECT_EQ(p.scale, 1.0f);
  p = choose_qparams(-0.8f, 0.6f, QuantSpec::seq2());
  EXPECT_FLOAT_EQ(p.scale, 0.8f / 3.0f);
  EXPECT_THROW(choose_qparams(1.0f, -1.0f, QuantSpec::int_symmetric(8)), lowbit::Error);
  EXPECT_THROW(choose_qparams(0.0f, std::numeric_limits<float>::infinity(), QuantSpec::int_symmetric(8)), lowbit::Error);
}

// Zero is exactly representable for every spec and range (padding and ReLU depend on it).
TEST(QParams, ZeroIsExactlyRepresentable) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-10.0f, 10.0f);
  for (const auto& spec : all_integer_specs()) {
    const GridParams g = GridParams::of(spec);
    for (int i = 0; i < 200; ++i) {
      float a = dist(rng), b = dist(rng);
      const QParams p = choose_qparams(std::min(a, b), std::max(a, b), spec);
      ASSERT_GE(p.zero_point, spec.qmin());
      ASSERT_LE(p.zero_point, spec.qmax());
      ASSERT_EQ(fake_quantize(0.0f, p.scale, p.zero_point, g), 0.0f) << spec.describe();
    }
  }
}

TEST(Granularity, QParamIndex) {
  const std::vector<int64_t> shape{4, 3, 2, 2};  // conv weight [O, I, kh, kw], K = 12
  QuantSpec pc = QuantSpec::int_symmetric(4, Granularity::PerChannel);
  EXPECT_EQ(num_qparams(pc, shape), 4);
  EXPECT_EQ(qparam_index(pc, shape, 0), 0);
  EXPECT_EQ(qparam_index(pc, shape, 11), 0);
  EXPECT_EQ(qparam_index(pc, shape, 12), 1);
  EXPECT_EQ(qparam_index(pc, shape, 47), 3);
  QuantSpec pg = QuantSpec::int_symmetric(4, Granularity::PerGroup);
  pg.group_size = 5;  // K = 12 -> groups of 5, 5, 2
  EXPECT_EQ(num_qparams(pg, shape), 12);
  EXPECT_EQ(qparam_index(pg, shape, 4), 0);
  EXPECT_EQ(qparam_index(pg, shape, 5), 1);
  EXPECT_EQ(qparam_index(pg, shape, 10), 2);
  EXPECT_EQ(qparam_index(pg, shape, 12), 3);
  QuantSpec pt = QuantSpec::int_symmetric(8);
  EXPECT_EQ(num_qparams(pt, shape), 1);
  QuantSpec axis1 = QuantSpec::int_symmetric(8, Granularity::PerChannel);
  axis1.axis = 1;
  EXPECT_EQ(num_qparams(axis1, shape), 3);
  EXPECT_EQ(qparam_index(axis1, shape, 4), 1);
}
