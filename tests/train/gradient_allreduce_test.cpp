// train/gradient_allreduce.h without the network: the hooks fill the buckets with the gradients
// backward produces, launch them in order while backward runs, and install() gives back exactly
// the plain backward's gradients (the launch here is the identity: one rank).
#include <gtest/gtest.h>

#include "base/error.h"
#include "models/net.h"
#include "train/gradient_allreduce.h"

namespace lowbit::train {
namespace {

std::vector<torch::Tensor> trainable(const models::Net& net) {
  std::vector<torch::Tensor> out;
  for (const auto& p : net->parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}

torch::Tensor input_for(const std::string& model) {
  if (model == "gpt-tiny") return torch::randint(0, 256, {2, 16}, torch::kInt64);
  return torch::rand({4, 1, 28, 28});
}

torch::Tensor loss_of(models::Net& net, const torch::Tensor& x) {
  return net->forward(x).to(torch::kDouble).square().mean().to(torch::kFloat);
}

// Backward produces the gradients in the reverse of registration order for the zoo models, so
// every bucket is launched the moment its last gradient arrives; and the installed gradients are
// the plain backward's, bit for bit.
class BucketOrder : public ::testing::TestWithParam<std::string> {};

TEST_P(BucketOrder, LaunchedDuringBackwardInOrderWithPlainGradients) {
  torch::manual_seed(7);
  models::Net net = models::make_model(GetParam());
  net->train();
  const auto x = input_for(GetParam());
  const auto params = trainable(net);
  loss_of(net, x).backward();
  std::vector<torch::Tensor> plain;
  for (const auto& p : params) plain.push_back(p.grad().clone());
  for (auto p : params) p.mutable_grad().reset();

  const auto ordered = in_backward_order(net->parameters(), params);
  ASSERT_EQ(ordered.size(), params.size());
  int launches = 0;
  GradientBuckets buckets(ordered, 64 * 1024, [&](const torch::Tensor&) { ++launches; });
  ASSERT_GE(buckets.bucket_count(), 2u) << "pick a smaller bucket size so that the order is tested";
  buckets.begin();
  loss_of(net, x).backward();
  const int during = launches;
  buckets.finish();
  EXPECT_EQ(during, static_cast<int>(buckets.bucket_count())) << "buckets left for after backward";
  EXPECT_EQ(launches, static_cast<int>(buckets.bucket_count()));
  // launched_after[k] == the gradients in buckets 0..k: each launched when its last one came.
  std::vector<int64_t> expected;
  {
    int64_t bytes = 0, count = 0;
    for (size_t k = 0; k < ordered.size(); ++k) {
      const int64_t nb = ordered[k].numel() * 4;
      if (k > 0 && bytes + nb > 64 * 1024) {
        expected.push_back(count);
        bytes = 0;
      }
      bytes += nb;
      ++count;
    }
    expected.push_back(count);
  }
  EXPECT_EQ(buckets.launched_after(), expected);
  buckets.install();
  for (size_t k = 0; k < params.size(); ++k) {
    ASSERT_TRUE(params[k].grad().defined());
    EXPECT_TRUE(torch::equal(params[k].grad(), plain[k])) << "parameter " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Zoo, BucketOrder, ::testing::Values("cnn", "resnet8", "gpt-tiny"));

TEST(GradientBuckets, TiedParameterGetsItsSummedGradientOnce) {
  auto w = torch::randn({3, 3}).requires_grad_(true);
  auto u = torch::randn({3}).requires_grad_(true);
  const auto x = torch::randn({2, 3});
  auto loss = [&] { return (torch::matmul(torch::matmul(x, w), w) + u).tanh().sum(); };
  loss().backward();
  const auto plain_w = w.grad().clone(), plain_u = u.grad().clone();
  w.mutable_grad().reset();
  u.mutable_grad().reset();
  GradientBuckets buckets({u, w}, 1 << 20, [](const torch::Tensor&) {});
  buckets.begin();
  loss().backward();  // w is used twice: one hook call with the sum (two would throw)
  buckets.finish();
  buckets.install();
  EXPECT_TRUE(torch::allclose(w.grad(), plain_w, 0, 0));
  EXPECT_TRUE(torch::allclose(u.grad(), plain_u, 0, 0));
}

TEST(GradientBuckets, ParameterWithoutGradientStaysWithout) {
  auto used = torch::randn({4}).requires_grad_(true);
  auto unused = torch::randn({4}).requires_grad_(true);
  std::vector<torch::Tensor> launched;
  // unused first in bucket order: its bucket is incomplete at the end of backward, so the
  // following bucket waits too (launch order is bucket order), and finish() launches both.
  GradientBuckets buckets({unused, used}, 16, [&](const torch::Tensor& flat) { launched.push_back(flat.clone()); });
  ASSERT_EQ(buckets.bucket_count(), 2u);
  buckets.begin();
  (used * used).sum().backward();
  EXPECT_TRUE(launched.empty());
  buckets.finish();
  ASSERT_EQ(launched.size(), 2u);
  EXPECT_EQ(buckets.launched_after(), (std::vector<int64_t>{-1, -1}));
  EXPECT_TRUE(torch::equal(launched[0], torch::zeros({5})));  // zeros and flag 0
  EXPECT_EQ(launched[1][4].item<float>(), 1.0f);
  buckets.install();
  EXPECT_FALSE(unused.grad().defined());
  EXPECT_TRUE(torch::equal(used.grad(), 2 * used.detach()));
}

TEST(GradientBuckets, ParameterResizedAfterConstruction) {
  // A learned per-channel scale takes its shape at the first forward (set_data), after the
  // trainer made the buckets: the layout follows the current sizes.
  auto scale = torch::ones({1}).requires_grad_(true);
  auto w = torch::randn({3}).requires_grad_(true);
  GradientBuckets buckets({scale, w}, 1 << 20, [](const torch::Tensor&) {});
  scale.set_data(torch::full({3}, 2.0f));
  buckets.begin();
  (scale * w).sum().backward();
  buckets.finish();
  buckets.install();
  EXPECT_TRUE(torch::equal(scale.grad(), w.detach()));
  EXPECT_TRUE(torch::equal(w.grad(), torch::full({3}, 2.0f)));
}

TEST(GradientBuckets, HooksIdleOutsideAStep) {
  auto p = torch::randn({4}).requires_grad_(true);
  int launches = 0;
  {
    GradientBuckets buckets({p}, 1 << 20, [&](const torch::Tensor&) { ++launches; });
    (p * 2).sum().backward();  // not between begin() and finish(): nothing launched
    EXPECT_EQ(launches, 0);
  }
  p.mutable_grad().reset();
  (p * 3).sum().backward();  // hooks removed with the buckets
  EXPECT_EQ(launches, 0);
  EXPECT_TRUE(torch::equal(p.grad(), torch::full({4}, 3.0f)));
}

TEST(GradientAllreduce, ModeFromEnvironment) {
  ::setenv("LOWBIT_GRAD_ALLREDUCE", "after", 1);
  EXPECT_EQ(gradient_allreduce_mode_from_environment(), GradientAllreduceMode::AfterBackward);
  ::setenv("LOWBIT_GRAD_ALLREDUCE", "overlap", 1);
  EXPECT_EQ(gradient_allreduce_mode_from_environment(), GradientAllreduceMode::Overlap);
  ::setenv("LOWBIT_GRAD_ALLREDUCE", "sometimes", 1);
  EXPECT_THROW(gradient_allreduce_mode_from_environment(), Error);
  ::unsetenv("LOWBIT_GRAD_ALLREDUCE");
  EXPECT_EQ(gradient_allreduce_mode_from_environment(), GradientAllreduceMode::Overlap);
  ::setenv("LOWBIT_GRAD_BUCKET_KB", "0", 1);
  EXPECT_THROW(gradient_bucket_bytes_from_environment(), Error);
  ::unsetenv("LOWBIT_GRAD_BUCKET_KB");
  EXPECT_EQ(gradient_bucket_bytes_from_environment(), 1 << 20);
}

}  // namespace
}  // namespace lowbit::train
