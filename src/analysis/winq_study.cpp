#include "analysis/winq_study.h"
#include "data/load_dataset.h"
#include "data/run_data_layout.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <map>
#include <ostream>
#include <sstream>

#include "analysis/hessian_analysis.h"
#include "report/svg_plot.h"
#include "base/atomic_file.h"
#include "base/error.h"
#include "data/fashion_mnist.h"
#include "qat/qat_config.h"
#include "qat/qat_run.h"
#include "qat/quantized_layers.h"
#include "qat/quantized_transformer.h"
#include "train/checkpoint.h"
#include "train/compute_threads.h"
#include "train/lm_trainer.h"
#include "train/trainer.h"

namespace lowbit::analysis {

using report::line_plot_svg;
using report::plot_color;
using report::PlotOptions;
using report::PlotSeries;
namespace {

data::Dataset head(const data::Dataset& d, int64_t n) {
  n = std::min(n, d.size());
  return {d.images.narrow(0, 0, n), d.labels.narrow(0, 0, n)};
}

std::string weight_format_for(const std::string& bits) {
  if (bits == "2") return "seq2";
  if (bits == "1.58") return "ternary";
  if (bits == "1") return "binary";
  throw Error("study winq: --bits takes 2 (SEQ 2-bit), 1.58 (ternary) and 1 (binary), got '" + bits + "'");
}

struct Variant {
  std::string name;
  qat::WinqConfig winq;
};

std::vector<Variant> variants_for(const WinqStudyOptions& o) {
  qat::WinqConfig off;
  off.enabled = false;
  qat::WinqConfig full = o.winq;
  full.enabled = true;
  std::vector<Variant> v = {{"baseline", off}, {"winq", full}};
  if (!o.ablation) return v;
  auto reset_only = full;
  reset_only.noise = 0.0;
  if (reset_only.period == 0) reset_only.period = -1;
  auto noise_only = full;
  noise_only.period = 0;
  if (noise_only.noise == 0.0) noise_only.noise = 1e-3;
  v.push_back({"reset", reset_only});
  v.push_back({"noise", noise_only});
  auto keep06 = reset_only;
  keep06.keep = 0.6;  // the paper's preferred alpha = 0.4
  v.push_back({"reset-keep0.6", keep06});
  auto often = reset_only;
  often.period = std::max<int64_t>(1, o.steps / 8);
  v.push_back({"reset-period" + std::to_string(often.period), often});
  auto loud = noise_only;
  loud.noise = 4e-3;
  v.push_back({"noise-4e-3", loud});
  auto both06 = full;
  both06.keep = 0.6;
  v.push_back({"winq-keep0.6", both06});
  return v;
}

std::vector<double> ema(const std::vector<double>& x, int64_t window) {
  const double a = 2.0 / (static_cast<double>(window) + 1.0);
  std::vector<double> out(x.size());
  double m = 0.0, w = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    m = (1 - a) * m + a * x[i];
    w = (1 - a) * w + a;  // debiasing: divide by the weight the EMA has accumulated
    out[i] = m / w;
  }
  return out;
}

std::optional<double> speedup_of(const std::vector<double>& base, const std::vector<double>& other) {
  if (base.empty() || other.empty()) return std::nullopt;
  const double target = base.back();
  for (size_t i = 0; i < other.size(); ++i) {
    if (other[i] <= target) return static_cast<double>(base.size()) / static_cast<double>(i + 1);
  }
  return std::nullopt;
}

}  // namespace

std::vector<double> WinqStudyResult::smoothed(const WinqRun& run) const { return ema(run.losses, smoothing_window); }

std::optional<double> WinqStudyResult::speedup(const std::string& bits, const std::string& variant, int64_t seed) const {
  const WinqRun *base = nullptr, *other = nullptr;
  for (const auto& r : runs) {
    if (r.bits != bits || r.seed != seed) continue;
    if (r.variant == "baseline") base = &r;
    if (r.variant == variant) other = &r;
  }
  if (!base || !other) return std::nullopt;
  return speedup_of(smoothed(*base), smoothed(*other));
}

namespace {
std::vector<double> mean_curve(const WinqStudyResult& r, const std::string& bits, const std::string& variant) {
  std::vector<double> sum;
  int n = 0;
  for (const auto& run : r.runs) {
    if (run.bits != bits || run.variant != variant) continue;
    const auto s = r.smoothed(run);
    if (sum.empty()) sum.assign(s.size(), 0.0);
    for (size_t i = 0; i < std::min(sum.size(), s.size()); ++i) sum[i] += s[i];
    ++n;
  }
  for (double& v : sum) v /= std::max(1, n);
  return sum;
}
}  // namespace

