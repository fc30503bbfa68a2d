// `lowbit analyze basin` (basin diagnostics of PTQ points and a short STE-QAT run, docs/basin.md)
// `lowbit analyze toy` (the 2-D mechanism of RESEARCH.md section 2), `lowbit analyze hessian` and
// `lowbit analyze sensitivity` (per-layer quantization sensitivity, docs/mixed_precision.md).
#include <filesystem>
#include <iomanip>
#include <sstream>
#include <iostream>
#include <memory>

#include "analysis/basin.h"
#include "data/load_dataset.h"
#include "analysis/hessian_analysis.h"
#include "analysis/sensitivity.h"
#include "analysis/toy_basin.h"
#include "base/atomic_file.h"
#include "convert/drift.h"
#include "convert/to_runtime.h"
#include "cli/commands.h"
#include "cli/data_flags.h"
#include "data/run_data_layout.h"
#include "data/fashion_mnist.h"
#include "report/report.h"
#include "train/checkpoint.h"
#include "train/compute_threads.h"
#include "train/lm_trainer.h"

namespace lowbit::cli {
namespace {

void print_toy(double lr, int steps) {
  const analysis::ToyBasin t;
  auto show = [&t](const analysis::Point2& p) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(3) << "(" << p[0] << ", " << p[1] << ") loss " << std::setprecision(4) << t.loss(p)
      << (t.in_basin(p) ? " inside" : " OUTSIDE") << " the basin";
    return s.str();
  };
  std::cout << "L = c (u - u0)^2 + a (v - v0)^2 + b max(|v| - w, 0)^2, u = (x + y)/sqrt2, v = (y - x)/sqrt2\n"
            << "c " << t.c << ", a " << t.a << ", b " << t.b << ", w " << t.w << ", grid step " << t.grid_step << "\n"
            << "FP point            " << show(t.fp) << "\n"
            << "round-to-nearest    " << show(analysis::toy_round_to_nearest(t)) << "\n"
            << "second order (GPTQ) " << show(analysis::toy_second_order(t)) << "\n"
            << "grid point (0, 0)   " << show({0.0, 0.0}) << "\n"
            << "STE-QAT, lr " << lr << ":\n"
            << " step   latent x  latent y   deployed   loss      basin  inward cos\n";
  for (const auto& s : analysis::toy_ste_qat(t, lr, steps)) {
    std::cout << std::setw(5) << s.step << std::fixed << std::setprecision(4) << std::setw(10) << s.latent[0] << std::setw(10)
              << s.latent[1] << "   (" << std::setprecision(0) << s.deployed[0] << ", " << s.deployed[1] << ")  "
              << std::setprecision(4) << std::setw(9) << s.deployed_loss << (s.in_basin ? "  in " : "  out") << std::setw(10)
              << std::setprecision(3) << s.inward_cosine << "\n";
  }
}

}  // namespace

