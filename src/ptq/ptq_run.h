// `lowbit ptq` as a job: FP32 checkpoint in, quantized checkpoint (a QAT-style checkpoint with
// "qat" and "ptq" sections) out, with the test accuracy before and after (image models, vit-tiny
// included), or for gpt-tiny the validation bits per byte of its text before and after.
// gpt-tiny calibrates on random windows of its training text (seeded) and keeps the embedding
// and the output head in float, as its QAT does (qat::with_language_model_defaults).
#pragma once
#include <cstdint>
#include <iosfwd>
#include <string>

#include "data/fashion_mnist.h"
#include "ptq/ptq.h"

namespace lowbit::ptq {

struct PtqRunOptions {
  std::string from;  // FP32 checkpoint (file or run folder)
  std::string out;   // folder: checkpoint.pt, ptq.json
  int wbits = 4;
  int abits = 8;
  int group_size = 0;  // > 0: per-group weight scales of this many inputs; 0: per output channel
  std::string observer = "minmax";
  int64_t calib_batches = 8;
  int64_t calib_batch_size = 128;  // images, or gpt-tiny byte windows (of the run's context)
  int64_t calib_samples = 0;       // > 0: calibrate on the first N training images instead
                                   // (in batches of calib_batch_size, the last one shorter)
  uint64_t seed = 0;               // gpt-tiny: which random training windows calibrate
  PtqOptions ptq;
  std::string data_dir;  // --data (data/load_dataset.h); empty: the default Fashion-MNIST folder
  std::string layout = "auto";  // .npy/.npz image arrays; "auto" takes the checkpoint's if it has one
  int64_t threads = 2;
  bool overwrite = false;
  std::ostream* log = nullptr;  // progress lines; nullptr: silent
};

struct PtqRunResult {
  bool language_model = false;  // gpt-tiny: validation split of its text, next-byte accuracy
  double fp_accuracy = 0.0;   // test accuracy of the FP32 checkpoint
  double ptq_accuracy = 0.0;  // test accuracy of the quantized checkpoint (fake quantization)
  double fp_loss = 0.0;
  double ptq_loss = 0.0;
  double fp_bits_per_byte = 0.0;   // gpt-tiny only
  double ptq_bits_per_byte = 0.0;  // gpt-tiny only
  PtqReport report;
  std::string checkpoint;     // path written
};

// Loads `from` (must be FP32), quantizes a copy with `config` and `options` on the calibration
// batches, returns the net.
models::Net quantize_checkpoint(const std::string& from, const qat::QatConfig& config,
                                const std::vector<torch::Tensor>& calibration, const PtqOptions& options,
                                PtqReport* report = nullptr);
// The same with the first calib_batches x calib_batch_size images of `train`.
models::Net quantize_checkpoint(const std::string& from, const qat::QatConfig& config, const data::Dataset& train,
                                int64_t calib_batches, int64_t calib_batch_size, const PtqOptions& options,
                                PtqReport* report = nullptr);

// Writes <out>/checkpoint.pt for a quantized net: the source checkpoint's config plus the "qat"
// section (so build_net re-prepares it) and a "ptq" section describing how it was made.
void save_ptq_checkpoint(const std::string& out_dir, models::Net& net, const std::string& from,
                         const qat::QatConfig& config, const nlohmann::json& ptq_section, bool overwrite);

PtqRunResult run_ptq(const PtqRunOptions& options);

}  // namespace lowbit::ptq
