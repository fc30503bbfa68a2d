// Post-training quantization: turns an FP32 net into the same kind of quantized net QAT
// produces (qat::prepare'd, weights and quantizer scales set), so that its checkpoint (with the
// "qat" section) goes through `lowbit eval`, `lowbit convert` and the runtime unchanged.
//
// Steps (docs/ptq.md):
//   1. prepare(net, config); the net's original float layers are kept as the FP reference.
//   2. Activation ranges: calibrate_activations (the config's observers, then frozen).
//   3. Layer by layer in node order, with the inputs the partly quantized net gives that layer:
//      weight scales from the weight quantizer's observer on the effective (BN-folded) weight;
//      codes by round-to-nearest or GPTQ; the dequantized codes are written back into the
//      layer's parameters and the weight quantizer gets exactly those scales (fixed, not
//      observing), so the fake-quant forward reproduces the codes.
//   4. Optional, per layer right after its weights: batch-norm re-estimation (running mean /
//      variance of the conv output recomputed with the quantized weights; the codes stay, the
//      per-channel weight scales absorb the new fold factor) and bias correction (the bias
//      shifted by the mean, over calibration data, of FP output minus quantized output).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/net.h"
#include "ptq/gptq.h"
#include "qat/qat_config.h"

namespace lowbit::ptq {

enum class PtqMethod { Rtn, Gptq };
PtqMethod method_from_string(const std::string& name);  // "rtn" | "gptq"
std::string to_string(PtqMethod method);

struct PtqOptions {
  PtqMethod method = PtqMethod::Rtn;
  bool bn_reestimate = false;
  bool bias_correction = false;
  GptqOptions gptq;
  // The report's relative errors need a Gram matrix of each layer's calibration inputs; callers
  // that never read them (the sensitivity pass, RTN) skip that cost. The weights do not change.
  bool measure_errors = true;
};

struct LayerReport {
  std::string name;
  std::string method;            // "rtn", "gptq", or "rtn (grouped conv)" when GPTQ does not apply
  double relative_error = 0.0;   // ||(W - Q) X|| / ||W X|| on the calibration inputs
  double rtn_relative_error = 0.0;  // the same for round-to-nearest, for comparison
};

struct PtqReport {
  std::vector<LayerReport> layers;
  nlohmann::json to_json() const;
};

// The QAT config PTQ uses for given bit widths: per-channel (group_size 0) or per-group
// (group_size inputs of each output row) symmetric weights whose scale is a stored parameter
// ("lsq": after loading it is never re-observed), activations as QAT's defaults, observers
// frozen after the calibration batches. GPTQ works with either (grouped: static group scales,
// see gptq.h).
qat::QatConfig ptq_config(int wbits, int abits, int64_t calib_batches, const std::string& observer = "minmax",
                          int group_size = 0);

// Quantizes the FP32 `net` in place (it must not be prepared yet). `calibration`: input batches.
PtqReport quantize_post_training(models::Net& net, const qat::QatConfig& config,
                                 const std::vector<torch::Tensor>& calibration, const PtqOptions& options);

}  // namespace lowbit::ptq
