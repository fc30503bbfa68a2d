#include "ptq/ptq.h"

#include <cmath>

#include "base/error.h"
#include "ptq/calibration.h"
#include "ptq/weight_layers.h"
#include "qat/fake_quant.h"
#include "qat/observers.h"

namespace lowbit::ptq {

PtqMethod method_from_string(const std::string& name) {
  if (name == "rtn") return PtqMethod::Rtn;
  if (name == "gptq") return PtqMethod::Gptq;
  throw Error("unknown PTQ method '" + name + "'; use rtn or gptq");
}

std::string to_string(PtqMethod method) { return method == PtqMethod::Rtn ? "rtn" : "gptq"; }

nlohmann::json PtqReport::to_json() const {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& l : layers) {
    j.push_back({{"layer", l.name}, {"method", l.method}, {"relative_error", l.relative_error},
                 {"rtn_relative_error", l.rtn_relative_error}});
  }
  return j;
}

qat::QatConfig ptq_config(int wbits, int abits, int64_t calib_batches, const std::string& observer, int group_size) {
  qat::QatFlags flags;
  flags.wbits = wbits;
  flags.abits = abits;
  flags.quantizer = "lsq";  // the scale is a parameter: stored, and never re-observed in eval
  flags.granularity = group_size > 0 ? "group" : "channel";
  if (group_size > 0) flags.group_size = group_size;
  flags.observer = observer;
  flags.freeze_steps = calib_batches;
  return qat::config_from_flags(flags);
}

namespace {

// The weight quantizer's scales for w from its own observer (what QAT's initialisation picks).
qat::QParamTensors weight_qparams(const qat::FakeQuantizeImpl& wq, const torch::Tensor& w) {
  qat::Observer observer(wq.options().spec, wq.options().observer);
  observer.observe(w);
  return observer.qparams();
}

// Quantizes column `index` [rows] of a [rows, K] matrix with its per-row scales (one scale, a
// scale per row, or per row the scale of the column's group), by the fake quantizer's arithmetic.
IndexedColumnQuantizer column_quantizer(const quant::QuantSpec& weight_spec, const qat::QParamTensors& qp) {
  quant::QuantSpec spec = weight_spec;
  spec.granularity = quant::Granularity::PerChannel;
  spec.axis = 0;
  const bool grouped = weight_spec.granularity == quant::Granularity::PerGroup;
  const int64_t group = grouped ? weight_spec.group_size : 0;
  const torch::Tensor scale = qp.scale.to(torch::kFloat32).reshape({-1});
  const torch::Tensor zp = qp.zero_point.to(torch::kFloat32).reshape({-1});
  return [spec, group, scale, zp](const torch::Tensor& col, int64_t index) {
    const int64_t rows = col.numel();
    auto for_column = [&](const torch::Tensor& t) {
      if (t.numel() == 1) return t.expand({rows}).contiguous();
      if (group == 0) return t;  // per channel: one per row
      const int64_t groups_per_row = t.numel() / rows;
      return t.view({rows, groups_per_row}).select(1, index / group).contiguous();
    };
    return qat::fake_quantize_forward(col.reshape({rows, 1}).contiguous(), for_column(scale), for_column(zp), spec)
        .reshape({rows});
  };
}

void install_qparams(qat::FakeQuantizeImpl& wq, const qat::QParamTensors& qp) {
  wq.set_fixed_qparams(qp.scale, qp.zero_point.to(torch::kFloat32));
  wq.set_enabled(true);
}

double relative(double err, double ref) { return ref > 0 ? std::sqrt(err / ref) : 0.0; }

// Per output channel mean and (biased) variance over all dims but 1 of the batches' outputs.
std::pair<torch::Tensor, torch::Tensor> channel_moments(const std::vector<torch::Tensor>& outputs) {
  torch::Tensor sum, sq;
  int64_t n = 0;
  for (const auto& y : outputs) {
    const torch::Tensor t = y.transpose(0, 1).reshape({y.size(1), -1}).to(torch::kFloat64);
    sum = sum.defined() ? sum + t.sum(1) : t.sum(1);
    sq = sq.defined() ? sq + (t * t).sum(1) : (t * t).sum(1);
    n += t.size(1);
  }
  const torch::Tensor mean = sum / static_cast<double>(n);
  const torch::Tensor var = (sq / static_cast<double>(n) - mean * mean).clamp_min(0.0);
  return {mean.to(torch::kFloat32), var.to(torch::kFloat32)};
}

// Recomputes the BN running statistics of `layer` from its conv outputs with the quantized
// weights; the integer codes stay and the per-channel weight scales absorb the new fold factor.
void reestimate_batch_norm(WeightLayer& layer, const std::vector<torch::Tensor>& inputs) {
  auto& bn = layer.conv()->bn;
  auto& conv = layer.conv()->conv;
  auto& wq = layer.weight_quantizer();
  LOWBIT_CHECK(wq.options().spec.granularity == quant::Granularity::PerChannel,
               "BN re-estimation: layer '" + layer.name() + "' needs per-channel weight scales");
  const torch::Tensor old_factor = layer.fold_factor();
  // The conv weight whose fold is the deployed weight: deployed / old fold factor.
  const torch::Tensor f_old = old_factor.view({-1, 1, 1, 1});
  const torch::Tensor raw_q = torch::where(f_old != 0, layer.deployed_weight() / f_old, torch::zeros_like(f_old));
  std::vector<torch::Tensor> outputs;
  for (const auto& x : inputs) outputs.push_back(layer.pre_activation(x, raw_q, conv->bias.defined() ? conv->bias.detach() : torch::Tensor()));
  auto [mean, var] = channel_moments(outputs);
  bn->running_mean.copy_(mean);
  bn->running_var.copy_(var);
  const torch::Tensor new_factor = layer.fold_factor();
  const torch::Tensor ratio = torch::where(old_factor != 0, new_factor / old_factor, torch::ones_like(old_factor));
  qat::QParamTensors qp = wq.qparams();
  qp.scale = (qp.scale * ratio.abs()).clamp_min(quant::kMinScale);
  // Keep the layer's conv weight = codes * scale / factor exactly for the new factor.
  install_qparams(wq, qp);
  layer.set_effective_weight(raw_q * new_factor.view({-1, 1, 1, 1}));
}

}  // namespace

