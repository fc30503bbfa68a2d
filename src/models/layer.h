// The layers lowbit models are written with. Every node of a lowbit model (see net.h) holds one
// LayerImpl; FP32 layers live here, their quantization-aware replacements in qat/ (prepare swaps
// them in by node name), so a model needs no code change to be trained at another precision.
//
// Tensors are NCHW float32. A layer takes the outputs of its input nodes, in order.
#pragma once
#include <string>
#include <vector>

#include "quant/pointwise_function.h"
#include "torch_pch.h"

namespace lowbit::models {

// GELU (exact, erf form) is for the transformers' MLPs (models/vit.h); the integer runtime and the
// exporters handle None, ReLU and ReLU6 only.
enum class Activation { None, ReLU, ReLU6, GELU };
std::string activation_name(Activation a);
torch::Tensor apply_activation(const torch::Tensor& x, Activation a);

class LayerImpl : public torch::nn::Module {
 public:
  ~LayerImpl() override = default;
  virtual torch::Tensor forward(const std::vector<torch::Tensor>& inputs) = 0;
  // "conv", "linear", "maxpool", "avgpool", "gap", "add", "concat", "flatten", "pointwise" (also for qat/
  // replacements)
  virtual std::string kind() const = 0;
};

struct ConvSpec {
  int64_t in_channels = 1;
  int64_t out_channels = 1;
  int64_t kernel = 3;
  int64_t stride = 1;
  int64_t padding = 0;
  int64_t groups = 1;      // groups == in_channels == out_channels: depthwise
  int64_t dilation = 1;    // taps `dilation` pixels apart (ONNX dilations [d, d]); window extent d * (kernel - 1) + 1
  bool batch_norm = true;  // conv has a bias only when there is no batch norm
  Activation activation = Activation::ReLU;
};

// Conv2d -> BatchNorm2d (optional) -> activation: the unit an integer runtime folds into one op.
class ConvBnActImpl : public LayerImpl {
 public:
  explicit ConvBnActImpl(const ConvSpec& spec);
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "conv"; }
  const ConvSpec& spec() const { return spec_; }

  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};  // null when !spec.batch_norm

 private:
  ConvSpec spec_;
};

struct LinearSpec {
  int64_t in_features = 1;
  int64_t out_features = 1;
  Activation activation = Activation::None;
  bool bias = true;  // false for the transformer projections (models/gpt.h)
};

class LinearActImpl : public LayerImpl {
 public:
  explicit LinearActImpl(const LinearSpec& spec);
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "linear"; }
  const LinearSpec& spec() const { return spec_; }

  torch::nn::Linear linear{nullptr};

 private:
  LinearSpec spec_;
};

struct PoolSpec {
  int64_t kernel = 2;
  int64_t stride = 2;
  int64_t padding = 0;
};

class MaxPoolImpl : public LayerImpl {
 public:
  explicit MaxPoolImpl(const PoolSpec& spec) : spec_(spec) {}
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "maxpool"; }
  const PoolSpec& spec() const { return spec_; }

 private:
  PoolSpec spec_;
};

// Average pooling; padding is excluded from the count (count_include_pad = false).
class AvgPoolImpl : public LayerImpl {
 public:
  explicit AvgPoolImpl(const PoolSpec& spec) : spec_(spec) {}
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "avgpool"; }
  const PoolSpec& spec() const { return spec_; }

 private:
  PoolSpec spec_;
};

// Global average pooling: [N, C, H, W] -> [N, C].
class GlobalAvgPoolImpl : public LayerImpl {
 public:
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "gap"; }
};

// [N, C, H, W] -> [N, C*H*W] in NCHW order (what a following linear layer's weights expect).
class FlattenImpl : public LayerImpl {
 public:
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "flatten"; }
};

// Residual add of two inputs, then an activation.
class AddActImpl : public LayerImpl {
 public:
  explicit AddActImpl(Activation activation) : activation_(activation) {}
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "add"; }
  Activation activation() const { return activation_; }

 private:
  Activation activation_;
};

// Channel concatenation of two or more [N, C_k, H, W] inputs, in input order (torch.cat(dim=1)).
class ConcatImpl : public LayerImpl {
 public:
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "concat"; }
};

// f(x) element-wise in float32 torch ops, with autograd: what training and the float model compute
// (quant::PointwiseFunction holds the definitions; its tables are what the integer runtime uses).
torch::Tensor apply_pointwise(const torch::Tensor& x, const quant::PointwiseFunction& f);

// An element-wise activation that is not a clamp: LeakyReLU, sigmoid, hard sigmoid, hard swish,
// tanh, SiLU. A node of its own, unlike ReLU / ReLU6 (fused into the producer): the integer runtime
// computes it as a 256-entry table between two quantized tensors, so after QAT prepare the
// producer's output is quantized before it and this node's output after it.
class PointwiseImpl : public LayerImpl {
 public:
  explicit PointwiseImpl(const quant::PointwiseFunction& f) : f_(f) {}
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "pointwise"; }
  const quant::PointwiseFunction& function() const { return f_; }

 private:
  quant::PointwiseFunction f_;
};

}  // namespace lowbit::models
