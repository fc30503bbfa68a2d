#include "convert/to_runtime.h"

#include <cmath>
#include <map>

#include "base/error.h"
#include "qat/quantized_layers.h"
#include "quant/pointwise_function.h"
#include "quant/quantize.h"
#include "quant/rounding.h"

namespace lowbit::convert {
namespace {

using quant::Granularity;


std::string where(const models::Node& node) { return "convert: node '" + node.name + "'"; }

runtime::ActQParams act_qparams(const qat::FakeQuantizeImpl& fq, const models::Node& node) {
  const quant::QuantSpec& spec = fq.options().spec;
  LOWBIT_CHECK(spec.grid == quant::Grid::Integer && spec.bits <= 8,
               where(node) + ": activation grid '" + spec.describe() + "' cannot be stored as uint8 codes");
  LOWBIT_CHECK(spec.granularity == Granularity::PerTensor,
               where(node) + ": the integer runtime needs per-tensor activation scales, got '" + spec.describe() +
                   "'; use per-tensor activations for layers you deploy");
  LOWBIT_CHECK(fq.initialized(), where(node) + ": its activation quantizer was never calibrated; train or "
                                               "calibrate the model before converting");
  const qat::QParamTensors p = fq.qparams();
  const int32_t shift = -spec.qmin();
  runtime::ActQParams a;
  a.scale = p.scale[0].item<float>();
  a.zero_point = p.zero_point[0].item<int32_t>() + shift;
  a.qmin = spec.qmin() + shift;
  a.qmax = spec.qmax() + shift;
  return a;
}

// Fused activation as a narrower clamp of the output codes (see docs/numerics.md, section 5).
runtime::ActQParams with_activation(runtime::ActQParams a, models::Activation act) {
  if (act == models::Activation::ReLU || act == models::Activation::ReLU6) a.qmin = std::max(a.qmin, a.zero_point);
  if (act == models::Activation::ReLU6) {
    const double six = quant::round_half_even(6.0 / static_cast<double>(a.scale));
    a.qmax = static_cast<int32_t>(std::min<double>(a.qmax, a.zero_point + six));
  }
  return a;
}

// Smallest packing width the runtime supports that holds a b-bit code.
int32_t container_bits(int bits) { return bits <= 1 ? 1 : bits <= 2 ? 2 : bits <= 4 ? 4 : 8; }

struct QuantizedWeight {
  std::vector<int32_t> values;  // per element: Integer grid q, Odd grid the odd value
  std::vector<float> scales;    // per output channel
  int32_t bits = 8;
  quant::Grid grid = quant::Grid::Integer;
};

// Quantizes a float weight [O, ...] with the quantizer's current scales, exactly as its
// fake-quantization forward does (same float32 division, same rounding).
QuantizedWeight quantize_weight(qat::FakeQuantizeImpl& fq, const torch::Tensor& weight, const models::Node& node) {
  const quant::QuantSpec& spec = fq.options().spec;
  LOWBIT_CHECK(spec.granularity != Granularity::PerGroup,
               where(node) + ": per-group weight scales (" + spec.describe() +
                   ") have no integer requantization; the runtime takes per-channel or per-tensor weights");
  LOWBIT_CHECK(spec.symmetric, where(node) + ": the integer runtime needs symmetric weights (zero point 0), got '" +
                                   spec.describe() + "'");
  LOWBIT_CHECK(spec.granularity == Granularity::PerTensor || spec.axis == 0,
               where(node) + ": per-channel weight scales must be on axis 0 (output channels)");
  {
    // Refresh observed weight scales from the current weights, as the eval forward does.
    torch::NoGradGuard no_grad;
    fq.forward(weight);
  }
  const qat::QParamTensors p = fq.qparams();
  const torch::Tensor w = weight.detach().contiguous().to(torch::kFloat32);
  const int64_t out = w.size(0);
  const int64_t per_row = w.numel() / out;
  const torch::Tensor scale = p.scale.contiguous();
  LOWBIT_CHECK(scale.numel() == 1 || scale.numel() == out,
               where(node) + ": weight quantizer has " + std::to_string(scale.numel()) + " scales for " +
                   std::to_string(out) + " output channels");
  QuantizedWeight r;
  r.bits = container_bits(spec.bits);
  r.grid = spec.grid;
  r.values.resize(static_cast<size_t>(w.numel()));
  r.scales.resize(static_cast<size_t>(out));
  const quant::GridParams g = quant::GridParams::of(spec);
  const float* wp = w.data_ptr<float>();
  const float* sp = scale.data_ptr<float>();
  for (int64_t o = 0; o < out; ++o) {
    const float s = sp[scale.numel() == 1 ? 0 : o];
    r.scales[static_cast<size_t>(o)] = s;
    for (int64_t k = 0; k < per_row; ++k) r.values[o * per_row + k] = quant::quantize(wp[o * per_row + k], s, 0, g);
  }
  return r;
}

// A channel whose folded weights are all (nearly) zero, e.g. batch norm with gamma ~ 0, gets a
// tiny weight scale, and bias / (s_x * s_w) no longer fits the int32 accumulator. Such a channel
// computes its bias alone; raising its weight scale until |bias_q| <= 2^30 changes its output by
// less than one weight step times the input sum (its weights then quantize to ~0), while keeping
// sum |(x - z) * w| + |bias_q| < 2^31 for every layer the runtime accepts (K * 255 * 128 < 2^30).
void bound_bias_scales(QuantizedWeight& qw, const torch::Tensor& weight, const std::vector<float>& bias, float s_x,
                       qat::FakeQuantizeImpl& fq) {
  const torch::Tensor w = weight.detach().contiguous().to(torch::kFloat32);
  const int64_t out = static_cast<int64_t>(qw.scales.size());
  const int64_t per_row = w.numel() / out;
  const quant::GridParams g = quant::GridParams::of(fq.options().spec);
  const float* wp = w.data_ptr<float>();
  for (int64_t o = 0; o < out; ++o) {
    const double needed = std::fabs(static_cast<double>(bias[static_cast<size_t>(o)])) / (static_cast<double>(s_x) * 1073741824.0);
    if (static_cast<double>(qw.scales[static_cast<size_t>(o)]) >= needed) continue;
    const float s = static_cast<float>(needed * 1.0001);
    qw.scales[static_cast<size_t>(o)] = s;
    for (int64_t k = 0; k < per_row; ++k) qw.values[o * per_row + k] = quant::quantize(wp[o * per_row + k], s, 0, g);
  }
}

std::vector<float> to_vector(const torch::Tensor& t, int64_t n) {
  if (!t.defined()) return std::vector<float>(static_cast<size_t>(n), 0.0f);
  const torch::Tensor c = t.detach().contiguous().to(torch::kFloat32);
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

std::shared_ptr<qat::FakeQuantizeImpl> quantizer_or_null(const qat::FakeQuantize& q) {
  return q.is_empty() ? nullptr : q.ptr();
}

// What a conv or linear layer hands to conversion.
struct WeightedLayer {
  torch::Tensor weight;  // float, [O, ...] (BN already folded)
  torch::Tensor bias;    // float [O] or undefined
  qat::FakeQuantizeImpl& weight_quantizer;
  std::shared_ptr<qat::FakeQuantizeImpl> output_quantizer;  // null on the last layer
  models::Activation activation;
};

// Weights, bias and output stage of a conv/linear op (requantization, or int32 logits for the
// last layer); returns the quantization of its output.
runtime::ActQParams fill_weighted_op(runtime::Op& op, const WeightedLayer& layer, const runtime::ActQParams& in_q,
                                     bool last, const models::Node& node, std::vector<float>& weight_scales) {
  QuantizedWeight qw = quantize_weight(layer.weight_quantizer, layer.weight, node);
  const std::vector<float> bias = to_vector(layer.bias, layer.weight.size(0));
  bound_bias_scales(qw, layer.weight, bias, in_q.scale, layer.weight_quantizer);
  runtime::set_weight_values(op.weight, qw.bits, qw.grid, qw.values);
  weight_scales = qw.scales;
  if (last) {
    runtime::set_output_layer(op, in_q.scale, qw.scales, bias);
    return in_q;  // unused: an output layer's value holds int32 logits
  }
  LOWBIT_CHECK(layer.output_quantizer, where(node) + ": hidden layer has no output quantizer");
  const runtime::ActQParams out_q = with_activation(act_qparams(*layer.output_quantizer, node), layer.activation);
  runtime::set_requantization(op, in_q.scale, qw.scales, bias, out_q);
  return out_q;
}

}  // namespace

runtime::Model to_runtime_model(models::Net& net, const std::string& description, std::vector<ConvertedOp>* record) {
  torch::NoGradGuard no_grad;
  const bool was_training = net->is_training();
  net->eval();
  if (record) record->clear();
  runtime::Model m;
  m.name = description.empty() ? net->model_name() : description;
  const std::vector<int64_t>& shape = net->input_shape();
  LOWBIT_CHECK(shape.size() == 3 || shape.size() == 1,
               "convert: the integer runtime takes [C, H, W] images or [features] vectors; model '" + net->model_name() +
                   "' takes examples of rank " + std::to_string(shape.size()));
  m.in_channels = static_cast<int32_t>(shape[0]);
  m.in_height = shape.size() == 3 ? static_cast<int32_t>(shape[1]) : 1;
  m.in_width = shape.size() == 3 ? static_cast<int32_t>(shape[2]) : 1;
  if (!net->input_mean().empty()) {  // the run's --mean / --std, one value per channel in the model file
    const size_t c = static_cast<size_t>(m.in_channels), given = net->input_mean().size();
    LOWBIT_CHECK(given == 1 || given == c, "convert: the input normalisation has " + std::to_string(given) +
                                               " values but model '" + net->model_name() + "' takes " +
                                               std::to_string(c) + " input channels");
    m.input_mean = given == 1 ? std::vector<float>(c, net->input_mean()[0]) : net->input_mean();
    m.input_std = given == 1 ? std::vector<float>(c, net->input_std()[0]) : net->input_std();
  }

  auto input = std::dynamic_pointer_cast<qat::QInputImpl>(net->input_layer());
  LOWBIT_CHECK(input != nullptr, "convert: the model has no input quantizer; it must be prepared for QAT (lowbit qat) "
                                 "or quantized (lowbit ptq) before conversion");
  {
    models::Node input_node{"input", {}, nullptr};
    m.input = act_qparams(*input->quantizer, input_node);
  }

  // Quantization of every value, indexed like the Net's values (0 = input, i + 1 = node i).
  std::vector<runtime::ActQParams> value_q{m.input};
  const auto& nodes = net->nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const models::Node& node = nodes[i];
    const bool last = i + 1 == nodes.size();
    const int32_t x = node.inputs.empty() ? 0 : node.inputs[0];
    const runtime::ActQParams& in_q = value_q.at(static_cast<size_t>(x));
    runtime::Op op;
    runtime::ActQParams out_q = in_q;
    std::vector<float> weight_scales;
    const std::string kind = node.layer->kind();

    if (auto conv = std::dynamic_pointer_cast<qat::QConvBnActImpl>(node.layer)) {
      const models::ConvSpec& s = conv->spec();
      auto [w, b] = conv->folded_weight_and_bias();
      op = runtime::make_conv2d(x, static_cast<int32_t>(s.in_channels), static_cast<int32_t>(s.out_channels),
                                static_cast<int32_t>(s.kernel), static_cast<int32_t>(s.stride),
                                static_cast<int32_t>(s.padding), static_cast<int32_t>(s.groups),
                                static_cast<int32_t>(s.dilation));
      out_q = fill_weighted_op(op, {w, b, *conv->weight_quantizer, quantizer_or_null(conv->output_quantizer), s.activation}, in_q,
                               last, node, weight_scales);
    } else if (auto lin = std::dynamic_pointer_cast<qat::QLinearActImpl>(node.layer)) {
      const models::LinearSpec& s = lin->spec();
      op = runtime::make_linear(x, static_cast<int32_t>(s.in_features), static_cast<int32_t>(s.out_features));
      out_q = fill_weighted_op(op, {lin->linear->weight, lin->linear->bias, *lin->weight_quantizer,
                                    quantizer_or_null(lin->output_quantizer), s.activation},
                               in_q, last, node, weight_scales);
    } else if (auto add = std::dynamic_pointer_cast<qat::QAddActImpl>(node.layer)) {
      LOWBIT_CHECK(node.inputs.size() == 2 && add->output_quantizer && !last,
                   where(node) + ": a residual add needs two inputs and an output quantizer");
      op = runtime::make_add(node.inputs[0], node.inputs[1]);
      out_q = with_activation(act_qparams(*add->output_quantizer, node), add->activation());
    } else if (auto pw = std::dynamic_pointer_cast<qat::QPointwiseImpl>(node.layer)) {
      LOWBIT_CHECK(pw->output_quantizer && !last,
                   where(node) + ": an element-wise " + pw->function().name() +
                       " needs an output quantizer and a layer after it (the last layer must be conv or linear)");
      out_q = act_qparams(*pw->output_quantizer, node);
      const auto table = quant::make_pointwise_table(pw->function(), in_q.scale, in_q.zero_point, out_q.scale,
                                                     out_q.zero_point, out_q.qmin, out_q.qmax);
      op = runtime::make_lookup(x, std::vector<uint8_t>(table.begin(), table.end()));
    } else if (auto cat = std::dynamic_pointer_cast<qat::QConcatImpl>(node.layer)) {
      LOWBIT_CHECK(cat->output_quantizer && !last && node.inputs.size() >= 2,
                   where(node) + ": a concat needs two or more inputs, an output quantizer and a layer after it");
      out_q = act_qparams(*cat->output_quantizer, node);
      op = runtime::make_concat(std::vector<int32_t>(node.inputs.begin(), node.inputs.end()));
      for (int v : node.inputs) {
        const runtime::ActQParams& q = value_q.at(static_cast<size_t>(v));
        const auto table = quant::make_requantize_table(q.scale, q.zero_point, out_q.scale, out_q.zero_point,
                                                        out_q.qmin, out_q.qmax);
        op.table.insert(op.table.end(), table.begin(), table.end());
      }
    } else if (auto pool = std::dynamic_pointer_cast<qat::QPoolImpl>(node.layer)) {
      const models::PoolSpec& p = pool->spec();
      op = kind == "gap" ? runtime::make_global_avg_pool(x)
                         : runtime::make_avg_pool(x, static_cast<int32_t>(p.kernel), static_cast<int32_t>(p.stride),
                                                  static_cast<int32_t>(p.padding));
      out_q = in_q;  // the average is rounded back onto its input's grid
    } else if (auto maxpool = std::dynamic_pointer_cast<models::MaxPoolImpl>(node.layer)) {
      const models::PoolSpec& p = maxpool->spec();
      op = runtime::make_max_pool(x, static_cast<int32_t>(p.kernel), static_cast<int32_t>(p.stride),
                                  static_cast<int32_t>(p.padding));
    } else if (kind == "flatten") {
      op = runtime::make_flatten(x);
    } else {
      throw Error(where(node) + ": layer of kind '" + kind +
                  "' is not quantized; the integer runtime needs every conv, linear, add, concat, element-wise function and average pool "
                  "quantized (check the QAT config's quantize=false overrides)");
    }
    op.out = out_q;
    value_q.push_back(out_q);
    if (record) record->push_back({node.name, std::move(weight_scales)});
    m.add(std::move(op));
  }
  runtime::validate_model(m, "converted model");
  if (was_training) net->train();
  return m;
}

}  // namespace lowbit::convert
