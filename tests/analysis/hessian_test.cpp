// The Hessian tools (analysis/hessian.h) against Hessians known exactly: a quadratic form with a
// chosen spectrum, a small float64 MLP (HVP vs finite differences of gradients), and a quantized
// layer (double backward through the fake quantizer vs finite differences at the deployed
// weights). Tolerances are stated next to each check with their reason.
#include <gtest/gtest.h>

#include <cmath>

#include "analysis/hessian.h"
#include "analysis/hessian_analysis.h"
#include "base/error.h"
#include "models/gpt.h"
#include "qat/fake_quant.h"
#include "qat/quantized_layers.h"

namespace lowbit::analysis {
namespace {

constexpr int64_t kDim = 30;

// A = Q diag(lambda) Q^T with lambda = {10, 7, then 28 values spread over [-2, 5]}: distinct, a
// gap of 0.7 at the top for power iteration, negative values as a saddle has.
struct Quadratic {
  torch::Tensor a, eigenvalues;
  Quadratic() {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(123);
    const torch::Tensor m = torch::randn({kDim, kDim}, gen, torch::kFloat64);
    const torch::Tensor q = std::get<0>(torch::linalg_qr(m));
    std::vector<double> l = {10.0, 7.0};
    for (int64_t i = 0; i < kDim - 2; ++i) l.push_back(-2.0 + 7.0 * static_cast<double>(i) / (kDim - 3));
    eigenvalues = torch::tensor(l, torch::kFloat64);
    a = q.matmul(torch::diag(eigenvalues)).matmul(q.t());
    a = 0.5 * (a + a.t());
  }
};

// The quadratic as a "model": loss(x) = 0.5 x^T A x + b^T x, in float32 through autograd.
struct QuadraticModel {
  Quadratic quad;
  torch::Tensor x = torch::randn({kDim}).requires_grad_(true);
  torch::Tensor a32 = quad.a.to(torch::kFloat32), b = torch::randn({kDim});
  HessianVectorProduct hvp{[this](int64_t) { return 0.5 * torch::dot(x, a32.mv(x)) + torch::dot(b, x); }, {x}, 1};
};

TEST(Hessian, HvpOfAQuadraticIsTheMatrixProduct) {
  QuadraticModel m;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  for (int i = 0; i < 3; ++i) {
    const torch::Tensor v = torch::randn({kDim}, gen, torch::kFloat64);
    // float32 arithmetic on O(10) entries: 1e-5 relative.
    EXPECT_TRUE(torch::allclose(m.hvp(v), m.quad.a.mv(v), 1e-5, 1e-4));
  }
}

TEST(Hessian, PowerIterationFindsTheTopEigenvalue) {
  QuadraticModel m;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  const PowerIterationResult r = power_iteration(m.hvp.as_operator(), kDim, 500, 1e-10, gen);
  EXPECT_TRUE(r.converged);
  // The error of the Rayleigh quotient falls as (7/10)^(2k); the float32 HVP limits it to ~1e-6.
  EXPECT_NEAR(r.eigenvalue, 10.0, 1e-4 * 10.0);
}

TEST(Hessian, HutchinsonTraceWithinItsStatisticalError) {
  QuadraticModel m;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const int64_t probes = 2000;
  const TraceEstimate t = hutchinson_trace(m.hvp.as_operator(), kDim, probes, gen);
  const double exact = m.quad.eigenvalues.sum().item<double>();
  // Var(z^T A z) = 2 (||A||_F^2 - sum_i A_ii^2) for Rademacher z: 4 standard errors.
  const double var = 2.0 * (m.quad.a.pow(2).sum() - m.quad.a.diagonal().pow(2).sum()).item<double>();
  const double sd = std::sqrt(var / probes);
  EXPECT_NEAR(t.trace, exact, 4.0 * sd);
  EXPECT_NEAR(t.std_error, sd, 0.2 * sd);  // the reported error estimates the true one
}

TEST(Hessian, LanczosWithFullDimensionRecoversTheExactSpectrum) {
  QuadraticModel m;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  const SpectralDensity d = stochastic_lanczos_quadrature(m.hvp.as_operator(), kDim, 3, kDim, gen);
  const torch::Tensor exact = std::get<0>(torch::sort(m.quad.eigenvalues));
  ASSERT_EQ(d.nodes.size(), 3u);
  for (size_t p = 0; p < d.nodes.size(); ++p) {
    ASSERT_EQ(d.nodes[p].size(), static_cast<size_t>(kDim));
    double sum = 0.0;
    for (int64_t i = 0; i < kDim; ++i) {
      // Ritz values of the full Krylov space = eigenvalues; 1e-4 relative to the spectral radius.
      EXPECT_NEAR(d.nodes[p][i], exact[i].item<double>(), 1e-4 * 10.0) << "probe " << p << " node " << i;
      EXPECT_GE(d.weights[p][i], 0.0);
      sum += d.weights[p][i];
    }
    EXPECT_NEAR(sum, 1.0, 1e-10);
  }
  // The density is a probability density: it integrates to 1 on a wide grid.
  std::vector<double> grid;
  for (int i = 0; i <= 4000; ++i) grid.push_back(-4.0 + 16.0 * i / 4000.0);
  const auto phi = d.density(grid, 0.1);
  double integral = 0.0;
  for (size_t i = 1; i < grid.size(); ++i) integral += 0.5 * (phi[i] + phi[i - 1]) * (grid[i] - grid[i - 1]);
  EXPECT_NEAR(integral, 1.0, 1e-6);
}

TEST(Hessian, NearZeroFractionFromQuadratureWeights) {
  // 12 of 40 eigenvalues within 1e-4 of zero (distinct), the rest in [0.5, 3] and [-3, -0.5].
  const int64_t n = 40;
  std::vector<double> l;
  for (int i = 0; i < 12; ++i) l.push_back(-5e-5 + 1e-5 * i);
  for (int i = 0; i < 14; ++i) l.push_back(0.5 + 0.18 * i);
  for (int i = 0; i < 14; ++i) l.push_back(-0.5 - 0.18 * i);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const torch::Tensor q = std::get<0>(torch::linalg_qr(torch::randn({n, n}, gen, torch::kFloat64)));
  const torch::Tensor a = q.matmul(torch::diag(torch::tensor(l, torch::kFloat64))).matmul(q.t());
  const LinearOperator op = [&a](const torch::Tensor& v) { return a.mv(v); };
  const SpectralDensity d = stochastic_lanczos_quadrature(op, n, 200, n, gen);
  // Each probe's weight on the 12 values is Beta(6, 14) distributed (mean 0.3, sd 0.1): over
  // 200 probes the mean has sd 0.007; 0.03 is over 4 sd.
  EXPECT_NEAR(d.near_zero_fraction(1e-3), 12.0 / n, 0.03);
  EXPECT_NEAR(d.near_zero_fraction(10.0), 1.0, 1e-9);
}

TEST(Hessian, HvpOfAnMlpEqualsFiniteDifferencesOfGradients) {
  torch::manual_seed(6);
  // A two-layer tanh MLP in float64, written out with its parameter tensors.
  std::vector<torch::Tensor> params = {
      (torch::randn({16, 12}, torch::kFloat64) * 0.3).requires_grad_(true), torch::zeros({16}, torch::kFloat64).requires_grad_(true),
      (torch::randn({5, 16}, torch::kFloat64) * 0.3).requires_grad_(true), torch::zeros({5}, torch::kFloat64).requires_grad_(true)};
  const torch::Tensor x = torch::randn({32, 12}, torch::kFloat64);
  const torch::Tensor y = torch::randint(0, 5, {32}, torch::kInt64);
  BatchLoss loss = [&](int64_t) {
    const torch::Tensor h = torch::tanh(torch::addmm(params[1], x, params[0].t()));
    return torch::nn::functional::cross_entropy(torch::addmm(params[3], h, params[2].t()), y);
  };
  HessianVectorProduct hvp(loss, params, 1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  const torch::Tensor v = torch::randn({hvp.dim()}, gen, torch::kFloat64);
  const double eps = 1e-5;
  auto grad_at = [&](double t) {
    torch::NoGradGuard g;
    int64_t off = 0;
    std::vector<torch::Tensor> saved;
    for (auto& p : params) {
      saved.push_back(p.detach().clone());
      p.add_(v.narrow(0, off, p.numel()).view(p.sizes()) * t);
      off += p.numel();
    }
    torch::Tensor grad;
    {
      torch::AutoGradMode on(true);
      grad = hvp.loss_and_gradient().second;
    }
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(saved[i]);
    return grad;
  };
  const torch::Tensor fd = (grad_at(eps) - grad_at(-eps)) / (2 * eps);
  // Central differences in float64: O(eps^2) + O(1e-16 / eps) ~ 1e-10.
  EXPECT_TRUE(torch::allclose(hvp(v), fd, 1e-6, 1e-8));
}

TEST(Hessian, HvpThroughAFakeQuantizerIsTheMaskedHessianAtTheDeployedWeights) {
  // loss(W) = CE(x Q(W)^T, y) with int4 per-channel LSQ; double backward through the STE:
  // H v = m * H_f(Q(W)) (m * v), m the straight-through mask, H_f the Hessian of the float loss.
  torch::manual_seed(8);
  const auto spec = quant::QuantSpec::int_symmetric(4, quant::Granularity::PerChannel);
  torch::Tensor w = (torch::randn({6, 10}) * 0.5).requires_grad_(true);
  torch::Tensor scale = (torch::full({6}, 0.12)).requires_grad_(true);  // some weights clip
  const torch::Tensor x = torch::randn({24, 10});
  const torch::Tensor y = torch::randint(0, 6, {24}, torch::kInt64);
  BatchLoss loss = [&](int64_t) {
    return torch::nn::functional::cross_entropy(
        x.matmul(qat::fake_quantize(w, scale, torch::Tensor(), spec, qat::Estimator::Lsq).t()), y);
  };
  HessianVectorProduct hvp(loss, {w}, 1);
  const torch::Tensor mask = qat::fake_quantize_backward(torch::ones_like(w), w, scale, torch::zeros({6}), spec,
                                                         qat::Estimator::Ste).input.to(torch::kFloat64).reshape({-1});
  ASSERT_LT(mask.sum().item<double>(), mask.numel());  // the test covers clipped weights
  const torch::Tensor wq = qat::fake_quantize_forward(w.detach(), scale.detach(), torch::Tensor(), spec).to(torch::kFloat64);
  const torch::Tensor x64 = x.to(torch::kFloat64);
  auto float_grad = [&](const torch::Tensor& wd) {
    torch::Tensor p = wd.clone().requires_grad_(true);
    torch::Tensor l = torch::nn::functional::cross_entropy(x64.matmul(p.t()), y);
    return torch::autograd::grad({l}, {p})[0].reshape({-1});
  };
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  const torch::Tensor v = torch::randn({w.numel()}, gen, torch::kFloat64);
  const torch::Tensor mv = (mask * v).view(w.sizes());
  const double eps = 1e-5;
  const torch::Tensor fd = mask * (float_grad(wq + eps * mv) - float_grad(wq - eps * mv)) / (2 * eps);
  // The HVP runs in float32: 1e-4 relative.
  EXPECT_TRUE(torch::allclose(hvp(v), fd, 1e-4, 1e-6));
}

// Graph reuse: later products through the kept forward / first backward equal recomputed ones
// bit for bit (a QAT cnn with ternary weights and A8 activations, eval mode, two batches), the
// graph is built once, and an in-place change of a parameter rebuilds it (H at the new point).
TEST(Hessian, ReusedGraphGivesTheSameProductsAndFollowsParameterChanges) {
  torch::manual_seed(12);
  models::Net net = models::make_model("cnn");
  qat::prepare(net, qat::QatConfig::from_json(nlohmann::json::parse(R"({"weight_format": "ternary", "act_bits": 8})")));
  net->train();
  {
    torch::NoGradGuard g;
    net->forward(torch::rand({8, 1, 28, 28}));
  }
  net->eval();
  const std::vector<torch::Tensor> xs = {torch::rand({6, 1, 28, 28}), torch::rand({6, 1, 28, 28})};
  const std::vector<torch::Tensor> ys = {torch::randint(0, 10, {6}, torch::kInt64), torch::randint(0, 10, {6}, torch::kInt64)};
  std::vector<torch::Tensor> params;
  for (auto& [name, p] : hessian_parameters(net, "*")) params.push_back(p);
  BatchLoss loss = [&](int64_t b) {
    return torch::nn::functional::cross_entropy(net->forward(xs[static_cast<size_t>(b)]), ys[static_cast<size_t>(b)]);
  };
  HessianVectorProduct reused(loss, params, 2), fresh(loss, params, 2, /*reuse_graph=*/false);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(13);
  for (int i = 0; i < 3; ++i) {
    const torch::Tensor v = torch::randn({reused.dim()}, gen, torch::kFloat64);
    const torch::Tensor a = reused(v);
    EXPECT_TRUE(torch::equal(a, fresh(v))) << i;
    EXPECT_GT(a.abs().sum().item<double>(), 0.0);
  }
  EXPECT_EQ(reused.graph_builds(), 1);
  EXPECT_EQ(fresh.graph_builds(), 6);
  {
    torch::NoGradGuard g;
    params[1].mul_(1.5);  // conv2's latent weight
  }
  const torch::Tensor v = torch::randn({reused.dim()}, gen, torch::kFloat64);
  EXPECT_TRUE(torch::equal(reused(v), fresh(v)));
  EXPECT_EQ(reused.graph_builds(), 2);
  reused.release();
  EXPECT_TRUE(torch::equal(reused(v), fresh(v)));
  EXPECT_EQ(reused.graph_builds(), 3);
}

TEST(Hessian, AnalysisOfAQuantizedCnnGivesFiniteNumbersAndFiles) {
  torch::manual_seed(10);
  models::Net net = models::make_model("cnn");
  qat::prepare(net, qat::QatConfig::from_json(nlohmann::json::parse(R"({"weight_format": "ternary", "act_bits": 8})")));
  net->train();
  {
    torch::NoGradGuard g;
    net->forward(torch::rand({8, 1, 28, 28}));
  }
  HessianOptions o;
  o.layers = "fc*";
  o.probes = 2;
  o.lanczos_steps = 4;
  o.power_iterations = 3;
  const HessianReport r = analyze_hessian(net, {torch::rand({8, 1, 28, 28})}, {torch::randint(0, 10, {8}, torch::kInt64)}, o);
  EXPECT_EQ(r.parameters.size(), 2u);  // fc1.linear.weight, fc2.linear.weight
  EXPECT_EQ(r.parameter_count, 3136 * 128 + 128 * 10);
  EXPECT_TRUE(std::isfinite(r.top_eigenvalue) && std::isfinite(r.trace));
  EXPECT_GE(r.near_zero_fraction, 0.0);
  EXPECT_LE(r.near_zero_fraction, 1.0 + 1e-9);
  EXPECT_TRUE(net->is_training());  // mode restored
  const std::string svg = r.density_svg();
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("eigenvalue"), std::string::npos);
  EXPECT_NE(r.density_csv().find("eigenvalue,density"), std::string::npos);
  EXPECT_THROW(hessian_parameters(net, "nope*"), Error);
}

TEST(Hessian, LanguageModelAnalysisMatchesItsExactHessian) {
  // gpt-tiny at toy size; the analysed weights (block0_attn_v, 8 x 8) are few enough to form the
  // Hessian column by column (64 HVPs) and compare with what the analysis estimates.
  torch::manual_seed(11);
  models::GptOptions g;
  g.layers = 1;
  g.width = 8;
  g.heads = 2;
  g.context = 12;
  models::Net net = models::make_gpt(g);
  const torch::Tensor text = torch::randint(0, 256, {400}, torch::kUInt8);
  std::vector<torch::Tensor> inputs, targets, again_in, again_t;
  lm_hessian_batches(text, g.context, 2, 6, inputs, targets);
  lm_hessian_batches(text, g.context, 2, 6, again_in, again_t);
  ASSERT_EQ(inputs.size(), 2u);
  EXPECT_EQ(inputs[0].sizes(), (std::vector<int64_t>{6, 12}));
  EXPECT_TRUE(torch::equal(inputs[1], again_in[1]) && torch::equal(targets[1], again_t[1]));  // fixed windows
  // Targets are the next bytes: input byte t + 1 == target byte t.
  EXPECT_TRUE(torch::equal(inputs[0].narrow(1, 1, 11), targets[0].narrow(1, 0, 11)));

  HessianOptions o;
  o.layers = "block0_attn_v";
  o.probes = 40;  // Hutchinson and SLQ probes (SLQ costs probes x lanczos_steps HVPs)
  o.lanczos_steps = 4;
  o.power_iterations = 500;
  o.power_tolerance = 1e-9;
  const HessianReport r = analyze_hessian(net, inputs, targets, o);
  ASSERT_EQ(r.parameter_count, 64);

  net->eval();
  std::vector<torch::Tensor> params;
  for (auto& [name, p] : hessian_parameters(net, o.layers)) params.push_back(p);
  double mean_loss = 0.0;
  BatchLoss loss = [&](int64_t b) {
    const torch::Tensor logits = net->forward(inputs[static_cast<size_t>(b)]);
    return torch::nn::functional::cross_entropy(logits.reshape({-1, 256}), targets[static_cast<size_t>(b)].reshape({-1}));
  };
  for (int64_t b = 0; b < 2; ++b) mean_loss += loss(b).item<double>() / 2.0;
  EXPECT_NEAR(r.loss, mean_loss, 1e-6);  // the mean cross-entropy over every predicted byte
  HessianVectorProduct hvp(loss, params, 2);
  torch::Tensor h = torch::zeros({64, 64}, torch::kFloat64);
  for (int64_t i = 0; i < 64; ++i) h.select(1, i).copy_(hvp(torch::eye(64, torch::kFloat64).select(0, i)));
  h = 0.5 * (h + h.t());
  const torch::Tensor eig = torch::linalg_eigvalsh(h);
  const double top = eig.abs().max().item<double>();
  // Power iteration converges to the eigenvalue of largest magnitude: 1% (float32 HVPs, a gap
  // between the top two of unknown size).
  EXPECT_NEAR(std::abs(r.top_eigenvalue), top, 0.01 * top);
  // Hutchinson with 40 Rademacher probes: within 4 of its reported standard errors.
  EXPECT_NEAR(r.trace, eig.sum().item<double>(), 4.0 * r.trace_std_error + 1e-4);
}

TEST(Hessian, DensityCsvWritesSubnormalTailsAsZero) {
  // A density of a few Ritz values with a narrow width underflows to subnormals far away;
  // strtod calls those out of range, so the file says 0 there.
  HessianReport r;
  r.grid = {0.0, 1.0, 2.0};
  r.density = {0.5, 1.97626258e-323, 1e-200};
  EXPECT_EQ(r.density_csv(), "eigenvalue,density\n0,0.5\n1,0\n2,1e-200\n");
}

}  // namespace
}  // namespace lowbit::analysis
