// Robustness under distribution shift: accuracy, loss and calibration of a model on corrupted
// copies of a test split (data/corruptions.h), for checkpoints (LibTorch) and .lbq models (the
// integer runtime) alike. Both see the same corrupted uint8 images.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/fashion_mnist.h"
#include "data/idx_file.h"
#include "models/net.h"
#include "runtime/session.h"

namespace lowbit::analysis {

struct ShiftResult {
  std::string corruption;  // "clean" for the uncorrupted split
  int severity = 0;        // 0 for clean
  int64_t count = 0;
  double accuracy = 0;     // fraction
  double loss = 0;         // mean cross-entropy
  double ece = 0;          // expected calibration error, 15 equal-width confidence bins
};

struct RobustnessResult {
  ShiftResult clean;
  std::vector<ShiftResult> shifted;  // corruption-major, severities in the order asked
  double mean_corruption_accuracy = 0;  // mean over every (corruption, severity) pair
  double mean_corruption_ece = 0;
  nlohmann::json to_json() const;
  std::string table() const;  // accuracy % per corruption (rows) and severity (columns), plus ECE
};

// Expected calibration error: the share-weighted mean over confidence bins [k/bins, (k+1)/bins) of
// |accuracy - mean confidence| (Guo et al. 2017). confidence: the top softmax probability.
double expected_calibration_error(const std::vector<double>& confidence, const std::vector<uint8_t>& correct,
                                  int bins = 15);

// Evaluates one data set; the two engines below.
using ShiftEvaluator = std::function<ShiftResult(const data::Dataset&)>;
ShiftEvaluator checkpoint_evaluator(models::Net& net, int64_t batch_size = 256);
ShiftEvaluator runtime_evaluator(runtime::Session& session, int64_t batch_size = 256);

// The clean split, then every corruption at every severity (corrupt_images with `seed`).
RobustnessResult evaluate_robustness(const data::RawImages& split, const std::vector<std::string>& corruptions,
                                     const std::vector<int>& severities, uint64_t seed, const ShiftEvaluator& eval);

}  // namespace lowbit::analysis
