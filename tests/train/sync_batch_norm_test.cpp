// models/sync_batch_norm.h: the SyncBN function against ATen's batch norm, in one process (an
// identity all-reduce) and as two "ranks" in two threads whose all-reduce sums their tensors.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "models/layer.h"
#include "models/sync_batch_norm.h"

namespace lowbit::models {
namespace {

float max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<float>();
}

struct Case {
  torch::Tensor x, weight, bias, running_mean, running_var, dy;
};

Case make_case(int64_t n, int64_t c, int64_t h, int64_t w, uint64_t seed) {
  torch::manual_seed(static_cast<int64_t>(seed));
  Case k;
  // Channels with an offset and different spreads: the variance is not the raw second moment.
  k.x = torch::randn({n, c, h, w}) * torch::linspace(0.5, 3.0, c).view({1, c, 1, 1}) +
        torch::linspace(-2.0, 4.0, c).view({1, c, 1, 1});
  k.weight = torch::rand({c}) + 0.5;
  k.bias = torch::randn({c});
  k.running_mean = torch::randn({c}) * 0.1;
  k.running_var = torch::rand({c}) + 0.5;
  k.dy = torch::randn({n, c, h, w});
  return k;
}

// ATen's batch norm in training mode on the whole batch: output, gradients, running statistics.
struct Reference {
  torch::Tensor y, dx, dw, db, running_mean, running_var;
};
Reference aten_reference(const Case& k, double momentum, double eps) {
  Reference r;
  auto x = k.x.clone().requires_grad_(true);
  auto w = k.weight.clone().requires_grad_(true);
  auto b = k.bias.clone().requires_grad_(true);
  r.running_mean = k.running_mean.clone();
  r.running_var = k.running_var.clone();
  r.y = torch::batch_norm(x, w, b, r.running_mean, r.running_var, /*training=*/true, momentum, eps, false);
  r.y.backward(k.dy);
  r.dx = x.grad();
  r.dw = w.grad();
  r.db = b.grad();
  return r;
}

TEST(SyncBatchNorm, OneProcessEqualsAtenBatchNorm) {
  const double momentum = 0.1, eps = 1e-5;
  const Case k = make_case(6, 5, 7, 3, 1);
  const Reference ref = aten_reference(k, momentum, eps);
  auto x = k.x.clone().requires_grad_(true);
  auto w = k.weight.clone().requires_grad_(true);
  auto b = k.bias.clone().requires_grad_(true);
  auto rm = k.running_mean.clone(), rv = k.running_var.clone();
  int calls = 0;
  auto y = sync_batch_norm(x, w, b, rm, rv, momentum, eps, [&](torch::Tensor&) { ++calls; });
  EXPECT_EQ(calls, 1);  // forward: one all-reduce
  y.backward(k.dy);
  EXPECT_EQ(calls, 2);  // backward: one more
  // Both accumulate in float64 and apply x * alpha + beta in float: differences of float rounding.
  EXPECT_LE(max_abs_diff(y, ref.y), 2e-6f);
  EXPECT_LE(max_abs_diff(rm, ref.running_mean), 1e-6f);
  EXPECT_LE(max_abs_diff(rv, ref.running_var), 1e-6f);  // unbiased variance, count 6 * 7 * 3
  EXPECT_LE(max_abs_diff(x.grad(), ref.dx), 1e-5f);
  EXPECT_LE(max_abs_diff(w.grad(), ref.dw), 1e-4f);
  EXPECT_LE(max_abs_diff(b.grad(), ref.db), 1e-4f);
  EXPECT_GT(max_abs_diff(rv, k.running_var), 1e-3f);  // the running statistics did move
}

TEST(SyncBatchNorm, FiniteDifferenceGradient) {
  // d/dx and d/dw of sum(y * r) by central differences on a few entries (float forward, so a
  // large step and a tolerance of float noise / h).
  const Case k = make_case(4, 3, 2, 2, 2);
  auto identity = [](torch::Tensor&) {};
  auto loss = [&](const torch::Tensor& x, const torch::Tensor& w) {
    torch::NoGradGuard no_grad;
    auto y = sync_batch_norm(x, w, k.bias, torch::Tensor(), torch::Tensor(), 0.1, 1e-5, identity);
    return (y.to(torch::kDouble) * k.dy.to(torch::kDouble)).sum().item<double>();
  };
  auto x = k.x.clone().requires_grad_(true);
  auto w = k.weight.clone().requires_grad_(true);
  auto y = sync_batch_norm(x, w, k.bias, torch::Tensor(), torch::Tensor(), 0.1, 1e-5, identity);
  y.backward(k.dy);
  const double h = 1e-2;
  for (int64_t i : {0, 5, 17, 30, 47}) {
    auto xp = k.x.clone(), xm = k.x.clone();
    xp.view({-1})[i] += h;
    xm.view({-1})[i] -= h;
    const double fd = (loss(xp, k.weight) - loss(xm, k.weight)) / (2 * h);
    EXPECT_NEAR(x.grad().view({-1})[i].item<double>(), fd, 2e-3) << "x element " << i;
  }
  for (int64_t c = 0; c < 3; ++c) {
    auto wp = k.weight.clone(), wm = k.weight.clone();
    wp[c] += h;
    wm[c] -= h;
    const double fd = (loss(k.x, wp) - loss(k.x, wm)) / (2 * h);
    EXPECT_NEAR(w.grad()[c].item<double>(), fd, 2e-3) << "weight " << c;
  }
}

// Sums a tensor over two threads in place (a two-rank all-reduce).
class TwoThreadSum {
 public:
  void operator()(torch::Tensor& t) {
    std::unique_lock<std::mutex> lock(m_);
    const int gen = generation_;
    if (arrived_ == 0) acc_ = t.clone();
    else acc_ = acc_ + t;
    if (++arrived_ == 2) {
      result_ = acc_;
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != gen; });
    }
    t.copy_(result_);
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int arrived_ = 0, generation_ = 0;
  torch::Tensor acc_, result_;
};

