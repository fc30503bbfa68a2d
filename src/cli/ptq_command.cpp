// `lowbit ptq`: post-training quantization of an FP32 checkpoint (see ptq/ptq_run.h).
#include <iomanip>
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/data_flags.h"
#include "ptq/ptq_run.h"
#include "train/checkpoint.h"

namespace lowbit::cli {
namespace {

struct PtqArgs {
  ptq::PtqRunOptions options;
  std::string method = "rtn";
  std::string mean, std_dev;  // --mean / --std: only to repeat the FP32 run's (its normalisation carries over)
};

void run(PtqArgs args) {
  if (args.options.from.empty()) throw CLI::RequiredError("--from (the FP32 checkpoint to quantize)");
  args.options.ptq.method = ptq::method_from_string(args.method);
  if (!args.mean.empty() || !args.std_dev.empty())
    data::run_normalisation(args.mean, args.std_dev, train::load_checkpoint(args.options.from).config, args.options.from);
  args.options.log = &std::cerr;
  const ptq::PtqRunResult r = ptq::run_ptq(args.options);
  std::cout << std::fixed << std::setprecision(2);
  for (const auto& l : r.report.layers) {
    std::cout << "  " << std::left << std::setw(14) << l.name << std::setw(20) << l.method << " relative output error "
              << std::setprecision(4) << l.relative_error << " (round-to-nearest " << l.rtn_relative_error << ")\n"
              << std::setprecision(2);
  }
  const std::string what = args.method + " W" + std::to_string(args.options.wbits) + "A" +
                           std::to_string(args.options.abits) +
                           (args.options.group_size > 0 ? " g" + std::to_string(args.options.group_size) : "");
  if (r.language_model) {
    std::cout << std::setprecision(3) << "validation bits/byte: FP32 " << r.fp_bits_per_byte << " -> " << what << " "
              << r.ptq_bits_per_byte << std::setprecision(2) << " (next-byte accuracy " << 100.0 * r.fp_accuracy
              << "% -> " << 100.0 * r.ptq_accuracy << "%)\n";
  } else {
    std::cout << "test accuracy: FP32 " << 100.0 * r.fp_accuracy << "% -> " << what << " " << 100.0 * r.ptq_accuracy
              << "%\n";
  }
  std::cout << "wrote " << r.checkpoint << "\n";
}

}  // namespace

void add_ptq_command(CLI::App& app) {
  auto args = std::make_shared<PtqArgs>();
  auto& o = args->options;
  CLI::App* cmd = app.add_subcommand("ptq", "Post-training quantization (round-to-nearest or GPTQ) of an FP32 checkpoint (image models, vit-tiny, gpt-tiny)");
  cmd->add_option("--from", o.from, "FP32 checkpoint (file or run folder), or an FP32 ONNX model (.onnx), to quantize");
  cmd->add_option("--out", o.out, "Output folder (checkpoint.pt, ptq.json)")->required();
  cmd->add_option("--wbits", o.wbits, "Weight bits (2-8)")->check(CLI::Range(2, 8))->capture_default_str();
  cmd->add_option("--abits", o.abits, "Activation bits (2-8)")->check(CLI::Range(2, 8))->capture_default_str();
  cmd->add_option("--group-size", o.group_size, "Per-group weight scales of this many inputs (e.g. 32, 64, 128; 0: per output channel)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--method", args->method, "rtn or gptq")->check(CLI::IsMember({"rtn", "gptq"}))->capture_default_str();
  cmd->add_option("--calib-batches", o.calib_batches, "Calibration batches (first training images; gpt-tiny: random training windows)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--calib-batch-size", o.calib_batch_size, "Images (gpt-tiny: windows of the run's context) per calibration batch")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--seed", o.seed, "gpt-tiny: seed of the random calibration windows")->capture_default_str();
  cmd->add_option("--observer", o.observer, "Range observer for weights and activations: minmax, ema, percentile, mse")
      ->check(CLI::IsMember({"minmax", "ema", "percentile", "mse"}))->capture_default_str();
  cmd->add_flag("--bn-reestimate", o.ptq.bn_reestimate, "Re-estimate batch-norm statistics with the quantized weights");
  cmd->add_flag("--bias-correction", o.ptq.bias_correction, "Shift biases by the mean output error on calibration data");
  cmd->add_flag("--act-order", o.ptq.gptq.act_order, "GPTQ: quantize columns in order of decreasing Hessian diagonal");
  cmd->add_option("--percdamp", o.ptq.gptq.percdamp, "GPTQ: damping as a fraction of the mean Hessian diagonal")
      ->check(CLI::Range(1e-6, 10.0))->capture_default_str();
  cmd->add_option("--block-size", o.ptq.gptq.block_size, "GPTQ: columns per lazy-update block")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--calib-samples", o.calib_samples,
                  "Calibrate on the first N training images, in batches of --calib-batch-size (replaces --calib-batches)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--data", o.data_dir, data_flag_help());
  add_layout_flag(cmd, o.layout);
  add_normalisation_flags(cmd, args->mean, args->std_dev);
  cmd->add_option("--threads", o.threads, "CPU threads for torch")->capture_default_str();
  cmd->add_flag("--overwrite", o.overwrite, "Replace an existing checkpoint in --out");
  cmd->callback([args] { run(*args); });
}

}  // namespace lowbit::cli
