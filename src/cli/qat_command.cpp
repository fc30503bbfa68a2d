// `lowbit qat`: quantization-aware training from an FP32 checkpoint (see qat/qat_run.h).
#include <memory>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/data_flags.h"
#include "qat/qat_run.h"
#include "train/checkpoint.h"
#include "train/device.h"

namespace lowbit::cli {
namespace {

struct QatArgs {
  train::TrainConfig config;
  qat::QatFlags flags;
  std::string from;
  std::string config_file;
  bool resume = false;
  bool overwrite = false;
  bool device_given = false;  // --device on the command line (on --resume it replaces the run's)
  DataFlags data;  // --layout, --augment-crop, --augment-flip
  nlohmann::json lm = nlohmann::json::object();  // gpt-tiny flags given (train/lm_trainer.h)
  bool distill = false;        // --distill: the --from checkpoint teaches
  train::DistillConfig distill_config;  // --teacher, --distill-weight, --distill-temperature
};

// gpt-tiny: its "lm" section from the FP32 run, the LM flags given here on top, and the
// optimizer defaults of `lowbit train` for it where no flag was given.
void apply_lm_settings(QatArgs& args, const CLI::App* cmd) {
  const auto source = train::load_checkpoint(args.from);
  if (source.model_name != "gpt-tiny") {
    LOWBIT_CHECK(args.lm.empty(), "--" + (args.lm.empty() ? std::string() : args.lm.begin().key()) +
                                      " is a gpt-tiny flag; '" + source.path + "' is model '" + source.model_name + "'");
    return;
  }
  nlohmann::json lm = source.config.value("lm", nlohmann::json::object());
  lm.update(args.lm);
  args.config.extra["lm"] = lm;
  auto given = [&](const char* flag) { return cmd->get_option(flag)->count() > 0; };
  if (!given("--batch-size")) args.config.batch_size = source.config.value("batch_size", int64_t{32});
  if (!given("--clip-grad")) args.config.clip_grad = 1.0;
  if (!given("--epochs")) args.config.epochs = 1;
}

void run(QatArgs args) {
  train::usable_training_device(args.config.device);  // a bad or unusable --device fails before any work
  if (args.resume) {
    const auto info = train::load_checkpoint(args.config.out_dir);
    LOWBIT_CHECK(info.config.contains("qat"), "'" + info.path + "' is not a QAT checkpoint; resume it with 'lowbit train --resume'");
    train::TrainConfig config = train::config_from_json(info.config);
    config.out_dir = args.config.out_dir;
    if (args.device_given) config.device = args.config.device;  // a run may move between CPU and GPU
    if (!args.config.sync_bn) config.sync_bn = false;  // --no-sync-bn given to the resumed run
    train::usable_training_device(config.device);
    apply_data_flags(config.extra, args.data, true);
    if (config.model == "gpt-tiny" && !args.lm.empty()) {
      nlohmann::json lm = config.extra.value("lm", nlohmann::json::object());
      lm.update(args.lm);  // e.g. more --steps
      config.extra["lm"] = lm;
    }
    qat::QatRunOptions options;
    options.resume = true;
    qat::run_qat(config, qat::QatConfig::from_json(info.config["qat"]), options);
    return;
  }
  const qat::QatConfig qat_config =
      args.config_file.empty() ? qat::config_from_flags(args.flags) : qat::QatConfig::from_file(args.config_file);
  apply_data_flags(args.config.extra, args.data, false);
  qat::QatRunOptions options;
  options.from = args.from;
  options.overwrite = args.overwrite;
  if (args.distill) {
    options.distill = args.distill_config;
    if (options.distill.teacher.empty()) options.distill.teacher = train::load_checkpoint(args.from).path;
  }
  qat::run_qat(args.config, qat_config, options);  // gpt-tiny: run_qat keeps embed / head in float by default
}

}  // namespace

void add_qat_command(CLI::App& app) {
  auto args = std::make_shared<QatArgs>();
  args->config.epochs = 3;
  args->config.lr = 5e-4;
  args->config.weight_decay = 0.0;
  CLI::App* cmd = app.add_subcommand("qat", "Quantization-aware training starting from an FP32 checkpoint");
  cmd->add_option("--from", args->from, "FP32 checkpoint (file or run folder), or an FP32 ONNX model (.onnx), to start from");
  cmd->add_option("--out", args->config.out_dir, "Output folder (checkpoint.pt, metrics.jsonl, config.json)")->required();
  cmd->add_option("--config", args->config_file, "QAT config JSON (defaults and per-layer overrides); replaces the quantization flags");
  auto& f = args->flags;
  cmd->add_option("--wbits", f.wbits, "Weight bits (2-8; see --weight-format for ternary/binary/seq2)")->capture_default_str();
  cmd->add_option("--abits", f.abits, "Activation bits (2-8)")->capture_default_str();
  cmd->add_option("--quantizer", f.quantizer, "Weight gradient estimator: auto (ste at 8 bits, lsq below), ste, lsq, lsqplus")
      ->check(CLI::IsMember({"auto", "ste", "lsq", "lsqplus"}))->capture_default_str();
  cmd->add_option("--granularity", f.granularity, "Weight scales: tensor, channel, group")
      ->check(CLI::IsMember({"tensor", "channel", "group"}))->capture_default_str();
  cmd->add_option("--group-size", f.group_size, "Group size for --granularity group (given alone, it selects --granularity group)")->capture_default_str();
  cmd->add_option("--weight-format", f.weight_format, "int, ternary, binary or seq2")
      ->check(CLI::IsMember({"int", "ternary", "binary", "seq2"}))->capture_default_str();
  cmd->add_option("--observer", f.observer, "Range observer: minmax, ema, percentile, mse")->capture_default_str();
  cmd->add_option("--freeze-steps", f.freeze_steps, "Freeze observers after this many steps (-1: never)")->capture_default_str();
  cmd->add_option("--bn-freeze-step", f.bn_freeze_step, "Freeze batch-norm statistics from this step on (0: from the start, using the checkpoint's; -1: never)")->capture_default_str();
  cmd->add_flag("--winq", f.winq, "WinQ (docs/winq.md): periodic interpolation reset + noise-injected gradients, with the "
               "defaults below; any --winq-* flag also turns it on");
  cmd->add_option("--winq-period", f.winq_period,
                        "Interpolation reset every K optimizer steps (0: no reset; -1: auto, a quarter of the run at "
                        "<= 2 bits, half otherwise)")->group("WinQ")->capture_default_str();
  cmd->add_option("--winq-keep", f.winq_keep,
                        "a in W <- a W + (1 - a) Q(W) (authors' code 0.2; the paper's alpha = 1 - a, its ablation "
                        "prefers alpha 0.4, i.e. 0.6)")->group("WinQ")->capture_default_str();
  cmd->add_option("--winq-noise", f.winq_noise, "Noise sigma on weights and scales in training forwards (0: none)")
      ->group("WinQ")->capture_default_str();
  cmd->add_option("--winq-noise-mode", f.winq_noise_mode, "abs (sigma as given) or rel (sigma times each row's scale)")
      ->check(CLI::IsMember({"abs", "rel"}))->group("WinQ")->capture_default_str();
  auto& d = args->distill_config;
  cmd->add_flag("--distill", args->distill,
                "Knowledge distillation (docs/qat.md): learn the FP32 teacher's outputs, by default the --from "
                "checkpoint's; any --distill-* flag or --teacher also turns it on")->group("Distillation");
  cmd->add_option("--teacher", d.teacher, "FP32 checkpoint (file or run folder) or .onnx model to distil from (default: --from)")
      ->group("Distillation");
  cmd->add_option("--distill-weight", d.weight,
                  "w in (1 - w) CE(labels) + w T^2 KL(teacher || student); 1: the teacher alone")
      ->group("Distillation")->capture_default_str();
  cmd->add_option("--distill-temperature", d.temperature, "T: softmax temperature of both distributions")
      ->group("Distillation")->capture_default_str();
  auto& c = args->config;
  cmd->add_option("--epochs", c.epochs, "Number of epochs")->capture_default_str();
  cmd->add_option("--lr", c.lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--batch-size", c.batch_size, "Training batch size")->capture_default_str();
  cmd->add_option("--optimizer", c.optimizer, "adamw or sgd")->check(CLI::IsMember({"adamw", "sgd"}))->capture_default_str();
  cmd->add_option("--weight-decay", c.weight_decay, "Weight decay on conv/linear weights")->capture_default_str();
  cmd->add_option("--warmup", c.warmup_steps, "Linear warm-up steps (then cosine to zero)")->capture_default_str();
  cmd->add_option("--clip-grad", c.clip_grad, "Clip gradients to this global L2 norm (0: off)")->capture_default_str();
  cmd->add_flag_callback("--no-sync-bn", [args] { args->config.sync_bn = false; },
                         "Multi-process runs: live batch norm (before --bn-freeze-step) with each rank's shard "
                         "statistics instead of the global batch's (SyncBN, the default)");
  cmd->add_option("--seed", c.seed, "Random seed")->capture_default_str();
  cmd->add_option("--threads", c.threads, "CPU threads for torch")->capture_default_str();
  CLI::Option* device = cmd->add_option("--device", c.device,
                                        "Where training computes: cpu, cuda or cuda:N (needs a CUDA build of LibTorch; "
                                        "checkpoints hold CPU tensors, so --resume may change it)")
                            ->capture_default_str();
  cmd->add_option("--data", c.data_dir, data_flag_help());
  add_data_flags(cmd, args->data);
  cmd->add_option("--val-size", c.val_size, "Training images held out for validation")->capture_default_str();
  cmd->add_option("--max-steps-per-epoch", c.max_steps_per_epoch, "Stop each epoch after this many steps (0: whole epoch)")->capture_default_str();
  auto steps = std::make_shared<int64_t>(0);
  auto eval_interval = std::make_shared<int64_t>(0);
  auto eval_windows = std::make_shared<int64_t>(256);
  CLI::Option* o_steps = cmd->add_option("--steps", *steps, "gpt-tiny: optimizer steps (0: --epochs passes over the text)")->capture_default_str();
  CLI::Option* o_ei = cmd->add_option("--eval-interval", *eval_interval, "gpt-tiny: validate and checkpoint every this many steps (0: a tenth of the run)")->capture_default_str();
  CLI::Option* o_ew = cmd->add_option("--eval-windows", *eval_windows, "gpt-tiny: validation windows measured (0: all)")->capture_default_str();
  cmd->add_flag("--resume", args->resume, "Continue the QAT run in --out from its checkpoint");
  cmd->add_flag("--overwrite", args->overwrite, "Replace an existing checkpoint in --out");
  cmd->callback([args, cmd, steps, eval_interval, eval_windows, o_steps, o_ei, o_ew, device] {
    args->device_given = device->count() > 0;
    for (const char* name : {"--winq-period", "--winq-keep", "--winq-noise", "--winq-noise-mode"}) {
      if (cmd->count(name) > 0) args->flags.winq = true;
    }
    for (const char* name : {"--teacher", "--distill-weight", "--distill-temperature"}) {
      if (cmd->count(name) > 0) args->distill = true;
    }
    if (args->resume && (args->flags.winq || args->distill || !args->config_file.empty())) {
      throw CLI::ValidationError("--resume", "continues with the run's stored settings; drop --winq*, --distill*, --teacher and --config");
    }
    if (args->distill) {  // a bad value is a usage error (exit 2) naming the flag
      try {
        args->distill_config.validate();
      } catch (const Error& e) {
        throw CLI::ValidationError(e.what());
      }
    }
    if (args->flags.winq) {  // a bad WinQ value is a usage error (exit 2) naming the flag
      qat::WinqConfig w;
      w.period = args->flags.winq_period;
      w.keep = args->flags.winq_keep;
      w.noise = args->flags.winq_noise;
      w.noise_mode = args->flags.winq_noise_mode;
      try {
        w.validate();
      } catch (const Error& e) {
        throw CLI::ValidationError(e.what());
      }
    }
    if (!args->resume && args->from.empty()) {
      throw CLI::RequiredError("qat needs --from (the FP32 checkpoint to start from), unless --resume");
    }
    // --group-size alone means group scales (it would otherwise be ignored by per-channel scales).
    if (cmd->get_option("--group-size")->count() > 0 && cmd->get_option("--granularity")->count() == 0)
      args->flags.granularity = "group";
    if (o_steps->count() > 0) args->lm["steps"] = *steps;
    if (o_ei->count() > 0) args->lm["eval_interval"] = *eval_interval;
    if (o_ew->count() > 0) args->lm["eval_windows"] = *eval_windows;
    if (!args->resume) apply_lm_settings(*args, cmd);
    run(*args);
  });
}

}  // namespace lowbit::cli
