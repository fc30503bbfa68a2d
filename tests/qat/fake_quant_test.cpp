// Fused fake-quantization kernels vs (1) the scalar specification quant::fake_quantize,
// (2) a composed reference made of plain torch ops whose gradients come from autograd, and
// (3) finite differences of LSQ's surrogate for the scale gradient.
#include "qat/fake_quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "base/error.h"
#include "qat/fake_quant_kernels.h"
#include "qat/qparam_layout.h"
#include "quant/per_token.h"
#include "quant/quantize.h"

namespace lowbit::qat {
namespace {

using quant::Granularity;
using quant::Grid;
using quant::QuantSpec;

std::vector<int64_t> shape_of(const torch::Tensor& t) { return std::vector<int64_t>(t.sizes().begin(), t.sizes().end()); }

torch::Tensor param_index(const QuantSpec& spec, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  torch::Tensor idx = torch::empty({n}, torch::kInt64);
  auto* p = idx.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) p[i] = quant::qparam_index(spec, shape, i);
  return idx;
}

// The composed reference: torch ops only. Forward values are exact (the straight-through
// terms are written as  a - a.detach() + value, which adds an exact 0), gradients come from
// autograd: d(round)/dv := 1 via the STE term, clip range tested on the unrounded v + z;
// elements exactly on an edge take the clamp level for the scale (LSQ) but pass the input
// gradient (closed clip range, as torch.clamp): the  x - x.detach()  term adds that.
torch::Tensor reference_fake_quant(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& zp,
                                   const QuantSpec& spec) {
  const auto shape = shape_of(x);
  const torch::Tensor idx = param_index(spec, shape);
  const torch::Tensor se = scale.index_select(0, idx).view(x.sizes());
  const float qmin = static_cast<float>(spec.qmin()), qmax = static_cast<float>(spec.qmax());
  const torch::Tensor lo = torch::full_like(x, qmin), hi = torch::full_like(x, qmax);
  const torch::Tensor v = x / se;
  const torch::Tensor vd = v.detach();
  if (spec.grid == Grid::Odd) {
    const torch::Tensor c = torch::round(x.detach() / (2 * se.detach()) - 0.5)
                                .clamp(static_cast<double>(spec.code_min()), static_cast<double>(spec.code_max()));
    const torch::Tensor q = 2 * c + 1;
    const torch::Tensor q_ste = v - vd + q;
    const torch::Tensor t = torch::where((vd > qmin) & (vd < qmax), q_ste, torch::where(vd <= qmin, lo, hi));
    const torch::Tensor edge = (vd == qmin) | (vd == qmax);
    return se * t + torch::where(edge, x - x.detach(), torch::zeros_like(x));
  }
  torch::Tensor z_int = torch::zeros_like(scale);
  if (!spec.symmetric) z_int = zp.detach().round().clamp(qmin, qmax);
  const torch::Tensor ze = zp.index_select(0, idx).view(x.sizes());
  const torch::Tensor z_ste = ze - ze.detach() + z_int.index_select(0, idx).view(x.sizes());
  const torch::Tensor r = v - vd + torch::round(vd);
  const torch::Tensor w = vd + z_ste.detach();
  const torch::Tensor t = torch::where((w > qmin) & (w < qmax), r + z_ste, torch::where(w <= qmin, lo, hi));
  const torch::Tensor edge = (w == qmin) | (w == qmax);
  return se * (t - z_ste) + torch::where(edge, x - x.detach(), torch::zeros_like(x));
}

struct Case {
  std::string name;
  QuantSpec spec;
  std::vector<int64_t> shape;
};

QuantSpec with_granularity(QuantSpec s, Granularity g, int axis = 0, int group = 0) {
  s.granularity = g;
  s.axis = axis;
  s.group_size = group;
  return s;
}

std::vector<Case> all_cases() {
  std::vector<std::pair<std::string, QuantSpec>> grids;
  for (int b : {8, 4, 3, 2}) grids.push_back({"int" + std::to_string(b) + "sym", QuantSpec::int_symmetric(b)});
  for (int b : {8, 4, 3, 2}) grids.push_back({"uint" + std::to_string(b) + "asym", QuantSpec::uint_asymmetric(b)});
  QuantSpec int4_asym = QuantSpec::int_symmetric(4);
  int4_asym.symmetric = false;
  grids.push_back({"int4asym", int4_asym});
  QuantSpec int4_narrow = QuantSpec::int_symmetric(4);
  int4_narrow.narrow_range = true;
  grids.push_back({"int4narrow", int4_narrow});
  grids.push_back({"ternary", QuantSpec::ternary()});
  grids.push_back({"binary", QuantSpec::binary()});
  grids.push_back({"seq2", QuantSpec::seq2()});
  std::vector<Case> cases;
  for (const auto& [name, spec] : grids) {
    cases.push_back({name + "_tensor", with_granularity(spec, Granularity::PerTensor), {7, 5, 3, 3}});
    cases.push_back({name + "_channel0", with_granularity(spec, Granularity::PerChannel, 0), {7, 5, 3, 3}});
    cases.push_back({name + "_channel1", with_granularity(spec, Granularity::PerChannel, 1), {2, 6, 4, 5}});
    cases.push_back({name + "_group16", with_granularity(spec, Granularity::PerGroup, 0, 16), {6, 50}});
  }
  return cases;
}

// Scales, integer zero points and inputs that cover clipping on both sides and exact ties.
struct Data {
  torch::Tensor x, scale, zp;
};

Data make_data(const Case& c, uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t p = quant::num_qparams(c.spec, c.shape);
  Data d;
  d.scale = torch::rand({p}) * 0.2 + 0.02;
  if (c.spec.symmetric || c.spec.grid == Grid::Odd) {
    d.zp = torch::zeros({p});
  } else {
    d.zp = torch::randint(c.spec.qmin(), c.spec.qmax() + 1, {p}).to(torch::kFloat32);
  }
  const torch::Tensor idx = param_index(c.spec, c.shape);
  const torch::Tensor se = d.scale.index_select(0, idx).view(c.shape);
  const torch::Tensor ze = d.zp.index_select(0, idx).view(c.shape);
  const double span = c.spec.qmax() - c.spec.qmin();
  // Values in units of the step, centred on the grid, 25% beyond each edge.
  const torch::Tensor units = (torch::rand(c.shape) * 1.5 - 0.25) * span + c.spec.qmin() - ze;
  d.x = units * se;
  // Every third element an exact half-step point k + 0.5 (as float32 product: many are ties).
  const torch::Tensor ties = (torch::floor(units) + 0.5) * se;
  const torch::Tensor mask = (torch::arange(d.x.numel()) % 3 == 0).view(c.shape);
  d.x = torch::where(mask, ties, d.x);
  // Every seventh element exactly on an edge of the grid (v + z == qmin or qmax).
  const torch::Tensor edges = torch::where(torch::rand(c.shape) < 0.5, c.spec.qmin() - ze, c.spec.qmax() - ze) * se;
  d.x = torch::where((torch::arange(d.x.numel()) % 7 == 1).view(c.shape), edges, d.x);
  return d;
}

TEST(QParamLayout, SegmentsCoverEveryElementWithTheSpecIndex) {
  for (const Case& c : all_cases()) {
    QParamLayout layout(c.spec, c.shape, 7);
    std::vector<int> seen(layout.numel(), 0);
    std::vector<int64_t> count(layout.num_params(), 0);
    for (int64_t i = 0; i < layout.num_segments(); ++i) {
      const Segment s = layout.segment(i);
      for (int64_t j = s.begin; j < s.begin + s.length; ++j) {
        ++seen[j];
        ++count[s.param];
        ASSERT_EQ(s.param, quant::qparam_index(c.spec, c.shape, j)) << c.name;
      }
    }
    for (int v : seen) ASSERT_EQ(v, 1) << c.name;
    for (int64_t p = 0; p < layout.num_params(); ++p) ASSERT_EQ(count[p], layout.elements_of(p)) << c.name;
  }
}

TEST(FakeQuantize, ForwardIsBitExactWithScalarSpecification) {
  for (const Case& c : all_cases()) {
    Data d = make_data(c, 1);
    // Non-finite inputs too: NaN -> zero point (Integer) or +1 (Odd), +-inf saturate.
    auto* xp = d.x.data_ptr<float>();
    xp[1] = std::numeric_limits<float>::quiet_NaN();
    xp[2] = std::numeric_limits<float>::infinity();
    xp[4] = -std::numeric_limits<float>::infinity();
    // Finite values beyond the kernels' 2^22-step rounding bound, and exact ties between steps.
    const float s0 = d.scale[quant::qparam_index(c.spec, c.shape, 0)].item<float>();
    xp[0] = 3.0e7f * s0;
    xp[3] = -std::numeric_limits<float>::max();
    xp[5] = -5.0e6f * s0;
    xp[6] = 2.5f * s0;
    xp[7] = -1.5f * s0;
    const torch::Tensor y = fake_quantize_forward(d.x, d.scale, d.zp, c.spec);
    const auto g = quant::GridParams::of(c.spec);
    const torch::Tensor z_int = effective_zero_point(d.zp, c.spec, d.scale.numel());
    for (int64_t i = 0; i < d.x.numel(); ++i) {
      const int64_t p = quant::qparam_index(c.spec, c.shape, i);
      const float expect = quant::fake_quantize(xp[i], d.scale[p].item<float>(), z_int[p].item<int32_t>(), g);
      const float got = y.data_ptr<float>()[i];
      ASSERT_EQ(std::memcmp(&expect, &got, sizeof(float)) == 0 || expect == got, true)
          << c.name << " element " << i << " x=" << xp[i] << " expected " << expect << " got " << got;
    }
  }
}

TEST(FakeQuantize, ForwardEqualsComposedReference) {
  for (const Case& c : all_cases()) {
    Data d = make_data(c, 2);
    const torch::Tensor fused = fake_quantize(d.x, d.scale, d.zp, c.spec, Estimator::Ste);
    const torch::Tensor ref = reference_fake_quant(d.x, d.scale, d.zp, c.spec);
    ASSERT_TRUE(torch::equal(fused, ref)) << c.name << " max diff " << (fused - ref).abs().max().item<float>();
  }
}

TEST(FakeQuantize, GradientsEqualComposedReferenceForEveryEstimator) {
  for (const Case& c : all_cases()) {
    for (Estimator e : {Estimator::Ste, Estimator::Lsq, Estimator::LsqPlus}) {
      const std::string what = c.name + "/" + to_string(e);
      Data d = make_data(c, 3);
      const torch::Tensor gout = torch::randn(c.shape);
      torch::Tensor x1 = d.x.clone().requires_grad_(), s1 = d.scale.clone().requires_grad_(),
                    z1 = d.zp.clone().requires_grad_();
      fake_quantize(x1, s1, z1, c.spec, e).backward(gout);
      torch::Tensor x2 = d.x.clone().requires_grad_(), s2 = d.scale.clone().requires_grad_(),
                    z2 = d.zp.clone().requires_grad_();
      reference_fake_quant(x2, s2, z2, c.spec).backward(gout);
      // dx: the reference computes (g * s) / s, which may differ from g in the last bit.
      ASSERT_TRUE(torch::allclose(x1.grad(), x2.grad(), 1e-6, 0.0)) << what;
      // LSQ gradient scale 1 / sqrt(N * Qp), applied to the reference's raw sums.
      const torch::Tensor n = torch::bincount(param_index(c.spec, c.shape)).to(torch::kFloat64);
      const double qp = std::max(1, c.spec.qmax());
      const torch::Tensor gs = (1.0 / torch::sqrt(n * qp)).to(torch::kFloat32);
      if (e == Estimator::Ste) {
        EXPECT_FALSE(s1.grad().defined()) << what;
      } else {
        ASSERT_TRUE(s1.grad().defined()) << what;
        // Sums are accumulated in double (fused) vs float (torch): tolerance for order only.
        EXPECT_TRUE(torch::allclose(s1.grad(), s2.grad() * gs, 1e-4, 1e-4))
            << what << "\nfused " << s1.grad() << "\nref " << s2.grad() * gs;
      }
      const bool has_zp_grad = e == Estimator::LsqPlus && !c.spec.symmetric && c.spec.grid == Grid::Integer;
      if (has_zp_grad) {
        ASSERT_TRUE(z1.grad().defined()) << what;
        EXPECT_TRUE(torch::allclose(z1.grad(), z2.grad() * gs, 1e-4, 1e-4))
            << what << "\nfused " << z1.grad() << "\nref " << z2.grad() * gs;
      } else {
        EXPECT_FALSE(z1.grad().defined()) << what;
      }
    }
  }
}

// LSQ's scale gradient is the derivative of the surrogate s * (x/s + c) (c = round(v) - v
// frozen at the current s) inside the range and s * (clamp level - z) outside: check it
// against central finite differences of that surrogate, in double.
TEST(FakeQuantize, LsqScaleGradientMatchesFiniteDifferencesOfSurrogate) {
  for (QuantSpec spec : {QuantSpec::int_symmetric(4), QuantSpec::uint_asymmetric(3), QuantSpec::ternary(Granularity::PerTensor),
                         QuantSpec::seq2(Granularity::PerTensor), QuantSpec::binary(Granularity::PerTensor)}) {
    torch::manual_seed(4);
    const float s0 = 0.1f;
    const int32_t z = spec.symmetric ? 0 : 2;
    torch::Tensor x = torch::randn({257}) * (0.6 * spec.qmax() * s0);
    torch::Tensor g = torch::randn({257});
    auto grads = fake_quantize_backward(g, x, torch::full({1}, s0), torch::full({1}, float(z)), spec, Estimator::Lsq);
    const auto gp = quant::GridParams::of(spec);
    std::vector<double> c(x.numel());
    const float* xp = x.data_ptr<float>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float q = static_cast<float>(quant::quantize(xp[i], s0, z, gp));
      c[i] = (q - (spec.grid == Grid::Odd ? 0 : z)) - static_cast<double>(xp[i] / s0);
    }
    auto surrogate = [&](double s) {
      double sum = 0;
      for (int64_t i = 0; i < x.numel(); ++i) {
        const float v = xp[i] / s0;
        const double w = static_cast<double>(v) + (spec.grid == Grid::Odd ? 0 : z);
        double y;
        if (w <= spec.qmin()) y = s * (spec.qmin() - z * (spec.grid != Grid::Odd));
        else if (w >= spec.qmax()) y = s * (spec.qmax() - z * (spec.grid != Grid::Odd));
        else y = s * (xp[i] / s + c[i]);
        sum += g.data_ptr<float>()[i] * y;
      }
      return sum;
    };
    const double h = 1e-4;
    const double fd = (surrogate(s0 + h) - surrogate(s0 - h)) / (2 * h);
    const double gs = 1.0 / std::sqrt(257.0 * std::max(1, spec.qmax()));
    EXPECT_NEAR(grads.scale.item<float>(), fd * gs, 1e-4 * std::max(1.0, std::abs(fd * gs))) << spec.describe();
  }
}