std::optional<double> WinqStudyResult::mean_speedup(const std::string& bits, const std::string& variant) const {
  return speedup_of(mean_curve(*this, bits, "baseline"), mean_curve(*this, bits, variant));
}

WinqStudyResult run_winq_study(const WinqStudyOptions& in) {
  WinqStudyOptions o = in;
  LOWBIT_CHECK(!o.from.empty(), "study winq: --from names the FP32 checkpoint to start from (e.g. runs/cnn-fp32)");
  LOWBIT_CHECK(o.seeds >= 1, "study winq: --seeds must be >= 1");
  LOWBIT_CHECK(o.steps >= 2, "study winq: --steps must be >= 2");
  LOWBIT_CHECK(!o.bits.empty(), "study winq: --bits is empty");
  for (const auto& b : o.bits) weight_format_for(b);
  o.winq.validate();
  if (o.quick) {
    o.steps = std::min<int64_t>(o.steps, 60);
    o.val_images = std::min<int64_t>(o.val_images, 500);
    o.hessian_batches = 1;
    o.hessian_batch_size = std::min<int64_t>(o.hessian_batch_size, 32);
    o.hessian_probes = std::min<int64_t>(o.hessian_probes, 2);
    o.hessian_lanczos_steps = std::min<int64_t>(o.hessian_lanczos_steps, 10);
  }
  lowbit::train::set_compute_threads(static_cast<int>(o.threads));
  qat::register_checkpoint_hook();
  const train::CheckpointInfo info = train::load_checkpoint(o.from);
  LOWBIT_CHECK(!info.config.contains("qat"), "study winq: '" + info.path + "' is a QAT checkpoint; give an FP32 one");
  LOWBIT_CHECK(info.model_name == o.model,
               "study winq: '" + info.path + "' holds model '" + info.model_name + "', not --model '" + o.model + "'");
  const bool language_model = o.model == "gpt-tiny";
  const train::TrainConfig fp32_config = train::config_from_json(info.config);
  if (o.batch_size <= 0) o.batch_size = language_model ? fp32_config.batch_size : 128;
  if (o.quick) o.batch_size = std::min<int64_t>(o.batch_size, language_model ? 16 : 64);

  // The data: images (train split minus the 5000 validation images) or the FP32 run's text corpus
  // (random training windows, the first val_images validation windows).
  data::Dataset train_images, validation, no_validation;
  train::LmSettings lm;
  std::optional<data::TextCorpus> corpus;
  torch::Tensor val_windows;
  std::vector<torch::Tensor> h_images, h_labels;
  if (language_model) {
    lm = train::LmSettings::from_json(info.config.value("lm", nlohmann::json::object()));
    lm.steps = o.steps;
    lm.eval_interval = o.steps;  // one validation pass, at the end
    lm.eval_windows = o.val_images;
    corpus = data::load_text_corpus(lm.text, lm.model.context, lm.val_fraction);
    val_windows = train::lm_validation_windows(*corpus, lm);
    lm_hessian_batches(corpus->train, lm.model.context, o.hessian_batches, o.hessian_batch_size, h_images, h_labels);
  } else {
    const std::string dir = data::resolve_data_dir(o.data_dir);
    const auto split = data::split_train_validation(
        data::load_dataset(dir, "train", data::run_data_layout(o.layout, info.config)), 5000);
    train_images = split.train;
    validation = head(split.validation, o.val_images);
    no_validation = head(split.validation, 0);
    hessian_batches(split.train, o.hessian_batches, o.hessian_batch_size, h_images, h_labels);
  }

  WinqStudyResult r;
  r.options = o;
  r.fp32_checkpoint = info.path;
  r.smoothing_window = o.smoothing_window > 0 ? o.smoothing_window : std::max<int64_t>(5, o.steps / 20);
  const std::vector<Variant> variants = variants_for(o);
  for (const auto& v : variants) r.variants.push_back(v.name);

  int64_t epochs = 1;
  if (!language_model) {
    const int64_t spe_full = (train_images.size() + o.batch_size - 1) / o.batch_size;
    epochs = (o.steps + spe_full - 1) / spe_full;
    LOWBIT_CHECK(o.steps % epochs == 0, "study winq: --steps " + std::to_string(o.steps) + " spans " +
                                            std::to_string(epochs) + " epochs; use a multiple of " + std::to_string(epochs));
  }

  HessianOptions ho;
  ho.batches = o.hessian_batches;
  ho.batch_size = o.hessian_batch_size;
  ho.probes = o.hessian_probes;
  ho.lanczos_steps = o.hessian_lanczos_steps;
  ho.power_iterations = o.quick ? 5 : 30;
  ho.threshold = o.hessian_threshold;
  auto hessian_point = [&](models::Net& net, const std::string& bits, const std::string& where) {
    const HessianReport h = analyze_hessian(net, h_images, h_labels, ho);
    r.hessian.push_back({bits, where, h.top_eigenvalue, h.trace, h.near_zero_fraction, h.loss,
                         h.slq.near_zero_fraction(0.01 * std::abs(h.top_eigenvalue))});
    if (o.log) {
      *o.log << "study winq: W" << bits << " Hessian at " << where << ": top " << std::defaultfloat << std::setprecision(5) << h.top_eigenvalue << ", near-zero "
             << h.near_zero_fraction << " (relative: " << r.hessian.back().near_zero_relative << "), trace " << h.trace << " (" << std::fixed << std::setprecision(1) << h.seconds
             << " s)\n" << std::defaultfloat;
    }
  };

  for (const std::string& bits : o.bits) {
    for (int64_t seed = 0; seed < o.seeds; ++seed) {
      for (const Variant& variant : variants) {
        const auto t0 = std::chrono::steady_clock::now();
        qat::QatFlags f;
        f.weight_format = weight_format_for(bits);
        f.wbits = 2;
        f.abits = o.act_bits;
        if (o.group_size > 0) {
          f.granularity = "group";
          f.group_size = static_cast<int>(o.group_size);
        }
        qat::QatConfig qc = qat::config_from_flags(f);
        if (language_model) qc = qat::with_language_model_defaults(qc);  // per-token int8 inputs, float embed/head
        qc.winq = variant.winq;
        train::TrainConfig c = fp32_config;
        c.epochs = epochs;
        c.max_steps_per_epoch = language_model ? 0 : o.steps / epochs;
        c.batch_size = o.batch_size;
        c.lr = o.lr;
        c.optimizer = "adamw";
        c.weight_decay = 0.0;
        c.warmup_steps = std::max<int64_t>(1, o.steps / 20);
        c.seed = static_cast<uint64_t>(seed);
        c.threads = o.threads;
        c.out_dir = o.out_dir + "/runs";
        c.extra["qat"] = qc.to_json();
        torch::manual_seed(c.seed);
        models::Net net = train::load_net(info.path);
        net->train();
        qat::prepare(net, qc);
        WinqRun run;
        run.bits = bits;
        run.variant = variant.name;
        run.winq = variant.winq.to_json();
        run.seed = seed;
        std::vector<torch::Tensor> losses;
        train::TrainHooks hooks;
        hooks.on_loss = [&losses](int64_t, const torch::Tensor& l) { losses.push_back(l); };
        std::unique_ptr<qat::Winq> winq;
        if (variant.winq.enabled) {
          winq = std::make_unique<qat::Winq>(variant.winq, c.seed);
          winq->install(hooks);
        }
        if (language_model) {
          // The LM trainer writes its run folder (config, metrics, checkpoint): one per run.
          std::string tag = bits;
          std::replace(tag.begin(), tag.end(), '.', 'p');
          c.out_dir = o.out_dir + "/runs/w" + tag + "-" + variant.name + "-seed" + std::to_string(seed);
          c.extra["lm"] = lm.to_json();
          std::ostringstream quiet;
          train::RunOptions ro;
          ro.overwrite = true;
          ro.log = &quiet;
          ro.initial_net = net;
          train::run_lm_training(c, ro, hooks);
        } else {
          train::Trainer trainer(net, c, hooks);
          trainer.set_write_files(false);
          trainer.set_log(nullptr);
          trainer.fit(train_images, no_validation);
        }
        for (const auto& l : losses) run.losses.push_back(l.item<double>());
        if (language_model) {
          const train::LmEval e = train::evaluate_lm(net, val_windows);
          run.val_loss = e.loss;
          run.val_acc = e.accuracy;  // next-byte accuracy
        } else {
          const auto e = train::evaluate(net, validation);
          run.val_loss = e.loss;
          run.val_acc = e.accuracy;
        }
        run.resets = winq ? winq->resets() : 0;
        run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (o.log) {
          *o.log << "study winq: W" << bits << " seed " << seed << " " << std::left << std::setw(16) << variant.name
                 << std::right << " val acc " << std::fixed << std::setprecision(2) << 100.0 * run.val_acc << "%  loss "
                 << std::setprecision(4) << run.val_loss << "  final train loss " << r.smoothed(run).back() << "  resets "
                 << run.resets << "  (" << std::setprecision(1) << run.seconds << " s)\n" << std::defaultfloat;
        }
        r.runs.push_back(run);
        // Quick mode measures the Hessian at the lowest bit width only (minutes, not tens of them).
        const bool hessian_bits = !o.quick || bits == *std::min_element(o.bits.begin(), o.bits.end(), [](const auto& a, const auto& b) {
          return std::stod(a) < std::stod(b);
        });
        if (o.hessian && hessian_bits && seed == 0 && (variant.name == "baseline" || variant.name == "winq")) {
          if (variant.name == "baseline") {
            hessian_point(net, bits, "baseline end");
            const auto& wq = variants[1].winq;
            qat::interpolation_reset(*net, wq.keep);
            hessian_point(net, bits, "baseline end + 1 reset");
          } else {
            hessian_point(net, bits, "winq end");
          }
        }
      }
    }
  }
  return r;
}

