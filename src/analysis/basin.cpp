#include "analysis/basin.h"
#include "data/load_dataset.h"
#include "data/run_data_layout.h"

#include <cmath>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "base/error.h"
#include "data/fashion_mnist.h"
#include "ptq/ptq_run.h"
#include "ptq/weight_layers.h"
#include "qat/qat_run.h"
#include "train/checkpoint.h"
#include "train/compute_threads.h"
#include "train/trainer.h"

namespace lowbit::analysis {
namespace {

data::Dataset head(const data::Dataset& d, int64_t n) {
  n = std::min(n, d.size());
  return {d.images.narrow(0, 0, n), d.labels.narrow(0, 0, n)};
}

// Effective (folded) weights and biases of every weight layer.
struct Point {
  std::vector<torch::Tensor> weights, biases;
};

Point effective_point(models::Net& net) {
  Point p;
  for (auto& l : ptq::weight_layers(net)) {
    p.weights.push_back(l.effective_weight());
    p.biases.push_back(l.effective_bias());
  }
  return p;
}

void set_point(models::Net& net, const Point& p) {
  auto layers = ptq::weight_layers(net);
  for (size_t i = 0; i < layers.size(); ++i) {
    layers[i].set_effective_weight(p.weights[i]);
    layers[i].shift_bias(p.biases[i] - layers[i].effective_bias());
  }
}

Point lerp(const Point& a, const Point& b, double t) {
  Point p;
  for (size_t i = 0; i < a.weights.size(); ++i) {
    p.weights.push_back(a.weights[i] + t * (b.weights[i] - a.weights[i]));
    p.biases.push_back(a.biases[i] + t * (b.biases[i] - a.biases[i]));
  }
  return p;
}

void set_weight_quantizers(models::Net& net, bool on) {
  for (auto& l : ptq::weight_layers(net)) l.weight_quantizer().set_enabled(on);
}

torch::Tensor flat(const std::vector<torch::Tensor>& ts) {
  std::vector<torch::Tensor> f;
  for (const auto& t : ts) f.push_back(t.reshape({-1}).to(torch::kFloat64));
  return torch::cat(f);
}

std::vector<torch::Tensor> deployed_weights(models::Net& net) {
  std::vector<torch::Tensor> out;
  for (auto& l : ptq::weight_layers(net)) out.push_back(l.deployed_weight());
  return out;
}

double cosine(const torch::Tensor& a, const torch::Tensor& b) {
  const double na = a.norm().item<double>(), nb = b.norm().item<double>();
  return na > 0 && nb > 0 ? (a * b).sum().item<double>() / (na * nb) : 0.0;
}

}  // namespace

BasinResult analyze_basin(const BasinOptions& o) {
  LOWBIT_CHECK(!o.from.empty(), "analyze basin: --from names the FP32 checkpoint");
  LOWBIT_CHECK(o.points >= 2, "analyze basin: --points must be >= 2 (got " + std::to_string(o.points) + ")");
  LOWBIT_CHECK(o.epsilon >= 0, "analyze basin: --epsilon must be >= 0");
  LOWBIT_CHECK(o.eval_every >= 1, "analyze basin: --eval-every must be >= 1");
  lowbit::train::set_compute_threads(static_cast<int>(o.threads));
  qat::register_checkpoint_hook();
  const train::CheckpointInfo info = train::load_checkpoint(o.from);
  LOWBIT_CHECK(!info.config.contains("qat"), "analyze basin: '" + info.path + "' is a quantized checkpoint; give an FP32 one");

  const std::string dir = data::resolve_data_dir(o.data_dir);
  const auto split =
      data::split_train_validation(data::load_dataset(dir, "train", data::run_data_layout(o.layout, info.config)), 5000);
  const data::Dataset train_set = o.quick ? head(split.train, 512) : split.train;
  const data::Dataset eval_set = head(split.validation, o.quick ? std::min<int64_t>(o.eval_images, 256) : o.eval_images);
  const int64_t calib_batches = o.quick ? 2 : o.calib_batches;
  const int64_t calib_size = o.quick ? 64 : 128;

  BasinResult r;
  r.options = {{"from", info.path},         {"weight_bits", o.weight_bits}, {"act_bits", o.act_bits},
               {"points", o.points},        {"qat_steps", o.qat_steps},     {"qat_lr", o.qat_lr},
               {"epsilon", o.epsilon},      {"eval_images", eval_set.size()}, {"calib_batches", calib_batches},
               {"eval_every", o.eval_every}, {"methods", o.methods}};
  {
    models::Net fp = train::load_net(info.path);
    const auto e = train::evaluate(fp, eval_set);
    r.fp32_loss = e.loss;
    r.fp32_accuracy = e.accuracy;
  }
  const qat::QatConfig config = ptq::ptq_config(o.weight_bits, o.act_bits, calib_batches);

  for (const std::string& method : o.methods) {
    ptq::PtqOptions p;
    p.method = ptq::method_from_string(method);
    // The FP32 point in the same (prepared, activation-calibrated) net: quantize, then read
    // both the FP32 effective weights (from a fresh preparation) and the PTQ point.
    models::Net fp_prepared = train::load_net(info.path);
    qat::prepare(fp_prepared, config);
    const Point fp = effective_point(fp_prepared);
    models::Net net = ptq::quantize_checkpoint(info.path, config, train_set, calib_batches, calib_size, p);
    const Point q = effective_point(net);

    MethodBasin mb;
    mb.method = method;
    auto layers = ptq::weight_layers(net);
    for (size_t i = 0; i < layers.size(); ++i) {
      const torch::Tensor s = layers[i].weight_quantizer().qparams().scale;
      std::vector<int64_t> shape(static_cast<size_t>(fp.weights[i].dim()), 1);
      shape[0] = -1;
      const torch::Tensor steps = (fp.weights[i] - q.weights[i]).abs() / (s.numel() == 1 ? s : s.view(shape));
      mb.layers.push_back({layers[i].name(), steps.mean().item<double>(), (steps > 0.5 + 1e-4).to(torch::kFloat64).mean().item<double>()});
    }
    set_weight_quantizers(net, false);  // evaluate exactly the interpolated weights
    for (int k = 0; k < o.points; ++k) {
      const double alpha = static_cast<double>(k) / (o.points - 1);
      set_point(net, lerp(fp, q, alpha));
      const auto e = train::evaluate(net, eval_set);
      mb.segment.push_back({alpha, e.loss, e.accuracy});
    }
    if (o.log) *o.log << "basin: " << method << " W" << o.weight_bits << " segment done\n";
    r.methods.push_back(mb);
  }

  if (o.qat_steps > 0) {
    qat::QatFlags f;
    f.wbits = o.weight_bits;
    f.abits = o.act_bits;
    f.quantizer = "ste";
    const qat::QatConfig qc = qat::config_from_flags(f);
    train::TrainConfig c = train::config_from_json(info.config);
    c.epochs = 1;
    c.max_steps_per_epoch = o.qat_steps;
    c.lr = o.qat_lr;
    c.weight_decay = 0.0;
    c.warmup_steps = 0;
    c.warmup_fraction = 0.0;
    c.threads = o.threads;
    if (o.quick) c.batch_size = 64;
    c.extra["qat"] = qc.to_json();
    models::Net net = train::load_net(info.path);
    net->train();
    qat::prepare(net, qc);
    {
      // One calibrating training-mode forward, so that the deployed point before any update
      // exists (weight and activation scales set), without an optimizer step.
      torch::NoGradGuard no_grad;
      net->forward(train_set.images.narrow(0, 0, std::min<int64_t>(c.batch_size, train_set.size())));
    }
    const torch::Tensor fp_flat = flat(effective_point(net).weights);
    torch::Tensor prev_latent = fp_flat;
    torch::Tensor prev_deployed = flat(deployed_weights(net));
    r.qat.push_back({0, train::evaluate(net, eval_set).loss, 0.0});
    train::TrainHooks hooks;
    hooks.after_step = [&](models::Net& n, int64_t step) {
      const torch::Tensor latent = flat(effective_point(n).weights);
      const double cos = cosine(latent - prev_latent, fp_flat - prev_deployed);
      prev_latent = latent;
      prev_deployed = flat(deployed_weights(n));
      QatStep s{step, std::nan(""), cos};
      if (step % o.eval_every == 0 || step == o.qat_steps) s.deployed_loss = train::evaluate(n, eval_set).loss;
      r.qat.push_back(s);
    };
    train::Trainer trainer(net, c, hooks);
    trainer.set_write_files(false);
    trainer.set_log(nullptr);
    trainer.fit(train_set, head(eval_set, 64));
    for (const auto& s : r.qat) {
      if (!std::isnan(s.deployed_loss) && s.deployed_loss <= (1.0 + o.epsilon) * r.fp32_loss) {
        r.first_step_within = s.step;
        break;
      }
    }
  }
  return r;
}

nlohmann::json BasinResult::to_json() const {
  nlohmann::json j;
  j["analysis"] = "basin";
  j["options"] = options;
  j["fp32_loss"] = fp32_loss;
  j["fp32_accuracy"] = fp32_accuracy;
  j["methods"] = nlohmann::json::array();
  for (const auto& m : methods) {
    nlohmann::json seg = nlohmann::json::array(), lay = nlohmann::json::array();
    for (const auto& p : m.segment) seg.push_back({{"alpha", p.alpha}, {"loss", p.loss}, {"accuracy", p.accuracy}});
    for (const auto& l : m.layers)
      lay.push_back({{"layer", l.layer}, {"mean_steps", l.mean_steps}, {"fraction_beyond_half", l.fraction_beyond_half}});
    j["methods"].push_back({{"method", m.method}, {"segment", seg}, {"layers", lay}});
  }
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : qat) {
    nlohmann::json e = {{"step", s.step}, {"inward_cosine", s.inward_cosine}};
    e["deployed_loss"] = std::isnan(s.deployed_loss) ? nlohmann::json(nullptr) : nlohmann::json(s.deployed_loss);
    steps.push_back(e);
  }
  j["qat"] = {{"steps", steps},
              {"first_step_within", first_step_within < 0 ? nlohmann::json(nullptr) : nlohmann::json(first_step_within)}};
  return j;
}

