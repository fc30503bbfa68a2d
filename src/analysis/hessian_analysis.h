// `lowbit analyze hessian`: the Hessian tools of analysis/hessian.h applied to a model checkpoint
// (FP32 or QAT; docs/hessian.md). The loss is the mean cross-entropy over a few fixed training
// batches (images; text windows for gpt-tiny, averaged over every predicted byte), the model in
// evaluation mode (BN running statistics; for QAT, the stored scales and no WinQ noise), differentiated w.r.t. the weights (tensors named "...weight" with >= 2
// dimensions) of the nodes whose names match a glob.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/hessian.h"
#include "data/fashion_mnist.h"
#include "models/net.h"

namespace lowbit::analysis {

struct HessianOptions {
  std::string layers = "*";     // glob on node names ("fc*", "conv?", "block1_*")
  int64_t batches = 2;          // training batches the loss averages over
  int64_t batch_size = 128;
  int64_t probes = 8;           // SLQ probes (Gaussian) and Hutchinson probes (Rademacher)
  int64_t lanczos_steps = 40;   // the paper's setting: about 20 probes, 60 steps
  int64_t power_iterations = 50;
  double power_tolerance = 1e-3;
  double sigma = 0.0;           // density smoothing width; 0: 1% of the Ritz value range
  double threshold = 1.5e-3;    // |lambda| < threshold counts as near zero (the paper's value)
  int64_t grid_points = 400;
  uint64_t seed = 0;
  std::ostream* log = nullptr;
};

struct HessianReport {
  std::string checkpoint;
  std::string model;
  std::vector<std::string> parameters;  // "conv1.conv.weight", ...
  int64_t parameter_count = 0;
  HessianOptions options;
  double sigma = 0.0;                   // the width used
  double loss = 0.0;                    // mean loss over the batches
  double top_eigenvalue = 0.0;
  int64_t power_iterations = 0;
  bool power_converged = false;
  double trace = 0.0;
  double trace_std_error = 0.0;
  double near_zero_fraction = 0.0;
  double near_zero_fraction_relative = 0.0;  // |lambda| < 1% of |top eigenvalue| (scale-free)
  double min_ritz = 0.0, max_ritz = 0.0;
  std::vector<double> grid, density;
  SpectralDensity slq;
  int64_t hvp_count = 0;                // Hessian-vector products (each over all batches)
  double seconds = 0.0;

  nlohmann::json to_json() const;       // summary (no density arrays)
  std::string density_csv() const;      // eigenvalue,density
  std::string density_svg() const;      // log-scale density plot
  std::string summary() const;          // a few human-readable lines
};

// The weights of the nodes matching `pattern`: (name, tensor). Throws naming the pattern and
// listing the nodes when nothing matches.
std::vector<std::pair<std::string, torch::Tensor>> hessian_parameters(models::Net& net, const std::string& pattern);

// The analysis on a loaded net and given batches (the net is put in eval mode and restored).
HessianReport analyze_hessian(models::Net& net, const std::vector<torch::Tensor>& images,
                              const std::vector<torch::Tensor>& labels, const HessianOptions& options);

// The first `batches` batches of `batch_size` images of the training split (after the
// validation hold-out of 5000), in order: the same batches for every checkpoint compared.
void hessian_batches(const data::Dataset& train, int64_t batches, int64_t batch_size, std::vector<torch::Tensor>& images,
                     std::vector<torch::Tensor>& labels);

// For a language model: `batches` windows-batches of `batch_size` x (context + 1) bytes drawn from
// the training bytes with a fixed seed (the same for every checkpoint of one corpus); inputs are
// the first `context` bytes, targets the next ones.
void lm_hessian_batches(const torch::Tensor& train_bytes, int64_t context, int64_t batches, int64_t batch_size,
                        std::vector<torch::Tensor>& inputs, std::vector<torch::Tensor>& targets);

// density.csv, summary.json, density.svg in `out_dir` (atomically).
void write_hessian_files(const HessianReport& report, const std::string& out_dir);

}  // namespace lowbit::analysis
