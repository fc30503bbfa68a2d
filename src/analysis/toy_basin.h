// A 2-D landscape that shows why PTQ can fail where QAT recovers (RESEARCH.md section 2).
//
// Coordinates: p = (x, y), quantized on lowbit's integer grid with step `grid_step` (symmetric,
// zero point 0, round half to even). The loss is written in rotated coordinates
//   u = (x + y) / sqrt(2)   along the "river" (the low-loss direction)
//   v = (y - x) / sqrt(2)   across it
//   L(p) = c (u - u0)^2 + a (v - v0)^2 + b max(|v| - w, 0)^2
// with a small (a nearly flat basin |v| <= w across the river), b large (steep walls), and the
// FP point p0 = (u0, v0) a minimum inside the basin. The grid points (k, k) lie on the river, so
// low-loss grid points exist; with the grid step about twice the basin half-width, rounding p0
// can land across the river, outside the basin. A second-order model at p0 only sees the
// floor's curvature (a, c), never the wall (b), so it picks the same outside point; STE descent
// evaluates the gradient at the deployed point, feels the wall and moves back in.
#pragma once
#include <array>
#include <cmath>
#include <vector>

namespace lowbit::analysis {

using Point2 = std::array<double, 2>;  // (x, y)

struct ToyBasin {
  double c = 0.05;      // curvature along the river
  double a = 0.01;      // curvature of the basin floor across the river
  double b = 100.0;     // wall stiffness
  double w = 0.3;       // basin half-width (in v)
  double grid_step = 1.0;
  Point2 fp = {0.35, 0.6};  // the FP minimum (inside the basin: |v| = 0.18 < w)

  double loss(const Point2& p) const;
  Point2 gradient(const Point2& p) const;
  // Hessian of the smooth part at p (exact inside the basin, where PTQ's model is built).
  std::array<double, 4> hessian(const Point2& p) const;  // row-major 2x2
  double across(const Point2& p) const;  // v
  bool in_basin(const Point2& p) const { return std::abs(across(p)) <= w; }
  // Nearest grid point, by lowbit's quantizer (quant::fake_quantize, round half to even).
  Point2 quantize(const Point2& p) const;
};

// PTQ by rounding to nearest.
Point2 toy_round_to_nearest(const ToyBasin& t);
// PTQ by a second-order objective: GPTQ (ptq::gptq_quantize) on the 1x2 "weight" p0 with the
// Hessian of L at p0, i.e. minimising (q - p0)^T H (q - p0) column by column.
Point2 toy_second_order(const ToyBasin& t);
// The exact minimiser of (q - p0)^T H (q - p0) over grid points within 3 steps of p0 (a check
// that the failure is the objective's, not GPTQ's greedy search).
Point2 toy_second_order_exhaustive(const ToyBasin& t);

struct ToyStep {
  int step = 0;             // 0: the starting point, before any update
  Point2 latent{};          // the float ("master") weights
  Point2 deployed{};        // Q(latent)
  double deployed_loss = 0.0;
  bool in_basin = false;    // deployed point inside the basin
  // Cosine between the update -grad L(deployed) and the direction from the deployed point to
  // the FP point (the "inward component" of the STE gradient); 0 when either is zero.
  double inward_cosine = 0.0;
};

// STE-QAT from the FP point: latent -= lr * grad L(Q(latent)), `steps` updates.
std::vector<ToyStep> toy_ste_qat(const ToyBasin& t, double lr, int steps);

}  // namespace lowbit::analysis
