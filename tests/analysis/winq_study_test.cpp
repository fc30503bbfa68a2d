// The WinQ study's speed-up, smoothing and outputs on hand-made loss curves.
#include <gtest/gtest.h>

#include "analysis/winq_study.h"

namespace lowbit::analysis {
namespace {

WinqRun run(const std::string& variant, int64_t seed, std::vector<double> losses) {
  WinqRun r;
  r.bits = "1";
  r.variant = variant;
  r.seed = seed;
  r.losses = std::move(losses);
  r.val_acc = variant == "winq" ? 0.8 : 0.7;
  r.val_loss = 0.5;
  return r;
}

TEST(WinqStudy, SpeedupIsBaselineStepsOverFirstStepReachingItsFinalLoss) {
  WinqStudyResult r;
  r.options.bits = {"1"};
  r.options.seeds = 1;
  r.options.steps = 10;
  r.variants = {"baseline", "winq", "slow"};
  r.smoothing_window = 1;  // alpha = 1: no smoothing
  // Baseline ends at 0.5; WinQ first reaches 0.5 at step 4: speed-up 10 / 4 = 2.5.
  r.runs.push_back(run("baseline", 0, {1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.65, 0.6, 0.55, 0.5}));
  r.runs.push_back(run("winq", 0, {1.0, 0.8, 0.6, 0.5, 0.45, 0.4, 0.4, 0.4, 0.4, 0.4}));
  r.runs.push_back(run("slow", 0, {1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.9}));
  ASSERT_TRUE(r.speedup("1", "winq", 0).has_value());
  EXPECT_DOUBLE_EQ(*r.speedup("1", "winq", 0), 2.5);
  EXPECT_DOUBLE_EQ(*r.speedup("1", "baseline", 0), 1.0);
  EXPECT_FALSE(r.speedup("1", "slow", 0).has_value());  // never reaches it
  EXPECT_DOUBLE_EQ(*r.mean_speedup("1", "winq"), 2.5);
  const std::string table = r.table();
  EXPECT_NE(table.find("| 1 | winq |"), std::string::npos);
  EXPECT_NE(table.find("2.50x"), std::string::npos);
  EXPECT_NE(r.to_csv().find("1,winq,0,0.8"), std::string::npos);
  EXPECT_TRUE(r.to_json()["runs"][2]["speedup"].is_null());
  EXPECT_NE(r.loss_svg("1").find("optimizer step"), std::string::npos);
}

TEST(WinqStudy, SmoothingIsADebiasedEma) {
  WinqStudyResult r;
  r.smoothing_window = 3;  // alpha = 0.5
  const auto s = r.smoothed(run("baseline", 0, {2.0, 2.0, 4.0}));
  // Debiased: a constant sequence stays constant; then 0.5 * 4 + 0.5 * 2 weighted by 1 / (1 - 0.5^3).
  EXPECT_DOUBLE_EQ(s[0], 2.0);
  EXPECT_DOUBLE_EQ(s[1], 2.0);
  EXPECT_DOUBLE_EQ(s[2], (0.5 * 4.0 + 0.25 * 2.0 + 0.125 * 2.0) / (1.0 - 0.125));
}

}  // namespace
}  // namespace lowbit::analysis