nlohmann::json WinqStudyResult::to_json() const {
  nlohmann::json runs_json = nlohmann::json::array();
  for (const auto& run : runs) {
    const auto sp = speedup(run.bits, run.variant, run.seed);
    runs_json.push_back({{"bits", run.bits},
                         {"variant", run.variant},
                         {"seed", run.seed},
                         {"winq", run.winq},
                         {"val_loss", run.val_loss},
                         {"val_acc", run.val_acc},
                         {"final_smoothed_train_loss", smoothed(run).back()},
                         {"speedup", sp ? nlohmann::json(*sp) : nlohmann::json(nullptr)},
                         {"resets", run.resets},
                         {"seconds", run.seconds},
                         {"train_losses", run.losses}});
  }
  nlohmann::json summary = nlohmann::json::array();
  for (const auto& bits : options.bits) {
    for (const auto& v : variants) {
      double acc = 0, loss = 0;
      int n = 0;
      for (const auto& run : runs)
        if (run.bits == bits && run.variant == v) {
          acc += run.val_acc;
          loss += run.val_loss;
          ++n;
        }
      if (n == 0) continue;
      const auto sp = mean_speedup(bits, v);
      summary.push_back({{"bits", bits},
                         {"variant", v},
                         {"mean_val_acc", acc / n},
                         {"mean_val_loss", loss / n},
                         {"speedup_on_mean_curves", sp ? nlohmann::json(*sp) : nlohmann::json(nullptr)}});
    }
  }
  nlohmann::json hess = nlohmann::json::array();
  for (const auto& h : hessian) {
    hess.push_back({{"bits", h.bits}, {"where", h.where}, {"top_eigenvalue", h.top_eigenvalue}, {"trace", h.trace},
                    {"near_zero_fraction", h.near_zero_fraction},
                    {"near_zero_fraction_relative_1pct_top", h.near_zero_relative}, {"loss", h.loss}});
  }
  const auto& o = options;
  return {{"study", "winq"},
          {"model", o.model},
          {"fp32_checkpoint", fp32_checkpoint},
          {"settings",
           {{"bits", o.bits},
            {"seeds", o.seeds},
            {"steps", o.steps},
            {"batch_size", o.batch_size},
            {"group_size", o.group_size},
            {"lr", o.lr},
            {"optimizer", "adamw, cosine, warm-up 5%"},
            {"act_bits", o.act_bits},
            {"winq", o.winq.to_json()},
            {"ablation", o.ablation},
            {"quick", o.quick},
            {"val_images", o.val_images},
            {"smoothing", "debiased EMA of the per-step training loss, alpha = 2 / (w + 1)"},
            {"smoothing_window", smoothing_window},
            {"hessian", {{"batches", o.hessian_batches}, {"batch_size", o.hessian_batch_size}, {"probes", o.hessian_probes},
                         {"lanczos_steps", o.hessian_lanczos_steps}, {"threshold", o.hessian_threshold}}}}},
          {"summary", summary},
          {"hessian", hess},
          {"runs", runs_json}};
}

