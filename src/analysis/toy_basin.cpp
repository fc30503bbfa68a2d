#include "analysis/toy_basin.h"

#include <cmath>
#include <limits>

#include "ptq/gptq.h"
#include "quant/quantize.h"

namespace lowbit::analysis {
namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;

double along(const Point2& p) { return (p[0] + p[1]) * kInvSqrt2; }

// (u, v) derivatives back to (x, y): d/dx = (d/du - d/dv) / sqrt2, d/dy = (d/du + d/dv) / sqrt2.
Point2 to_xy(double du, double dv) { return {(du - dv) * kInvSqrt2, (du + dv) * kInvSqrt2}; }

double quadratic_form(const std::array<double, 4>& h, const Point2& d) {
  return d[0] * (h[0] * d[0] + h[1] * d[1]) + d[1] * (h[2] * d[0] + h[3] * d[1]);
}

}  // namespace

double ToyBasin::across(const Point2& p) const { return (p[1] - p[0]) * kInvSqrt2; }

double ToyBasin::loss(const Point2& p) const {
  const double u = along(p) - along(fp), v = across(p), v0 = across(fp);
  const double outside = std::max(std::abs(v) - w, 0.0);
  return c * u * u + a * (v - v0) * (v - v0) + b * outside * outside;
}

Point2 ToyBasin::gradient(const Point2& p) const {
  const double u = along(p) - along(fp), v = across(p), v0 = across(fp);
  const double outside = std::max(std::abs(v) - w, 0.0);
  const double du = 2.0 * c * u;
  const double dv = 2.0 * a * (v - v0) + 2.0 * b * outside * (v > 0 ? 1.0 : -1.0);
  return to_xy(du, dv);
}

std::array<double, 4> ToyBasin::hessian(const Point2& p) const {
  const double huu = 2.0 * c;
  const double hvv = 2.0 * a + (std::abs(across(p)) > w ? 2.0 * b : 0.0);
  // H_xy = R^T diag(huu, hvv) R with u = (x + y)/sqrt2, v = (y - x)/sqrt2.
  const double s = 0.5 * (huu + hvv), d = 0.5 * (huu - hvv);
  return {s, d, d, s};
}

Point2 ToyBasin::quantize(const Point2& p) const {
  const quant::GridParams g = quant::GridParams::of(quant::QuantSpec::int_symmetric(8));
  const auto s = static_cast<float>(grid_step);
  return {quant::fake_quantize(static_cast<float>(p[0]), s, 0, g), quant::fake_quantize(static_cast<float>(p[1]), s, 0, g)};
}

Point2 toy_round_to_nearest(const ToyBasin& t) { return t.quantize(t.fp); }

Point2 toy_second_order(const ToyBasin& t) {
  const auto h = t.hessian(t.fp);
  const torch::Tensor weight = torch::tensor({t.fp[0], t.fp[1]}, torch::kFloat64).reshape({1, 2});
  const torch::Tensor hessian = torch::tensor({h[0], h[1], h[2], h[3]}, torch::kFloat64).reshape({2, 2});
  auto column = [&t](const torch::Tensor& col) {
    const Point2 q = t.quantize({col[0].item<double>(), 0.0});
    return torch::tensor({static_cast<float>(q[0])});
  };
  ptq::GptqOptions o;
  o.percdamp = 1e-6;  // H is well conditioned; keep the objective as it is
  const torch::Tensor q = ptq::gptq_quantize(weight, hessian, column, o);
  return {q[0][0].item<double>(), q[0][1].item<double>()};
}

Point2 toy_second_order_exhaustive(const ToyBasin& t) {
  const auto h = t.hessian(t.fp);
  const Point2 centre = t.quantize(t.fp);
  Point2 best = centre;
  double best_cost = std::numeric_limits<double>::infinity();
  for (int i = -3; i <= 3; ++i) {
    for (int j = -3; j <= 3; ++j) {
      const Point2 q = {centre[0] + i * t.grid_step, centre[1] + j * t.grid_step};
      const double cost = quadratic_form(h, {q[0] - t.fp[0], q[1] - t.fp[1]});
      if (cost < best_cost) best_cost = cost, best = q;
    }
  }
  return best;
}

std::vector<ToyStep> toy_ste_qat(const ToyBasin& t, double lr, int steps) {
  std::vector<ToyStep> out;
  Point2 latent = t.fp;
  for (int k = 0; k <= steps; ++k) {
    ToyStep s;
    s.step = k;
    s.latent = latent;
    s.deployed = t.quantize(latent);
    s.deployed_loss = t.loss(s.deployed);
    s.in_basin = t.in_basin(s.deployed);
    const Point2 g = t.gradient(s.deployed);  // STE: the gradient at the deployed point
    const Point2 inward = {t.fp[0] - s.deployed[0], t.fp[1] - s.deployed[1]};
    const double ng = std::hypot(g[0], g[1]), ni = std::hypot(inward[0], inward[1]);
    s.inward_cosine = ng > 0 && ni > 0 ? -(g[0] * inward[0] + g[1] * inward[1]) / (ng * ni) : 0.0;
    out.push_back(s);
    latent = {latent[0] - lr * g[0], latent[1] - lr * g[1]};
  }
  return out;
}

}  // namespace lowbit::analysis
