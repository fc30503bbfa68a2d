// What `lowbit report` reads: run folders (config.json, metrics.jsonl, ptq.json), study folders
// (study.json of `lowbit study ptq-vs-qat` / `winq`), Hessian analysis folders (summary.json +
// density.csv), JSON results recognised by their content whatever their name (basin, robustness
// of `lowbit eval --shift --out`, per-layer sensitivity, mixed-precision search, per-layer profile
// of `lowbit bench --profile --json`) and integer model files (.lbq).
// Each given path is recognised by the files it holds; a folder that holds none of them is
// searched one level down (so `lowbit report runs` covers every run in runs/).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lowbit::report {

// One line of metrics.jsonl: an epoch (or an evaluation interval of gpt-tiny). NaN where absent.
struct EpochPoint {
  int64_t epoch = 0;
  int64_t step = 0;
  double train_loss, train_acc, val_loss, val_acc, seconds;
  double train_bits_per_byte, val_bits_per_byte;  // gpt-tiny runs only
};

struct TestResult {
  double accuracy = 0.0, loss = 0.0;
  int64_t count = 0;
};

struct TrainingRun {
  std::string name;         // the folder's name, the run's label in every plot
  std::string path;
  nlohmann::json config;    // config.json (null if absent)
  std::vector<EpochPoint> epochs;
  std::optional<TestResult> test;
  nlohmann::json ptq;       // ptq.json of a `lowbit ptq` run (null if absent)
  // A gpt-tiny run: its losses are per byte of text, not per image, so it gets plots of its own.
  bool language_model() const;
};

// An integer model file and the totals the runtime computes from it.
struct ModelFile {
  std::string name, path;
  int64_t file_bytes = 0;
  bool decoder = false;      // a gpt-tiny decoder file: only its size is reported
  std::string model_name;    // free text stored in the file
  int64_t parameters = 0;
  double bits_per_parameter = 0.0;
  int64_t macs_per_item = 0;
  int64_t bops_per_item = 0;        // MACs x weight bits x activation bits
  double energy_nj = 0.0;           // estimate per inference (docs/metrics.md)
  double fp32_energy_nj = 0.0;      // the same graph in FP32
};

struct StudyOutput {        // a study.json or an analysis JSON (basin, robustness, ...)
  std::string name, path;
  nlohmann::json data;
};

struct HessianOutput {
  std::string name, path;
  nlohmann::json summary;
  std::vector<double> eigenvalue, density;
};

struct ReportInputs {
  std::vector<TrainingRun> runs;
  std::vector<ModelFile> models;
  std::vector<StudyOutput> ptq_vs_qat, winq, basin;
  std::vector<StudyOutput> robustness, sensitivity, mixed_precision, profile;
  std::vector<HessianOutput> hessian;
  bool empty() const;
};

// Reads every path. Throws lowbit::Error for a path that does not exist, for a path in which
// nothing is recognised (saying what is expected), and for a recognised file that cannot be
// parsed (naming it). Files the report does not use are ignored.
ReportInputs load_report_inputs(const std::vector<std::string>& paths);

}  // namespace lowbit::report
