// Observers: ranges per tensor / channel / group, qparams identical to quant::choose_qparams,
// and the behaviours each kind exists for.
#include "qat/observers.h"

#include <gtest/gtest.h>

#include <string>

#include "base/error.h"
#include "quant/qparams.h"

namespace lowbit::qat {
namespace {

using quant::Granularity;
using quant::QuantSpec;

ObserverOptions with_kind(ObserverKind k) {
  ObserverOptions o;
  o.kind = k;
  return o;
}

TEST(Observer, MinMaxPerTensorChannelAndGroupMatchManualReductions) {
  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({5, 3, 4});
  QuantSpec spec = QuantSpec::int_symmetric(4, Granularity::PerTensor);
  Observer t(spec);
  t.observe(x);
  EXPECT_EQ(t.min().item<float>(), x.min().item<float>());
  EXPECT_EQ(t.max().item<float>(), x.max().item<float>());

  spec.granularity = Granularity::PerChannel;
  spec.axis = 1;
  Observer c(spec);
  c.observe(x);
  EXPECT_TRUE(torch::equal(c.min(), std::get<0>(x.transpose(0, 1).reshape({3, -1}).min(1))));
  EXPECT_TRUE(torch::equal(c.max(), std::get<0>(x.transpose(0, 1).reshape({3, -1}).max(1))));

  spec.granularity = Granularity::PerGroup;
  spec.group_size = 5;  // rows of 12 -> groups of 5, 5, 2
  Observer g(spec);
  g.observe(x);
  ASSERT_EQ(g.min().numel(), 15);
  const torch::Tensor rows = x.reshape({5, 12});
  for (int r = 0; r < 5; ++r) {
    for (int k = 0; k < 3; ++k) {
      const torch::Tensor part = rows[r].slice(0, k * 5, std::min(12, k * 5 + 5));
      EXPECT_EQ(g.min()[r * 3 + k].item<float>(), part.min().item<float>());
      EXPECT_EQ(g.max()[r * 3 + k].item<float>(), part.max().item<float>());
    }
  }
}

TEST(Observer, QParamsAreExactlyThoseOfChooseQParams) {
  torch::manual_seed(1);
  const torch::Tensor x = torch::randn({8, 16}) * 3 + 1;
  for (QuantSpec spec : {QuantSpec::int_symmetric(8, Granularity::PerChannel), QuantSpec::uint_asymmetric(4, Granularity::PerChannel),
                         QuantSpec::ternary(), QuantSpec::binary(), QuantSpec::seq2()}) {
    Observer o(spec);
    o.observe(x);
    const QParamTensors qp = o.qparams();
    ASSERT_EQ(qp.scale.numel(), 8);
    for (int p = 0; p < 8; ++p) {
      const quant::QParams expect = quant::choose_qparams(o.min()[p].item<float>(), o.max()[p].item<float>(), spec);
      EXPECT_EQ(qp.scale[p].item<float>(), expect.scale) << spec.describe();
      EXPECT_EQ(qp.zero_point[p].item<int32_t>(), expect.zero_point) << spec.describe();
    }
  }
}

TEST(Observer, MinMaxKeepsRunningExtremes) {
  Observer o(QuantSpec::int_symmetric(8));
  o.observe(torch::tensor({-1.0f, 2.0f}));
  o.observe(torch::tensor({-3.0f, 1.0f}));
  EXPECT_EQ(o.min().item<float>(), -3.0f);
  EXPECT_EQ(o.max().item<float>(), 2.0f);
  EXPECT_EQ(o.steps(), 2);
}

TEST(Observer, MovingAverageConvergesToTheNewRange) {
  ObserverOptions opt = with_kind(ObserverKind::MovingAverageMinMax);
  opt.momentum = 0.1;
  Observer o(QuantSpec::uint_asymmetric(8), opt);
  o.observe(torch::tensor({-10.0f, 10.0f}));
  o.observe(torch::tensor({-2.0f, 3.0f}));
  EXPECT_NEAR(o.min().item<float>(), -9.2f, 1e-5);  // 0.9 * -10 + 0.1 * -2
  EXPECT_NEAR(o.max().item<float>(), 9.3f, 1e-5);
  for (int i = 0; i < 200; ++i) o.observe(torch::tensor({-2.0f, 3.0f}));
  EXPECT_NEAR(o.min().item<float>(), -2.0f, 1e-4);
  EXPECT_NEAR(o.max().item<float>(), 3.0f, 1e-4);
}

TEST(Observer, PercentileIgnoresRareOutliers) {
  torch::manual_seed(2);
  torch::Tensor x = torch::randn({100000});
  x.slice(0, 0, 5).fill_(1000.0f);
  x[5] = -1000.0f;
  ObserverOptions opt = with_kind(ObserverKind::Percentile);
  opt.percentile = 99.99;
  Observer p(QuantSpec::int_symmetric(8), opt);
  p.observe(x);
  EXPECT_LT(p.max().item<float>(), 6.0f);
  EXPECT_GT(p.max().item<float>(), 3.0f);
  EXPECT_GT(p.min().item<float>(), -6.0f);
  Observer m(QuantSpec::int_symmetric(8));
  m.observe(x);
  EXPECT_EQ(m.max().item<float>(), 1000.0f);
}

TEST(Observer, PercentileInterpolatesBetweenOrderStatistics) {
  ObserverOptions opt = with_kind(ObserverKind::Percentile);
  opt.percentile = 90.0;
  Observer p(QuantSpec::int_symmetric(8), opt);
  p.observe(torch::arange(11, torch::kFloat32));  // 0..10: 90th percentile = 9, 10th = 1
  EXPECT_FLOAT_EQ(p.max().item<float>(), 9.0f);
  EXPECT_FLOAT_EQ(p.min().item<float>(), 1.0f);
  opt.percentile = 95.0;
  Observer q(QuantSpec::int_symmetric(8), opt);
  q.observe(torch::arange(11, torch::kFloat32));
  EXPECT_FLOAT_EQ(q.max().item<float>(), 9.5f);
}

TEST(Observer, MseBeatsMinMaxOnHeavyTailedData) {
  torch::manual_seed(3);
  // Laplace-like heavy tails plus a few large values, per channel.
  torch::Tensor u = torch::rand({4, 4096}) - 0.5;
  torch::Tensor x = -torch::sign(u) * torch::log1p(-2 * u.abs()) ;
  x.select(1, 0).fill_(25.0f);
  const QuantSpec spec = QuantSpec::int_symmetric(4, Granularity::PerChannel);
  Observer mse(spec, with_kind(ObserverKind::Mse));
  Observer mm(spec);
  mse.observe(x);
  mm.observe(x);
  const torch::Tensor e_mse = quantization_sse(x, spec, mse.qparams());
  const torch::Tensor e_mm = quantization_sse(x, spec, mm.qparams());
  EXPECT_TRUE((e_mse < 0.5 * e_mm).all().item<bool>()) << e_mse << e_mm;
  EXPECT_TRUE((mse.max() < mm.max()).all().item<bool>());
}

TEST(Observer, MseNeverWorseThanMinMax) {
  torch::manual_seed(4);
  const torch::Tensor x = torch::rand({3, 300});  // uniform: little to gain by clipping
  for (QuantSpec spec : {QuantSpec::uint_asymmetric(8, Granularity::PerChannel), QuantSpec::ternary(), QuantSpec::seq2()}) {
    Observer mse(spec, with_kind(ObserverKind::Mse));
    Observer mm(spec);
    mse.observe(x);
    mm.observe(x);
    EXPECT_TRUE((quantization_sse(x, spec, mse.qparams()) <= quantization_sse(x, spec, mm.qparams())).all().item<bool>())
        << spec.describe();
  }
}

TEST(Observer, FreezesAfterConfiguredSteps) {
  ObserverOptions opt;
  opt.freeze_after = 2;
  Observer o(QuantSpec::int_symmetric(8), opt);
  o.observe(torch::tensor({-1.0f, 1.0f}));
  EXPECT_FALSE(o.frozen());
  o.observe(torch::tensor({-2.0f, 2.0f}));
  EXPECT_TRUE(o.frozen());
  const QParamTensors before = o.qparams();
  o.observe(torch::tensor({-50.0f, 50.0f}));
  EXPECT_EQ(o.steps(), 2);
  EXPECT_EQ(o.max().item<float>(), 2.0f);
  EXPECT_TRUE(torch::equal(o.qparams().scale, before.scale));

  Observer manual(QuantSpec::int_symmetric(8));
  manual.observe(torch::tensor({-1.0f, 1.0f}));
  manual.freeze();
  manual.observe(torch::tensor({-9.0f, 9.0f}));
  EXPECT_EQ(manual.max().item<float>(), 1.0f);
}

TEST(Observer, MeanAbsPerRowForBinaryScale) {
  const torch::Tensor w = torch::tensor({{1.0f, -3.0f}, {0.5f, 0.5f}});
  const torch::Tensor s = mean_abs_per_param(w, QuantSpec::binary(Granularity::PerChannel));
  EXPECT_TRUE(torch::equal(s, torch::tensor({2.0f, 0.5f})));
}

TEST(Observer, ErrorsNameTheProblem) {
  auto message_of = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message_of([] { observer_kind_from_string("max"); }).find("minmax, ema, percentile, mse"), std::string::npos);
  EXPECT_NE(message_of([] { Observer(QuantSpec::int_symmetric(8)).qparams(); }).find("has not observed any data"),
            std::string::npos);
  ObserverOptions bad;
  bad.percentile = 40;
  EXPECT_NE(message_of([&] { Observer(QuantSpec::int_symmetric(8), bad); }).find("percentile must be in (50, 100]"),
            std::string::npos);
  Observer o(QuantSpec::int_symmetric(8, Granularity::PerChannel));
  o.observe(torch::zeros({3, 2}));
  EXPECT_NE(message_of([&] { o.observe(torch::zeros({4, 2})); }).find("one observer watches one tensor"), std::string::npos);
  EXPECT_NE(message_of([&] { o.observe(torch::full({3, 2}, NAN)); }).find("inf or NaN"), std::string::npos);
}

}  // namespace
}  // namespace lowbit::qat
