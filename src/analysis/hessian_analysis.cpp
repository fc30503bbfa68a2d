#include "analysis/hessian_analysis.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "report/svg_plot.h"
#include "base/atomic_file.h"
#include "base/error.h"
#include "data/text_corpus.h"
#include "qat/qat_config.h"

namespace lowbit::analysis {

using report::line_plot_svg;
using report::plot_color;
using report::PlotOptions;
using report::PlotSeries;

std::vector<std::pair<std::string, torch::Tensor>> hessian_parameters(models::Net& net, const std::string& pattern) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  std::string names;
  for (const auto& node : net->nodes()) {
    names += (names.empty() ? "" : ", ") + node.name;
    if (!qat::glob_match(pattern, node.name)) continue;
    for (const auto& item : node.layer->named_parameters(/*recurse=*/true)) {
      const std::string& key = item.key();
      const bool is_weight = key == "weight" || (key.size() > 7 && key.compare(key.size() - 7, 7, ".weight") == 0);
      if (is_weight && item.value().dim() >= 2 && item.value().requires_grad()) {
        out.emplace_back(node.name + "." + key, item.value());
      }
    }
  }
  LOWBIT_CHECK(!out.empty(), "--layers '" + pattern + "' selects no weight of model '" + net->model_name() +
                                 "'; its layers are: " + names);
  return out;
}

void lm_hessian_batches(const torch::Tensor& train_bytes, int64_t context, int64_t batches, int64_t batch_size,
                        std::vector<torch::Tensor>& inputs, std::vector<torch::Tensor>& targets) {
  LOWBIT_CHECK(batches >= 1 && batch_size >= 1, "Hessian: --batches and the batch size must be >= 1");
  LOWBIT_CHECK(train_bytes.size(0) >= context + 1, "Hessian: the training text is shorter than one window of " +
                                                       std::to_string(context + 1) + " bytes");
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(0);  // fixed: the same windows for every checkpoint
  inputs.clear();
  targets.clear();
  for (int64_t b = 0; b < batches; ++b) {
    const torch::Tensor w = data::random_windows(train_bytes, batch_size, context + 1, gen);
    inputs.push_back(w.narrow(1, 0, context));
    targets.push_back(w.narrow(1, 1, context));
  }
}

void hessian_batches(const data::Dataset& train, int64_t batches, int64_t batch_size, std::vector<torch::Tensor>& images,
                     std::vector<torch::Tensor>& labels) {
  LOWBIT_CHECK(batches >= 1 && batch_size >= 1, "Hessian: --batches and the batch size must be >= 1");
  LOWBIT_CHECK(batches * batch_size <= train.size(), "Hessian: " + std::to_string(batches) + " batches of " +
                                                         std::to_string(batch_size) + " need more than the " +
                                                         std::to_string(train.size()) + " training images");
  images.clear();
  labels.clear();
  for (int64_t b = 0; b < batches; ++b) {
    images.push_back(train.images.narrow(0, b * batch_size, batch_size));
    labels.push_back(train.labels.narrow(0, b * batch_size, batch_size));
  }
}

HessianReport analyze_hessian(models::Net& net, const std::vector<torch::Tensor>& images,
                              const std::vector<torch::Tensor>& labels, const HessianOptions& o) {
  LOWBIT_CHECK(images.size() == labels.size() && !images.empty(), "Hessian: needs matching, non-empty batches");
  LOWBIT_CHECK(o.probes >= 1, "--probes must be >= 1 (got " + std::to_string(o.probes) + ")");
  LOWBIT_CHECK(o.lanczos_steps >= 2, "--lanczos-steps must be >= 2 (got " + std::to_string(o.lanczos_steps) + ")");
  LOWBIT_CHECK(o.sigma >= 0.0, "--sigma must be >= 0 (0: automatic)");
  LOWBIT_CHECK(o.threshold > 0.0, "--threshold must be > 0");
  const auto t0 = std::chrono::steady_clock::now();
  const bool was_training = net->is_training();
  net->eval();
  HessianReport r;
  r.model = net->model_name();
  r.options = o;
  std::vector<torch::Tensor> params;
  for (auto& [name, p] : hessian_parameters(net, o.layers)) {
    r.parameters.push_back(name);
    params.push_back(p);
    r.parameter_count += p.numel();
  }
  BatchLoss loss = [&](int64_t b) {
    const torch::Tensor logits = net->forward(images[static_cast<size_t>(b)]);
    const torch::Tensor& targets = labels[static_cast<size_t>(b)];
    // Language models give [N, T, vocab] logits for [N, T] targets: the mean over every predicted byte.
    return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}));
  };
  HessianVectorProduct hvp(loss, params, static_cast<int64_t>(images.size()));
  const LinearOperator op = hvp.as_operator();
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  r.loss = hvp.loss_and_gradient().first;
  if (o.log) *o.log << "hessian: " << r.parameter_count << " parameters, loss " << r.loss << "; power iteration\n";
  const PowerIterationResult top = power_iteration(op, hvp.dim(), o.power_iterations, o.power_tolerance, gen);
  r.top_eigenvalue = top.eigenvalue;
  r.power_iterations = top.iterations;
  r.power_converged = top.converged;
  if (o.log) *o.log << "hessian: top eigenvalue " << r.top_eigenvalue << "; Hutchinson trace\n";
  const TraceEstimate tr = hutchinson_trace(op, hvp.dim(), o.probes, gen);
  r.trace = tr.trace;
  r.trace_std_error = tr.std_error;
  if (o.log) *o.log << "hessian: trace " << r.trace << " +- " << r.trace_std_error << "; SLQ\n";
  r.slq = stochastic_lanczos_quadrature(op, hvp.dim(), o.probes, o.lanczos_steps, gen);
  r.min_ritz = r.slq.min_node();
  r.max_ritz = r.slq.max_node();
  r.near_zero_fraction = r.slq.near_zero_fraction(o.threshold);
  r.near_zero_fraction_relative = r.slq.near_zero_fraction(0.01 * std::abs(r.top_eigenvalue));
  const double range = std::max(r.max_ritz - r.min_ritz, 1e-12);
  r.sigma = o.sigma > 0 ? o.sigma : 0.01 * range;
  const double lo = r.min_ritz - 5 * r.sigma, hi = r.max_ritz + 5 * r.sigma;
  const int64_t n = std::max<int64_t>(2, o.grid_points);
  for (int64_t i = 0; i < n; ++i) r.grid.push_back(lo + (hi - lo) * static_cast<double>(i) / static_cast<double>(n - 1));
  r.density = r.slq.density(r.grid, r.sigma);
  r.hvp_count = hvp.products();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  net->train(was_training);
  return r;
}

