// The PTQ-vs-QAT study (issue 4): from one FP32 checkpoint, a grid of weight bit widths x
// methods {RTN, GPTQ, QAT-STE, QAT-LSQ} at a fixed activation bit width, each cell's test
// accuracy and loss. QAT cells start from the FP32 weights (so from the RTN point: the weight
// scales are initialised by the same observer) and train for a fixed step budget.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lowbit::analysis {

struct StudyOptions {
  std::string model = "cnn";
  std::string from;                  // FP32 checkpoint; empty: train one into <out>/fp32
  std::string out_dir = "runs/study-ptq-vs-qat";
  bool quick = false;                // tiny subsets and budgets, for tests (seconds)
  std::vector<int> weight_bits = {8, 4, 3, 2};
  int act_bits = 8;
  int64_t qat_steps = 200;           // optimizer steps per QAT cell (batch 128: ~0.46 epoch)
  double qat_lr = 5e-4;
  int64_t fp32_epochs = 1;           // only when training the FP32 model
  int64_t calib_batches = 8;
  std::string data_dir;
  std::string layout = "auto";       // .npy/.npz arrays: nchw, nhwc or auto (by shape)
  int64_t threads = 2;
  std::ostream* log = nullptr;
};

struct StudyCell {
  int weight_bits = 0;
  std::string method;  // "rtn" | "gptq" | "qat-ste" | "qat-lsq"
  double accuracy = 0.0;
  double loss = 0.0;
  double seconds = 0.0;
};

struct StudyResult {
  std::string model;
  std::string fp32_checkpoint;
  double fp32_accuracy = 0.0;
  double fp32_loss = 0.0;
  int act_bits = 8;
  int64_t qat_steps = 0;
  int64_t test_images = 0;
  std::vector<StudyCell> cells;

  nlohmann::json to_json() const;
  std::string to_csv() const;
  std::string table() const;  // rows: weight bits; columns: methods (accuracy %)
};

StudyResult run_ptq_vs_qat_study(const StudyOptions& options);

// Writes <out>/study.json and <out>/study.csv atomically.
void write_study_files(const StudyResult& result, const std::string& out_dir);

}  // namespace lowbit::analysis
