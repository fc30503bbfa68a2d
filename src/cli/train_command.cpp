// `lowbit train`: FP32 training of a zoo model on Fashion-MNIST (see train/trainer.h).
#include <filesystem>
#include <memory>

#include "base/error.h"
#include "cli/commands.h"
#include "models/net.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace lowbit::cli {
namespace {

struct TrainArgs {
  train::TrainConfig config;
  bool resume = false;
  bool overwrite = false;
  // Options given on the command line, with how to copy each onto a config: on --resume the
  // checkpoint's config is the base and only these override it.
  std::vector<std::pair<CLI::Option*, std::function<void(train::TrainConfig&, const train::TrainConfig&)>>> overrides;
};

template <typename T>
void option(CLI::App* cmd, TrainArgs& args, const std::string& name, T train::TrainConfig::*field,
            const std::string& help) {
  CLI::Option* opt = cmd->add_option(name, args.config.*field, help)->capture_default_str();
  args.overrides.emplace_back(opt, [field](train::TrainConfig& dst, const train::TrainConfig& src) { dst.*field = src.*field; });
}

void run(const TrainArgs& args) {
  train::TrainConfig config = args.config;
  if (args.resume) {
    const std::string path = config.out_dir + "/checkpoint.pt";
    if (!std::filesystem::exists(path)) {
      throw Error("no checkpoint to resume in '" + config.out_dir + "' (run without --resume to start fresh)");
    }
    const auto info = train::load_checkpoint(path);
    config = train::config_from_json(info.config);
    for (const auto& [opt, copy] : args.overrides) {
      if (opt->count() > 0) copy(config, args.config);
    }
    config.out_dir = args.config.out_dir;  // the folder may have moved since
  }
  train::RunOptions options;
  options.resume = args.resume;
  options.overwrite = args.overwrite;
  train::run_training(config, options);
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model (FP32) on Fashion-MNIST");
  std::string models;
  for (const auto& n : models::model_names()) models += (models.empty() ? "" : ", ") + n;
  option(cmd, *args, "--model", &train::TrainConfig::model, "Model: " + models);
  cmd->get_option("--model")->check(CLI::IsMember(models::model_names()));
  option(cmd, *args, "--epochs", &train::TrainConfig::epochs, "Number of epochs");
  option(cmd, *args, "--out", &train::TrainConfig::out_dir, "Output folder (checkpoint.pt, metrics.jsonl, config.json)");
  option(cmd, *args, "--batch-size", &train::TrainConfig::batch_size, "Training batch size");
  option(cmd, *args, "--lr", &train::TrainConfig::lr, "Peak learning rate");
  option(cmd, *args, "--optimizer", &train::TrainConfig::optimizer, "adamw or sgd");
  cmd->get_option("--optimizer")->check(CLI::IsMember({"adamw", "sgd"}));
  option(cmd, *args, "--weight-decay", &train::TrainConfig::weight_decay, "Weight decay (conv/linear weights only)");
  option(cmd, *args, "--momentum", &train::TrainConfig::momentum, "SGD momentum");
  CLI::Option* nesterov = cmd->add_flag("--nesterov", args->config.nesterov, "Nesterov momentum (sgd)");
  args->overrides.emplace_back(nesterov, [](train::TrainConfig& d, const train::TrainConfig& s) { d.nesterov = s.nesterov; });
  option(cmd, *args, "--warmup", &train::TrainConfig::warmup_steps, "Linear warm-up steps (then cosine to zero)");
  option(cmd, *args, "--warmup-fraction", &train::TrainConfig::warmup_fraction, "Warm-up as a fraction of all steps (when --warmup is 0)");
  option(cmd, *args, "--clip-grad", &train::TrainConfig::clip_grad, "Clip gradients to this global L2 norm (0: off)");
  option(cmd, *args, "--seed", &train::TrainConfig::seed, "Random seed (initialisation and shuffling)");
  option(cmd, *args, "--threads", &train::TrainConfig::threads, "CPU threads for torch");
  option(cmd, *args, "--data", &train::TrainConfig::data_dir, "Fashion-MNIST folder (default: $LOWBIT_DATA or /usr/share/datasets/fashion-mnist)");
  option(cmd, *args, "--val-size", &train::TrainConfig::val_size, "Training images held out for validation (the last ones)");
  option(cmd, *args, "--max-steps-per-epoch", &train::TrainConfig::max_steps_per_epoch, "Stop each epoch after this many steps (0: whole epoch), for quick runs");
  cmd->add_flag("--resume", args->resume, "Continue the run in --out from its checkpoint");
  cmd->add_flag("--overwrite", args->overwrite, "Replace an existing checkpoint in --out with a fresh run");
  cmd->callback([args] { run(*args); });
}

}  // namespace lowbit::cli
