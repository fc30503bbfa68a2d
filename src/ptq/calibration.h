// Calibration for post-training quantization: a fixed set of input batches, and activation
// ranges set by the QAT core's own observers (the output quantizers of a prepared net).
#pragma once
#include <cstdint>
#include <vector>

#include "data/fashion_mnist.h"
#include "models/net.h"

namespace lowbit::ptq {

// The first `batches` batches of `batch_size` images of `data`, in order (deterministic, so
// every method of a study sees the same calibration set). Throws if data has fewer images.
std::vector<torch::Tensor> calibration_batches(const data::Dataset& data, int64_t batches, int64_t batch_size);

// Every output (activation) quantizer of the prepared `net` observes the batches, with the rest
// of the net in eval mode (batch-norm statistics untouched) and the weight quantizers switched
// off (weights not yet quantized); then the activation observers are frozen and stop observing.
// Weight quantizers stay disabled: PTQ enables each one when it installs that layer's weights.
void calibrate_activations(models::Net& net, const std::vector<torch::Tensor>& batches);

}  // namespace lowbit::ptq