TEST(FakeQuantize, HandComputedLsqExample) {
  // int4 symmetric: qmin -8, qmax 7, s = 0.5. x = {0.3, 0.8, 5.0, -6.0, 3.5}:
  //   v = {0.6, 1.6, 10, -12, 7}; inside: round(v) - v = {0.4, 0.4}; above: 7; below: -8;
  //   exactly on the edge (v = 7): the clamp level 7 for s, but x's gradient passes.
  const QuantSpec spec = QuantSpec::int_symmetric(4);
  torch::Tensor x = torch::tensor({0.3f, 0.8f, 5.0f, -6.0f, 3.5f});
  torch::Tensor g = torch::tensor({1.0f, 2.0f, 1.0f, 0.5f, 3.0f});
  auto grads = fake_quantize_backward(g, x, torch::tensor({0.5f}), torch::Tensor(), spec, Estimator::Lsq);
  const double raw = 1.0 * (1.0 - 0.6) + 2.0 * (2.0 - 1.6) + 1.0 * 7 + 0.5 * -8 + 3.0 * 7;
  EXPECT_NEAR(grads.scale.item<float>(), raw / std::sqrt(5.0 * 7.0), 1e-6);
  EXPECT_TRUE(torch::equal(grads.input, torch::tensor({1.0f, 2.0f, 0.0f, 0.0f, 3.0f})));
}

