// Quantization-aware replacements for the layers of models/layer.h, and prepare(), which swaps
// them into a Net by node name according to a QatConfig.
//
// What each layer simulates (the integer runtime computes the same thing):
//   QConvBnAct  conv with batch norm folded into it: W_fold = W * gamma / sqrt(var + eps) per
//               output channel, fake-quantized per channel; bias_fold = beta - gamma * mean /
//               sqrt(var + eps) (+ conv bias folded the same way). Training before the BN
//               freeze step follows the "approximate folding" scheme of Jacob et al. 2018 /
//               PyTorch's ConvBn QAT: y = conv(x, Q(W_fold)) / (gamma / sqrt(running_var + eps))
//               then BN with batch statistics (running stats keep updating); from the freeze
//               step on, and in eval, the exact folded path conv(x, Q(W_fold)) + bias_fold.
//               Then the activation, then the output quantizer.
//   QLinearAct  linear with per-channel fake-quantized weights, activation, output quantizer.
//   In evaluation both add their bias as the integer model does, as a whole number of
//   accumulator units s_x * s_w[o] (quant/bias_quantize.h), once the input's grid
//   (`input_grid`, set by prepare) and the weight scales exist; training keeps the float bias.
//   QAddAct     residual add of two quantized inputs, activation, output quantizer.
//   QPointwise  an element-wise function (sigmoid, LeakyReLU, ...) of a quantized input, then
//               its own output quantizer: the runtime's 256-entry lookup table between the two.
//   QConcat     channel concatenation of quantized inputs, then its own output quantizer: the
//               runtime's per-input 256-entry tables onto the output grid.
//   QPool       average pooling / global average pooling whose output is rounded back onto
//               its input's grid (the producer's scale and zero point, straight-through
//               gradient), as an integer average does; no parameters of its own.
//   QMaxPool    max pooling that applies its producer's output quantizer after pooling (equal
//               values, a quarter of the work; see the class).
//   QInput      the network input quantizer: uint8, scale exactly 1/255, zero point 0, fixed.
// The last node keeps no output quantizer: its int32 accumulators are the logits.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "models/net.h"
#include "qat/fake_quantize_module.h"
#include "qat/qat_config.h"
#include "qat/weight_quantized_layer.h"

namespace lowbit::qat {

class QConvBnActImpl : public models::LayerImpl, public WeightQuantizedLayer {
 public:
  // Copies the float layer's parameters and BN statistics. `output` empty: no output quantizer.
  QConvBnActImpl(const models::ConvBnActImpl& fp, const FakeQuantizeOptions& weight,
                 const std::optional<FakeQuantizeOptions>& output, int64_t bn_freeze_step);
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "conv"; }
  const models::ConvSpec& spec() const { return spec_; }

  // WeightQuantizedLayer: the quantizer input is the BN-folded weight W * gamma / sqrt(var + eps)
  // (running statistics), as in every forward path; without BN, W itself.
  FakeQuantizeImpl& weight_fake_quant() override { return *weight_quantizer; }
  torch::Tensor latent_weight() override { return conv->weight; }
  torch::Tensor quantizer_input() override;
  void set_quantizer_input(const torch::Tensor& target) override;

  // The folded float weight and bias (with running BN statistics): what convert quantizes.
  std::pair<torch::Tensor, torch::Tensor> folded_weight_and_bias() const;
  bool bn_frozen() const;

  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};  // null when the float layer had none
  FakeQuantize weight_quantizer{nullptr};
  FakeQuantize output_quantizer{nullptr};  // null for the last layer
  // Set by prepare when the only consumer is a max pool, which then applies output_quantizer
  // after pooling (see QMaxPool); the quantizer's parameters still belong to this layer.
  bool output_quantized_downstream = false;
  // The quantizer whose grid the input lies on (set by prepare; not registered, it belongs to
  // the producer); null when the input is float.
  std::shared_ptr<FakeQuantizeImpl> input_grid;

 private:
  models::ConvSpec spec_;
  int64_t bn_freeze_step_;
  torch::Tensor step_;  // training forwards so far (buffer, survives checkpoints)
};
TORCH_MODULE(QConvBnAct);

