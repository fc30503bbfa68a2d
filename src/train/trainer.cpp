#include "train/trainer.h"

#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "base/atomic_file.h"
#include "report/run_provenance.h"
#include "base/error.h"
#include "data/augment.h"
#include "data/input_normalisation.h"
#include "data/load_dataset.h"
#include "train/compute_threads.h"
#include "train/data_fit.h"
#include "train/device.h"
#include "train/checkpoint.h"
#include "train/distributed.h"
#include "train/gradient_allreduce.h"
#include "models/sync_batch_norm.h"
#include "train/lm_trainer.h"

namespace lowbit::train {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string format_duration(double s) {
  const auto total = static_cast<int64_t>(std::max(0.0, s) + 0.5);
  std::ostringstream o;
  o << total / 60 << ":" << std::setw(2) << std::setfill('0') << total % 60;
  return o.str();
}

// A bar redrawn in place on a terminal; on a pipe or file, a plain line every quarter epoch.
class Progress {
 public:
  Progress(std::ostream* log, int64_t epoch, int64_t epochs, int64_t steps)
      : log_(log), epoch_(epoch), epochs_(epochs), steps_(steps), start_(Clock::now()), last_draw_(start_) {
    tty_ = log_ == &std::cerr && ::isatty(STDERR_FILENO) != 0;
  }

  // `stats` is only evaluated when a line is drawn: it syncs with the computation (.item()).
  template <typename StatsFn>
  void update(int64_t done, int64_t images, StatsFn stats) {
    if (log_ == nullptr) return;
    const bool last = done == steps_;
    if (tty_) {
      if (!last && std::chrono::duration<double>(Clock::now() - last_draw_).count() < 0.25) return;
    } else {
      const int64_t every = std::max<int64_t>(1, steps_ / 4);
      // A line per quarter; the last quarter's line is the final one.
      if (!last && (done % every != 0 || steps_ - done < every)) return;
    }
    last_draw_ = Clock::now();
    const double elapsed = seconds_since(start_);
    const double rate = elapsed > 0 ? static_cast<double>(images) / elapsed : 0.0;
    const double eta = done > 0 ? elapsed * static_cast<double>(steps_ - done) / static_cast<double>(done) : 0.0;
    const auto [loss, acc] = stats();
    std::ostringstream line;
    line << "epoch " << epoch_ << "/" << epochs_ << " ";
    if (tty_) {
      constexpr int kWidth = 24;
      const int filled = static_cast<int>(kWidth * done / std::max<int64_t>(1, steps_));
      line << "[" << std::string(static_cast<size_t>(filled), '#') << std::string(static_cast<size_t>(kWidth - filled), '.')
           << "] ";
    }
    line << done << "/" << steps_ << " loss " << std::fixed << std::setprecision(4) << loss << " acc "
         << std::setprecision(2) << 100.0 * acc << "% " << std::setprecision(0) << rate << " img/s ETA "
         << format_duration(eta);
    if (tty_) {
      *log_ << "\r" << line.str() << "\033[K" << (last ? "\n" : "") << std::flush;
    } else {
      *log_ << line.str() << "\n" << std::flush;
    }
  }

 private:
  std::ostream* log_;
  int64_t epoch_, epochs_, steps_;
  Clock::time_point start_, last_draw_;
  bool tty_ = false;
};

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& c, const std::vector<ParamGroup>& groups,
                                                        std::vector<double>& base_lrs) {
  std::vector<torch::optim::OptimizerParamGroup> torch_groups;
  for (const auto& g : groups) {
    LOWBIT_CHECK(!g.params.empty(), "parameter group '" + g.name + "' is empty");
    const double lr = c.lr * g.lr_scale;
    const double wd = g.weight_decay.value_or(c.weight_decay);
    base_lrs.push_back(lr);
    if (c.optimizer == "adamw") {
      torch_groups.emplace_back(g.params, std::make_unique<torch::optim::AdamWOptions>(
                                              torch::optim::AdamWOptions(lr).weight_decay(wd)));
    } else {
      torch_groups.emplace_back(g.params, std::make_unique<torch::optim::SGDOptions>(
                                              torch::optim::SGDOptions(lr).momentum(c.momentum).nesterov(c.nesterov).weight_decay(wd)));
    }
  }
  if (c.optimizer == "adamw") {
    return std::make_unique<torch::optim::AdamW>(torch_groups, torch::optim::AdamWOptions(c.lr).weight_decay(c.weight_decay));
  }
  return std::make_unique<torch::optim::SGD>(
      torch_groups, torch::optim::SGDOptions(c.lr).momentum(c.momentum).nesterov(c.nesterov).weight_decay(c.weight_decay));
}