TEST(SyncBatchNorm, TwoShardsEqualTheWholeBatch) {
  // Shards of 5 and 3 images (unequal, as shard_of_batch makes them); each rank's loss is its
  // share of the global sum, so its dy is its rows of the whole batch's dy.
  const double momentum = 0.1, eps = 1e-5;
  const Case k = make_case(8, 4, 5, 5, 3);
  const Reference ref = aten_reference(k, momentum, eps);
  TwoThreadSum sum;
  struct Rank {
    torch::Tensor y, dx, dw, db, rm, rv;
  } ranks[2];
  const int64_t offset[2] = {0, 5}, rows[2] = {5, 3};
  auto run = [&](int r) {
    auto x = k.x.narrow(0, offset[r], rows[r]).clone().requires_grad_(true);
    auto w = k.weight.clone().requires_grad_(true);
    auto b = k.bias.clone().requires_grad_(true);
    ranks[r].rm = k.running_mean.clone();
    ranks[r].rv = k.running_var.clone();
    ranks[r].y = sync_batch_norm(x, w, b, ranks[r].rm, ranks[r].rv, momentum, eps, [&](torch::Tensor& t) { sum(t); });
    ranks[r].y.backward(k.dy.narrow(0, offset[r], rows[r]));
    ranks[r].dx = x.grad();
    ranks[r].dw = w.grad();
    ranks[r].db = b.grad();
  };
  std::thread t1(run, 1);
  run(0);
  t1.join();
  EXPECT_LE(max_abs_diff(torch::cat({ranks[0].y, ranks[1].y}), ref.y), 2e-6f);
  EXPECT_LE(max_abs_diff(torch::cat({ranks[0].dx, ranks[1].dx}), ref.dx), 1e-5f);
  // Weight and bias gradients are each rank's share; the gradient all-reduce adds them.
  EXPECT_LE(max_abs_diff(ranks[0].dw + ranks[1].dw, ref.dw), 1e-4f);
  EXPECT_LE(max_abs_diff(ranks[0].db + ranks[1].db, ref.db), 1e-4f);
  for (int r = 0; r < 2; ++r) {
    EXPECT_LE(max_abs_diff(ranks[r].rm, ref.running_mean), 1e-6f) << "rank " << r;
    EXPECT_LE(max_abs_diff(ranks[r].rv, ref.running_var), 1e-6f) << "rank " << r;
  }
  // Per-shard batch norm (what --no-sync-bn does) is visibly different: the check can fail.
  auto shard_only = torch::batch_norm(k.x.narrow(0, 0, 5), k.weight, k.bias, {}, {}, true, momentum, eps, false);
  EXPECT_GT(max_abs_diff(shard_only, ranks[0].y), 1e-3f);
}

TEST(SyncBatchNorm, LayerUsesItOnlyWhenInstalledAndTraining) {
  ConvSpec spec;
  spec.in_channels = 2;
  spec.out_channels = 3;
  torch::manual_seed(4);
  auto layer = std::make_shared<ConvBnActImpl>(spec);
  auto& bn = *layer->bn;
  const auto x = torch::randn({4, 2, 6, 6});
  const auto rm0 = bn.running_mean.clone(), rv0 = bn.running_var.clone();
  const auto plain = layer->forward({x});  // nothing installed: LibTorch's BatchNorm2d
  const auto rm_plain = bn.running_mean.clone(), rv_plain = bn.running_var.clone();
  {
    torch::NoGradGuard no_grad;
    bn.running_mean.copy_(rm0);
    bn.running_var.copy_(rv0);
    bn.num_batches_tracked.zero_();
  }
  int calls = 0;
  {
    BatchNormAllreduceGuard guard([&](torch::Tensor&) { ++calls; });
    EXPECT_TRUE(batch_norm_is_synchronised());
    const auto synced = layer->forward({x});
    EXPECT_EQ(calls, 1);
    EXPECT_LE(max_abs_diff(synced, plain), 2e-6f);
    EXPECT_LE(max_abs_diff(bn.running_mean, rm_plain), 1e-6f);
    EXPECT_LE(max_abs_diff(bn.running_var, rv_plain), 1e-6f);
    EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);
    layer->eval();  // running statistics: nothing to synchronise
    layer->forward({x});
    EXPECT_EQ(calls, 1);
  }
  EXPECT_FALSE(batch_norm_is_synchronised());
}

}  // namespace
}  // namespace lowbit::models