std::string WinqStudyResult::to_csv() const {
  std::ostringstream s;
  s << "model,bits,variant,seed,val_acc,val_loss,final_smoothed_train_loss,speedup,resets,seconds\n" << std::setprecision(6);
  for (const auto& run : runs) {
    const auto sp = speedup(run.bits, run.variant, run.seed);
    s << options.model << "," << run.bits << "," << run.variant << "," << run.seed << "," << run.val_acc << ","
      << run.val_loss << "," << smoothed(run).back() << "," << (sp ? std::to_string(*sp) : std::string("")) << ","
      << run.resets << "," << run.seconds << "\n";
  }
  return s.str();
}

std::string WinqStudyResult::table() const {
  std::ostringstream s;
  s << std::fixed;
  s << options.model << ", " << options.steps << " QAT steps of batch " << options.batch_size << ", " << options.seeds
    << " seed(s), A" << (options.model == "gpt-tiny" ? std::string("8 per token") : std::to_string(options.act_bits))
    << (options.group_size > 0 ? ", weight groups of " + std::to_string(options.group_size) : std::string())
    << ", validation " << options.val_images << (options.model == "gpt-tiny" ? " windows" : " images") << "; speed-up on the "
    << "seed-mean EMA(" << smoothing_window << ") training-loss curves ('-': the baseline's final loss not reached)\n";
  const bool lm = options.model == "gpt-tiny";  // loss shown in bits per byte, accuracy of the next byte
  if (lm) s << "| W bits | variant | next-byte acc % mean (min-max) | val bits/byte mean | final train loss | speed-up |\n";
  else s << "| W bits | variant | val acc % mean (min-max) | val loss mean | final train loss | speed-up |\n";
  s << "|---|---|---|---|---|---|\n";
  for (const auto& bits : options.bits) {
    for (const auto& v : variants) {
      std::vector<double> accs, losses;
      for (const auto& run : runs)
        if (run.bits == bits && run.variant == v) {
          accs.push_back(run.val_acc);
          losses.push_back(run.val_loss);
        }
      if (accs.empty()) continue;
      double acc = 0, loss = 0;
      for (double a : accs) acc += a;
      for (double l : losses) loss += l;
      acc /= accs.size();
      loss /= losses.size();
      const auto curve = mean_curve(*this, bits, v);
      const auto sp = mean_speedup(bits, v);
      s << "| " << bits << " | " << v << " | " << std::setprecision(2) << 100 * acc << " ("
        << 100 * *std::min_element(accs.begin(), accs.end()) << "-" << 100 * *std::max_element(accs.begin(), accs.end())
        << ") | " << std::setprecision(4) << (lm ? loss / std::log(2.0) : loss) << " | " << curve.back() << " | ";
      if (v == "baseline") s << "1 |\n";
      else if (sp) s << std::setprecision(2) << *sp << "x |\n";
      else s << "- |\n";
    }
  }
  if (!hessian.empty()) {
    s << "\nHessian of the deployed (eval-mode) loss w.r.t. all weights, seed 0:\n";
    s << "| W bits | point | loss | top eigenvalue | trace | near-zero fraction (|lambda| < " << std::setprecision(4)
      << options.hessian_threshold << ") | near-zero (|lambda| < 1% of top) |\n|---|---|---|---|---|---|---|\n";
    for (const auto& h : hessian) {
      s << "| " << h.bits << " | " << h.where << " | " << std::setprecision(4) << h.loss << " | " << h.top_eigenvalue
        << " | " << std::setprecision(3) << h.trace << " | " << std::setprecision(3) << h.near_zero_fraction << " | "
        << h.near_zero_relative << " |\n";
    }
  }
  return s.str();
}

