// The training loop, shared by FP32 training and QAT.
//
// QAT reuses it unchanged: it passes a Net already prepared for QAT, its own parameter groups
// (e.g. learned quantizer scales with another learning rate and no weight decay), a callback after
// each optimizer step, and its settings in TrainConfig::extra["qat"], which checkpoints store and
// hand back untouched (see checkpoint.h, build_net).
#pragma once
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/fashion_mnist.h"
#include "models/net.h"
#include "train/train_config.h"

namespace lowbit::train {

struct EvalResult {
  double accuracy = 0.0;      // fraction in [0, 1]
  double loss = 0.0;          // mean cross-entropy
  int64_t count = 0;
  torch::Tensor predictions;  // [count] int64, argmax of the logits
};
// Runs in eval mode without autograd and restores the net's previous mode. Batches go to the
// net's device (train/device.h); the results are CPU tensors.
// Batches of 256 keep cnn's largest activation (25 MB) under glibc's mmap threshold.
EvalResult evaluate(models::Net& net, const data::Dataset& data, int64_t batch_size = 256);

// A group of parameters the optimizer treats alike. The group's learning rate is
// config.lr * lr_scale times the schedule's factor.
struct ParamGroup {
  std::string name;  // for messages only
  std::vector<torch::Tensor> params;
  double lr_scale = 1.0;
  std::optional<double> weight_decay;  // unset: config.weight_decay
};
// Weight decay on conv and linear weights (tensors with 2+ dimensions); none on biases and
// batch-norm parameters, whose decay only hurts.
std::vector<ParamGroup> default_param_groups(models::Net& net, const TrainConfig& config);

// The optimizer of config.optimizer over `groups`; base_lrs receives each group's peak rate.
std::unique_ptr<torch::optim::Optimizer> build_optimizer(const TrainConfig& config, const std::vector<ParamGroup>& groups,
                                                        std::vector<double>& base_lrs);

struct EpochMetrics {
  int64_t epoch = 0;  // 1-based: the epoch just finished
  int64_t step = 0;   // optimizer steps so far
  double lr = 0.0;    // learning rate (config.lr * factor) of the last step
  double train_loss = 0.0;
  double train_acc = 0.0;
  double val_loss = 0.0;
  double val_acc = 0.0;
  bool has_validation = true;  // false with --val-size 0: val_loss / val_acc are not measured
  double seconds = 0.0;  // training time of the epoch, validation excluded
  double images_per_s = 0.0;
  // Process CPU time (all threads) of the same interval: on a shared, busy machine the wall
  // time says little, while cpu_seconds / threads approximates the wall time on an idle one.
  double cpu_seconds = 0.0;
  // Data parallelism: bytes this rank all-reduced per optimizer step in the epoch (gradients,
  // flags, observer ranges; 0 in one process). Written to metrics.jsonl only when non-zero.
  int64_t allreduce_bytes_per_step = 0;
};
nlohmann::json to_json(const EpochMetrics& m);

struct TrainHooks {
  // Builds the optimizer's parameter groups; default: default_param_groups.
  std::function<std::vector<ParamGroup>(models::Net&, const TrainConfig&)> param_groups;
  // Called before every training step's forward with the 0-based index of that step (= optimizer
  // steps taken so far, restored by resume) and the run's total number of steps.
  std::function<void(models::Net&, int64_t step, int64_t total_steps)> before_step;
  // Called after every optimizer step with the number of steps taken so far.
  std::function<void(models::Net&, int64_t step)> after_step;
  // Called after every optimizer step with that step's number (1-based) and its detached batch
  // loss (a 0-dim tensor; reading it with .item() syncs, so collect and read later if speed matters).
  std::function<void(int64_t step, const torch::Tensor& loss)> on_loss;
  // Called after each epoch's validation, before the checkpoint is written.
  std::function<void(models::Net&, const EpochMetrics&)> after_epoch;
  // The training loss of a batch from its inputs, the net's logits and the labels (default:
  // cross-entropy with the labels; distillation, train/distillation.h, mixes in a teacher's).
  // Validation and test losses stay cross-entropy.
  std::function<torch::Tensor(const torch::Tensor& inputs, const torch::Tensor& logits, const torch::Tensor& labels)> loss;
};

struct TrainResult {
  std::vector<EpochMetrics> epochs;  // the epochs run by this call
  std::optional<EvalResult> test;
};

class Trainer {
 public:
  // Builds the optimizer over `net`'s parameters. The net may already be prepared for QAT.
  Trainer(models::Net net, TrainConfig config, TrainHooks hooks = {});
  ~Trainer();

  // Restores model, optimizer, epoch, step and RNG states from a checkpoint of this same model.
  void resume(const std::string& checkpoint_path_or_dir);

  // Trains from the current epoch to config.epochs. After each epoch: validation, a line in
  // <out_dir>/metrics.jsonl and <out_dir>/checkpoint.pt (atomically). With `test`, evaluates it at
  // the end. Throws lowbit::Error if the loss becomes NaN/inf (the last good checkpoint stays).
  // stop_after_epoch > 0 stops after that epoch (schedule unchanged, as if interrupted), e.g. to
  // test resuming; the test set is then not evaluated.
  TrainResult fit(const data::Dataset& train, const data::Dataset& validation,
                  const data::Dataset* test = nullptr, int64_t stop_after_epoch = 0);

  // Progress output (default std::cerr): a bar with rate and ETA on a terminal, periodic plain
  // lines otherwise; nullptr is silent.
  void set_log(std::ostream* log) { log_ = log; }
  // Write checkpoint.pt / metrics.jsonl / config.json (default true; tests may turn it off).
  void set_write_files(bool write) { write_files_ = write; }

  models::Net& net() { return net_; }
  const TrainConfig& config() const { return config_; }
  torch::optim::Optimizer& optimizer() { return *optimizer_; }
  int64_t epoch() const { return epoch_; }
  int64_t step() const { return step_; }

 private:
  void set_learning_rate(double factor);
  void clip_gradients();
  void save(const std::string& path);

  models::Net net_;
  TrainConfig config_;
  TrainHooks hooks_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<double> base_lrs_;  // per parameter group
  std::vector<torch::Tensor> params_;
  torch::Device device_{torch::kCPU};  // config_.device: the net, batches and optimizer state live there
  at::Generator shuffle_;
  int64_t epoch_ = 0;
  int64_t step_ = 0;
  std::ostream* log_;
  bool write_files_ = true;
};

// The whole `lowbit train` job (a language model, config.model "gpt-tiny", goes to
// run_lm_training in train/lm_trainer.h): loads Fashion-MNIST (config.data_dir), splits off validation,
// builds the model with build_net (so a "qat" section is honoured), trains and tests.
struct RunOptions {
  bool resume = false;     // continue from <out_dir>/checkpoint.pt
  bool overwrite = false;  // allow a fresh run to replace an existing checkpoint
  std::ostream* log = nullptr;  // nullptr: std::cerr
  // A net to train instead of a freshly built one (e.g. FP32 weights prepared for QAT).
  std::optional<models::Net> initial_net;
};
TrainResult run_training(const TrainConfig& config, const RunOptions& options = {}, const TrainHooks& hooks = {});

// The run folder's checkpoint path, after checking that --resume finds one and that a fresh run
// does not replace one without --overwrite (throws lowbit::Error saying which flag to pass).
std::string checked_checkpoint_path(const TrainConfig& config, const RunOptions& options);

}  // namespace lowbit::train
