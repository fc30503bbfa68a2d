// The WinQ study (`lowbit study winq`, docs/winq.md): from one FP32 checkpoint (an image model, or
// gpt-tiny trained on text, whose QAT then uses the language-model defaults of `lowbit qat`), QAT at 2 bits
// (SEQ), 1.58 bits (ternary) and 1 bit (binary) weights, plain and with WinQ, at equal steps and
// for several seeds (paired: a seed fixes the data order of both runs). Reports final validation
// loss and accuracy, the paper's speed-up (baseline steps / first step at which WinQ's smoothed
// training loss reaches the baseline's final smoothed training loss), and the Hessian spectrum
// (top eigenvalue, near-zero fraction) of the baseline's end point before and after one
// interpolation reset and of WinQ's end point. An ablation mode adds reset-only and noise-only
// variants and other keep factors, periods and noise scales.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qat/winq.h"

namespace lowbit::analysis {

struct WinqStudyOptions {
  std::string model = "cnn";
  std::string from;                     // FP32 checkpoint (required)
  std::string out_dir = "runs/study-winq";
  std::vector<std::string> bits = {"2", "1.58", "1"};  // 2: SEQ 2-bit, 1.58: ternary, 1: binary
  int64_t seeds = 2;
  int64_t steps = 300;                  // optimizer steps per run (equal for every variant)
  int64_t batch_size = 0;               // 0: 128 images, or the FP32 run's batch of text windows (gpt-tiny)
  int64_t group_size = 0;               // weight scales per group of inputs (0: per output channel)
  double lr = 5e-4;                     // AdamW peak, cosine to 0, warm-up 5% of the run
  int act_bits = 8;
  qat::WinqConfig winq;                 // the "winq" variant (enabled forced on)
  bool ablation = false;
  bool quick = false;                   // small budgets (minutes on 2 cores)
  int64_t val_images = 2000;            // validation images, or text windows for gpt-tiny
  int64_t smoothing_window = 0;         // EMA span w (alpha = 2 / (w + 1)); 0: max(5, steps / 20)
  bool hessian = true;
  int64_t hessian_batches = 2;
  int64_t hessian_batch_size = 128;
  int64_t hessian_probes = 6;
  int64_t hessian_lanczos_steps = 30;
  double hessian_threshold = 1.5e-3;
  std::string data_dir;
  std::string layout = "auto";  // .npy/.npz arrays; auto: the --from checkpoint's (data/run_data_layout.h)
  int64_t threads = 2;
  std::ostream* log = nullptr;
};

struct WinqRun {
  std::string bits;     // "2" | "1.58" | "1"
  std::string variant;  // "baseline", "winq", "reset", "noise", ...
  nlohmann::json winq;  // the WinQ settings of the run (enabled false for the baseline)
  int64_t seed = 0;
  std::vector<double> losses;  // training loss per step (batch mean)
  double val_loss = 0.0, val_acc = 0.0;
  int64_t resets = 0;
  double seconds = 0.0;
};

struct WinqHessianPoint {
  std::string bits, where;  // "baseline end", "baseline end + 1 reset", "winq end"
  double top_eigenvalue = 0.0, trace = 0.0, near_zero_fraction = 0.0, loss = 0.0;
  double near_zero_relative = 0.0;  // share with |lambda| < 1% of |top eigenvalue|
};

struct WinqStudyResult {
  WinqStudyOptions options;
  std::string fp32_checkpoint;
  int64_t smoothing_window = 0;
  std::vector<WinqRun> runs;
  std::vector<WinqHessianPoint> hessian;
  std::vector<std::string> variants;

  // EMA-smoothed (debiased) training loss of a run.
  std::vector<double> smoothed(const WinqRun& run) const;
  // Paper's speed-up of `variant` over the baseline of the same bits and seed: steps / first
  // step at which the smoothed loss <= the baseline's final smoothed loss; nullopt if never.
  std::optional<double> speedup(const std::string& bits, const std::string& variant, int64_t seed) const;
  // The same on the seed-mean smoothed curves.
  std::optional<double> mean_speedup(const std::string& bits, const std::string& variant) const;

  nlohmann::json to_json() const;
  std::string to_csv() const;     // one line per run
  std::string table() const;      // markdown: bits x variant, mean (min-max) val acc, val loss, speed-up
  std::string loss_svg(const std::string& bits) const;  // smoothed seed-mean training loss per variant
};

WinqStudyResult run_winq_study(const WinqStudyOptions& options);

// study.json, study.csv, table.md, loss_w<bits>.svg in `out_dir` (atomically).
void write_winq_study_files(const WinqStudyResult& result, const std::string& out_dir);

}  // namespace lowbit::analysis