PtqReport quantize_post_training(models::Net& net, const qat::QatConfig& config,
                                 const std::vector<torch::Tensor>& calibration, const PtqOptions& options) {
  LOWBIT_CHECK(!calibration.empty(), "PTQ needs at least one calibration batch");
  torch::NoGradGuard no_grad;
  net->eval();
  // prepare copies the float layers; the originals stay alive here as the FP reference.
  const std::vector<models::Node> fp_nodes = net->nodes();
  qat::prepare(net, config);
  calibrate_activations(net, calibration);
  // The layer-by-layer passes below walk the nodes themselves: they start from the images as
  // forward sees them, after the run's input normalisation (--mean / --std).
  std::vector<torch::Tensor> normalised;
  for (const torch::Tensor& b : calibration) normalised.push_back(net->normalise_input(b));

  PtqReport report;
  const std::vector<models::Node>& q_nodes = net->nodes();
  for (WeightLayer& layer : weight_layers(net)) {
    const bool gptq = options.method == PtqMethod::Gptq;
    const bool needs_inputs = gptq || options.measure_errors || options.bn_reestimate || options.bias_correction;
    const std::vector<torch::Tensor> inputs =
        needs_inputs ? node_inputs(q_nodes, net->input_layer(), normalised, layer.node_index()) : std::vector<torch::Tensor>{};
    const torch::Tensor w = layer.effective_weight();
    const torch::Tensor b = layer.effective_bias();
    auto& wq = layer.weight_quantizer();
    const qat::QParamTensors qp = weight_qparams(wq, w);
    const int64_t out = w.size(0);
    const torch::Tensor w2 = w.reshape({out, -1});
    const IndexedColumnQuantizer quantize_column = column_quantizer(wq.options().spec, qp);
    const torch::Tensor rtn = qat::fake_quantize_forward(w.contiguous(), qp.scale, qp.zero_point.to(torch::kFloat32),
                                                         wq.options().spec).reshape({out, -1});

    LayerReport lr;
    lr.name = layer.name();
    torch::Tensor q = rtn;
    lr.method = "rtn";
    const bool hessian_ok = layer.groups() == 1;
    if (hessian_ok && (gptq || options.measure_errors)) {
      HessianAccumulator acc(w2.size(1));
      for (const auto& x : inputs) acc.add(layer.input_rows(x));
      const torch::Tensor h = acc.hessian();
      if (gptq) {
        q = gptq_quantize(w2, h, quantize_column, options.gptq);
        lr.method = "gptq";
      }
      const double ref = reconstruction_error(w2, torch::zeros_like(w2), h);
      lr.relative_error = relative(reconstruction_error(w2, q, h), ref);
      lr.rtn_relative_error = relative(reconstruction_error(w2, rtn, h), ref);
    } else if (gptq && !hessian_ok) {
      lr.method = "rtn (grouped conv)";
    }
    layer.set_effective_weight(q.reshape(w.sizes()));
    install_qparams(wq, qp);

    if (options.bn_reestimate && layer.has_batch_norm()) reestimate_batch_norm(layer, inputs);
    if (options.bias_correction) {
      const std::vector<torch::Tensor> fp_inputs = node_inputs(fp_nodes, nullptr, normalised, layer.node_index());
      const torch::Tensor wd = layer.deployed_weight();
      const torch::Tensor bd = layer.effective_bias();
      std::vector<torch::Tensor> diffs;
      for (size_t i = 0; i < inputs.size(); ++i) {
        const torch::Tensor d = layer.pre_activation(fp_inputs[i], w, b) - layer.pre_activation(inputs[i], wd, bd);
        diffs.push_back(layer.is_conv() ? d : d.reshape({-1, d.size(-1)}));  // tokens [N, T, out]: rows
      }
      layer.shift_bias(channel_moments(diffs).first);
    }
    report.layers.push_back(lr);
  }
  net->eval();
  return report;
}

}  // namespace lowbit::ptq
