#include "qat/fake_quantize_module.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>

#include "base/error.h"
#include "quant/qparams.h"

namespace lowbit::qat {
namespace {

using quant::Granularity;
using quant::QuantSpec;

FakeQuantizeOptions opts(QuantSpec spec, Estimator e, ScaleInit init = ScaleInit::Auto) {
  FakeQuantizeOptions o;
  o.spec = spec;
  o.estimator = e;
  o.init = init;
  return o;
}

TEST(FakeQuantizeModule, ObservedScaleFollowsObserverAndChooseQParams) {
  FakeQuantize fq(opts(QuantSpec::uint_asymmetric(8), Estimator::Ste));
  fq->train();
  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({4, 8}) + 0.5;
  const torch::Tensor y = fq->forward(x);
  const quant::QParams expect = quant::choose_qparams(x.min().item<float>(), x.max().item<float>(), fq->options().spec);
  EXPECT_EQ(fq->qparams().scale.item<float>(), expect.scale);
  EXPECT_EQ(fq->qparams().zero_point.item<int32_t>(), expect.zero_point);
  EXPECT_TRUE(torch::equal(y, fake_quantize_forward(x, fq->scale, fq->zero_point, fq->options().spec)));
  EXPECT_TRUE(fq->parameters().empty());  // observed: buffers only
}

TEST(FakeQuantizeModule, LearnedScaleInitialisationRules) {
  torch::manual_seed(1);
  const torch::Tensor w = torch::randn({6, 10});
  // int4 per-channel, auto -> observer min-max: max|W_row| / 7 (ParetoQ's rule for 3-4 bits).
  FakeQuantize a(opts(QuantSpec::int_symmetric(4, Granularity::PerChannel), Estimator::Lsq));
  a->train();
  a->forward(w);
  EXPECT_TRUE(torch::allclose(a->scale.detach(), std::get<0>(w.abs().max(1)) / 7.0f, 1e-6, 0));
  // binary, auto -> mean |W_row|.
  FakeQuantize b(opts(QuantSpec::binary(), Estimator::Lsq));
  b->train();
  b->forward(w);
  EXPECT_TRUE(torch::allclose(b->scale.detach(), w.abs().mean(1), 1e-6, 0));
  // LSQ paper: 2 mean|x| / sqrt(Qp).
  FakeQuantize c(opts(QuantSpec::int_symmetric(4), Estimator::Lsq, ScaleInit::LsqMeanAbs));
  c->train();
  c->forward(w);
  EXPECT_NEAR(c->scale.item<float>(), 2 * w.abs().mean().item<float>() / std::sqrt(7.0f), 1e-6);
  // Initialised once: a later batch does not move a learned scale.
  const torch::Tensor before = a->scale.detach().clone();
  a->forward(w * 10);
  EXPECT_TRUE(torch::equal(a->scale.detach(), before));
}

TEST(FakeQuantizeModule, LazySizeKeepsParameterIdentityForOptimizer) {
  QuantSpec spec = QuantSpec::int_symmetric(4, Granularity::PerChannel);
  spec.axis = 1;  // NCHW activations, one scale per channel
  FakeQuantize fq(opts(spec, Estimator::Lsq));
  fq->train();
  torch::optim::SGD sgd(fq->parameters(), torch::optim::SGDOptions(0.1));
  torch::manual_seed(2);
  const torch::Tensor x = torch::randn({2, 3, 4, 4});
  const torch::Tensor y = fq->forward(x);
  ASSERT_EQ(fq->scale.numel(), 3);
  const torch::Tensor before = fq->scale.detach().clone();
  y.pow(2).sum().backward();
  sgd.step();
  EXPECT_FALSE(torch::equal(fq->scale.detach(), before));
}

TEST(FakeQuantizeModule, LsqLearnsAScaleThatLowersQuantizationError) {
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({4096});
  FakeQuantize fq(opts(QuantSpec::int_symmetric(3), Estimator::Lsq));
  fq->train();
  fq->forward(x);
  { torch::NoGradGuard g; fq->scale.fill_(2.0f); }  // a poor start: almost everything rounds to 0
  torch::optim::AdamW adam(fq->parameters(), torch::optim::AdamWOptions(0.02).weight_decay(0));
  auto loss_now = [&] { return (fq->forward(x) - x).pow(2).mean(); };
  const float start = loss_now().item<float>();
  for (int i = 0; i < 200; ++i) {
    adam.zero_grad();
    loss_now().backward();
    adam.step();
  }
  EXPECT_LT(loss_now().item<float>(), 0.2f * start);
}

TEST(FakeQuantizeModule, LsqPlusLearnsZeroPoint) {
  FakeQuantize fq(opts(QuantSpec::uint_asymmetric(4), Estimator::LsqPlus));
  fq->train();
  torch::manual_seed(4);
  const torch::Tensor x = torch::rand({64}) * 3 - 1;
  fq->forward(x).sum().backward();
  EXPECT_EQ(fq->parameters().size(), 2u);
  EXPECT_TRUE(fq->zero_point.grad().defined());
  EXPECT_THROW(FakeQuantize(opts(QuantSpec::int_symmetric(4), Estimator::LsqPlus)), Error);
}

TEST(FakeQuantizeModule, FixedInputQuantizerAndFlags) {
  FakeQuantize in(opts(QuantSpec::uint_asymmetric(8), Estimator::Ste));
  in->set_fixed_qparams(torch::full({1}, 1.0f / 255.0f), torch::zeros({1}));
  in->train();
  const torch::Tensor x = torch::rand({2, 1, 4, 4}) * 2;  // values above 1 saturate at 255/255
  const torch::Tensor y = in->forward(x);
  EXPECT_EQ(in->qparams().scale.item<float>(), 1.0f / 255.0f);
  EXPECT_LE(y.max().item<float>(), 255 * (1.0f / 255.0f));
  in->set_enabled(false);
  EXPECT_TRUE(torch::equal(in->forward(x), x));

  FakeQuantize fresh(opts(QuantSpec::int_symmetric(8), Estimator::Ste));
  fresh->eval();
  try {
    fresh->forward(x);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("run a training-mode forward"), std::string::npos);
  }
}

TEST(FakeQuantizeModule, CheckpointKeepsObserverState) {
  FakeQuantizeOptions o = opts(QuantSpec::uint_asymmetric(8), Estimator::Ste);
  o.observer.kind = ObserverKind::MovingAverageMinMax;
  o.observer.momentum = 0.5;
  FakeQuantize a(o);
  a->train();
  a->forward(torch::tensor({0.0f, 4.0f}));
  a->forward(torch::tensor({0.0f, 2.0f}));  // running max 3
  torch::serialize::OutputArchive out;
  a->save(out);
  std::stringstream buf;
  out.save_to(buf);
  FakeQuantize b(o);
  torch::serialize::InputArchive in;
  in.load_from(buf);
  b->load(in);
  b->train();
  a->forward(torch::tensor({0.0f, 1.0f}));  // running max 2 in both, not 1 in the resumed one
  b->forward(torch::tensor({0.0f, 1.0f}));
  EXPECT_FLOAT_EQ(b->observer().max().item<float>(), 2.0f);
  EXPECT_TRUE(torch::equal(a->qparams().scale, b->qparams().scale));
  EXPECT_EQ(b->observer().steps(), 3);
}

}  // namespace
}  // namespace lowbit::qat
