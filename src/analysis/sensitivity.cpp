#include "analysis/sensitivity.h"
#include "data/load_dataset.h"
#include "data/run_data_layout.h"

#include "models/imported_net.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "analysis/hessian.h"
#include "analysis/hessian_analysis.h"
#include "base/atomic_file.h"
#include "base/error.h"
#include "data/fashion_mnist.h"
#include "models/net.h"
#include "ptq/ptq_run.h"
#include "ptq/weight_layers.h"
#include "qat/quantized_layers.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace lowbit::analysis {

std::string WeightWidth::label() const { return format == "int" ? std::to_string(bits) : format; }

double WeightWidth::nominal_bits() const {
  if (format == "ternary") return std::log2(3.0);
  return static_cast<double>(bits);
}

int WeightWidth::container_bits() const {
  // What conversion stores (convert/to_runtime.cpp): 1, 2, 4 or 8 bits per code.
  return bits <= 1 ? 1 : bits <= 2 ? 2 : bits <= 4 ? 4 : 8;
}

WeightWidth parse_weight_width(const std::string& text) {
  if (text == "ternary") return {"ternary", 2};
  if (text == "binary") return {"binary", 1};
  int bits = 0;
  try {
    size_t used = 0;
    bits = std::stoi(text, &used);
    if (used != text.size()) bits = 0;
  } catch (const std::exception&) {
    bits = 0;
  }
  LOWBIT_CHECK(bits >= 2 && bits <= 8, "weight width '" + text + "' is not one of 8, 7, ..., 2, ternary, binary");
  return {"int", bits};
}

namespace {

using Clock = std::chrono::steady_clock;

// Only node `name` quantized: weights at `w`, its output activations at `act_bits`.
qat::QatConfig single_layer_config(const std::string& name, const WeightWidth& w, int act_bits,
                                   int64_t calib_batches) {
  qat::QatConfig config = ptq::ptq_config(8, 8, calib_batches);
  config.defaults.quantize = false;
  qat::LayerOverride o;
  o.pattern = name;
  o.settings = {{"quantize", true}, {"weight_format", w.format}, {"weight_bits", w.bits}, {"act_bits", act_bits}};
  config.overrides.push_back(o);
  return config;
}

const ptq::WeightLayer& find_layer(const std::vector<ptq::WeightLayer>& layers, const std::string& name) {
  for (const auto& l : layers)
    if (l.name() == name) return l;
  throw Error("sensitivity: node '" + name + "' is not a quantized weight layer after prepare");
}

// ||Q(W) - W||^2 in the layer's own parameters: the folded weight's error divided by the fold
// factor for Conv+BN (whose Hessian is taken w.r.t. the conv weight).
double weight_error(const ptq::WeightLayer& fp, const ptq::WeightLayer& q) {
  torch::NoGradGuard no_grad;
  torch::Tensor diff = q.deployed_weight() - fp.effective_weight();
  if (fp.has_batch_norm()) {
    std::vector<int64_t> shape(static_cast<size_t>(diff.dim()), 1);
    shape[0] = diff.size(0);
    diff = diff / fp.fold_factor().reshape(shape);
  }
  return diff.to(torch::kFloat64).pow(2).sum().item<double>();
}

data::Dataset head(const data::Dataset& d, int64_t n) {
  if (n <= 0 || n >= d.size()) return d;
  return {d.images.narrow(0, 0, n), d.labels.narrow(0, 0, n)};
}

}  // namespace

