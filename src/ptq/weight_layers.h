// The weight layers of a QAT-prepared net seen the way PTQ needs them: the "effective" weight
// the weight quantizer sees (a QConvBnAct's BN-folded weight, a QLinearAct's weight) as a matrix
// [out, K] over the layer's im2col inputs, the layer's pre-activation output, and writers that
// put a quantized effective weight or a bias shift back into the layer's own parameters (so the
// checkpoint, eval, convert and the runtime see them unchanged).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/net.h"
#include "qat/quantized_layers.h"

namespace lowbit::ptq {

class WeightLayer {
 public:
  WeightLayer(std::string name, size_t node_index, std::shared_ptr<models::LayerImpl> layer);

  const std::string& name() const { return name_; }
  size_t node_index() const { return node_index_; }
  bool is_conv() const { return conv_ != nullptr; }
  bool has_batch_norm() const { return conv_ && conv_->bn; }
  int64_t groups() const;  // convolution groups (1 for linear)
  const std::shared_ptr<qat::QConvBnActImpl>& conv() const { return conv_; }
  qat::FakeQuantizeImpl& weight_quantizer() const;

  // What the weight quantizer sees (BN folded with the running statistics), its original shape.
  torch::Tensor effective_weight() const;
  torch::Tensor effective_bias() const;  // folded bias / bias; zeros [out] when there is none
  // The fake-quantized effective weight the layer computes with in eval mode.
  torch::Tensor deployed_weight() const;

  // Pre-activation output for input x with effective weight w and bias b (conv or linear).
  torch::Tensor pre_activation(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) const;
  // The layer's inputs as rows [n, K] matching effective_weight().reshape({out, K}): im2col
  // patches for a convolution (groups == 1), the input vectors for a linear layer.
  torch::Tensor input_rows(const torch::Tensor& x) const;

  // Sets the layer's parameters so that effective_weight() equals w (for Conv+BN: conv weight =
  // w / (gamma / sqrt(var + eps)) per output channel).
  void set_effective_weight(const torch::Tensor& w);
  // Adds delta [out] to the effective bias (BN beta, or the conv / linear bias).
  void shift_bias(const torch::Tensor& delta);
  // Conv+BN: the per-channel fold factor gamma / sqrt(running_var + eps).
  torch::Tensor fold_factor() const;

 private:
  std::string name_;
  size_t node_index_;
  std::shared_ptr<qat::QConvBnActImpl> conv_;
  std::shared_ptr<qat::QLinearActImpl> linear_;
};

// The quantized conv / linear layers of a prepared net, in node order.
std::vector<WeightLayer> weight_layers(models::Net& net);

// Runs `nodes` (after `input_layer`, which may be null) on x and returns the values 0..upto
// (value 0: the network input after input_layer; value i + 1: output of node i). Stops after
// node upto - 1, so values[upto] is the last one computed. x is the input as the nodes see it:
// for a net with input normalisation, pass net->normalise_input(images) (models/net.h).
std::vector<torch::Tensor> forward_values(const std::vector<models::Node>& nodes,
                                          const std::shared_ptr<models::LayerImpl>& input_layer,
                                          const torch::Tensor& x, size_t upto);

// The (first) input of node `index` for each batch.
std::vector<torch::Tensor> node_inputs(const std::vector<models::Node>& nodes,
                                       const std::shared_ptr<models::LayerImpl>& input_layer,
                                       const std::vector<torch::Tensor>& batches, size_t index);

}  // namespace lowbit::ptq
