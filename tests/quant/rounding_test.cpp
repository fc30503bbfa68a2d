#include "quant/rounding.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "quant/exact_rounding.h"

using lowbit::quant::round_half_even;
using lowbit::quant::shift_right_round_half_even;

TEST(Rounding, TiesGoToEven) {
  EXPECT_EQ(round_half_even(0.5f), 0.0f);
  EXPECT_EQ(round_half_even(1.5f), 2.0f);
  EXPECT_EQ(round_half_even(2.5f), 2.0f);
  EXPECT_EQ(round_half_even(-0.5f), 0.0f);
  EXPECT_EQ(round_half_even(-1.5f), -2.0f);
  EXPECT_EQ(round_half_even(-2.5f), -2.0f);
  EXPECT_EQ(round_half_even(2.4999998f), 2.0f);
  EXPECT_EQ(round_half_even(2.5000002f), 3.0f);
}

// Every float with 1/4 <= |x| <= 2^22 (about 4e8 values), and the sub-1/4 range sampled: the
// bounded form must agree with nearbyint bit for bit, up to the sign of a zero result.
TEST(Rounding, BoundedFormEqualsNearbyintOnItsWholeRange) {
  const uint32_t lo = 0x3E800000u;  // 0.25f
  const uint32_t hi = 0x4A800000u;  // 2^22
  int64_t mismatches = 0;
  for (uint32_t bits = lo; bits <= hi; ++bits) {
    float x;
    std::memcpy(&x, &bits, sizeof x);
    mismatches += lowbit::quant::round_half_even_bounded(x) != round_half_even(x);
    mismatches += lowbit::quant::round_half_even_bounded(-x) != round_half_even(-x);
  }
  EXPECT_EQ(mismatches, 0);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> small(-0.25f, 0.25f);
  for (int i = 0; i < 100000; ++i) {
    const float x = small(rng);
    ASSERT_EQ(lowbit::quant::round_half_even_bounded(x), 0.0f) << x;
  }
  EXPECT_EQ(lowbit::quant::round_half_even_bounded(lowbit::quant::kRoundBoundedLimit), lowbit::quant::kRoundBoundedLimit);
  EXPECT_EQ(lowbit::quant::round_half_even_bounded(4194303.5f), 4194304.0f);  // tie to even at the top
  EXPECT_EQ(lowbit::quant::round_half_even_bounded(-4194302.5f), -4194302.0f);
}

static int64_t exact_shift(int64_t x, int n) { return lowbit::quant::test_reference::exact_div_pow2_half_even(x, n); }

TEST(Rounding, ShiftRightMatchesExactRationalExhaustiveSmall) {
  for (int n = 0; n <= 8; ++n)
    for (int64_t x = -4096; x <= 4096; ++x) ASSERT_EQ(shift_right_round_half_even(x, n), exact_shift(x, n)) << x << " >> " << n;
}

TEST(Rounding, ShiftRightMatchesExactRationalRandom) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 200000; ++i) {
    const int n = static_cast<int>(rng() % 63);
    const int64_t x = static_cast<int64_t>(rng()) >> (rng() % 2);
    ASSERT_EQ(shift_right_round_half_even(x, n), exact_shift(x, n)) << x << " >> " << n;
  }
}

TEST(Rounding, ShiftRightTiesExplicit) {
  EXPECT_EQ(shift_right_round_half_even(2, 2), 0);    // 0.5 -> 0
  EXPECT_EQ(shift_right_round_half_even(6, 2), 2);    // 1.5 -> 2
  EXPECT_EQ(shift_right_round_half_even(10, 2), 2);   // 2.5 -> 2
  EXPECT_EQ(shift_right_round_half_even(-2, 2), 0);   // -0.5 -> 0
  EXPECT_EQ(shift_right_round_half_even(-6, 2), -2);  // -1.5 -> -2
  EXPECT_EQ(shift_right_round_half_even(-10, 2), -2); // -2.5 -> -2
}
