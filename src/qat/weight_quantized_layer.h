// WeightQuantizedLayer: what a quantization-aware layer with a quantized weight exposes so that
// model-agnostic tools (WinQ's interpolation reset and noise, the Hessian analysis) can work on
// any model without knowing its layer kinds. QConvBnAct and QLinearAct implement it; a future
// layer (e.g. a transformer's quantized projection) implements the same four methods.
//
// "Quantizer input" is the tensor the weight's FakeQuantize sees in the forward pass: the latent
// weight itself for a linear layer, the batch-norm-folded weight W * gamma / sqrt(var + eps) for
// a conv with BN. Tools act in that space (it is where the grid is), and map back to the latent
// parameter with set_quantizer_input.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "qat/fake_quantize_module.h"
#include "torch_pch.h"

namespace lowbit::qat {

class WeightQuantizedLayer {
 public:
  virtual ~WeightQuantizedLayer() = default;
  // The weight's fake quantizer (its scales are the "current scales").
  virtual FakeQuantizeImpl& weight_fake_quant() = 0;
  // The latent (trained) weight parameter.
  virtual torch::Tensor latent_weight() = 0;
  // What the weight quantizer sees, computed from the parameters as the forward does (no grad).
  virtual torch::Tensor quantizer_input() = 0;
  // Sets the latent weight (in place, keeping the parameter's identity so optimizer state stays
  // attached) so that quantizer_input() equals `target` up to float rounding.
  virtual void set_quantizer_input(const torch::Tensor& target) = 0;
};

// The weight-quantized layers of a module tree, with their module names ("conv1", ...), in
// registration order (a stable order: the layer index WinQ's noise seeds use).
std::vector<std::pair<std::string, WeightQuantizedLayer*>> weight_quantized_layers(torch::nn::Module& root);

}  // namespace lowbit::qat
