#include "convert/drift.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "base/error.h"
#include "convert/integer_simulation.h"

namespace lowbit::convert {
namespace {

// Every value of the fake-quantized forward (0 = the quantized input, i + 1 = node i's output).
std::vector<torch::Tensor> fake_quant_values(models::Net& net, const torch::Tensor& images) {
  std::vector<torch::Tensor> values;
  const auto& input_layer = net->input_layer();
  const torch::Tensor input = net->normalise_input(images);  // the run's --mean / --std, as forward applies them
  values.push_back(input_layer ? input_layer->forward({input}) : input);
  std::vector<torch::Tensor> args;
  for (const models::Node& node : net->nodes()) {
    args.clear();
    for (int v : node.inputs) args.push_back(values.at(static_cast<size_t>(v)));
    values.push_back(node.layer->forward(args));
  }
  return values;
}

// A fake-quantized value (float on the grid of q) as the integer codes it stands for. Values a
// downstream layer quantizes (before a max pool) are quantized here the same way.
torch::Tensor codes_of(const torch::Tensor& value, const runtime::ActQParams& q) {
  return torch::clamp(torch::round(value.to(torch::kFloat64) / static_cast<double>(q.scale)) + q.zero_point, q.qmin, q.qmax)
      .to(torch::kInt64);
}

void accumulate(ValueDrift& d, const torch::Tensor& fake_codes, const torch::Tensor& int_codes) {
  const torch::Tensor a = fake_codes.reshape({fake_codes.size(0), -1});
  const torch::Tensor b = int_codes.reshape({int_codes.size(0), -1});
  LOWBIT_CHECK(a.sizes() == b.sizes(), "drift: value '" + d.name + "' has " + std::to_string(a.numel()) +
                                           " elements in fake quantization and " + std::to_string(b.numel()) +
                                           " in the integer model");
  const torch::Tensor diff = (a - b).abs();
  d.elements += diff.numel();
  d.differing += diff.gt(0).sum().item<int64_t>();
  d.sum_steps += diff.sum().item<double>();
  d.max_steps = std::max(d.max_steps, diff.max().item<int64_t>());
}

}  // namespace

DriftReport measure_drift(models::Net& net, const runtime::Model& model, const data::Dataset& data, int64_t chunk) {
  LOWBIT_CHECK(chunk > 0, "drift: chunk must be positive");
  LOWBIT_CHECK(model.ops.size() == net->nodes().size(),
               "drift: the integer model has " + std::to_string(model.ops.size()) + " ops and the network " +
                   std::to_string(net->nodes().size()) + " nodes; pass the conversion of this network");
  torch::NoGradGuard no_grad;
  const bool was_training = net->is_training();
  net->eval();
  DriftReport r;
  r.count = data.size();
  r.values.push_back({"input", "input"});
  for (size_t i = 0; i + 1 < model.ops.size(); ++i)
    r.values.push_back({net->nodes()[i].name, runtime::op_kind_name(model.ops[i].kind)});
  r.output_name = net->nodes().back().name;
  LOWBIT_CHECK(model.ops.back().output_layer, "drift: the model's last op is not its output layer");
  double logit_min = 0.0, logit_max = 0.0;
  bool first = true;
  for (int64_t start = 0; start < r.count; start += chunk) {
    const int64_t b = std::min(chunk, r.count - start);
    const torch::Tensor images = data.images.narrow(0, start, b).to(torch::kFloat32);
    const std::vector<torch::Tensor> fake = fake_quant_values(net, images);
    std::vector<torch::Tensor> integer;
    const IntegerOutputs sim = simulate_integer(model, images, &integer);
    accumulate(r.values[0], codes_of(fake[0], model.input), integer[0]);
    for (size_t i = 0; i + 1 < model.ops.size(); ++i)
      accumulate(r.values[i + 1], codes_of(fake[i + 1], model.ops[i].out), integer[i + 1]);
    const torch::Tensor logits = fake.back().reshape({b, -1}).to(torch::kFloat32);
    r.max_logit_difference = std::max(r.max_logit_difference, (logits - sim.logits).abs().max().item<double>());
    const double lo = logits.min().item<double>(), hi = logits.max().item<double>();
    logit_min = first ? lo : std::min(logit_min, lo);
    logit_max = first ? hi : std::max(logit_max, hi);
    first = false;
    const torch::Tensor fake_pred = logits.argmax(1);
    r.predictions_equal += fake_pred.eq(sim.predictions).sum().item<int64_t>();
    if (data.labels.defined()) {
      const torch::Tensor labels = data.labels.narrow(0, start, b).to(torch::kInt64);
      r.fake_quant_correct += fake_pred.eq(labels).sum().item<int64_t>();
      r.integer_correct += sim.predictions.eq(labels).sum().item<int64_t>();
    }
  }
  r.logit_range = logit_max - logit_min;
  if (was_training) net->train();
  return r;
}

std::string DriftReport::table() const {
  std::ostringstream s;
  s << "value                                     op              codes differing   mean |d|   max |d| (steps)\n";
  for (const ValueDrift& v : values) {
    s << std::left << std::setw(42) << v.name << std::setw(16) << v.kind << std::right << std::fixed << std::setprecision(3)
      << std::setw(14) << 100.0 * v.differing_share() << "%" << std::setw(11) << std::setprecision(4) << v.mean_steps()
      << std::setw(10) << v.max_steps << "\n";
  }
  const double n = static_cast<double>(std::max<int64_t>(count, 1));
  s << std::left << std::setw(42) << output_name << std::setw(16) << "output" << std::right << std::setprecision(4)
    << "max |logit difference| " << max_logit_difference << " (fake-quant logits span " << logit_range << ")\n"
    << "images: " << count << "; same prediction " << predictions_equal << "/" << count << std::setprecision(2)
    << "; accuracy fake quantization " << 100.0 * fake_quant_correct / n << "%, integer model " << 100.0 * integer_correct / n
    << "%\n";
  return s.str();
}

nlohmann::json DriftReport::to_json() const {
  nlohmann::json j;
  j["images"] = count;
  j["values"] = nlohmann::json::array();
  for (const ValueDrift& v : values)
    j["values"].push_back({{"name", v.name},
                           {"op", v.kind},
                           {"elements", v.elements},
                           {"differing", v.differing},
                           {"differing_share", v.differing_share()},
                           {"mean_steps", v.mean_steps()},
                           {"max_steps", v.max_steps}});
  j["output"] = {{"name", output_name}, {"max_logit_difference", max_logit_difference}, {"logit_range", logit_range}};
  j["predictions_equal"] = predictions_equal;
  j["fake_quant_accuracy"] = count ? static_cast<double>(fake_quant_correct) / static_cast<double>(count) : 0.0;
  j["integer_accuracy"] = count ? static_cast<double>(integer_correct) / static_cast<double>(count) : 0.0;
  return j;
}

}  // namespace lowbit::convert