SensitivityReport analyze_sensitivity(const SensitivityOptions& o) {
  const auto t0 = Clock::now();
  LOWBIT_CHECK(!o.weight_widths.empty() || !o.act_bits.empty(), "sensitivity: give at least one width (--bits or --abits)");
  std::vector<WeightWidth> widths;
  for (const auto& t : o.weight_widths) widths.push_back(parse_weight_width(t));
  for (int a : o.act_bits) LOWBIT_CHECK(a >= 2 && a <= 8, "activation width " + std::to_string(a) + " is not in 2..8");
  LOWBIT_CHECK(o.calib_batches >= 1 && o.calib_batch_size >= 1, "sensitivity: calibration needs >= 1 batch of >= 1 image");

  const train::CheckpointInfo info = train::load_checkpoint(o.checkpoint);
  LOWBIT_CHECK(!info.config.contains("qat"), "'" + info.path + "' is a quantized checkpoint; sensitivity starts from an FP32 one "
                                             "(the run that QAT would start from)");
  LOWBIT_CHECK(models::is_image_classifier(info.model_name),
               "sensitivity: model '" + info.model_name + "' of '" + info.path +
                   "' is not one of the convertible image models (mlp, cnn, resnet8, mobilenet-tiny, or one imported from ONNX)");

  const auto split = data::split_train_validation(data::load_dataset(data::resolve_data_dir(o.data_dir), "train",
                                                                      data::run_data_layout(o.layout, info.config)),
                                                   5000);
  const data::Dataset eval_set = head(split.validation, o.eval_images);

  SensitivityReport r;
  r.checkpoint = info.path;
  r.model = info.model_name;
  r.method = ptq::to_string(o.ptq.method);
  r.eval_images = eval_set.size();
  r.calib_images = o.calib_batches * o.calib_batch_size;

  models::Net fp = train::load_net(info.path);
  {
    const train::EvalResult e = train::evaluate(fp, eval_set);
    r.fp_loss = e.loss;
    r.fp_accuracy = e.accuracy;
  }
  if (o.log) *o.log << "sensitivity: " << r.model << " FP32 validation loss " << r.fp_loss << ", accuracy " << r.fp_accuracy << "\n";

  // The weight layers, their sizes and MACs per image (from the value shapes of one image).
  const std::vector<models::Node> nodes = fp->nodes();
  std::vector<torch::Tensor> values;
  {
    torch::NoGradGuard no_grad;
    fp->eval();
    values = ptq::forward_values(nodes, nullptr, split.validation.images.narrow(0, 0, 1), nodes.size());
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::string kind = nodes[i].layer->kind();
    if (kind != "conv" && kind != "linear") continue;
    if (!qat::glob_match(o.layers, nodes[i].name)) continue;
    LayerSensitivity l;
    l.name = nodes[i].name;
    l.kind = kind;
    l.last = i + 1 == nodes.size();
    const torch::Tensor w = hessian_parameters(fp, l.name).front().second;
    l.weights = w.numel();
    l.out_channels = w.size(0);
    l.macs = values[i + 1].numel() * (w.numel() / w.size(0));
    r.layers.push_back(l);
  }
  LOWBIT_CHECK(!r.layers.empty(), "sensitivity: --layers '" + o.layers + "' selects no conv or linear node of " + r.model);

  // Hutchinson traces, per layer, on the first training batches (as `lowbit analyze hessian`).
  if (o.hessian_probes > 0) {
    std::vector<torch::Tensor> images, labels;
    hessian_batches(split.train, o.hessian_batches, o.hessian_batch_size, images, labels);
    fp->eval();
    BatchLoss loss = [&](int64_t b) {
      return torch::nn::functional::cross_entropy(fp->forward(images[static_cast<size_t>(b)]),
                                                  labels[static_cast<size_t>(b)]);
    };
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
    for (auto& l : r.layers) {
      std::vector<torch::Tensor> params;
      for (auto& [n, p] : hessian_parameters(fp, l.name)) params.push_back(p);
      HessianVectorProduct hvp(loss, params, static_cast<int64_t>(images.size()));
      const TraceEstimate t = hutchinson_trace(hvp.as_operator(), hvp.dim(), o.hessian_probes, gen);
      l.hessian_trace = t.trace;
      l.hessian_trace_std = t.std_error;
      l.has_trace = true;
      if (o.log) *o.log << "sensitivity: " << l.name << " Hessian trace " << t.trace << " +- " << t.std_error << "\n";
    }
  }

  ptq::PtqOptions ptq_options = o.ptq;
  ptq_options.measure_errors = false;  // only the loss is used here
  auto measure = [&](const LayerSensitivity& l, const WeightWidth& w, int act_bits, bool with_error) {
    const qat::QatConfig config = single_layer_config(l.name, w, act_bits, o.calib_batches);
    models::Net q = ptq::quantize_checkpoint(info.path, config, split.train, o.calib_batches, o.calib_batch_size, ptq_options);
    const train::EvalResult e = train::evaluate(q, eval_set);
    WidthSensitivity s;
    s.format = w.format;
    s.bits = w.bits;
    s.loss = e.loss;
    s.accuracy = e.accuracy;
    s.delta_loss = e.loss - r.fp_loss;
    if (with_error) {
      models::Net ref = train::load_net(info.path);
      qat::prepare(ref, config);
      ref->eval();
      s.weight_error = weight_error(find_layer(ptq::weight_layers(ref), l.name), find_layer(ptq::weight_layers(q), l.name));
      if (l.has_trace && l.weights > 0) s.hawq = l.hessian_trace / static_cast<double>(l.weights) * s.weight_error;
    }
    return s;
  };
  for (auto& l : r.layers) {
    for (const auto& w : widths) {
      l.weights_at.push_back(measure(l, w, 8, true));
      if (o.log)
        *o.log << "sensitivity: " << l.name << " w" << w.label() << ": loss +" << l.weights_at.back().delta_loss << "\n";
    }
    if (l.last) continue;  // the output layer has no output activation quantizer
    for (int a : o.act_bits) {
      WidthSensitivity s = measure(l, {"int", 8}, a, false);
      s.format = "int";
      s.bits = a;
      l.activations_at.push_back(s);
      if (o.log) *o.log << "sensitivity: " << l.name << " a" << a << ": loss +" << s.delta_loss << "\n";
    }
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

namespace {
nlohmann::json entry_json(const WidthSensitivity& s, bool weights) {
  nlohmann::json j = {{"bits", s.bits}, {"loss", s.loss}, {"delta_loss", s.delta_loss}, {"accuracy", s.accuracy}};
  if (weights) {
    j["format"] = s.format;
    j["weight_error"] = s.weight_error;
    j["hawq"] = s.hawq;
  }
  return j;
}

WidthSensitivity entry_from(const nlohmann::json& j, const std::string& where) {
  WidthSensitivity s;
  try {
    s.bits = j.at("bits").get<int>();
    s.format = j.value("format", std::string("int"));
    s.loss = j.at("loss").get<double>();
    s.delta_loss = j.at("delta_loss").get<double>();
    s.accuracy = j.value("accuracy", 0.0);
    s.weight_error = j.value("weight_error", 0.0);
    s.hawq = j.value("hawq", 0.0);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": " + e.what() + " (expected keys bits, loss, delta_loss)");
  }
  return s;
}
}  // namespace

nlohmann::json SensitivityReport::to_json() const {
  nlohmann::json layers_j = nlohmann::json::array();
  for (const auto& l : layers) {
    nlohmann::json w = nlohmann::json::array(), a = nlohmann::json::array();
    for (const auto& s : l.weights_at) w.push_back(entry_json(s, true));
    for (const auto& s : l.activations_at) a.push_back(entry_json(s, false));
    layers_j.push_back({{"name", l.name},
                        {"kind", l.kind},
                        {"params", l.weights},
                        {"out_channels", l.out_channels},
                        {"macs", l.macs},
                        {"last", l.last},
                        {"hessian_trace", l.has_trace ? nlohmann::json(l.hessian_trace) : nlohmann::json(nullptr)},
                        {"hessian_trace_std", l.has_trace ? nlohmann::json(l.hessian_trace_std) : nlohmann::json(nullptr)},
                        {"weights", w},
                        {"activations", a}});
  }
  return {{"analysis", "sensitivity"}, {"checkpoint", checkpoint}, {"model", model},     {"method", method},
          {"fp_loss", fp_loss},         {"fp_accuracy", fp_accuracy}, {"eval_images", eval_images},
          {"calib_images", calib_images}, {"seconds", seconds},     {"layers", layers_j}};
}

SensitivityReport SensitivityReport::from_json(const nlohmann::json& j, const std::string& where) {
  LOWBIT_CHECK(j.is_object() && j.value("analysis", std::string()) == "sensitivity",
               where + " is not a sensitivity table (\"analysis\": \"sensitivity\"); make one with 'lowbit analyze sensitivity'");
  SensitivityReport r;
  try {
    r.checkpoint = j.value("checkpoint", std::string());
    r.model = j.at("model").get<std::string>();
    r.method = j.value("method", std::string("rtn"));
    r.fp_loss = j.at("fp_loss").get<double>();
    r.fp_accuracy = j.value("fp_accuracy", 0.0);
    r.eval_images = j.value("eval_images", int64_t{0});
    r.calib_images = j.value("calib_images", int64_t{0});
    r.seconds = j.value("seconds", 0.0);
    for (const auto& lj : j.at("layers")) {
      LayerSensitivity l;
      l.name = lj.at("name").get<std::string>();
      const std::string lw = where + ": layer '" + l.name + "'";
      l.kind = lj.value("kind", std::string("conv"));
      l.weights = lj.at("params").get<int64_t>();
      l.out_channels = lj.value("out_channels", int64_t{0});
      l.macs = lj.at("macs").get<int64_t>();
      l.last = lj.value("last", false);
      if (lj.contains("hessian_trace") && lj["hessian_trace"].is_number()) {
        l.has_trace = true;
        l.hessian_trace = lj["hessian_trace"].get<double>();
        l.hessian_trace_std = lj.value("hessian_trace_std", 0.0);
      }
      for (const auto& e : lj.at("weights")) l.weights_at.push_back(entry_from(e, lw + " weights"));
      if (lj.contains("activations"))
        for (const auto& e : lj["activations"]) l.activations_at.push_back(entry_from(e, lw + " activations"));
      r.layers.push_back(l);
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": " + e.what() + " (a sensitivity.json needs model, fp_loss and layers[] with name, params, "
                                          "macs, weights[])");
  }
  LOWBIT_CHECK(!r.layers.empty(), where + ": the sensitivity table has no layers");
  return r;
}

SensitivityReport SensitivityReport::from_file(const std::string& path) {
  std::ifstream in(path);
  LOWBIT_CHECK(in.good(), "cannot read '" + path + "': give the sensitivity.json that 'lowbit analyze sensitivity' wrote");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw Error("'" + path + "' is not valid JSON: " + e.what());
  }
  return from_json(j, "'" + path + "'");
}

