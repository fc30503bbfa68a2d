#include "analysis/hessian.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/error.h"

namespace lowbit::analysis {

HessianVectorProduct::HessianVectorProduct(BatchLoss loss, std::vector<torch::Tensor> params, int64_t num_batches,
                                           bool reuse_graph)
    : loss_(std::move(loss)),
      params_(std::move(params)),
      num_batches_(num_batches),
      reuse_graph_(reuse_graph),
      products_(std::make_shared<int64_t>(0)),
      cache_(std::make_shared<Cache>()) {
  LOWBIT_CHECK(num_batches_ >= 1, "Hessian: needs at least one batch");
  LOWBIT_CHECK(!params_.empty(), "Hessian: no parameters selected");
  for (const auto& p : params_) {
    LOWBIT_CHECK(p.requires_grad(), "Hessian: every selected parameter must require grad");
    dim_ += p.numel();
  }
}

namespace {
torch::Tensor flatten(const std::vector<torch::Tensor>& ts, const std::vector<torch::Tensor>& like) {
  std::vector<torch::Tensor> flat;
  flat.reserve(ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    flat.push_back(ts[i].defined() ? ts[i].reshape({-1}).to(torch::kFloat64) : torch::zeros({like[i].numel()}, torch::kFloat64));
  }
  return torch::cat(flat);
}
}  // namespace

bool HessianVectorProduct::cache_valid() const {
  if (static_cast<int64_t>(cache_->grads.size()) != num_batches_ || cache_->versions.size() != params_.size()) return false;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (static_cast<int64_t>(params_[i]._version()) != cache_->versions[i]) return false;
  }
  return true;
}

void HessianVectorProduct::release() const {
  cache_->grads.clear();
  cache_->versions.clear();
}

torch::Tensor HessianVectorProduct::operator()(const torch::Tensor& v) const {
  LOWBIT_CHECK(v.dim() == 1 && v.numel() == dim_, "Hessian: vector of length " + std::to_string(v.numel()) +
                                                      ", expected " + std::to_string(dim_));
  std::vector<torch::Tensor> parts;
  int64_t offset = 0;
  for (const auto& p : params_) {
    parts.push_back(v.narrow(0, offset, p.numel()).view(p.sizes()).to(p.scalar_type()));
    offset += p.numel();
  }
  // g_b with its graph: kept across products (reuse_graph) or built for this one only.
  auto first_backward = [&](int64_t b) {
    torch::Tensor loss = loss_(b);
    return torch::autograd::grad({loss}, params_, {}, /*retain_graph=*/true, /*create_graph=*/true,
                                 /*allow_unused=*/true);
  };
  if (reuse_graph_ && !cache_valid()) {
    release();
    for (int64_t b = 0; b < num_batches_; ++b) cache_->grads.push_back(first_backward(b));
    for (const auto& p : params_) cache_->versions.push_back(static_cast<int64_t>(p._version()));
    ++cache_->builds;
  }
  torch::Tensor sum = torch::zeros({dim_}, torch::kFloat64);
  for (int64_t b = 0; b < num_batches_; ++b) {
    std::vector<torch::Tensor> built;
    if (!reuse_graph_) {
      built = first_backward(b);
      ++cache_->builds;
    }
    const std::vector<torch::Tensor>& grads = reuse_graph_ ? cache_->grads[static_cast<size_t>(b)] : built;
    torch::Tensor dot;
    for (size_t i = 0; i < grads.size(); ++i) {
      if (!grads[i].defined() || !grads[i].requires_grad()) continue;
      const torch::Tensor term = (grads[i] * parts[i]).sum();
      dot = dot.defined() ? dot + term : term;
    }
    if (!dot.defined()) continue;  // the loss is linear in these parameters: H = 0
    auto hv = torch::autograd::grad({dot}, params_, {}, /*retain_graph=*/reuse_graph_, /*create_graph=*/false,
                                    /*allow_unused=*/true);
    sum += flatten(hv, params_);
  }
  ++*products_;
  return sum / static_cast<double>(num_batches_);
}

std::pair<double, torch::Tensor> HessianVectorProduct::loss_and_gradient() const {
  double loss_sum = 0.0;
  torch::Tensor g = torch::zeros({dim_}, torch::kFloat64);
  for (int64_t b = 0; b < num_batches_; ++b) {
    torch::Tensor loss = loss_(b);
    auto grads = torch::autograd::grad({loss}, params_, {}, false, false, /*allow_unused=*/true);
    g += flatten(grads, params_);
    loss_sum += loss.item<double>();
  }
  return {loss_sum / static_cast<double>(num_batches_), g / static_cast<double>(num_batches_)};
}

LinearOperator HessianVectorProduct::as_operator() const {
  return [this](const torch::Tensor& v) { return (*this)(v); };
}

PowerIterationResult power_iteration(const LinearOperator& op, int64_t dim, int64_t max_iterations, double tolerance,
                                     at::Generator& gen) {
  LOWBIT_CHECK(dim >= 1 && max_iterations >= 1, "power iteration: needs dim >= 1 and at least one iteration");
  PowerIterationResult r;
  torch::Tensor v = torch::randn({dim}, gen, torch::kFloat64);
  v /= v.norm();
  double previous = std::numeric_limits<double>::quiet_NaN();
  for (int64_t i = 0; i < max_iterations; ++i) {
    const torch::Tensor hv = op(v);
    const double lambda = torch::dot(v, hv).item<double>();
    const double norm = hv.norm().item<double>();
    r.eigenvalue = lambda;
    r.iterations = i + 1;
    if (!std::isnan(previous) && std::abs(lambda - previous) <= tolerance * std::abs(previous) + 1e-300) {
      r.converged = true;
      break;
    }
    previous = lambda;
    if (norm == 0.0) {  // H v = 0: v is in the kernel; 0 is the Rayleigh quotient
      r.converged = true;
      break;
    }
    v = hv / norm;
  }
  return r;
}

