// Hessian spectrum tools, model-agnostic (docs/hessian.md): they see a loss closure and a list
// of parameters, or any symmetric linear operator.
//
//   HVP      H v = d/dtheta (grad_theta L . v), by double backward through the autograd graph
//            (for a QAT model: through the straight-through estimators, so H is the Hessian of
//            the loss at the deployed weights, masked to the unclipped coordinates).
//   power    top eigenvalue (largest magnitude) by power iteration: v <- H v / ||H v||,
//            lambda = v . H v (Rayleigh quotient), stop at a relative change < tol.
//   trace    Hutchinson: tr(H) ~ (1/P) sum_p z_p . H z_p, z_p Rademacher (+-1).
//   density  stochastic Lanczos quadrature: per Gaussian probe (normalised), m Lanczos steps with
//            full reorthogonalisation give a tridiagonal T_m; its eigenpairs (theta_j, u_j) are
//            the Ritz values and weights tau_j = u_j[0]^2 (they sum to 1); averaged over probes,
//            phi(t) = (1/P) sum_p sum_j tau_pj N(t; theta_pj, sigma^2).
//   near-zero fraction  (1/P) sum_p sum_{j: |theta_pj| < T} tau_pj.
// Vectors are flat float64 tensors of length dim; the HVP converts to the parameters' dtype.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "torch_pch.h"

namespace lowbit::analysis {

// y = H x for a symmetric H; x, y flat float64 [dim].
using LinearOperator = std::function<torch::Tensor(const torch::Tensor&)>;

// The loss of batch `b` (0 <= b < num_batches), a scalar with its autograd graph.
using BatchLoss = std::function<torch::Tensor(int64_t b)>;

// H = (1 / B) sum_b Hessian of loss(b) w.r.t. `params` (flattened and concatenated in order).
//
// Graph reuse (reuse_graph, the default): g_b(theta) = grad loss(b), computed with its graph
// (create_graph), does not depend on v, so the first product keeps, per batch, the forward and
// that first backward, and every later product is one backward of g_b . v through the kept
// graph: H v at the same point from the same graph, so the same numbers as recomputing it
// (tested bit for bit), at about a third of the cost. The kept graphs are rebuilt when a
// parameter has been changed in place since (its version counter moved), and dropped by
// release(). `loss` must otherwise be a fixed function of `params` (no data or mode changes
// between products). Memory: the activations and first-backward buffers of all batches.
class HessianVectorProduct {
 public:
  HessianVectorProduct(BatchLoss loss, std::vector<torch::Tensor> params, int64_t num_batches, bool reuse_graph = true);
  int64_t dim() const { return dim_; }
  torch::Tensor operator()(const torch::Tensor& v) const;
  // The mean loss and flat gradient (float64) over the batches (a check and a by-product).
  std::pair<double, torch::Tensor> loss_and_gradient() const;
  int64_t products() const { return *products_; }  // HVPs computed so far (each over all batches)
  int64_t graph_builds() const { return cache_->builds; }  // forwards + first backwards done for products
  void release() const;  // drops the kept graphs (the next product rebuilds them)
  LinearOperator as_operator() const;

 private:
  struct Cache {
    std::vector<std::vector<torch::Tensor>> grads;  // per batch: g_b with its graph
    std::vector<int64_t> versions;                   // the parameters' versions when built
    int64_t builds = 0;
  };
  bool cache_valid() const;
  BatchLoss loss_;
  std::vector<torch::Tensor> params_;
  int64_t num_batches_;
  bool reuse_graph_;
  int64_t dim_ = 0;
  std::shared_ptr<int64_t> products_;
  std::shared_ptr<Cache> cache_;
};

struct PowerIterationResult {
  double eigenvalue = 0.0;  // the largest-magnitude eigenvalue (with its sign)
  int64_t iterations = 0;
  bool converged = false;
};
PowerIterationResult power_iteration(const LinearOperator& op, int64_t dim, int64_t max_iterations, double tolerance,
                                     at::Generator& gen);

struct TraceEstimate {
  double trace = 0.0;
  double std_error = 0.0;  // sample standard deviation / sqrt(P)
  int64_t probes = 0;
};
TraceEstimate hutchinson_trace(const LinearOperator& op, int64_t dim, int64_t probes, at::Generator& gen);

struct SpectralDensity {
  std::vector<std::vector<double>> nodes;    // per probe: Ritz values, ascending
  std::vector<std::vector<double>> weights;  // per probe: tau_j, summing to 1
  double min_node() const;
  double max_node() const;
  double near_zero_fraction(double threshold) const;
  // phi(t) on `grid` (a probability density: integrates to ~1 over a wide enough grid).
  std::vector<double> density(const std::vector<double>& grid, double sigma) const;
};
// `steps` Lanczos steps per probe (fewer when the Krylov space is exhausted).
SpectralDensity stochastic_lanczos_quadrature(const LinearOperator& op, int64_t dim, int64_t probes, int64_t steps,
                                              at::Generator& gen);

}  // namespace lowbit::analysis
