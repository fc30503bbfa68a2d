// `lowbit analyze sensitivity`: how much each layer of an FP32 image model suffers from being
// quantized on its own, at each weight width (and, optionally, each activation width), the input
// of the mixed-precision search (analysis/bit_allocation.h, docs/mixed_precision.md).
//
// For every weight layer L (conv or linear node) and width w, the FP32 checkpoint is quantized
// with only L quantized (every other node left in float; L's output activations on the 8-bit grid
// or on the activation width under test) by the PTQ pipeline (round-to-nearest or GPTQ, with the
// calibration batches), and the validation loss is measured:
//     delta_loss(L, w) = loss(only L at w) - loss(FP32).
// Alongside, the HAWQ-v2 measure: the Hutchinson trace of the Hessian of the training loss w.r.t.
// L's weights, and Omega(L, w) = trace / n * ||Q_w(W) - W||^2 (n weights, the perturbation in
// the layer's own parameters: for Conv+BN the folded weight's error divided by the fold factor).
#pragma once
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ptq/ptq.h"

namespace lowbit::analysis {

// A weight width as the CLI names it: "8", "4", "3", "2" (signed integer grids), "ternary",
// "binary". nominal_bits: log2 of the number of levels (ternary 1.585), what "average bits"
// counts; container_bits: what the integer runtime stores (3-bit codes in 4-bit containers).
struct WeightWidth {
  std::string format = "int";  // the QAT config's weight_format: "int", "ternary", "binary"
  int bits = 8;                // the QAT config's weight_bits (2 for ternary, 1 for binary)
  std::string label() const;   // "8", "3", "ternary", "binary"
  double nominal_bits() const;
  int container_bits() const;
  bool operator==(const WeightWidth& o) const { return format == o.format && bits == o.bits; }
};
WeightWidth parse_weight_width(const std::string& text);  // throws naming the text and the choices

struct SensitivityOptions {
  std::string checkpoint;                          // FP32 checkpoint (file or run folder)
  std::vector<std::string> weight_widths{"8", "4", "3", "2"};
  std::vector<int> act_bits;                       // activation widths to test (weights at 8); empty: none
  std::string layers = "*";                        // glob on node names
  ptq::PtqOptions ptq;                             // RTN (default) or GPTQ
  int64_t calib_batches = 4, calib_batch_size = 128;
  int64_t eval_images = 2000;                      // first images of the validation split (0: all 5000)
  int64_t hessian_probes = 16;                     // 0: no Hessian trace
  int64_t hessian_batches = 1, hessian_batch_size = 128;
  uint64_t seed = 0;
  std::string data_dir;                            // empty: the default Fashion-MNIST folder
  std::string layout = "auto";                     // .npy/.npz arrays; auto: the checkpoint's (data/run_data_layout.h)
  std::ostream* log = nullptr;
};

struct WidthSensitivity {
  std::string format = "int";
  int bits = 8;          // weight bits (weight entries) or activation bits (activation entries)
  double loss = 0.0, delta_loss = 0.0, accuracy = 0.0;
  double weight_error = 0.0;  // ||Q(W) - W||^2 in the layer's own parameters (weight entries)
  double hawq = 0.0;          // trace / n * weight_error (0 without a trace)
};

struct LayerSensitivity {
  std::string name, kind;  // node name, "conv" or "linear"
  int64_t weights = 0;     // weight count (no biases)
  int64_t out_channels = 0;
  int64_t macs = 0;        // per image
  bool last = false;       // the output layer (no output activation quantizer)
  double hessian_trace = 0.0, hessian_trace_std = 0.0;
  bool has_trace = false;
  std::vector<WidthSensitivity> weights_at;      // one per weight width, weights quantized, activations 8-bit
  std::vector<WidthSensitivity> activations_at;  // one per activation width, weights 8-bit
};

struct SensitivityReport {
  std::string checkpoint, model, method;
  double fp_loss = 0.0, fp_accuracy = 0.0;
  int64_t eval_images = 0;
  int64_t calib_images = 0;
  std::vector<LayerSensitivity> layers;
  double seconds = 0.0;

  nlohmann::json to_json() const;  // the sensitivity.json schema (docs/mixed_precision.md)
  static SensitivityReport from_json(const nlohmann::json& j, const std::string& where);
  static SensitivityReport from_file(const std::string& path);  // errors name the file
  std::string csv() const;    // one row per (layer, entry)
  std::string table() const;  // delta loss per layer and width, the trace
};

SensitivityReport analyze_sensitivity(const SensitivityOptions& options);

// sensitivity.json and sensitivity.csv in `out_dir` (atomically).
void write_sensitivity_files(const SensitivityReport& report, const std::string& out_dir);

}  // namespace lowbit::analysis