void add_analyze_command(CLI::App& app) {
  CLI::App* analyze = app.add_subcommand("analyze", "Diagnostics: loss-basin analysis of PTQ and QAT, Hessian spectra");
  analyze->require_subcommand(1);

  auto o = std::make_shared<analysis::BasinOptions>();
  auto json_path = std::make_shared<std::string>();
  auto method = std::make_shared<std::string>("both");
  CLI::App* basin = analyze->add_subcommand("basin", "Loss along FP32 -> PTQ segments, grid distances, STE-QAT re-entry");
  basin->add_option("--from", o->from, "FP32 checkpoint (file or run folder)")->required();
  basin->add_option("--wbits", o->weight_bits, "Weight bits")->check(CLI::Range(2, 8))->capture_default_str();
  basin->add_option("--abits", o->act_bits, "Activation bits")->check(CLI::Range(2, 8))->capture_default_str();
  basin->add_option("--method", *method, "rtn, gptq or both")->check(CLI::IsMember({"rtn", "gptq", "both"}))->capture_default_str();
  basin->add_option("--points", o->points, "Points on each segment (>= 2)")->check(CLI::Range(2, 1000))->capture_default_str();
  basin->add_option("--qat-steps", o->qat_steps, "STE-QAT steps (0: none)")->check(CLI::NonNegativeNumber)->capture_default_str();
  basin->add_option("--qat-lr", o->qat_lr, "STE-QAT learning rate")->capture_default_str();
  basin->add_option("--eval-every", o->eval_every, "Deployed loss every N QAT steps")->check(CLI::PositiveNumber)->capture_default_str();
  basin->add_option("--epsilon", o->epsilon, "Re-entry threshold: deployed loss <= (1 + epsilon) * FP32 loss")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  basin->add_option("--eval-images", o->eval_images, "Validation images the losses are measured on")
      ->check(CLI::PositiveNumber)->capture_default_str();
  basin->add_option("--calib-batches", o->calib_batches, "PTQ calibration batches of 128")->check(CLI::PositiveNumber)->capture_default_str();
  basin->add_flag("--quick", o->quick, "Tiny sets (a test-sized run)");
  basin->add_option("--json", *json_path, "Write the full result as JSON (atomically)");
  add_data_and_layout_flags(basin, o->data_dir, o->layout);
  add_run_normalisation_flags(basin, [o] { return o->from; }, [](const std::string& p) { return train::load_checkpoint(p).config; });
  basin->add_option("--threads", o->threads, "CPU threads for torch")->capture_default_str();
  basin->callback([o, json_path, method] {
    if (*method != "both") o->methods = {*method};
    o->log = &std::cerr;
    const analysis::BasinResult r = analysis::analyze_basin(*o);
    std::cout << r.summary();
    if (!json_path->empty()) {
      write_file_atomically(*json_path, r.to_json().dump(2) + "\n");
      // The report goes next to the JSON: basin.json -> basin.html.
      std::filesystem::path html_path(*json_path);
      html_path = html_path.extension() == ".json" ? html_path.replace_extension(".html") : html_path += ".html";
      const std::string html = html_path.string();
      report::write_report({*json_path}, html);
      std::cout << "wrote " << *json_path << " and " << html << "\n";
    }
  });

  struct HessianArgs {
    analysis::HessianOptions options;
    std::string checkpoint, out, data_dir, layout = "auto";
    int64_t threads = 2;
  };
  auto h = std::make_shared<HessianArgs>();
  CLI::App* hess = analyze->add_subcommand(
      "hessian", "Hessian spectrum of a checkpoint's loss w.r.t. its weights: top eigenvalue, trace, SLQ density (docs/hessian.md)");
  hess->add_option("--checkpoint", h->checkpoint, "Checkpoint (file or run folder), FP32 or QAT")->required();
  hess->add_option("--out", h->out, "Output folder: density.csv, summary.json, density.svg, report.html")->required();
  auto& ho = h->options;
  hess->add_option("--layers", ho.layers, "Glob on node names whose weights are analysed (e.g. 'fc*', 'conv?')")->capture_default_str();
  hess->add_option("--batches", ho.batches, "Training batches the loss averages over")->check(CLI::Range(1, 10000))->capture_default_str();
  hess->add_option("--batch-size", ho.batch_size, "Images (or gpt-tiny text windows) per batch")->check(CLI::Range(1, 60000))->capture_default_str();
  hess->add_option("--probes", ho.probes, "SLQ (Gaussian) and Hutchinson (Rademacher) probes")->check(CLI::Range(1, 100000))->capture_default_str();
  hess->add_option("--lanczos-steps", ho.lanczos_steps, "Lanczos steps per SLQ probe")->check(CLI::Range(2, 100000))->capture_default_str();
  hess->add_option("--power-iterations", ho.power_iterations, "Most power iterations for the top eigenvalue")->check(CLI::Range(1, 100000))->capture_default_str();
  hess->add_option("--sigma", ho.sigma, "Gaussian smoothing width of the density (0: 1% of the Ritz value range)")->check(CLI::NonNegativeNumber)->capture_default_str();
  hess->add_option("--threshold", ho.threshold, "|lambda| below this counts as near zero")->check(CLI::PositiveNumber)->capture_default_str();
  hess->add_option("--seed", ho.seed, "Seed of the probes")->capture_default_str();
  add_data_and_layout_flags(hess, h->data_dir, h->layout);
  add_run_normalisation_flags(hess, [h] { return h->checkpoint; }, [](const std::string& p) { return train::load_checkpoint(p).config; });
  hess->add_option("--threads", h->threads, "CPU threads for torch")->check(CLI::Range(1, 1024))->capture_default_str();
  hess->callback([h] {
    lowbit::train::set_compute_threads(static_cast<int>(h->threads));
    const train::CheckpointInfo info = train::load_checkpoint(h->checkpoint);
    models::Net net = train::load_net(info.path);
    std::vector<torch::Tensor> images, labels;
    if (info.model_name == "gpt-tiny") {  // windows of the run's own corpus (--text of its training)
      const auto lm = train::LmSettings::from_json(info.config.value("lm", nlohmann::json::object()));
      const auto corpus = data::load_text_corpus(lm.text, lm.model.context, lm.val_fraction);
      analysis::lm_hessian_batches(corpus.train, lm.model.context, h->options.batches, h->options.batch_size, images, labels);
    } else {
      const auto split = data::split_train_validation(
          data::load_dataset(data::resolve_data_dir(h->data_dir), "train", data::run_data_layout(h->layout, info.config)),
          5000);
      analysis::hessian_batches(split.train, h->options.batches, h->options.batch_size, images, labels);
    }
    h->options.log = &std::cerr;
    analysis::HessianReport r = analysis::analyze_hessian(net, images, labels, h->options);
    r.checkpoint = info.path;
    analysis::write_hessian_files(r, h->out);
    report::write_report({h->out}, h->out + "/report.html");
    std::cout << r.summary() << "wrote " << h->out << "/density.csv, summary.json, density.svg, report.html\n";
  });

  struct SensitivityArgs {
    analysis::SensitivityOptions options;
    std::string out, method = "rtn";
    int64_t threads = 2;
    bool json = false;
  };
  auto sa = std::make_shared<SensitivityArgs>();
  CLI::App* sens = analyze->add_subcommand(
      "sensitivity", "Loss increase per layer when only that layer is quantized, per width, and its Hessian trace "
                     "(docs/mixed_precision.md)");
  auto& so = sa->options;
  sens->add_option("--checkpoint", so.checkpoint, "FP32 checkpoint (file or run folder) of an image model, or an FP32 ONNX model (.onnx)")->required();
  sens->add_option("--out", sa->out, "Output folder: sensitivity.json, sensitivity.csv")->required();
  sens->add_option("--bits", so.weight_widths, "Weight widths: 8..2, ternary, binary")->delimiter(',')->capture_default_str();
  sens->add_option("--abits", so.act_bits, "Activation widths to test with 8-bit weights (e.g. 4; default none)")->delimiter(',');
  sens->add_option("--method", sa->method, "PTQ of the layer: rtn or gptq")->check(CLI::IsMember({"rtn", "gptq"}))->capture_default_str();
  sens->add_option("--layers", so.layers, "Glob on node names (default: every conv and linear)")->capture_default_str();
  sens->add_option("--eval-images", so.eval_images, "Validation images the loss is measured on (0: all 5000)")
      ->check(CLI::Range(int64_t{0}, int64_t{5000}))->capture_default_str();
  sens->add_option("--calib-batches", so.calib_batches, "Calibration batches")->check(CLI::Range(1, 10000))->capture_default_str();
  sens->add_option("--calib-batch-size", so.calib_batch_size, "Images per calibration batch")->check(CLI::Range(1, 60000))->capture_default_str();
  sens->add_option("--hessian-probes", so.hessian_probes, "Hutchinson probes per layer (0: no trace)")->check(CLI::Range(0, 100000))->capture_default_str();
  sens->add_option("--hessian-batch-size", so.hessian_batch_size, "Images in the Hessian's batch")->check(CLI::Range(1, 60000))->capture_default_str();
  sens->add_option("--seed", so.seed, "Seed of the Hessian probes")->capture_default_str();
  add_data_and_layout_flags(sens, so.data_dir, so.layout);
  add_run_normalisation_flags(sens, [sa] { return sa->options.checkpoint; }, [](const std::string& p) { return train::load_checkpoint(p).config; });
  sens->add_option("--threads", sa->threads, "CPU threads for torch")->check(CLI::Range(1, 1024))->capture_default_str();
  sens->add_flag("--json", sa->json, "Print sensitivity.json instead of the table");
  sens->callback([sa] {
    lowbit::train::set_compute_threads(static_cast<int>(sa->threads));
    sa->options.ptq.method = ptq::method_from_string(sa->method);
    sa->options.log = &std::cerr;
    const analysis::SensitivityReport r = analysis::analyze_sensitivity(sa->options);
    analysis::write_sensitivity_files(r, sa->out);
    report::write_report({sa->out}, sa->out + "/report.html");
    if (sa->json)
      std::cout << r.to_json().dump(2) << "\n";
    else
      std::cout << r.table() << "wrote " << sa->out << "/sensitivity.json, sensitivity.csv, report.html\n";
  });

  auto lr = std::make_shared<double>(5e-4);
  auto steps = std::make_shared<int>(12);
  CLI::App* toy = analyze->add_subcommand("toy", "The 2-D basin toy: rounding and GPTQ leave the basin, STE-QAT re-enters");
  toy->add_option("--lr", *lr, "STE learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  toy->add_option("--steps", *steps, "STE steps")->check(CLI::Range(0, 100000))->capture_default_str();
  toy->callback([lr, steps] { print_toy(*lr, *steps); });

  struct DriftArgs {
    std::string checkpoint, data_dir, layout = "auto", split = "test", out;
    int64_t limit = 1000, threads = 2;
    bool json = false;
  };
  auto da = std::make_shared<DriftArgs>();
  CLI::App* drift = analyze->add_subcommand(
      "drift", "Where the integer model departs from fake quantization: differing activation codes per layer "
               "(docs/numerics.md, section 9)");
  drift->add_option("--checkpoint,--from", da->checkpoint, "QAT or PTQ checkpoint (file or run folder) of an image model")->required();
  add_data_and_layout_flags(drift, da->data_dir, da->layout);
  add_run_normalisation_flags(drift, [da] { return da->checkpoint; }, [](const std::string& p) { return train::load_checkpoint(p).config; });
  drift->add_option("--split", da->split, "test or train")->check(CLI::IsMember({"test", "train"}))->capture_default_str();
  drift->add_option("--limit", da->limit, "First N images of the split (0: all)")->check(CLI::NonNegativeNumber)->capture_default_str();
  drift->add_option("--out", da->out, "Also write the result as JSON to this file");
  drift->add_option("--threads", da->threads, "CPU threads for torch")->check(CLI::Range(1, 1024))->capture_default_str();
  drift->add_flag("--json", da->json, "Print JSON instead of the table");
  drift->callback([da] {
    lowbit::train::set_compute_threads(static_cast<int>(da->threads));
    const train::CheckpointInfo info = train::load_checkpoint(da->checkpoint);
    models::Net net = train::load_net(info.path);
    LOWBIT_CHECK(net->model_name() != "gpt-tiny", "analyze drift: '" + da->checkpoint +
                                                      "' is a gpt-tiny run; drift measures image models (their integer runtime)");
    const runtime::Model model = convert::to_runtime_model(net);
    data::Dataset d = data::load_dataset(data::resolve_data_dir(da->data_dir), da->split,
                                         data::run_data_layout(da->layout, info.config));
    if (da->limit > 0 && da->limit < d.size()) {
      d.images = d.images.narrow(0, 0, da->limit);
      d.labels = d.labels.narrow(0, 0, da->limit);
    }
    const convert::DriftReport r = convert::measure_drift(net, model, d);
    if (!da->out.empty()) write_file_atomically(da->out, r.to_json().dump(2) + "\n");
    std::cout << (da->json ? r.to_json().dump(2) + "\n" : r.table());
  });
}

}  // namespace lowbit::cli
