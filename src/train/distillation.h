// Knowledge distillation for QAT: the quantized student learns the FP32 teacher's output
// distribution as well as (or instead of) the labels (Hinton et al., "Distilling the knowledge in a
// neural network", 2015; used by LSQ's and the low-bit LLM QAT papers' best results).
//
//   loss = (1 - w) * CE(student, labels) + w * T^2 * KL(softmax(teacher / T) || softmax(student / T))
//
// averaged over the batch's rows. T^2 keeps the soft term's gradient the size of the hard term's
// as T grows. With w = 1 (the default) the labels are not used at all: the student matches the
// network it was quantized from, which at low widths is an easier target than one-hot labels.
#pragma once
#include <string>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "train/trainer.h"

namespace lowbit::train {

struct DistillConfig {
  std::string teacher;       // checkpoint (file or run folder) or FP32 .onnx; empty: no distillation
  double weight = 1.0;       // w in [0, 1]
  double temperature = 1.0;  // T > 0

  bool enabled() const { return !teacher.empty(); }
  void validate() const;  // throws lowbit::Error naming the bad value
  // The run config's "distill" section: {"teacher", "weight", "temperature"} (absent: none).
  nlohmann::json to_json() const;
  static DistillConfig from_run_config(const nlohmann::json& run_config);
};

// The loss above for logits of any shape [..., classes]; teacher_logits are treated as constants.
torch::Tensor distillation_loss(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                                const torch::Tensor& labels, double weight, double temperature);

// Loads the teacher (eval mode, no gradients, on `device`, with the student's input normalisation
// from `run_config`) and sets hooks.loss to the distillation loss against it. Checks that the
// teacher is an FP32 image classifier; the class count is checked at the first batch.
void install_distillation(TrainHooks& hooks, const DistillConfig& config, const nlohmann::json& run_config,
                          const torch::Device& device);

}  // namespace lowbit::train
