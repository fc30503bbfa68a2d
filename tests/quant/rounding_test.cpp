#include "quant/rounding.h"

#include <gtest/gtest.h>

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
