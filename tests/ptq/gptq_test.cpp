// GPTQ on random layers: its layer-output error is below round-to-nearest's, its codes lie on
// the quantizer's grid, and the error formula from H matches the direct computation.
#include <gtest/gtest.h>

#include "base/error.h"
#include "ptq/gptq.h"
#include "qat/fake_quant.h"
#include "qat/observers.h"

namespace lowbit::ptq {
namespace {

struct RandomLayer {
  torch::Tensor w;  // [rows, k]
  torch::Tensor x;  // [n, k] calibration inputs (correlated, like real activations)
};

RandomLayer random_layer(int64_t rows, int64_t k, int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  RandomLayer l;
  l.w = torch::randn({rows, k});
  const torch::Tensor mix = torch::randn({k, k}) / std::sqrt(static_cast<double>(k)) + torch::eye(k);
  l.x = torch::randn({n, k}).matmul(mix).relu();
  return l;
}

quant::QuantSpec per_channel(int bits) {
  quant::QuantSpec s = quant::QuantSpec::int_symmetric(bits, quant::Granularity::PerChannel);
  s.axis = 0;
  return s;
}

struct Quantized {
  torch::Tensor rtn, gptq, scale;
};

Quantized quantize_both(const RandomLayer& l, int bits, const GptqOptions& options) {
  const quant::QuantSpec spec = per_channel(bits);
  qat::Observer obs(spec);
  obs.observe(l.w);
  const qat::QParamTensors qp = obs.qparams();
  const torch::Tensor zp = qp.zero_point.to(torch::kFloat32);
  auto column = [&](const torch::Tensor& c) {
    return qat::fake_quantize_forward(c.reshape({-1, 1}).contiguous(), qp.scale, zp, spec).reshape({-1});
  };
  HessianAccumulator acc(l.w.size(1));
  acc.add(l.x.narrow(0, 0, l.x.size(0) / 2));
  acc.add(l.x.narrow(0, l.x.size(0) / 2, l.x.size(0) - l.x.size(0) / 2));
  Quantized q;
  q.rtn = qat::fake_quantize_forward(l.w, qp.scale, zp, spec);
  q.gptq = gptq_quantize(l.w, acc.hessian(), column, options);
  q.scale = qp.scale;
  return q;
}

double output_error(const RandomLayer& l, const torch::Tensor& q) {
  return (l.x.matmul((l.w - q).t())).pow(2).sum().item<double>();
}

TEST(Gptq, LayerErrorBelowRoundToNearestAt3And2Bits) {
  for (int bits : {3, 2}) {
    for (bool act_order : {false, true}) {
      const RandomLayer l = random_layer(24, 96, 400, 11 + bits);
      GptqOptions o;
      o.act_order = act_order;
      o.block_size = 32;  // several blocks: exercises the lazy updates
      const Quantized q = quantize_both(l, bits, o);
      const double e_rtn = output_error(l, q.rtn);
      const double e_gptq = output_error(l, q.gptq);
      EXPECT_LT(e_gptq, 0.8 * e_rtn) << bits << " bits, act_order " << act_order << ": gptq " << e_gptq << " rtn " << e_rtn;
    }
  }
}

TEST(Gptq, CodesLieOnTheGrid) {
  const RandomLayer l = random_layer(8, 40, 200, 3);
  const Quantized q = quantize_both(l, 3, {});
  const torch::Tensor codes = q.gptq / q.scale.view({-1, 1});
  EXPECT_TRUE(torch::allclose(codes, codes.round(), 0.0, 1e-4));
  EXPECT_GE(codes.min().item<float>(), -4.0f - 1e-4f);
  EXPECT_LE(codes.max().item<float>(), 3.0f + 1e-4f);
  // GPTQ actually moves away from rounding (otherwise the test above proves nothing).
  EXPECT_GT((q.gptq != q.rtn).sum().item<int64_t>(), 0);
}

TEST(Gptq, BlockSizeDoesNotChangeTheResultMuch) {
  // Lazy block updates are an exact reorganisation of the same arithmetic.
  const RandomLayer l = random_layer(6, 50, 300, 5);
  GptqOptions one, big;
  one.block_size = 1;
  big.block_size = 128;
  const Quantized a = quantize_both(l, 4, one);
  const Quantized b = quantize_both(l, 4, big);
  EXPECT_LE((a.gptq != b.gptq).sum().item<int64_t>(), 2);  // float64 summation order may flip a tie
}

TEST(Gptq, ReconstructionErrorFromHessianMatchesDirect) {
  const RandomLayer l = random_layer(5, 20, 100, 9);
  const Quantized q = quantize_both(l, 3, {});
  HessianAccumulator acc(20);
  acc.add(l.x);
  const double from_h = reconstruction_error(l.w, q.gptq, acc.hessian());
  const double direct = output_error(l, q.gptq) / 100.0;
  EXPECT_NEAR(from_h, direct, 1e-3 * direct);
}

// Per-group scales (static groups: fixed from the original weights, as round-to-nearest uses):
// each column is quantized with its group's scale of each row.
TEST(Gptq, GroupedErrorAtMostGroupedRoundToNearest) {
  for (int64_t group : {32, 64}) {
    for (bool act_order : {false, true}) {
      const RandomLayer l = random_layer(16, 128, 500, 21 + group);
      quant::QuantSpec spec = quant::QuantSpec::int_symmetric(3, quant::Granularity::PerGroup);
      spec.group_size = static_cast<int>(group);
      qat::Observer obs(spec);
      obs.observe(l.w);
      const qat::QParamTensors qp = obs.qparams();
      const torch::Tensor scale = qp.scale.reshape({16, -1}), zp = qp.zero_point.to(torch::kFloat32).reshape({16, -1});
      ASSERT_EQ(scale.size(1), 128 / group);
      quant::QuantSpec column_spec = per_channel(3);
      IndexedColumnQuantizer column = [&](const torch::Tensor& c, int64_t index) {
        const torch::Tensor s = scale.select(1, index / group).contiguous(), z = zp.select(1, index / group).contiguous();
        return qat::fake_quantize_forward(c.reshape({-1, 1}).contiguous(), s, z, column_spec).reshape({-1});
      };
      HessianAccumulator acc(128);
      acc.add(l.x);
      GptqOptions o;
      o.act_order = act_order;
      o.block_size = 48;  // blocks that straddle groups
      const torch::Tensor q = gptq_quantize(l.w, acc.hessian(), column, o);
      const torch::Tensor rtn = qat::fake_quantize_forward(l.w, qp.scale, qp.zero_point.to(torch::kFloat32), spec);
      const double e_gptq = reconstruction_error(l.w, q, acc.hessian());
      const double e_rtn = reconstruction_error(l.w, rtn, acc.hessian());
      EXPECT_LE(e_gptq, e_rtn) << "group " << group << ", act_order " << act_order;
      EXPECT_LT(e_gptq, 0.9 * e_rtn) << "group " << group << ", act_order " << act_order;
      // Codes on each group's grid.
      const torch::Tensor codes = q / scale.repeat_interleave(group, 1);
      EXPECT_TRUE(torch::allclose(codes, codes.round(), 0.0, 1e-4));
      EXPECT_GE(codes.min().item<float>(), -4.0f - 1e-4f);
      EXPECT_LE(codes.max().item<float>(), 3.0f + 1e-4f);
    }
  }
}

TEST(Gptq, DeadInputsAndBadShapes) {
  RandomLayer l = random_layer(4, 10, 50, 2);
  l.x.index_put_({torch::indexing::Slice(), 3}, 0.0);  // input 3 never fires
  const Quantized q = quantize_both(l, 4, {});
  EXPECT_TRUE(torch::all(q.gptq.index({torch::indexing::Slice(), 3}) == 0).item<bool>());
  auto id = [](const torch::Tensor& c) { return c; };
  EXPECT_THROW(gptq_quantize(l.w, torch::eye(9), id), Error);
  EXPECT_THROW(gptq_quantize(l.w, torch::eye(10), id, GptqOptions{0.0, 128, false}), Error);
}

}  // namespace
}  // namespace lowbit::ptq