std::string metrics_path(const TrainConfig& c) { return c.out_dir + "/metrics.jsonl"; }

// Lines of an existing metrics.jsonl up to `epoch` (a resumed run drops what came after its
// checkpoint, e.g. epochs of a run that crashed later).
std::string metrics_up_to(const std::string& path, int64_t epoch) {
  if (!std::filesystem::exists(path)) return "";
  std::istringstream in(read_whole_file(path));
  std::string kept, line;
  while (std::getline(in, line)) {
    try {
      auto j = nlohmann::json::parse(line);
      if (j.value("epoch", int64_t{0}) <= epoch && !j.contains("test_acc")) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {
      // a torn last line from a crash: drop it
    }
  }
  return kept;
}

// glibc serves blocks above its (adaptive) mmap threshold with fresh mmap/munmap, so large
// activations (12 MB for cnn's first conv at batch 128) can be page-faulted and zeroed again by
// the kernel at every step; kernel page-fault time was the largest single item in a profile of
// `lowbit train`. Keeping such blocks in the heap and not trimming it reuses the same pages.
void keep_freed_memory_for_reuse() {
  static const bool done = [] {
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);  // glibc's maximum on 64-bit
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
    mallopt(M_TOP_PAD, 64 * 1024 * 1024);
    return true;
  }();
  (void)done;
}

}  // namespace

std::unique_ptr<torch::optim::Optimizer> build_optimizer(const TrainConfig& config, const std::vector<ParamGroup>& groups,
                                                         std::vector<double>& base_lrs) {
  return make_optimizer(config, groups, base_lrs);
}

nlohmann::json to_json(const EpochMetrics& m) {
  nlohmann::json j = {{"epoch", m.epoch},           {"step", m.step},           {"lr", m.lr},
                      {"train_loss", m.train_loss}, {"train_acc", m.train_acc}, {"val_loss", m.val_loss},
                      {"val_acc", m.val_acc},       {"seconds", m.seconds},     {"images_per_s", m.images_per_s},
                      {"cpu_seconds", m.cpu_seconds}};
  if (m.allreduce_bytes_per_step > 0) j["allreduce_bytes_per_step"] = m.allreduce_bytes_per_step;
  if (!m.has_validation) {  // --val-size 0: no validation numbers rather than zeros
    j["val_loss"] = nullptr;
    j["val_acc"] = nullptr;
  }
  return j;
}

EvalResult evaluate(models::Net& net, const data::Dataset& data, int64_t batch_size) {
  LOWBIT_CHECK(batch_size > 0, "evaluation batch size must be positive, got " + std::to_string(batch_size));
  EvalResult r;
  r.count = data.size();
  if (r.count == 0) {
    r.predictions = torch::empty({0}, torch::kInt64);
    return r;
  }
  keep_freed_memory_for_reuse();
  const bool was_training = net->is_training();
  net->eval();
  torch::NoGradGuard no_grad;
  const torch::Device device = module_device(*net);
  std::vector<torch::Tensor> preds;
  auto loss_sum = torch::zeros({}, torch::TensorOptions(torch::kFloat64).device(device));
  for (int64_t start = 0; start < r.count; start += batch_size) {
    const int64_t n = std::min(batch_size, r.count - start);
    auto logits = net->forward(data.images.narrow(0, start, n).to(device));
    auto labels = data.labels.narrow(0, start, n).to(device);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .to(torch::kFloat64);
    preds.push_back(logits.argmax(1));
  }
  r.predictions = torch::cat(preds).cpu();
  r.loss = loss_sum.item<double>() / static_cast<double>(r.count);
  r.accuracy = r.predictions.eq(data.labels).sum().item<double>() / static_cast<double>(r.count);
  net->train(was_training);
  return r;
}

