// `lowbit eval`: accuracy and loss of a checkpoint on a Fashion-MNIST split.
#include <iomanip>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "data/fashion_mnist.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace lowbit::cli {
namespace {

struct EvalArgs {
  std::string checkpoint;
  std::string data_dir;
  std::string split = "test";
  int64_t batch_size = 256;
  int64_t threads = 2;
  bool json = false;
};

void run(const EvalArgs& args) {
  torch::set_num_threads(static_cast<int>(args.threads));
  const auto info = train::load_checkpoint(args.checkpoint);
  models::Net net = train::load_net(info.path);
  const auto data = data::load_fashion_mnist(data::resolve_data_dir(args.data_dir), args.split);
  const auto r = train::evaluate(net, data, args.batch_size);
  if (args.json) {
    nlohmann::json j = {{"accuracy", r.accuracy}, {"loss", r.loss},       {"count", r.count},
                        {"model", info.model_name}, {"epoch", info.epoch}, {"split", args.split},
                        {"checkpoint", info.path}};
    std::cout << j.dump() << "\n";
  } else {
    const auto correct = static_cast<int64_t>(std::llround(r.accuracy * static_cast<double>(r.count)));
    std::cout << info.model_name << " (epoch " << info.epoch << ", " << info.path << ")\n"
              << args.split << ": accuracy " << std::fixed << std::setprecision(2) << 100.0 * r.accuracy << "% ("
              << correct << "/" << r.count << "), loss " << std::setprecision(4) << r.loss << "\n";
  }
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate a checkpoint on Fashion-MNIST");
  cmd->add_option("--checkpoint", args->checkpoint, "checkpoint.pt or the run folder holding it")->required();
  cmd->add_option("--data", args->data_dir, "Fashion-MNIST folder (default: $LOWBIT_DATA or /usr/share/datasets/fashion-mnist)");
  cmd->add_option("--split", args->split, "test or train")->check(CLI::IsMember({"test", "train"}))->capture_default_str();
  cmd->add_option("--batch-size", args->batch_size, "Evaluation batch size")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--threads", args->threads, "CPU threads for torch")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_flag("--json", args->json, "Print one JSON object (accuracy, loss, count, ...) instead of a summary");
  cmd->callback([args] { run(*args); });
}

}  // namespace lowbit::cli
