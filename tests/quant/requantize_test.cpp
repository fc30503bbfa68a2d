#include "quant/requantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "base/error.h"
#include "quant/exact_rounding.h"

using namespace lowbit::quant;

namespace {
// round_half_even(acc * M / 2^shift) as an exact rational.
int64_t exact(int32_t acc, FixedPointMultiplier m) {
  return test_reference::exact_div_pow2_half_even(static_cast<__int128>(acc) * m.multiplier, m.shift);
}
}  // namespace

TEST(Requantize, MultiplierRepresentation) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> e(-31.0, 30.9);
  for (int i = 0; i < 100000; ++i) {
    const double m = std::exp2(e(rng));
    const FixedPointMultiplier f = make_fixed_point_multiplier(m);
    if (m < std::ldexp(1.0, -32)) {
      ASSERT_EQ(f.multiplier, 0);
      continue;
    }
    ASSERT_GE(f.shift, 0);
    ASSERT_LE(f.shift, 62);
    if (f.shift < 62) {
      ASSERT_GE(f.multiplier, 1 << 30) << m;
    }
    // relative error of the representation is at most 2^-31 (half an ulp of a 31-bit mantissa)
    ASSERT_LE(std::fabs(f.value() - m), m * std::ldexp(1.0, -31) * 1.0000001) << m;
  }
}

TEST(Requantize, RejectsBadMultipliers) {
  EXPECT_THROW(make_fixed_point_multiplier(0.0), lowbit::Error);
  EXPECT_THROW(make_fixed_point_multiplier(-1.0), lowbit::Error);
  EXPECT_THROW(make_fixed_point_multiplier(std::nan("")), lowbit::Error);
  EXPECT_THROW(make_fixed_point_multiplier(std::ldexp(1.0, 31)), lowbit::Error);
  EXPECT_EQ(make_fixed_point_multiplier(1e-12).multiplier, 0);
}

// The integer result equals the exact rational rounding of acc * M * 2^-shift, and lies
// within 0.5 + |acc| * m * 2^-31 of the exact real product acc * m.
TEST(Requantize, BoundedErrorAgainstExactRationalRandom) {
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<double> e(-24.0, 4.0);
  for (int i = 0; i < 300000; ++i) {
    const double m = std::exp2(e(rng));
    const FixedPointMultiplier f = make_fixed_point_multiplier(m);
    const int32_t acc = static_cast<int32_t>(rng());
    const int64_t got = apply_multiplier(acc, f);
    ASSERT_EQ(got, exact(acc, f));
    const long double real = static_cast<long double>(acc) * m;
    const long double bound = 0.5L + std::fabs(static_cast<long double>(acc)) * m * std::ldexp(1.0L, -31) + 1e-9L;
    ASSERT_LE(std::fabs(static_cast<long double>(got) - real), bound) << acc << " * " << m;
  }
}

// Exhaustive over every product of an int8 activation and an int8 weight (what a single
// MAC produces) for a few multipliers, including a power of two where ties are real ties.
TEST(Requantize, ExhaustiveInt8Products) {
  for (double m : {0.5, 1.0 / 3.0, 0.0123, 2.0 / 255.0, 1.7}) {
    const FixedPointMultiplier f = make_fixed_point_multiplier(m);
    for (int a = -128; a <= 127; ++a)
      for (int w = -128; w <= 127; ++w) {
        const int32_t acc = a * w;
        const int32_t y = requantize(acc, f, 3, -128, 127);
        const int64_t e = std::min<int64_t>(127, std::max<int64_t>(-128, exact(acc, f) + 3));
        ASSERT_EQ(y, e);
      }
  }
  const FixedPointMultiplier half = make_fixed_point_multiplier(0.5);
  EXPECT_EQ(requantize(1, half, 0, -128, 127), 0);   // 0.5 -> 0
  EXPECT_EQ(requantize(3, half, 0, -128, 127), 2);   // 1.5 -> 2
  EXPECT_EQ(requantize(5, half, 0, -128, 127), 2);   // 2.5 -> 2
  EXPECT_EQ(requantize(-3, half, 0, -128, 127), -2); // -1.5 -> -2
  EXPECT_EQ(requantize(1000, half, 0, -128, 127), 127);
  EXPECT_EQ(requantize(1000, half, 0, 0, 15), 15);
}

#include "quant/add_requantize.h"

// Residual add: the integer result is the exact rational rounding of the fixed-point sum and
// lies within 0.5 + (|a| + |b|) * 2^-30 * ratio of the real-valued rescaled sum.
TEST(AddRequantize, ExhaustiveUint8PairsAgainstReal) {
  for (auto ratios : {std::pair<double, double>{1.0, 1.0}, {0.37, 1.9}, {2.5, 0.01}}) {
    const AddMultipliers m = make_add_multipliers(ratios.first, ratios.second);
    ASSERT_LT(std::max(m.a, m.b), 2147483647);
    ASSERT_GE(std::max(m.a, m.b), 1 << 30);
    for (int a = -255; a <= 255; a += 1)
      for (int b = -255; b <= 255; b += 3) {
        const int32_t y = requantize_add(a, b, m, 0, -100000, 100000);
        const double real = a * ratios.first + b * ratios.second;
        const double bound = 0.5 + (std::abs(a) * ratios.first + std::abs(b) * ratios.second) * std::ldexp(1.0, -30);
        ASSERT_LE(std::fabs(y - real), bound + 1e-9) << a << "," << b;
      }
  }
  const AddMultipliers unit = make_add_multipliers(1.0, 1.0);
  EXPECT_EQ(requantize_add(3, 4, unit, 10, 0, 255), 17);
  EXPECT_EQ(requantize_add(300, 4, unit, 10, 0, 255), 255);
  EXPECT_THROW(make_add_multipliers(0.0, 1.0), lowbit::Error);
  EXPECT_THROW(make_add_multipliers(1e6, 1.0), lowbit::Error);
}
