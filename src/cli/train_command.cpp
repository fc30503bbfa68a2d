// `lowbit train`: FP32 training of a zoo model on Fashion-MNIST (see train/trainer.h).
#include <algorithm>
#include <filesystem>
#include <memory>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/data_flags.h"
#include "models/net.h"
#include "models/vit.h"
#include "train/checkpoint.h"
#include "train/device.h"
#include "train/lm_trainer.h"
#include "train/trainer.h"

namespace lowbit::cli {
namespace {

struct TrainArgs {
  train::TrainConfig config;
  bool resume = false;
  bool overwrite = false;
  DataFlags data;  // --layout, --augment-crop, --augment-flip
  // Options given on the command line, with how to copy each onto a config: on --resume the
  // checkpoint's config is the base and only these override it.
  std::vector<std::pair<CLI::Option*, std::function<void(train::TrainConfig&, const train::TrainConfig&)>>> overrides;
  // Language-model flags (gpt-tiny), stored in the config's "lm" section: flag -> key.
  struct LmOption {
    CLI::Option* option;
    std::string key;
    std::function<nlohmann::json()> value;
  };
  std::vector<LmOption> lm_options;
};

// Defaults that suit gpt-tiny where the image models' defaults do not (RESEARCH.md section 8:
// AdamW 3e-3, cosine, batch 32); flags given on the command line win.
// vit-tiny: the usual transformer recipe (AdamW with some weight decay, warm-up, clipping) on the
// image models' batch size and learning rate; flags given on the command line win.
void apply_vit_defaults(train::TrainConfig& c, const CLI::App* cmd) {
  auto given = [&](const char* flag) { return cmd->get_option(flag)->count() > 0; };
  if (!given("--weight-decay")) c.weight_decay = 0.05;
  if (!given("--clip-grad")) c.clip_grad = 1.0;
  if (!given("--warmup") && !given("--warmup-fraction")) c.warmup_fraction = 0.05;
}

// The model-size flags vit-tiny takes (its "vit" section); the other --text ... flags are gpt-tiny's.
const std::vector<std::string>& vit_keys() {
  static const std::vector<std::string> keys{"layers", "width", "heads", "patch"};
  return keys;
}

// The "vit" section from the defaults (or `base`) and the flags given; throws for a gpt-tiny flag.
nlohmann::json vit_section(nlohmann::json base, const nlohmann::json& flags) {
  for (auto it = flags.begin(); it != flags.end(); ++it) {
    const bool ok = std::find(vit_keys().begin(), vit_keys().end(), it.key()) != vit_keys().end();
    LOWBIT_CHECK(ok, "--" + it.key() + " is a gpt-tiny flag; vit-tiny takes --layers, --width, --heads and --patch");
    base[it.key()] = it.value();
  }
  models::VitOptions::from_json(base).validate();
  return base;
}

void apply_lm_defaults(train::TrainConfig& c, const CLI::App* cmd) {
  auto given = [&](const char* flag) { return cmd->get_option(flag)->count() > 0; };
  if (!given("--lr")) c.lr = 3e-3;
  if (!given("--batch-size")) c.batch_size = 32;
  if (!given("--weight-decay")) c.weight_decay = 0.1;
  if (!given("--clip-grad")) c.clip_grad = 1.0;
  if (!given("--warmup") && !given("--warmup-fraction")) c.warmup_fraction = 0.05;
  if (!given("--epochs")) c.epochs = 1;
}

template <typename T>
void option(CLI::App* cmd, TrainArgs& args, const std::string& name, T train::TrainConfig::*field,
            const std::string& help) {
  CLI::Option* opt = cmd->add_option(name, args.config.*field, help)->capture_default_str();
  args.overrides.emplace_back(opt, [field](train::TrainConfig& dst, const train::TrainConfig& src) { dst.*field = src.*field; });
}

nlohmann::json given_lm_flags(const TrainArgs& args) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& o : args.lm_options) {
    if (o.option->count() > 0) j[o.key] = o.value();
  }
  return j;
}

