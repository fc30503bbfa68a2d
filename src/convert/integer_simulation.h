// The QAT model's evaluation ("convert") mode: the integer arithmetic of a converted model,
// computed with LibTorch, independently of the runtime's kernels.
//
// Convolutions and matrix products run in float64 on the centred integer codes (x - z_x) and the
// integer weights: every partial sum is an integer below 2^53, so they are exact. Every step that
// rounds (input quantization, requantization, pooling averages, residual adds) calls the same
// lowbit_quant function the runtime calls. The runtime must therefore reproduce these integer
// logits bit for bit; tests and `lowbit eval` check that it does.
#pragma once
#include "runtime/model.h"
#include "torch_pch.h"

namespace lowbit::convert {

struct IntegerOutputs {
  torch::Tensor int_logits;   // [N, classes] int64 holding the int32 accumulators of the output layer
  torch::Tensor logits;       // [N, classes] float32: (float)acc * out_scale[o]
  torch::Tensor predictions;  // [N] int64: argmax of logits, ties to the lowest index
};

// images: [N, C, H, W] float32 as the model's input expects (pixel / 255 for Fashion-MNIST), before
// the model's input normalisation (Model::input_mean / input_std), which is applied here as the
// runtime's Session and models::Net apply it.
// When `codes` is given it receives every value's int64 tensor, indexed like the model's values
// (0 = the quantized input, i + 1 = op i's output; the output layer's holds its int32 logits).
IntegerOutputs simulate_integer(const runtime::Model& model, const torch::Tensor& images,
                                std::vector<torch::Tensor>* codes = nullptr);

}  // namespace lowbit::convert
