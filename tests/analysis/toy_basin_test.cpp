// The mechanism on the 2-D toy: rounding and a second-order PTQ objective both leave the basin;
// STE-QAT comes back within a bounded number of steps and stays.
#include <gtest/gtest.h>

#include "analysis/toy_basin.h"

namespace lowbit::analysis {
namespace {

TEST(ToyBasin, FpPointIsAMinimumInsideTheBasin) {
  const ToyBasin t;
  EXPECT_TRUE(t.in_basin(t.fp));
  EXPECT_NEAR(t.loss(t.fp), 0.0, 1e-12);
  const Point2 g = t.gradient(t.fp);
  EXPECT_NEAR(std::hypot(g[0], g[1]), 0.0, 1e-12);
  // Gradient matches finite differences outside the basin too (where the wall acts).
  const Point2 p = {0.1, 1.2};
  const double h = 1e-6;
  EXPECT_NEAR(t.gradient(p)[0], (t.loss({p[0] + h, p[1]}) - t.loss({p[0] - h, p[1]})) / (2 * h), 1e-4);
  EXPECT_NEAR(t.gradient(p)[1], (t.loss({p[0], p[1] + h}) - t.loss({p[0], p[1] - h})) / (2 * h), 1e-4);
}

TEST(ToyBasin, LowLossGridPointsExist) {
  const ToyBasin t;
  // (0, 0) and (1, 1) are on the river.
  EXPECT_TRUE(t.in_basin({0.0, 0.0}));
  EXPECT_TRUE(t.in_basin({1.0, 1.0}));
  EXPECT_LT(t.loss({0.0, 0.0}), 0.1);
}

TEST(ToyBasin, RoundingAndSecondOrderPtqLeaveTheBasin) {
  const ToyBasin t;
  for (const Point2& q : {toy_round_to_nearest(t), toy_second_order(t), toy_second_order_exhaustive(t)}) {
    EXPECT_FALSE(t.in_basin(q)) << "(" << q[0] << ", " << q[1] << ")";
    EXPECT_GT(t.loss(q), 100.0 * t.loss({0.0, 0.0}));
  }
}

TEST(ToyBasin, SteQatReentersTheBasinAndStays) {
  const ToyBasin t;
  const int steps = 50;
  const auto traj = toy_ste_qat(t, 5e-4, steps);
  ASSERT_EQ(traj.size(), static_cast<size_t>(steps + 1));
  EXPECT_FALSE(traj[0].in_basin);  // starts at the rounded point
  EXPECT_GT(traj[0].inward_cosine, 0.0);  // the wall gradient points back toward the FP point
  int first_inside = -1;
  for (const auto& s : traj) {
    if (s.in_basin) {
      first_inside = s.step;
      break;
    }
  }
  ASSERT_GE(first_inside, 1);
  EXPECT_LE(first_inside, 10);
  for (size_t k = static_cast<size_t>(first_inside); k < traj.size(); ++k) {
    EXPECT_TRUE(traj[k].in_basin) << "left the basin again at step " << k;
    EXPECT_LT(traj[k].deployed_loss, traj[0].deployed_loss / 100.0);
  }
}

}  // namespace
}  // namespace lowbit::analysis