std::string BasinResult::summary() const {
  std::ostringstream s;
  s << std::fixed << std::setprecision(4);
  s << "FP32 loss " << fp32_loss << " (accuracy " << std::setprecision(2) << 100.0 * fp32_accuracy << "%)\n";
  for (const auto& m : methods) {
    s << m.method << ": loss along FP32 -> quantized (alpha 0..1):";
    s << std::setprecision(4);
    for (const auto& p : m.segment) s << " " << p.loss;
    s << "\n";
    for (const auto& l : m.layers) {
      s << "  " << std::left << std::setw(12) << l.layer << std::right << " mean |w - q| / s " << std::setprecision(3)
        << l.mean_steps << ", moved > s/2: " << std::setprecision(1) << 100.0 * l.fraction_beyond_half << "%\n";
    }
  }
  if (!qat.empty()) {
    s << "STE-QAT deployed loss:";
    s << std::setprecision(4);
    for (const auto& q : qat)
      if (!std::isnan(q.deployed_loss)) s << " " << q.step << ":" << q.deployed_loss;
    s << "\n";
    double mean_cos = 0;
    int n = 0;
    for (const auto& q : qat)
      if (q.step > 0) mean_cos += q.inward_cosine, ++n;
    s << "mean inward cosine over " << n << " steps: " << std::setprecision(3) << (n ? mean_cos / n : 0.0) << "\n";
    s << "first step within (1 + epsilon) of FP32 loss: "
      << (first_step_within < 0 ? std::string("not reached") : std::to_string(first_step_within)) << "\n";
  }
  return s.str();
}

}  // namespace lowbit::analysis
