#include "train/lm_trainer.h"

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "base/atomic_file.h"
#include "report/run_provenance.h"
#include "base/error.h"
#include "base/json_value.h"
#include "train/checkpoint.h"
#include "train/compute_threads.h"
#include "train/device.h"
#include "train/distributed.h"
#include "train/gradient_allreduce.h"

namespace lowbit::train {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kVocab = 256;

const std::vector<std::string>& lm_keys() {
  static const std::vector<std::string> keys{"layers", "width", "heads", "context", "hidden", "rope_base",
                                             "text",   "steps", "eval_interval", "val_fraction", "eval_windows"};
  return keys;
}

// Lines of an existing metrics.jsonl up to optimizer step `step` (a resumed run drops the rest).
std::string metrics_up_to_step(const std::string& path, int64_t step) {
  if (!std::filesystem::exists(path)) return "";
  std::istringstream in(read_whole_file(path));
  std::string kept, line;
  while (std::getline(in, line)) {
    try {
      if (nlohmann::json::parse(line).value("step", int64_t{0}) <= step) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {
      // a torn last line from a crash: drop it
    }
  }
  return kept;
}

torch::Tensor cross_entropy_bytes(const torch::Tensor& logits, const torch::Tensor& targets, bool sum) {
  namespace F = torch::nn::functional;
  auto options = F::CrossEntropyFuncOptions();
  if (sum) options.reduction(torch::kSum);
  return F::cross_entropy(logits.reshape({-1, kVocab}), targets.reshape({-1}), options);
}

std::string fmt(double v, int precision) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(precision) << v;
  return o.str();
}

}  // namespace

nlohmann::json LmSettings::to_json() const {
  nlohmann::json j = model.to_json();
  j["text"] = text;
  j["steps"] = steps;
  j["eval_interval"] = eval_interval;
  j["val_fraction"] = val_fraction;
  j["eval_windows"] = eval_windows;
  return j;
}

LmSettings LmSettings::from_json(const nlohmann::json& j) {
  LmSettings s;
  if (j.is_null()) return s;
  LOWBIT_CHECK(j.is_object(), "training config section 'lm' must be an object, got " + j.dump().substr(0, 80));
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const auto& k : lm_keys()) known = known || k == it.key();
    if (!known) {
      std::string list;
      for (const auto& k : lm_keys()) list += (list.empty() ? "" : ", ") + k;
      throw Error("unknown key '" + it.key() + "' in training config section 'lm' (known keys: " + list + ")");
    }
  }
  s.model = models::GptOptions::from_json(j);
  auto read = [&](const char* key, auto& field) { read_json_key(j, key, field, "training config section 'lm'"); };
  read("text", s.text);
  read("steps", s.steps);
  read("eval_interval", s.eval_interval);
  read("val_fraction", s.val_fraction);
  read("eval_windows", s.eval_windows);
  return s;
}

void LmSettings::validate() const {
  model.validate();
  LOWBIT_CHECK(steps >= 0, "lm: steps (--steps) = " + std::to_string(steps) + " is invalid; use 0 (by --epochs) or more");
  LOWBIT_CHECK(eval_interval >= 0, "lm: eval_interval (--eval-interval) must be >= 0 (0: a tenth of the run)");
  LOWBIT_CHECK(val_fraction > 0 && val_fraction < 1, "lm: val_fraction must be in (0, 1)");
  LOWBIT_CHECK(eval_windows >= 0, "lm: eval_windows (--eval-windows) must be >= 0 (0: all)");
}

LmEval evaluate_lm(models::Net& net, const torch::Tensor& windows, int64_t batch_size) {
  LOWBIT_CHECK(windows.dim() == 2 && windows.size(1) >= 2, "evaluate_lm: windows must be [n, context + 1]");
  LOWBIT_CHECK(batch_size > 0, "evaluate_lm: batch size must be positive");
  LmEval r;
  const int64_t n = windows.size(0), t = windows.size(1) - 1;
  if (n == 0) return r;
  const bool was_training = net->is_training();
  net->eval();
  torch::NoGradGuard no_grad;
  const torch::Device device = module_device(*net);  // windows are CPU tensors; the net may be on a GPU
  double loss_sum = 0.0;
  int64_t correct = 0;
  for (int64_t s = 0; s < n; s += batch_size) {
    const auto w = windows.narrow(0, s, std::min(batch_size, n - s)).to(device);
    const auto x = w.narrow(1, 0, t), y = w.narrow(1, 1, t);
    const auto logits = net->forward(x);
    loss_sum += cross_entropy_bytes(logits, y, /*sum=*/true).item<double>();
    correct += logits.argmax(-1).eq(y).sum().item<int64_t>();
  }
  net->train(was_training);
  r.bytes = n * t;
  r.loss = loss_sum / static_cast<double>(r.bytes);
  r.bits_per_byte = r.loss / std::log(2.0);
  r.perplexity = std::exp(r.loss);
  r.accuracy = static_cast<double>(correct) / static_cast<double>(r.bytes);
  return r;
}