std::string WinqStudyResult::loss_svg(const std::string& bits) const {
  std::vector<PlotSeries> series;
  size_t i = 0;
  for (const auto& v : variants) {
    const auto curve = mean_curve(*this, bits, v);
    if (curve.empty()) continue;
    PlotSeries s;
    s.label = v;
    for (size_t k = 0; k < curve.size(); ++k) {
      s.x.push_back(static_cast<double>(k + 1));
      s.y.push_back(curve[k]);
    }
    s.color = plot_color(i++);
    s.dashed = v == "baseline";
    series.push_back(s);
  }
  PlotOptions po;
  const std::string name = bits == "2" ? "SEQ 2-bit" : bits == "1.58" ? "ternary (1.58-bit)" : "binary (1-bit)";
  po.title = options.model + ", " + name + " weights: training loss, mean of " + std::to_string(options.seeds) + " seed(s)";
  po.x_label = "optimizer step";
  po.y_label = "training cross-entropy (EMA span " + std::to_string(smoothing_window) + ", nats)";
  return line_plot_svg(series, po);
}

void write_winq_study_files(const WinqStudyResult& r, const std::string& out_dir) {
  std::filesystem::create_directories(out_dir);
  write_file_atomically(out_dir + "/study.json", r.to_json().dump(1) + "\n");
  write_file_atomically(out_dir + "/study.csv", r.to_csv());
  write_file_atomically(out_dir + "/table.md", r.table());
  for (const auto& bits : r.options.bits) {
    std::string tag = bits;
    std::replace(tag.begin(), tag.end(), '.', 'p');
    write_file_atomically(out_dir + "/loss_w" + tag + ".svg", r.loss_svg(bits));
  }
}

}  // namespace lowbit::analysis
