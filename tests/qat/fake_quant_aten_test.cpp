// The ATen fallback of fake quantization (qat/fake_quant_aten.h, what a CUDA tensor gets) against
// the fused CPU kernels, on the CPU: the fallback is forced with force_aten_fake_quant, so both
// paths run on the same inputs here. Forward values and input gradients must be bit-exact (same
// float operations in the same order); learned-scale and zero-point gradients are double sums in
// another order (scatter-add vs the kernels' per-segment loop), rounded to float: they may differ
// by one float ulp, plus the double sum's own rounding (n * 2^-53 * sum |terms|) where the sum
// cancels. Per-token activations and WinQ's noise are checked too.
#include "qat/fake_quant_aten.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "qat/quantized_transformer.h"

namespace lowbit::qat {
namespace {

using quant::Granularity;
using quant::Grid;
using quant::QuantSpec;

// Forces the ATen path for its lifetime (a failing assertion still releases it).
struct ForcedAten {
  ForcedAten() { force_aten_fake_quant(true); }
  ~ForcedAten() { force_aten_fake_quant(false); }
};

struct Case {
  std::string name;
  QuantSpec spec;
  std::vector<int64_t> shape;
};

QuantSpec with(QuantSpec s, Granularity g, int axis = 0, int group = 0) {
  s.granularity = g;
  s.axis = axis;
  s.group_size = group;
  return s;
}

std::vector<Case> cases() {
  std::vector<std::pair<std::string, QuantSpec>> grids;
  for (int b : {8, 4, 2}) grids.push_back({"int" + std::to_string(b), QuantSpec::int_symmetric(b)});
  for (int b : {8, 4, 2}) grids.push_back({"uint" + std::to_string(b) + "asym", QuantSpec::uint_asymmetric(b)});
  QuantSpec narrow = QuantSpec::int_symmetric(4);
  narrow.narrow_range = true;
  grids.push_back({"int4narrow", narrow});
  grids.push_back({"ternary", QuantSpec::ternary()});
  grids.push_back({"binary", QuantSpec::binary()});
  grids.push_back({"seq2", QuantSpec::seq2()});
  std::vector<Case> out;
  for (const auto& [name, spec] : grids) {
    out.push_back({name + "_tensor", with(spec, Granularity::PerTensor), {6, 5, 3, 3}});
    out.push_back({name + "_channel0", with(spec, Granularity::PerChannel, 0), {6, 5, 3, 3}});
    out.push_back({name + "_channel1", with(spec, Granularity::PerChannel, 1), {2, 6, 4, 5}});
    out.push_back({name + "_group16", with(spec, Granularity::PerGroup, 0, 16), {6, 50}});  // last group partial
  }
  return out;
}

struct Inputs {
  torch::Tensor x, scale, zp, grad;
};

// Values spread 30% beyond the grid on both sides (clipping), some exact half steps (ties), and a
// NaN, +inf and -inf; scales per pair, integer zero points for asymmetric specs.
Inputs make_inputs(const Case& c, uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t p = quant::num_qparams(c.spec, c.shape);
  Inputs in;
  in.scale = torch::rand({p}) * 0.2 + 0.02;
  in.zp = (c.spec.symmetric || c.spec.grid == Grid::Odd)
              ? torch::zeros({p})
              : torch::randint(c.spec.qmin(), c.spec.qmax() + 1, {p}).to(torch::kFloat32);
  const double span = (c.spec.qmax() - c.spec.qmin()) * 0.2 + 0.1;
  torch::Tensor x = (torch::rand(c.shape) * 2.6 - 1.3) * span * 0.2;
  const torch::Tensor flat = x.view({-1});
  const torch::Tensor ties = (torch::floor(flat / 0.05) + 0.5) * 0.05;
  flat.copy_(torch::where(torch::arange(flat.numel()) % 5 == 0, ties, flat));
  flat[1] = std::numeric_limits<float>::quiet_NaN();
  flat[2] = std::numeric_limits<float>::infinity();
  flat[3] = -std::numeric_limits<float>::infinity();
  in.x = x;
  in.grad = torch::randn(c.shape);
  return in;
}

struct Result {
  torch::Tensor y, dx, ds, dz;
};

Result run(const Case& c, const Inputs& in, Estimator est) {
  const torch::Tensor x = in.x.clone().requires_grad_(true);
  const torch::Tensor s = in.scale.clone().requires_grad_(est != Estimator::Ste);
  const torch::Tensor z = in.zp.clone().requires_grad_(est == Estimator::LsqPlus);
  const torch::Tensor y = fake_quantize(x, s, z, c.spec, est);
  y.backward(in.grad);
  return {y.detach(), x.grad(), s.grad(), z.grad()};
}

// One float ulp of b plus the double sum's rounding bound (see the file comment).
void expect_sum_close(const torch::Tensor& a, const torch::Tensor& b, double sum_bound, const std::string& what) {
  ASSERT_EQ(a.defined(), b.defined()) << what;
  if (!a.defined()) return;
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const float* ap = a.contiguous().data_ptr<float>();
  const float* bp = b.contiguous().data_ptr<float>();
  for (int64_t i = 0; i < a.numel(); ++i) {
    const float ulp = std::nextafter(std::fabs(bp[i]), std::numeric_limits<float>::infinity()) - std::fabs(bp[i]);
    EXPECT_LE(std::fabs(ap[i] - bp[i]), ulp + sum_bound) << what << " [" << i << "]: " << ap[i] << " vs " << bp[i];
  }
}

TEST(FakeQuantAten, SwitchSelectsThePath) {
  force_aten_fake_quant(false);  // the fused kernels, also under LOWBIT_FAKE_QUANT_ATEN=1
  const torch::Tensor x = torch::zeros({3});
  EXPECT_TRUE(fused_kernels_apply(x));
  {
    ForcedAten forced;
    EXPECT_FALSE(fused_kernels_apply(x));
  }
  EXPECT_TRUE(fused_kernels_apply(x));
}

TEST(FakeQuantAten, SameForwardAndGradientsAsTheFusedKernels) {
  force_aten_fake_quant(false);  // the fused kernels, also under LOWBIT_FAKE_QUANT_ATEN=1
  int checked = 0;
  for (const Case& c : cases()) {
    for (const Estimator est : {Estimator::Ste, Estimator::Lsq, Estimator::LsqPlus}) {
      const Inputs in = make_inputs(c, 7 + checked);
      const Result fused = run(c, in, est);
      Result aten;
      {
        ForcedAten forced;
        aten = run(c, in, est);
      }
      const std::string what = c.name + " estimator " + std::to_string(static_cast<int>(est));
      EXPECT_TRUE(torch::equal(aten.y, fused.y)) << what << ": forward differs";
      EXPECT_TRUE(torch::equal(aten.dx, fused.dx)) << what << ": input gradient differs";
      // |terms| of a scale's sum are at most |g| * (grid span + 1): bound the sum's rounding.
      const double terms = in.grad.abs().sum().item<double>() * (c.spec.qmax() - c.spec.qmin() + 1.0);
      const double bound = static_cast<double>(in.x.numel()) * std::ldexp(1.0, -53) * terms;
      expect_sum_close(aten.ds, fused.ds, bound, what + ": scale gradient");
      expect_sum_close(aten.dz, fused.dz, bound, what + ": zero-point gradient");
      if (est != Estimator::Ste) EXPECT_TRUE(aten.ds.defined() && aten.ds.abs().sum().item<double>() > 0) << what;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 10 * 4 * 3);  // 10 grids x 4 layouts x 3 estimators
}

// The create_graph branch (Hessian-vector products) reads the straight-through mask through the
// same dispatch.
TEST(FakeQuantAten, DoubleBackwardMaskMatches) {
  force_aten_fake_quant(false);  // the fused kernels, also under LOWBIT_FAKE_QUANT_ATEN=1
  const Case c{"int4_channel0", with(QuantSpec::int_symmetric(4), Granularity::PerChannel, 0), {4, 9}};
  const Inputs in = make_inputs(c, 3);
  auto input_grad = [&] {
    const torch::Tensor x = in.x.clone().requires_grad_(true);
    const torch::Tensor g = in.grad.clone().requires_grad_(true);
    const torch::Tensor y = fake_quantize(x, in.scale, in.zp, c.spec, Estimator::Ste);
    return torch::autograd::grad({y}, {x}, {g}, /*retain_graph=*/true, /*create_graph=*/true)[0].detach();
  };
  const torch::Tensor fused = input_grad();
  ForcedAten forced;
  EXPECT_TRUE(torch::equal(input_grad(), fused));
}

TEST(FakeQuantAten, PerTokenActivationsBitExact) {
  force_aten_fake_quant(false);  // the fused kernels, also under LOWBIT_FAKE_QUANT_ATEN=1
  torch::manual_seed(11);
  torch::Tensor x = torch::randn({3, 5, 24}) * 3.0;
  x[0][1].zero_();                                                  // an all-zero token: scale 1
  x[1][2][4] = std::numeric_limits<float>::quiet_NaN();             // ignored by the row's maximum
  x[2][0][7] = std::numeric_limits<float>::infinity();              // scale inf: codes 0, values inf * 0
  x[2][3] = (torch::arange(24).to(torch::kFloat32) - 11.5) * 0.25;  // halves of a step: ties
  const torch::Tensor fused = fake_quantize_per_token(x.clone());
  const torch::Tensor aten = fake_quantize_per_token_aten(x);
  // The inf row's values are NaN on both paths (scale inf times code 0): equal NaN positions.
  EXPECT_TRUE(torch::equal(torch::isnan(aten), torch::isnan(fused)));
  EXPECT_TRUE(torch::isnan(fused[2][0]).all().item<bool>());
  EXPECT_TRUE(torch::equal(torch::nan_to_num(aten, 0.0), torch::nan_to_num(fused, 0.0)));
  EXPECT_TRUE(aten.ne(0).any().item<bool>());
}

// WinQ's noisy quantizer: without the fused kernels it is the noise (the same counter-based values
// on every device, drawn on the CPU) followed by the ATen fake quantization.
TEST(FakeQuantAten, NoisyFakeQuantizeMatches) {
  force_aten_fake_quant(false);  // the fused kernels, also under LOWBIT_FAKE_QUANT_ATEN=1
  for (const bool relative : {false, true}) {
    const Case c{"int2_group16", with(QuantSpec::int_symmetric(2), Granularity::PerGroup, 0, 16), {4, 40}};
    Inputs in = make_inputs(c, 5);
    in.x = torch::randn(c.shape) * 0.1;
    auto once = [&] {
      const torch::Tensor x = in.x.clone().requires_grad_(true);
      const torch::Tensor s = in.scale.clone().requires_grad_(true);
      const torch::Tensor y = noisy_fake_quantize(x, s, in.zp, c.spec, Estimator::Lsq, 0.05, relative, 1234);
      y.backward(in.grad);
      return Result{y.detach(), x.grad(), s.grad(), torch::Tensor()};
    };
    const Result fused = once();
    Result aten;
    {
      ForcedAten forced;
      aten = once();
    }
    EXPECT_TRUE(torch::equal(aten.y, fused.y)) << "relative " << relative;
    EXPECT_TRUE(torch::equal(aten.dx, fused.dx)) << "relative " << relative;
    const double bound = in.x.numel() * std::ldexp(1.0, -53) * in.grad.abs().sum().item<double>() * 4.0;
    expect_sum_close(aten.ds, fused.ds, bound, "noisy scale gradient");
  }
}

}  // namespace
}  // namespace lowbit::qat