nlohmann::json HessianReport::to_json() const {
  return {{"checkpoint", checkpoint},
          {"model", model},
          {"parameters", parameters},
          {"parameter_count", parameter_count},
          {"loss", loss},
          {"top_eigenvalue", top_eigenvalue},
          {"power_iterations", power_iterations},
          {"power_converged", power_converged},
          {"trace", trace},
          {"trace_std_error", trace_std_error},
          {"near_zero_fraction", near_zero_fraction},
          {"near_zero_fraction_relative_1pct_top", near_zero_fraction_relative},
          {"min_ritz_value", min_ritz},
          {"max_ritz_value", max_ritz},
          {"hvp_count", hvp_count},
          {"seconds", seconds},
          {"settings",
           {{"layers", options.layers},
            {"batches", options.batches},
            {"batch_size", options.batch_size},
            {"probes", options.probes},
            {"lanczos_steps", options.lanczos_steps},
            {"power_iterations_max", options.power_iterations},
            {"power_tolerance", options.power_tolerance},
            {"sigma", sigma},
            {"threshold", options.threshold},
            {"seed", options.seed},
            {"model_mode", "eval (BN running statistics; stored quantizer scales; no WinQ noise)"},
            {"loss_function", "mean cross-entropy over the batches"}}}};
}

std::string HessianReport::density_csv() const {
  std::ostringstream s;
  s << "eigenvalue,density\n" << std::setprecision(9);
  for (size_t i = 0; i < grid.size(); ++i) {
    // Gaussian tails far from every Ritz value reach subnormal doubles (1e-323), which strtod
    // reports as out of range: written as 0 so that every reader takes the file.
    const double d = std::abs(density[i]) < 1e-300 ? 0.0 : density[i];
    s << grid[i] << "," << d << "\n";
  }
  return s.str();
}

std::string HessianReport::density_svg() const {
  PlotSeries ser;
  ser.label = "SLQ density (" + std::to_string(options.probes) + " probes x " + std::to_string(options.lanczos_steps) +
              " steps)";
  ser.x = grid;
  ser.y = density;
  ser.color = plot_color(0);
  PlotOptions po;
  std::ostringstream t;
  t << model << ": Hessian spectral density, " << parameter_count << " weights (" << options.layers << "), "
    << std::setprecision(3) << "near-zero " << 100.0 * near_zero_fraction << "%";
  po.title = t.str();
  po.x_label = "eigenvalue lambda (of the mean cross-entropy loss, per unit weight^2)";
  po.y_label = "density (log scale, Gaussian width " + [&] {
    std::ostringstream w;
    w << std::setprecision(2) << sigma;
    return w.str();
  }() + ")";
  po.log_y = true;
  double peak = 0.0;
  for (double d : density) peak = std::max(peak, d);
  po.y_floor = peak > 0 ? peak * 1e-6 : 1e-8;
  return line_plot_svg({ser}, po);
}

std::string HessianReport::summary() const {
  std::ostringstream s;
  s << std::setprecision(5);
  s << model << " Hessian (" << parameter_count << " weights of '" << options.layers << "', " << options.batches
    << " batch(es) of " << options.batch_size << ", loss " << loss << ")\n"
    << "  top eigenvalue     " << top_eigenvalue << " (" << power_iterations << " power iterations"
    << (power_converged ? "" : ", not converged") << ")\n"
    << "  trace (Hutchinson) " << trace << " +- " << trace_std_error << " (" << options.probes << " probes)\n"
    << "  Ritz value range   [" << min_ritz << ", " << max_ritz << "]\n"
    << "  near-zero fraction " << near_zero_fraction << " (|lambda| < " << options.threshold << "), "
    << near_zero_fraction_relative << " (|lambda| < 1% of the top eigenvalue)\n"
    << "  " << hvp_count << " Hessian-vector products, " << std::setprecision(3) << seconds << " s\n";
  return s.str();
}

void write_hessian_files(const HessianReport& r, const std::string& out_dir) {
  std::filesystem::create_directories(out_dir);
  write_file_atomically(out_dir + "/density.csv", r.density_csv());
  write_file_atomically(out_dir + "/summary.json", r.to_json().dump(2) + "\n");
  write_file_atomically(out_dir + "/density.svg", r.density_svg());
}

}  // namespace lowbit::analysis