TEST(FakeQuantize, ResultDoesNotDependOnThreadCount) {
  const Case c{"big", with_granularity(QuantSpec::int_symmetric(4), Granularity::PerTensor), {300, 1000}};
  Data d = make_data(c, 5);
  const torch::Tensor gout = torch::randn(c.shape);
  const int saved = at::get_num_threads();
  at::set_num_threads(1);
  auto a = fake_quantize_backward(gout, d.x, d.scale, d.zp, c.spec, Estimator::Lsq);
  at::set_num_threads(std::max(2, saved));
  auto b = fake_quantize_backward(gout, d.x, d.scale, d.zp, c.spec, Estimator::Lsq);
  at::set_num_threads(saved);
  EXPECT_TRUE(torch::equal(a.input, b.input));
  EXPECT_TRUE(torch::equal(a.scale, b.scale));
}

// Per-token fake quantization (QAT's input of every language-model projection): the vector row
// kernel gives, bit for bit, the scale and codes of quant::quantize_token_row (what the decoder
// runtime computes) times that scale, for every row length (vector body and tail) and the edge
// cases: ties, all-zero rows, -0, NaN, +-inf, tiny and huge magnitudes.
TEST(FakeQuantize, PerTokenRowKernelIsBitExactWithQuantizeTokenRow) {
  torch::manual_seed(21);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  int checked = 0;
  for (const int64_t n : {0, 1, 2, 7, 15, 16, 17, 31, 32, 33, 63, 128, 129, 341, 512}) {
    for (int variant = 0; variant < 10; ++variant) {
      std::vector<float> x(static_cast<size_t>(n));
      const torch::Tensor r = torch::randn({n});
      const float magnitude[] = {1.0f, 1e-3f, 1e30f, 1e-40f, 3.0f};
      for (int64_t i = 0; i < n; ++i) x[i] = r[i].item<float>() * magnitude[variant % 5];
      if (variant == 5) std::fill(x.begin(), x.end(), 0.0f);            // all zeros: scale 1
      if (variant == 6) std::fill(x.begin(), x.end(), -0.0f);           // negative zeros
      if (variant == 7)                                                 // halves of a step: ties
        for (int64_t i = 0; i < n; ++i) x[i] = (static_cast<float>(i % 24) - 11.5f) * 0.25f;
      if (variant == 8 && n > 0) x[n / 2] = nan;                        // ignored by the maximum
      if (variant == 9 && n > 0) {
        x[n - 1] = (n % 2) ? inf : -inf;                                // scale inf
        x[0] = n > 1 ? nan : x[0];
      }
      std::vector<int8_t> q(static_cast<size_t>(n));
      const float s_ref = quant::quantize_token_row(x.data(), n, q.data());
      std::vector<float> y_ref(static_cast<size_t>(n)), y(static_cast<size_t>(n), 42.0f);
      for (int64_t i = 0; i < n; ++i) y_ref[i] = s_ref * static_cast<float>(q[i]);
      const float s = kernels::fake_quantize_token_row(x.data(), y.data(), n);
      ASSERT_EQ(std::memcmp(&s, &s_ref, sizeof(float)), 0) << "n " << n << " variant " << variant;
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(std::memcmp(&y[i], &y_ref[i], sizeof(float)), 0)
            << "n " << n << " variant " << variant << " i " << i << ": " << y[i] << " vs " << y_ref[i];
      ++checked;
    }
  }
  EXPECT_EQ(checked, 150);
}

TEST(FakeQuantize, ErrorsNameTheProblem) {
  const QuantSpec spec = with_granularity(QuantSpec::int_symmetric(4), Granularity::PerChannel, 0);
  try {
    fake_quantize(torch::randn({4, 3}), torch::ones({3}), torch::Tensor(), spec, Estimator::Ste);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs 4 float32 scales (got 3)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(fake_quantize(torch::randn({4}).to(torch::kFloat64), torch::ones({1}), torch::Tensor(),
                             QuantSpec::int_symmetric(8), Estimator::Ste),
               Error);
  try {
    estimator_from_string("lsqq");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ste, lsq, lsqplus"), std::string::npos);
  }
}

}  // namespace
}  // namespace lowbit::qat
