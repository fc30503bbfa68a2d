// Calibration for post-training quantization: a fixed set of input batches (images, or byte
// windows of a text for a language model), and activation
// ranges set by the QAT core's own observers (the output quantizers of a prepared net).
#pragma once
#include <cstdint>
#include <vector>

#include "data/fashion_mnist.h"
#include "data/text_corpus.h"
#include "models/net.h"

namespace lowbit::ptq {

// The first `batches` batches of `batch_size` images of `data`, in order (deterministic, so
// every method of a study sees the same calibration set). Throws if data has fewer images.
std::vector<torch::Tensor> calibration_batches(const data::Dataset& data, int64_t batches, int64_t batch_size);

// Language models: `batches` batches of `batch_size` windows of `context` bytes at uniformly random
// offsets of `train_bytes` (uint8, a text corpus' training split), int64 [batch_size, context]
// each, from a generator seeded with `seed` (the same seed gives the same calibration set).
std::vector<torch::Tensor> text_calibration_batches(const torch::Tensor& train_bytes, int64_t batches,
                                                    int64_t batch_size, int64_t context, uint64_t seed);

// Every output (activation) quantizer of the prepared `net` observes the batches, with the rest
// of the net in eval mode (batch-norm statistics untouched) and the weight quantizers switched
// off (weights not yet quantized); then the activation observers are frozen and stop observing.
// Weight quantizers stay disabled: PTQ enables each one when it installs that layer's weights.
void calibrate_activations(models::Net& net, const std::vector<torch::Tensor>& batches);

}  // namespace lowbit::ptq