TraceEstimate hutchinson_trace(const LinearOperator& op, int64_t dim, int64_t probes, at::Generator& gen) {
  LOWBIT_CHECK(probes >= 1, "Hutchinson trace: needs at least one probe");
  std::vector<double> samples;
  for (int64_t p = 0; p < probes; ++p) {
    const torch::Tensor z = torch::randint(0, 2, {dim}, gen, torch::kFloat64) * 2.0 - 1.0;  // Rademacher
    samples.push_back(torch::dot(z, op(z)).item<double>());
  }
  TraceEstimate t;
  t.probes = probes;
  double mean = 0.0;
  for (double s : samples) mean += s;
  mean /= static_cast<double>(probes);
  double var = 0.0;
  for (double s : samples) var += (s - mean) * (s - mean);
  var = probes > 1 ? var / static_cast<double>(probes - 1) : 0.0;
  t.trace = mean;
  t.std_error = std::sqrt(var / static_cast<double>(probes));
  return t;
}

SpectralDensity stochastic_lanczos_quadrature(const LinearOperator& op, int64_t dim, int64_t probes, int64_t steps,
                                              at::Generator& gen) {
  LOWBIT_CHECK(probes >= 1, "SLQ: needs at least one probe");
  LOWBIT_CHECK(steps >= 1, "SLQ: needs at least one Lanczos step");
  const int64_t m = std::min(steps, dim);
  SpectralDensity d;
  for (int64_t p = 0; p < probes; ++p) {
    torch::Tensor basis = torch::zeros({m, dim}, torch::kFloat64);  // rows: Lanczos vectors
    torch::Tensor v = torch::randn({dim}, gen, torch::kFloat64);
    v /= v.norm();
    std::vector<double> alpha, beta;
    double scale = 0.0;  // largest |alpha| or beta seen: the breakdown threshold's unit
    for (int64_t j = 0; j < m; ++j) {
      basis[j].copy_(v);
      torch::Tensor w = op(v);
      const double a = torch::dot(w, v).item<double>();
      alpha.push_back(a);
      scale = std::max(scale, std::abs(a));
      // Full reorthogonalisation against every Lanczos vector so far (twice: "twice is enough").
      const torch::Tensor vs = basis.narrow(0, 0, j + 1);
      for (int pass = 0; pass < 2; ++pass) w -= torch::mv(vs.t(), torch::mv(vs, w));
      if (j + 1 == m) break;
      const double b = w.norm().item<double>();
      scale = std::max(scale, b);
      if (b <= 1e-10 * std::max(scale, 1e-300)) break;  // Krylov space exhausted: T is exact
      beta.push_back(b);
      v = w / b;
    }
    const int64_t k = static_cast<int64_t>(alpha.size());
    torch::Tensor t = torch::zeros({k, k}, torch::kFloat64);
    for (int64_t i = 0; i < k; ++i) {
      t[i][i] = alpha[i];
      if (i + 1 < k) {
        t[i][i + 1] = beta[i];
        t[i + 1][i] = beta[i];
      }
    }
    auto [theta, u] = torch::linalg_eigh(t);  // ascending
    std::vector<double> nodes(k), weights(k);
    for (int64_t i = 0; i < k; ++i) {
      nodes[i] = theta[i].item<double>();
      const double first = u[0][i].item<double>();
      weights[i] = first * first;
    }
    d.nodes.push_back(nodes);
    d.weights.push_back(weights);
  }
  return d;
}

double SpectralDensity::min_node() const {
  double m = std::numeric_limits<double>::infinity();
  for (const auto& n : nodes)
    for (double x : n) m = std::min(m, x);
  return m;
}

double SpectralDensity::max_node() const {
  double m = -std::numeric_limits<double>::infinity();
  for (const auto& n : nodes)
    for (double x : n) m = std::max(m, x);
  return m;
}

double SpectralDensity::near_zero_fraction(double threshold) const {
  if (nodes.empty()) return 0.0;
  double f = 0.0;
  for (size_t p = 0; p < nodes.size(); ++p)
    for (size_t j = 0; j < nodes[p].size(); ++j)
      if (std::abs(nodes[p][j]) < threshold) f += weights[p][j];
  return f / static_cast<double>(nodes.size());
}

std::vector<double> SpectralDensity::density(const std::vector<double>& grid, double sigma) const {
  LOWBIT_CHECK(sigma > 0.0, "spectral density: the smoothing width sigma must be > 0");
  std::vector<double> out(grid.size(), 0.0);
  if (nodes.empty()) return out;
  const double norm = 1.0 / (std::sqrt(2.0 * M_PI) * sigma * static_cast<double>(nodes.size()));
  for (size_t p = 0; p < nodes.size(); ++p)
    for (size_t j = 0; j < nodes[p].size(); ++j)
      for (size_t g = 0; g < grid.size(); ++g) {
        const double z = (grid[g] - nodes[p][j]) / sigma;
        out[g] += weights[p][j] * norm * std::exp(-0.5 * z * z);
      }
  return out;
}

}  // namespace lowbit::analysis
