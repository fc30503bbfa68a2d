// How closely three views of one quantized model agree on a data set:
//   runtime      the integer runtime (lowbit_runtime), which deployment uses;
//   simulation   the integer simulation in LibTorch (the QAT model's evaluation / convert mode);
//   fake quant   the QAT model's training-mode arithmetic (float fake quantization).
// The first two must agree bit for bit; the third differs by the rounding of float versus
// fixed-point requantization, and this measures by how much.
#pragma once
#include <optional>

#include "data/fashion_mnist.h"
#include "runtime/model.h"
#include "runtime/session.h"

namespace lowbit::convert {

struct RuntimeEval {
  int64_t count = 0;
  double accuracy = 0.0;
  double loss = 0.0;                // mean cross-entropy of the float logits
  std::vector<int32_t> int_logits;  // [count, classes]
  std::vector<int32_t> predictions; // [count]
};
// Runs the whole data set through a session in batches.
RuntimeEval evaluate_runtime(runtime::Session& session, const data::Dataset& data, int64_t batch = 256);

struct Agreement {
  int64_t count = 0;
  int64_t int_logits_equal = 0;     // images whose every integer logit matches the simulation's
  int64_t predictions_equal = 0;    // runtime vs simulation predictions
  std::optional<int64_t> fake_quant_predictions_equal;  // runtime vs fake quantization, when given
};
// Compares runtime results with the integer simulation of `model` on the same images, and,
// when `fake_quant_predictions` is defined ([count] int64), with those predictions.
Agreement compare_with_simulation(const runtime::Model& model, const RuntimeEval& runtime_eval,
                                  const data::Dataset& data, const torch::Tensor& fake_quant_predictions = {});

}  // namespace lowbit::convert