nlohmann::json to_json(const LmEval& e) {
  return {{"loss", e.loss}, {"bits_per_byte", e.bits_per_byte}, {"perplexity", e.perplexity},
          {"accuracy", e.accuracy}, {"bytes", e.bytes}};
}

torch::Tensor lm_validation_windows(const data::TextCorpus& corpus, const LmSettings& lm) {
  return data::contiguous_windows(corpus.validation, lm.model.context + 1, lm.eval_windows);
}

TrainResult run_lm_training(const TrainConfig& config, const RunOptions& options, const TrainHooks& hooks) {
  config.validate();
  const torch::Device device = usable_training_device(config.device);  // fails before any work
  set_process_training_device(device);  // before distributed(): NCCL for CUDA tensors where available
  const LmSettings lm = LmSettings::from_json(config.extra.value("lm", nlohmann::json::object()));
  lm.validate();
  // Data parallelism (docs/distributed.md): every rank draws the same global batch of windows,
  // takes its shard of the rows, and the summed gradients make every rank take the step the
  // single process takes on the whole batch. Only rank 0 writes files and prints.
  DistributedContext& dist = distributed();  // rendezvous first: a bad address fails before the corpus loads
  const int world = dist.world_size();
  LOWBIT_CHECK(config.batch_size >= world, "every rank needs at least one window of every batch, but --batch-size " +
                                               std::to_string(config.batch_size) + " is split across WORLD_SIZE=" +
                                               std::to_string(world) + " ranks; use a larger --batch-size or fewer processes");
  // Other ranks neither write nor need the run folder of a fresh run (it may be on rank 0's host).
  const std::string ckpt = dist.is_main() || options.resume ? checked_checkpoint_path(config, options)
                                                           : config.out_dir + "/checkpoint.pt";
  const int64_t context = lm.model.context, window = context + 1;
  const data::TextCorpus corpus = data::load_text_corpus(lm.text, context, lm.val_fraction);
  const int64_t train_bytes = corpus.train.size(0);
  const int64_t per_epoch = std::max<int64_t>(1, (train_bytes + config.batch_size * context - 1) / (config.batch_size * context));
  const int64_t total = lm.steps > 0 ? lm.steps : config.epochs * per_epoch;
  const int64_t interval = std::min(total, lm.eval_interval > 0 ? lm.eval_interval : std::max<int64_t>(1, (total + 9) / 10));
  const int64_t warmup = warmup_steps(config, total);

  set_compute_threads(threads_from_environment(config.threads));
  torch::manual_seed(config.seed);
  models::Net net = options.initial_net ? *options.initial_net : build_net(to_json(config));
  LOWBIT_CHECK(net->model_name() == config.model,
               "the net is model '" + net->model_name() + "' but the config says '" + config.model + "'");
  net->to(device);  // before the optimizer sees the parameters (Module::to keeps their identity)
  auto groups = hooks.param_groups ? hooks.param_groups(net, config) : default_param_groups(net, config);
  std::vector<torch::Tensor> params;
  for (const auto& g : groups) params.insert(params.end(), g.params.begin(), g.params.end());
  std::vector<double> base_lrs;
  auto optimizer = build_optimizer(config, groups, base_lrs);
  at::Generator windows_gen = at::make_generator<at::CPUGeneratorImpl>(config.seed);
  int64_t epoch = 0, step = 0;
  if (options.resume) {
    TrainingState state;
    state.optimizer = optimizer.get();
    state.shuffle_generator = &windows_gen;
    restore_checkpoint(ckpt, net, state);
    net->to(device);  // checkpoints hold CPU tensors, whichever device wrote them
    move_optimizer_state(*optimizer, device);
    epoch = state.epoch;
    step = state.step;
  }
  broadcast_module_from_main(dist, *net);  // the same start on every rank (fresh or resumed)
  GradientAllreduce gradient_sum(dist, in_backward_order(net->parameters(), params));  // overlapped with backward
  const torch::Tensor val_windows = lm_validation_windows(corpus, lm);

  std::ostream null_log(nullptr);  // other ranks print nothing (writes to it are dropped)
  std::ostream* log = !dist.is_main() ? &null_log : options.log != nullptr ? options.log : &std::cerr;
  const bool write_files = dist.is_main();
  const std::string metrics_file = config.out_dir + "/metrics.jsonl";
  std::string metrics;
  if (write_files) {
    std::filesystem::create_directories(config.out_dir);
    metrics = metrics_up_to_step(metrics_file, step);
    write_file_atomically(config.out_dir + "/config.json", with_provenance(to_json(config)).dump(2) + "\n");
  }
  int64_t n_params = 0;
  for (const auto& p : net->parameters()) n_params += p.numel();
  *log << "gpt-tiny: " << n_params << " parameters (" << lm.model.layers << " layers, width " << lm.model.width
       << ", " << lm.model.heads << " heads, context " << context << "); corpus " << corpus.total_bytes << " bytes in "
       << corpus.files.size() << " file(s): " << train_bytes << " train, " << corpus.validation.size(0)
       << " validation; " << total << " steps of " << config.batch_size << " x " << context << " bytes"
       << (dist.active() ? " in " + std::to_string(world) + " processes" : "") << "\n"
       << std::flush;

  TrainResult result;
  net->train();
  while (step < total) {
    const int64_t chunk_end = std::min(total, (step / interval + 1) * interval);
    const int64_t chunk_steps = chunk_end - step;
    const int64_t every = std::max<int64_t>(1, chunk_steps / 4);
    const auto t0 = Clock::now();
    const std::clock_t cpu0 = std::clock();
    const int64_t allreduced0 = dist.bytes_allreduced();
    auto loss_sum = torch::zeros({}, torch::TensorOptions(torch::kFloat64).device(device));
    auto correct = torch::zeros({}, torch::TensorOptions(torch::kInt64).device(device));
    int64_t seen = 0, done = 0;
    double lr = 0.0;
    for (; step < chunk_end; ++done) {
      // The global batch (the same draw on every rank, as in one process), then this rank's rows.
      const auto [shard_offset, shard_rows] = shard_of_batch(config.batch_size, dist.rank(), world);
      const auto w = data::random_windows(corpus.train, config.batch_size, window, windows_gen).narrow(0, shard_offset, shard_rows).to(device);
      const auto x = w.narrow(1, 0, context), y = w.narrow(1, 1, context);
      const double factor = lr_factor(step, warmup, total);
      auto& pg = optimizer->param_groups();
      for (size_t i = 0; i < pg.size(); ++i) pg[i].options().set_lr(base_lrs[i] * factor);
      lr = config.lr * factor;

      if (hooks.before_step) hooks.before_step(net, step, total);  // WinQ: reset and noise seed
      const auto logits = net->forward(x);
      const auto loss = cross_entropy_bytes(logits, y, /*sum=*/false);
      for (auto& p : params) p.mutable_grad().reset();
      gradient_sum.backward(loss, shard_rows, config.batch_size);  // global batch's mean-loss gradient
      if (config.clip_grad > 0) {  // after the all-reduce: the global gradient's norm
        std::vector<torch::Tensor> norms;
        for (auto& p : params)
          if (p.grad().defined()) norms.push_back(p.grad().norm());
        if (!norms.empty()) {
          const auto scale = (config.clip_grad / (torch::stack(norms).norm() + 1e-6)).clamp_max(1.0);
          for (auto& p : params)
            if (p.grad().defined()) p.mutable_grad().mul_(scale);
        }
      }
      optimizer->step();
      ++step;
      if (hooks.after_step) hooks.after_step(net, step);
      if (hooks.on_loss) hooks.on_loss(step, loss.detach());
      {
        torch::NoGradGuard no_grad;
        loss_sum += loss.detach().to(torch::kFloat64) * static_cast<double>(y.numel());
        correct += logits.detach().argmax(-1).eq(y).sum();
      }
      seen += y.numel();
      if ((done + 1) % every == 0 && step < chunk_end) {
        const double l = loss_sum.item<double>() / static_cast<double>(seen);
        const double el = std::chrono::duration<double>(Clock::now() - t0).count();
        *log << "step " << step << "/" << total << " loss " << fmt(l, 4) << " (" << fmt(l / std::log(2.0), 3)
             << " bits/byte) lr " << std::scientific << std::setprecision(2) << lr << std::defaultfloat << " "
             << fmt(static_cast<double>(seen) / std::max(1e-9, el), 0) << " bytes/s\n"
             << std::flush;
      }
    }
    const int64_t allreduced_per_step = (dist.bytes_allreduced() - allreduced0) / std::max<int64_t>(1, done);
    allreduce_metric_sums(dist, loss_sum, correct, seen);  // the interval's metrics over all ranks' shards
    // The ranks' parameters must stay identical. WinQ's reset is the one change made outside the
    // all-reduced step, so verify it (other data or noise on a rank cannot show here: the summed
    // gradients keep the ranks together; tests/cli/distributed_test.sh lm compares with 1 process).
    check_ranks_agree(dist, params, "gpt-tiny parameters after step " + std::to_string(step));
    EpochMetrics m;
    m.allreduce_bytes_per_step = allreduced_per_step;
    m.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    m.cpu_seconds = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
    m.epoch = ++epoch;
    m.step = step;
    m.lr = lr;
    m.train_loss = loss_sum.item<double>() / static_cast<double>(seen);
    m.train_acc = correct.item<double>() / static_cast<double>(seen);
    m.images_per_s = static_cast<double>(seen) / std::max(1e-9, m.seconds);  // bytes per second here
    LOWBIT_CHECK(std::isfinite(m.train_loss), "training diverged before step " + std::to_string(step) + " (loss " +
                                                  std::to_string(m.train_loss) +
                                                  "); the last checkpoint is kept. Lower --lr or set --clip-grad");
    const LmEval v = evaluate_lm(net, val_windows);
    m.has_validation = v.bytes > 0;
    m.val_loss = v.loss;
    m.val_acc = v.accuracy;
    if (hooks.after_epoch) hooks.after_epoch(net, m);
    result.epochs.push_back(m);
    *log << "step " << step << "/" << total << ": train loss " << fmt(m.train_loss, 4) << " ("
         << fmt(m.train_loss / std::log(2.0), 3) << " bits/byte) | val loss " << fmt(v.loss, 4) << ", "
         << fmt(v.bits_per_byte, 3) << " bits/byte, perplexity " << fmt(v.perplexity, 2) << ", accuracy "
         << fmt(100 * v.accuracy, 2) << "% | " << fmt(m.seconds, 1) << " s, " << fmt(m.images_per_s, 0)
         << " bytes/s (cpu " << fmt(m.cpu_seconds, 1) << " s)\n"
         << std::flush;
    nlohmann::json line = {{"epoch", m.epoch},
                           {"step", m.step},
                           {"lr", m.lr},
                           {"train_loss", m.train_loss},
                           {"train_bits_per_byte", m.train_loss / std::log(2.0)},
                           {"train_acc", m.train_acc},
                           {"val_loss", v.loss},
                           {"val_bits_per_byte", v.bits_per_byte},
                           {"val_perplexity", v.perplexity},
                           {"val_acc", v.accuracy},
                           {"seconds", m.seconds},
                           {"bytes_per_s", m.images_per_s},
                           {"cpu_seconds", m.cpu_seconds}};
    if (m.allreduce_bytes_per_step > 0) line["allreduce_bytes_per_step"] = m.allreduce_bytes_per_step;
    if (!write_files) continue;
    metrics += line.dump() + "\n";
    write_file_atomically(metrics_file, metrics);
    TrainingState state;
    state.optimizer = optimizer.get();
    state.shuffle_generator = &windows_gen;
    state.epoch = epoch;
    state.step = step;
    state.config = to_json(config);
    CpuForSaving on_cpu(*net, optimizer.get());  // checkpoints always hold CPU tensors
    save_checkpoint(ckpt, net, state);
  }
  return result;
}

}  // namespace lowbit::train