class QLinearActImpl : public models::LayerImpl, public WeightQuantizedLayer {
 public:
  QLinearActImpl(const models::LinearActImpl& fp, const FakeQuantizeOptions& weight,
                 const std::optional<FakeQuantizeOptions>& output);
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "linear"; }
  const models::LinearSpec& spec() const { return spec_; }

  // WeightQuantizedLayer: the quantizer input is the weight itself.
  FakeQuantizeImpl& weight_fake_quant() override { return *weight_quantizer; }
  torch::Tensor latent_weight() override { return linear->weight; }
  torch::Tensor quantizer_input() override { return linear->weight.detach().clone(); }
  void set_quantizer_input(const torch::Tensor& target) override;

  torch::nn::Linear linear{nullptr};
  FakeQuantize weight_quantizer{nullptr};
  FakeQuantize output_quantizer{nullptr};
  bool output_quantized_downstream = false;  // as in QConvBnActImpl
  std::shared_ptr<FakeQuantizeImpl> input_grid;  // as in QConvBnActImpl

 private:
  models::LinearSpec spec_;
};
TORCH_MODULE(QLinearAct);

class QAddActImpl : public models::LayerImpl {
 public:
  QAddActImpl(models::Activation activation, const std::optional<FakeQuantizeOptions>& output);
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "add"; }
  models::Activation activation() const { return activation_; }

  FakeQuantize output_quantizer{nullptr};
  bool output_quantized_downstream = false;  // as in QConvBnActImpl

 private:
  models::Activation activation_;
};
TORCH_MODULE(QAddAct);

// A models::PointwiseImpl still (export and tools see the float function); the input must be on
// a grid (its producer quantized), so that the converter can tabulate f over the input's codes.
class QPointwiseImpl : public models::PointwiseImpl {
 public:
  QPointwiseImpl(const quant::PointwiseFunction& f, const std::optional<FakeQuantizeOptions>& output);
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;

  FakeQuantize output_quantizer{nullptr};
  bool output_quantized_downstream = false;  // as in QConvBnActImpl
};
TORCH_MODULE(QPointwise);

// A models::ConcatImpl still; every input must be on a grid (its producer quantized): the output
// quantizer then moves each input's codes onto one grid, which the runtime does with one table
// per input (quant::make_requantize_table).
class QConcatImpl : public models::ConcatImpl {
 public:
  explicit QConcatImpl(const std::optional<FakeQuantizeOptions>& output);
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;

  FakeQuantize output_quantizer{nullptr};
  bool output_quantized_downstream = false;  // as in QConvBnActImpl
};
TORCH_MODULE(QConcat);

// kind "avgpool" (with `pool`) or "gap". `input_grid` is the producer's output quantizer; it
// is not registered here (its parameters belong to the producer).
class QPoolImpl : public models::LayerImpl {
 public:
  QPoolImpl(std::string kind, models::PoolSpec pool, std::shared_ptr<FakeQuantizeImpl> input_grid);
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return kind_; }
  const models::PoolSpec& spec() const { return pool_; }
  const std::shared_ptr<FakeQuantizeImpl>& input_grid() const { return input_grid_; }

 private:
  std::string kind_;
  models::PoolSpec pool_;
  std::shared_ptr<FakeQuantizeImpl> input_grid_;
};
TORCH_MODULE(QPool);

// Max pooling whose input's quantizer is applied after pooling instead of before. Fake
// quantization is monotone (non-decreasing) in its input, so max(Q(x)) == Q(max(x)) exactly and
// the values equal those of quantize-then-pool, which is what the integer runtime computes;
// quantizing the pooled tensor touches a quarter of the elements (2x2 pooling), forward and
// backward. `producer_quantizer` is the producer's output quantizer, not registered here.
// A models::MaxPoolImpl still, so conversion and export treat it as the max pool it is.
class QMaxPoolImpl : public models::MaxPoolImpl {
 public:
  QMaxPoolImpl(const models::PoolSpec& pool, std::shared_ptr<FakeQuantizeImpl> producer_quantizer);
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;

 private:
  std::shared_ptr<FakeQuantizeImpl> producer_quantizer_;
};
TORCH_MODULE(QMaxPool);

class QInputImpl : public models::LayerImpl {
 public:
  QInputImpl();
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs) override;
  std::string kind() const override { return "input_quant"; }
  FakeQuantize quantizer{nullptr};
};
TORCH_MODULE(QInput);

// Swaps every layer of `net` for its QAT version according to `config` (checks first that every
// override pattern matches a node) and installs the input quantizer. Layers whose settings say
// quantize=false stay float. Throws lowbit::Error naming the node for a layer kind QAT does not
// know or a node that was already prepared.
void prepare(models::Net& net, const QatConfig& config);

}  // namespace lowbit::qat