std::string SensitivityReport::csv() const {
  std::ostringstream s;
  s << std::setprecision(9);
  s << "layer,kind,params,macs,hessian_trace,quantized,format,bits,loss,delta_loss,accuracy,weight_error,hawq\n";
  for (const auto& l : layers) {
    const std::string trace = l.has_trace ? [&] {
      std::ostringstream t;
      t << std::setprecision(9) << l.hessian_trace;
      return t.str();
    }() : "";
    for (const auto& e : l.weights_at)
      s << l.name << "," << l.kind << "," << l.weights << "," << l.macs << "," << trace << ",weights," << e.format << ","
        << e.bits << "," << e.loss << "," << e.delta_loss << "," << e.accuracy << "," << e.weight_error << "," << e.hawq
        << "\n";
    for (const auto& e : l.activations_at)
      s << l.name << "," << l.kind << "," << l.weights << "," << l.macs << "," << trace << ",activations,int," << e.bits
        << "," << e.loss << "," << e.delta_loss << "," << e.accuracy << ",,\n";
  }
  return s.str();
}

std::string SensitivityReport::table() const {
  std::ostringstream s;
  s << model << ": validation loss increase when only one layer is quantized (" << method << ", " << eval_images
    << " validation images; FP32 loss " << std::setprecision(4) << fp_loss << ", accuracy " << 100.0 * fp_accuracy
    << "%)\n";
  s << std::left << std::setw(16) << "layer" << std::right << std::setw(9) << "weights" << std::setw(11) << "MACs";
  if (!layers.empty()) {
    for (const auto& e : layers.front().weights_at) {
      const std::string h = "w" + (e.format == "int" ? std::to_string(e.bits) : e.format);
      s << std::setw(10) << h;
    }
    for (const auto& e : layers.front().activations_at) s << std::setw(10) << ("a" + std::to_string(e.bits));
  }
  s << std::setw(12) << "Hess.trace" << "\n";
  s << std::fixed;
  for (const auto& l : layers) {
    s << std::left << std::setw(16) << l.name << std::right << std::setw(9) << l.weights << std::setw(11) << l.macs;
    for (const auto& e : l.weights_at) s << std::setw(10) << std::setprecision(4) << e.delta_loss;
    for (const auto& e : l.activations_at) s << std::setw(10) << std::setprecision(4) << e.delta_loss;
    for (size_t k = l.activations_at.size(); k < layers.front().activations_at.size(); ++k) s << std::setw(10) << "-";
    if (l.has_trace)
      s << std::setw(12) << std::setprecision(3) << l.hessian_trace;
    else
      s << std::setw(12) << "-";
    s << "\n";
  }
  s << std::defaultfloat << std::setprecision(3) << "(" << seconds << " s)\n";
  return s.str();
}

void write_sensitivity_files(const SensitivityReport& r, const std::string& out_dir) {
  std::filesystem::create_directories(out_dir);
  write_file_atomically(out_dir + "/sensitivity.json", r.to_json().dump(2) + "\n");
  write_file_atomically(out_dir + "/sensitivity.csv", r.csv());
}

}  // namespace lowbit::analysis