std::vector<ParamGroup> default_param_groups(models::Net& net, const TrainConfig& config) {
  ParamGroup decay{"weights", {}, 1.0, std::nullopt};
  ParamGroup no_decay{"biases_and_norms", {}, 1.0, 0.0};
  for (auto& p : net->parameters()) {
    if (!p.requires_grad()) continue;
    (p.dim() >= 2 ? decay : no_decay).params.push_back(p);
  }
  std::vector<ParamGroup> groups;
  if (!decay.params.empty()) groups.push_back(std::move(decay));
  if (!no_decay.params.empty()) groups.push_back(std::move(no_decay));
  return groups;
}

Trainer::Trainer(models::Net net, TrainConfig config, TrainHooks hooks)
    : net_(std::move(net)), config_(std::move(config)), hooks_(std::move(hooks)), log_(&std::cerr) {
  config_.validate();
  LOWBIT_CHECK(net_->model_name() == config_.model,
               "the net is model '" + net_->model_name() + "' but the config says '" + config_.model + "'");
  device_ = usable_training_device(config_.device);
  net_->to(device_);  // before the optimizer sees the parameters (Module::to keeps their identity)
  auto groups = hooks_.param_groups ? hooks_.param_groups(net_, config_) : default_param_groups(net_, config_);
  LOWBIT_CHECK(!groups.empty(), "model '" + config_.model + "' has no trainable parameters");
  for (const auto& g : groups) params_.insert(params_.end(), g.params.begin(), g.params.end());
  optimizer_ = make_optimizer(config_, groups, base_lrs_);
  shuffle_ = at::make_generator<at::CPUGeneratorImpl>(config_.seed);
}

Trainer::~Trainer() = default;

void Trainer::resume(const std::string& checkpoint_path_or_dir) {
  TrainingState state;
  state.optimizer = optimizer_.get();
  state.shuffle_generator = &shuffle_;
  restore_checkpoint(checkpoint_path_or_dir, net_, state);
  // Checkpoints hold CPU tensors: back onto this run's device, whichever device wrote them.
  net_->to(device_);
  move_optimizer_state(*optimizer_, device_);
  epoch_ = state.epoch;
  step_ = state.step;
}

void Trainer::set_learning_rate(double factor) {
  auto& groups = optimizer_->param_groups();
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(base_lrs_[i] * factor);
}

// Clip by global L2 norm without a host sync: the scale is computed and applied as tensors.
void Trainer::clip_gradients() {
  std::vector<torch::Tensor> norms;
  for (auto& p : params_) {
    if (p.grad().defined()) norms.push_back(p.grad().norm());
  }
  if (norms.empty()) return;
  auto total = torch::stack(norms).norm();
  auto scale = (config_.clip_grad / (total + 1e-6)).clamp_max(1.0);
  for (auto& p : params_) {
    if (p.grad().defined()) p.mutable_grad().mul_(scale);
  }
}

void Trainer::save(const std::string& path) {
  TrainingState state;
  state.optimizer = optimizer_.get();
  state.shuffle_generator = &shuffle_;
  state.epoch = epoch_;
  state.step = step_;
  state.config = to_json(config_);
  CpuForSaving on_cpu(*net_, optimizer_.get());  // checkpoints always hold CPU tensors
  save_checkpoint(path, net_, state);
}

