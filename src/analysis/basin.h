// Basin diagnostics for a trained model (docs/basin.md defines every number precisely):
//   * the loss along the segment from the FP32 weights to a PTQ point (RTN, GPTQ);
//   * per layer, how far the PTQ point is from the FP32 weights in grid steps;
//   * along a short STE-QAT run from the FP32 weights: the loss at the deployed (quantized)
//     weights, the cosine between each update and the direction from the deployed point back to
//     the FP32 weights, and the first step whose deployed loss is within (1 + epsilon) of FP32.
// All losses are mean cross-entropies on one fixed evaluation set (the first `eval_images`
// images of the validation split), with 8-bit (abits) activation quantization as deployed.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lowbit::analysis {

struct BasinOptions {
  std::string from;  // FP32 checkpoint
  int weight_bits = 2;
  int act_bits = 8;
  std::vector<std::string> methods = {"rtn", "gptq"};
  int points = 11;             // points on each segment, alpha = k / (points - 1)
  int64_t qat_steps = 100;     // 0: no QAT run
  int64_t eval_every = 1;      // deployed loss every this many QAT steps
  double qat_lr = 5e-4;
  double epsilon = 0.05;
  int64_t eval_images = 2000;
  int64_t calib_batches = 8;
  bool quick = false;          // tiny sets, for tests
  std::string data_dir;
  std::string layout = "auto";  // .npy/.npz arrays; auto: the checkpoint's (data/run_data_layout.h)
  int64_t threads = 2;
  std::ostream* log = nullptr;
};

struct SegmentPoint {
  double alpha = 0.0;
  double loss = 0.0;
  double accuracy = 0.0;
};

struct LayerDistance {
  std::string layer;
  double mean_steps = 0.0;          // mean |w_fp - q| / s
  double fraction_beyond_half = 0.0;  // fraction of weights with |w_fp - q| > s / 2
};

struct MethodBasin {
  std::string method;
  std::vector<SegmentPoint> segment;
  std::vector<LayerDistance> layers;
};

struct QatStep {
  int64_t step = 0;
  double deployed_loss = 0.0;
  double inward_cosine = 0.0;  // cos(update of this step, FP32 - deployed point before it)
};

struct BasinResult {
  double fp32_loss = 0.0;      // float net, no quantization at all
  double fp32_accuracy = 0.0;
  std::vector<MethodBasin> methods;
  std::vector<QatStep> qat;
  int64_t first_step_within = -1;  // -1: not within (1 + epsilon) of FP32 in the run
  nlohmann::json options;
  nlohmann::json to_json() const;
  std::string summary() const;
};

BasinResult analyze_basin(const BasinOptions& options);

}  // namespace lowbit::analysis