void run(const TrainArgs& args, const CLI::App* cmd) {
  train::TrainConfig config = args.config;
  nlohmann::json lm_flags = given_lm_flags(args);
  if (lm_flags.contains("text") && !lm_flags["text"].get<std::string>().empty())
    lm_flags["text"] = std::filesystem::absolute(lm_flags["text"].get<std::string>()).string();
  if (!args.resume && config.model == "vit-tiny") {
    apply_vit_defaults(config, cmd);
    config.extra["vit"] = vit_section(models::VitOptions{}.to_json(), lm_flags);
  } else if (!args.resume && config.model == "gpt-tiny") {
    LOWBIT_CHECK(!lm_flags.contains("patch"), "--patch is a vit-tiny flag; gpt-tiny reads bytes, not image patches");
    apply_lm_defaults(config, cmd);
    nlohmann::json lm = train::LmSettings{}.to_json();
    lm.update(lm_flags);
    train::LmSettings::from_json(lm).validate();
    config.extra["lm"] = lm;
  } else if (!args.resume && !lm_flags.empty()) {
    throw Error("--" + std::string(lm_flags.begin().key()) + " is a gpt-tiny / vit-tiny flag; model '" + config.model +
                "' has fixed sizes (use --model gpt-tiny for text, --model vit-tiny for a sized image transformer)");
  }
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
    if (config.model == "vit-tiny") {
      const nlohmann::json vit = config.extra.value("vit", nlohmann::json::object());
      if (vit_section(vit, lm_flags) != vit)  // also rejects gpt-tiny flags
        throw Error("--resume: --layers, --width, --heads and --patch must equal the checkpoint's; start a new run to change them");
    }
    if (config.model == "gpt-tiny") {
      nlohmann::json lm = config.extra.value("lm", nlohmann::json::object());
      for (const char* fixed : {"layers", "width", "heads", "context", "hidden", "text"}) {
        if (lm_flags.contains(fixed) && lm_flags[fixed] != lm.value(fixed, lm_flags[fixed]))
          throw Error(std::string("--resume: --") + fixed + " differs from the checkpoint's; start a new run to change it");
      }
      lm.update(lm_flags);  // e.g. more --steps
      config.extra["lm"] = lm;
    }
  }
  apply_data_flags(config.extra, args.data, args.resume);
  train::usable_training_device(config.device);  // --device cuda without CUDA: fail before any work
  train::RunOptions options;
  options.resume = args.resume;
  options.overwrite = args.overwrite;
  train::run_training(config, options);
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model (FP32) on Fashion-MNIST or --data (CNNs, vit-tiny), or gpt-tiny on text");
  std::string models;
  for (const auto& n : models::all_model_names()) models += (models.empty() ? "" : ", ") + n;
  option(cmd, *args, "--model", &train::TrainConfig::model, "Model: " + models);
  cmd->get_option("--model")->check(CLI::IsMember(models::all_model_names()));
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
  option(cmd, *args, "--device", &train::TrainConfig::device,
         "Where training computes: cpu, cuda or cuda:N (needs a CUDA build of LibTorch; checkpoints are always "
         "written with CPU tensors, so --resume may change it)");
  option(cmd, *args, "--data", &train::TrainConfig::data_dir, data_flag_help());
  add_data_flags(cmd, args->data);
  option(cmd, *args, "--val-size", &train::TrainConfig::val_size, "Training images held out for validation (the last ones)");
  option(cmd, *args, "--max-steps-per-epoch", &train::TrainConfig::max_steps_per_epoch, "Stop each epoch after this many steps (0: whole epoch), for quick runs");
  auto lm_option = [&](const std::string& flag, const std::string& key, auto default_value, const std::string& help) {
    using T = decltype(default_value);
    auto value = std::make_shared<T>(default_value);
    CLI::Option* opt = cmd->add_option(flag, *value, help)->capture_default_str();
    args->lm_options.push_back({opt, key, [value] { return nlohmann::json(*value); }});
  };
  const train::LmSettings lm_defaults;
  lm_option("--text", "text", std::string(), "gpt-tiny: UTF-8 text file or folder to train on (default: the Debian 'fortunes' texts, docs/transformers.md)");
  lm_option("--steps", "steps", lm_defaults.steps, "gpt-tiny: optimizer steps (0: --epochs passes over the text)");
  const models::VitOptions vit_defaults;
  lm_option("--layers", "layers", lm_defaults.model.layers,
            "gpt-tiny, vit-tiny: transformer blocks (vit-tiny default " + std::to_string(vit_defaults.layers) + ")");
  lm_option("--width", "width", lm_defaults.model.width,
            "gpt-tiny, vit-tiny: model width (vit-tiny default " + std::to_string(vit_defaults.width) + ")");
  lm_option("--heads", "heads", lm_defaults.model.heads,
            "gpt-tiny, vit-tiny: attention heads, dividing the width (vit-tiny default " + std::to_string(vit_defaults.heads) + ")");
  lm_option("--patch", "patch", vit_defaults.patch, "vit-tiny: patch size, a divisor of 28 (4: 7 x 7 = 49 tokens)");
  lm_option("--context", "context", lm_defaults.model.context, "gpt-tiny: context length in bytes");
  lm_option("--eval-interval", "eval_interval", lm_defaults.eval_interval, "gpt-tiny: validate and checkpoint every this many steps (0: a tenth of the run)");
  lm_option("--eval-windows", "eval_windows", lm_defaults.eval_windows, "gpt-tiny: validation windows measured (0: the whole validation split)");
  CLI::Option* no_sync_bn = cmd->add_flag_callback("--no-sync-bn", [args] { args->config.sync_bn = false; },
                                                  "Multi-process runs: batch norm with each rank's shard statistics "
                                                  "instead of the global batch's (SyncBN, the default)");
  args->overrides.emplace_back(no_sync_bn, [](train::TrainConfig& d, const train::TrainConfig& s) { d.sync_bn = s.sync_bn; });
  cmd->add_flag("--resume", args->resume, "Continue the run in --out from its checkpoint");
  cmd->add_flag("--overwrite", args->overwrite, "Replace an existing checkpoint in --out with a fresh run");
  cmd->callback([args, cmd] { run(*args, cmd); });
}

}  // namespace lowbit::cli