TrainResult Trainer::fit(const data::Dataset& train, const data::Dataset& validation, const data::Dataset* test,
                         int64_t stop_after_epoch) {
  LOWBIT_CHECK(train.size() > 0, "the training set is empty");
  set_compute_threads(threads_from_environment(config_.threads));
  keep_freed_memory_for_reuse();
  const int64_t n = train.size();
  const int64_t spe = steps_per_epoch(config_, n);
  const int64_t total_steps = spe * config_.epochs;
  const int64_t warmup = warmup_steps(config_, total_steps);
  const data::AugmentOptions augment =
      data::AugmentOptions::from_json(config_.extra.value("augment", nlohmann::json(nullptr)));

  // Data parallelism (docs/distributed.md): every rank draws the same permutation, takes its
  // shard of each global batch, and the summed gradients make every rank take the step the
  // single process takes on the whole batch. Only rank 0 writes files and prints.
  DistributedContext& dist = distributed();
  const int world = dist.world_size();
  const bool write_files = write_files_ && dist.is_main();
  std::ostream* const log = dist.is_main() ? log_ : nullptr;
  if (dist.active()) {
    const int64_t last_batch = std::min(config_.batch_size, n - (spe - 1) * config_.batch_size);
    LOWBIT_CHECK(last_batch >= world, "every rank needs at least one image of every batch, but a batch of " +
                                          std::to_string(last_batch) + " is split across WORLD_SIZE=" +
                                          std::to_string(world) + " ranks; use a larger --batch-size or fewer processes");
    broadcast_module_from_main(dist, *net_);  // the same start on every rank (fresh or resumed)
  }
  // SyncBN (models/sync_batch_norm.h): live batch norm normalises with the global batch's
  // statistics, so every rank's running averages stay equal to one process's.
  const bool sync_bn = dist.active() && config_.sync_bn;
  std::optional<models::BatchNormAllreduceGuard> sync_bn_guard;
  if (sync_bn) {
    sync_bn_guard.emplace([&dist](torch::Tensor& t) {
      std::vector<torch::Tensor> one{t};
      dist.allreduce_sum(one);
    });
  }
  // The gradient sum over the ranks, overlapped with backward (train/gradient_allreduce.h).
  GradientAllreduce gradient_sum(dist, in_backward_order(net_->parameters(), params_));

  std::string metrics;
  if (write_files) {
    std::filesystem::create_directories(config_.out_dir);
    metrics = metrics_up_to(metrics_path(config_), epoch_);
    write_file_atomically(config_.out_dir + "/config.json", with_provenance(to_json(config_)).dump(2) + "\n");
  }

  TrainResult result;
  net_->train();
  const int64_t last_epoch = stop_after_epoch > 0 ? std::min(stop_after_epoch, config_.epochs) : config_.epochs;
  for (; epoch_ < last_epoch;) {
    Progress progress(log, epoch_ + 1, config_.epochs, spe);
    const auto t0 = Clock::now();
    const std::clock_t cpu0 = std::clock();
    const int64_t allreduced0 = dist.bytes_allreduced();
    const auto perm = torch::randperm(n, shuffle_, torch::kInt64);
    // Running sums stay tensors so that a step never waits for a .item() sync.
    auto loss_sum = torch::zeros({}, torch::TensorOptions(torch::kFloat64).device(device_));
    auto correct = torch::zeros({}, torch::TensorOptions(torch::kInt64).device(device_));
    int64_t seen = 0;
    double lr = 0.0;
    for (int64_t s = 0; s < spe; ++s) {
      const int64_t global_bs = std::min(config_.batch_size, n - s * config_.batch_size);
      const auto [shard_offset, bs] = shard_of_batch(global_bs, dist.rank(), world);
      const auto idx = perm.narrow(0, s * config_.batch_size + shard_offset, bs);
      // Augmentation (off by default) draws from (seed, step): a resumed run draws the same.
      const auto x = data::augment_batch(train.images.index_select(0, idx), augment, config_.seed, step_,
                                         shard_offset, global_bs)
                         .to(device_);
      const auto y = train.labels.index_select(0, idx).to(device_);

      const double factor = lr_factor(step_, warmup, total_steps);
      set_learning_rate(factor);
      lr = config_.lr * factor;

      if (hooks_.before_step) hooks_.before_step(net_, step_, total_steps);
      auto logits = net_->forward(x);
      auto loss = hooks_.loss ? hooks_.loss(x, logits, y) : torch::nn::functional::cross_entropy(logits, y);
      for (auto& p : params_) p.mutable_grad().reset();  // set_to_none: backward allocates fresh
      gradient_sum.backward(loss, bs, global_bs);  // gradients of the global batch's mean loss
      if (config_.clip_grad > 0) clip_gradients();
      optimizer_->step();
      ++step_;
      if (hooks_.after_step) hooks_.after_step(net_, step_);
      if (hooks_.on_loss) hooks_.on_loss(step_, loss.detach());

      {
        torch::NoGradGuard no_grad;
        loss_sum += loss.detach().to(torch::kFloat64) * static_cast<double>(bs);
        correct += logits.detach().argmax(1).eq(y).sum();
      }
      seen += bs;
      progress.update(s + 1, seen, [&] {
        return std::pair<double, double>(loss_sum.item<double>() / static_cast<double>(seen),
                                         correct.item<double>() / static_cast<double>(seen));
      });
    }
    const int64_t allreduced_per_step = (dist.bytes_allreduced() - allreduced0) / std::max<int64_t>(1, spe);
    allreduce_metric_sums(dist, loss_sum, correct, seen);  // the epoch's metrics over all ranks' shards
    // Per-shard batch-norm statistics (--no-sync-bn): rank 0's running averages are the ones kept
    // (and saved). With SyncBN every rank's are equal already.
    if (!sync_bn) broadcast_module_from_main(dist, *net_, /*parameters=*/false);
    EpochMetrics m;
    m.seconds = seconds_since(t0);
    m.cpu_seconds = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
    m.epoch = epoch_ + 1;
    m.step = step_;
    m.lr = lr;
    m.train_loss = loss_sum.item<double>() / static_cast<double>(seen);
    m.train_acc = correct.item<double>() / static_cast<double>(seen);
    m.images_per_s = static_cast<double>(seen) / std::max(1e-9, m.seconds);
    m.allreduce_bytes_per_step = allreduced_per_step;
    LOWBIT_CHECK(std::isfinite(m.train_loss),
                 "training diverged in epoch " + std::to_string(m.epoch) + " (loss " + std::to_string(m.train_loss) +
                     "); the checkpoint of epoch " + std::to_string(epoch_) +
                     " is kept. Lower --lr or set --clip-grad");
    m.has_validation = validation.size() > 0;
    if (m.has_validation) {
      const auto v = evaluate(net_, validation, config_.eval_batch_size);
      m.val_loss = v.loss;
      m.val_acc = v.accuracy;
    }
    if (hooks_.after_epoch) hooks_.after_epoch(net_, m);
    ++epoch_;
    result.epochs.push_back(m);
    if (log != nullptr) {
      *log << "epoch " << m.epoch << "/" << config_.epochs << " done: train loss " << std::fixed
            << std::setprecision(4) << m.train_loss << " acc " << std::setprecision(2) << 100 * m.train_acc << "% | ";
      if (validation.size() > 0) {
        *log << "val loss " << std::setprecision(4) << m.val_loss << " acc " << std::setprecision(2) << 100 * m.val_acc
              << "% | ";
      } else {
        *log << "no validation set | ";
      }
      *log << std::setprecision(1) << m.seconds << " s, " << std::setprecision(0)
            << m.images_per_s << " img/s (cpu " << std::setprecision(1) << m.cpu_seconds << " s)\n"
            << std::flush;
    }
    if (write_files) {
      metrics += to_json(m).dump() + "\n";
      write_file_atomically(metrics_path(config_), metrics);
      save(config_.out_dir + "/checkpoint.pt");
    }
  }
  if (test != nullptr && epoch_ == config_.epochs) {
    result.test = evaluate(net_, *test, config_.eval_batch_size);
    if (write_files) {
      nlohmann::json line = {{"epoch", epoch_},
                             {"step", step_},
                             {"test_loss", result.test->loss},
                             {"test_acc", result.test->accuracy},
                             {"test_count", result.test->count}};
      metrics += line.dump() + "\n";
      write_file_atomically(metrics_path(config_), metrics);
    }
    if (log != nullptr) {
      *log << "test: accuracy " << std::fixed << std::setprecision(2) << 100 * result.test->accuracy << "% loss "
            << std::setprecision(4) << result.test->loss << " (" << result.test->count << " images)\n"
            << std::flush;
    }
  }
  return result;
}

