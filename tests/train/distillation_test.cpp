// Knowledge distillation's loss (train/distillation.h): values worked by hand, the analytic
// gradient, the label-only and teacher-only ends, and the config's checks.
#include <gtest/gtest.h>

#include <cmath>

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

#include "base/error.h"
#include "train/distillation.h"

namespace lowbit::train {
namespace {

torch::Tensor row(std::vector<double> v) { return torch::tensor(v, torch::kFloat64).reshape({1, -1}); }

TEST(Distillation, KlWorkedByHand) {
  // Teacher logits (ln 3, 0): p_t = (3/4, 1/4); student (0, 0): p_s = (1/2, 1/2).
  // KL = 3/4 ln(3/2) + 1/4 ln(1/2).
  const auto student = row({0.0, 0.0}), teacher = row({std::log(3.0), 0.0});
  const auto labels = torch::tensor({int64_t{1}});
  const double kl1 = 0.75 * std::log(1.5) + 0.25 * std::log(0.5);
  EXPECT_NEAR(distillation_loss(student, teacher, labels, 1.0, 1.0).item<double>(), kl1, 1e-12);
  // T = 2: p_t = (sqrt3, 1) / (sqrt3 + 1), the student still uniform, and the T^2 = 4 factor.
  const double a = std::sqrt(3.0) / (std::sqrt(3.0) + 1.0), b = 1.0 - a;
  const double kl2 = a * std::log(2.0 * a) + b * std::log(2.0 * b);
  EXPECT_NEAR(distillation_loss(student, teacher, labels, 1.0, 2.0).item<double>(), 4.0 * kl2, 1e-12);
}

TEST(Distillation, WeightZeroIsCrossEntropyAndMixesLinearly) {
  torch::manual_seed(3);
  const auto s = torch::randn({6, 10}, torch::kFloat64), t = torch::randn({6, 10}, torch::kFloat64);
  const auto y = torch::randint(0, 10, {6}, torch::kInt64);
  const double ce = torch::nn::functional::cross_entropy(s, y).item<double>();
  EXPECT_EQ(distillation_loss(s, t, y, 0.0, 1.0).item<double>(), ce);
  const double kd = distillation_loss(s, t, y, 1.0, 3.0).item<double>();
  EXPECT_GT(kd, 0.0);
  EXPECT_NEAR(distillation_loss(s, t, y, 0.3, 3.0).item<double>(), 0.7 * ce + 0.3 * kd, 1e-12);
}

TEST(Distillation, SameLogitsCostNothing) {
  torch::manual_seed(4);
  const auto s = torch::randn({5, 7}, torch::kFloat64).requires_grad_(true);
  const auto y = torch::randint(0, 7, {5}, torch::kInt64);
  const auto loss = distillation_loss(s, s.detach().clone(), y, 1.0, 2.0);
  EXPECT_NEAR(loss.item<double>(), 0.0, 1e-14);
  loss.backward();
  EXPECT_LT(s.grad().abs().max().item<double>(), 1e-14);
}

TEST(Distillation, GradientIsTheSoftmaxDifference) {
  // d/ds of w T^2 KL(p_t || softmax(s / T)), mean over rows: w T (softmax(s / T) - p_t) / rows.
  torch::manual_seed(5);
  const int64_t rows = 4;
  const double w = 0.6, T = 1.7;
  const auto s = torch::randn({rows, 9}, torch::kFloat64).requires_grad_(true);
  const auto t = torch::randn({rows, 9}, torch::kFloat64) * 2.0;
  const auto y = torch::randint(0, 9, {rows}, torch::kInt64);
  distillation_loss(s, t, y, w, T).backward();
  const auto sd = s.detach();
  const auto soft = w * T * (torch::softmax(sd / T, 1) - torch::softmax(t / T, 1)) / double(rows);
  const auto hard = (1.0 - w) * (torch::softmax(sd, 1) - torch::one_hot(y, 9).to(torch::kFloat64)) / double(rows);
  EXPECT_LT((s.grad() - (soft + hard)).abs().max().item<double>(), 1e-12);
  // The teacher is a constant: its logits get no gradient even if they ask for one.
  const auto s2 = sd.clone().requires_grad_(true), t2 = t.clone().requires_grad_(true);
  distillation_loss(s2, t2, y, 1.0, T).backward();
  EXPECT_TRUE(s2.grad().defined());
  EXPECT_FALSE(t2.grad().defined());
}

TEST(Distillation, SequenceLogitsAreRows) {
  torch::manual_seed(6);
  const auto s = torch::randn({2, 3, 5}, torch::kFloat64), t = torch::randn({2, 3, 5}, torch::kFloat64);
  const auto y = torch::randint(0, 5, {2, 3}, torch::kInt64);
  EXPECT_NEAR(distillation_loss(s, t, y, 0.5, 2.0).item<double>(),
              distillation_loss(s.reshape({6, 5}), t.reshape({6, 5}), y.reshape({6}), 0.5, 2.0).item<double>(), 1e-14);
}

TEST(Distillation, ClassCountMismatchIsAnError) {
  const auto y = torch::tensor({int64_t{0}});
  try {
    distillation_loss(torch::zeros({1, 10}), torch::zeros({1, 7}), y, 1.0, 1.0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 7]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("same classes"), std::string::npos) << e.what();
  }
}

TEST(Distillation, ConfigChecksAndRoundTrip) {
  DistillConfig c;
  EXPECT_FALSE(c.enabled());
  EXPECT_FALSE(DistillConfig::from_run_config(nlohmann::json::object()).enabled());
  c.teacher = "/runs/fp32";
  c.weight = 0.25;
  c.temperature = 4.0;
  const DistillConfig back = DistillConfig::from_run_config({{"distill", c.to_json()}});
  EXPECT_EQ(back.teacher, c.teacher);
  EXPECT_EQ(back.weight, 0.25);
  EXPECT_EQ(back.temperature, 4.0);
  c.weight = 1.5;
  EXPECT_THROW(c.validate(), Error);
  c.weight = 1.0;
  c.temperature = 0.0;
  EXPECT_THROW(c.validate(), Error);
  EXPECT_THROW(DistillConfig::from_run_config({{"distill", {{"teacher", 3}}}}), Error);
}

}  // namespace
}  // namespace lowbit::train