std::string checked_checkpoint_path(const TrainConfig& config, const RunOptions& options) {
  const std::string ckpt = config.out_dir + "/checkpoint.pt";
  const bool exists = std::filesystem::exists(ckpt);
  if (options.resume) {
    LOWBIT_CHECK(exists, "no checkpoint to resume in '" + config.out_dir + "' (run without --resume to start fresh)");
  } else {
    LOWBIT_CHECK(!exists || options.overwrite,
                 "'" + ckpt + "' already exists; pass --resume to continue that run, --overwrite to replace it, "
                 "or choose another --out folder");
  }
  return ckpt;
}

TrainResult run_training(const TrainConfig& config, const RunOptions& options, const TrainHooks& hooks) {
  if (config.model == "gpt-tiny") return run_lm_training(config, options, hooks);  // train/lm_trainer.h
  config.validate();
  // --device cuda without CUDA fails here, before any work; the process group (below) needs it.
  set_process_training_device(usable_training_device(config.device));
  distributed();  // rendezvous first: a bad MASTER_ADDR or port fails before data is loaded
  // Other ranks neither write nor need the run folder of a fresh run (it may be on rank 0's host).
  const std::string ckpt = distributed().is_main() || options.resume ? checked_checkpoint_path(config, options)
                                                                       : config.out_dir + "/checkpoint.pt";
  // --data: Fashion-MNIST's folder by default, or any source of data/dataset_source.h. The "data"
  // section keeps the layout choice and, for image folders, the class names (index order).
  TrainConfig run_config = config;
  nlohmann::json data_section = run_config.extra.value("data", nlohmann::json::object());
  const std::string layout = data_section.value("layout", std::string("auto"));
  data::RawDataset raw_train = data::load_raw_dataset(config.data_dir, "train", layout);
  if (raw_train.count > 0)  // --mean/--std: one value per channel of these images, or one for all
    data::InputNormalisation::from_run_config(run_config.extra).validate(raw_train.channels);
  if (!raw_train.classes.empty()) {
    data_section["classes"] = raw_train.classes;
    run_config.extra["data"] = data_section;
  }
  const std::string data_name = raw_train.spec;
  const auto full = data::to_dataset(raw_train);
  raw_train = data::RawDataset{};  // the tensors own a copy
  const auto split = data::split_train_validation(full, config.val_size);
  const auto test = data::load_dataset(config.data_dir, "test", layout);

  {
    // The check runs an FP32 twin of the model: a QAT net's observers must not see this example.
    nlohmann::json fp32 = to_json(run_config);
    fp32.erase("qat");
    models::Net probe = build_net(fp32);
    check_model_fits_data(probe, split.train, config.data_dir);
  }
  torch::manual_seed(config.seed);  // model initialisation is deterministic per seed
  models::Net net = options.initial_net ? *options.initial_net : build_net(to_json(run_config));
  LOWBIT_CHECK(test.size() == 0 || test.images.sizes().slice(1) == full.images.sizes().slice(1),
               "data '" + data_name + "': test examples have shape " + data::example_shape_string(test) +
                   " but training examples " + data::example_shape_string(full) + "; both splits need one shape");
  Trainer trainer(net, run_config, hooks);
  if (options.log != nullptr) trainer.set_log(options.log);
  if (options.resume) trainer.resume(ckpt);
  return trainer.fit(split.train, split.validation, &test);
}

}  // namespace lowbit::train
