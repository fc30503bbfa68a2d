// WinQ's per-step overhead and the cost of one Hessian-vector product, each against a plain QAT
// training step measured in the same run, so that the ratios hold on a shared, noisy machine.
// docs/winq.md and docs/hessian.md quote its output.
//
//   build/winq_hessian_cost_torch [rounds=7] [steps_per_block=8] [format=ternary] [threads=2]
//                                 [batch=128 (cnn) | 32 (gpt-tiny)] [model=cnn|gpt-tiny] [parts=all|winq]
//
// Threads as lowbit's commands size them (train::set_compute_threads: LibTorch's pool and
// OpenBLAS's), so the BLAS pool does not oversubscribe the cores. Each round times one block of
// steps per arm, the arms' order alternating between rounds (plain first on even rounds), on the
// same batches: the plain arm, WinQ with noise only (no reset), full WinQ (noise every step, a
// reset every 10 steps: far more often than the quarter-of-the-run schedule, so an upper bound).
// The three nets start from the same state; the report gives medians of per-round ratios and
// their range, for wall time and for the process's CPU time (std::clock: with 1 thread the CPU
// time of the work itself, less sensitive than wall time to other jobs on a shared machine; with
// more, it includes the pools' waiting). parts=winq skips the Hessian-vector products.
// cnn: A8, random 28x28 images. gpt-tiny: the default size (models/gpt.h), the language-model
// QAT defaults (per-token int8 projection inputs, embedding and head in float), every step a
// fresh batch of random windows of context + 1 bytes from a random text, as the LM trainer.
// The HVP: over all weights of the net (as `lowbit analyze hessian --layers '*'`), eval mode,
// one fixed batch of the same size.
// LOWBIT_PROFILE=DIR: afterwards, 3 HVPs and 3 plain steps under the autograd profiler, written
// as chrome traces DIR/hvp.trace and DIR/step.trace.
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "analysis/hessian.h"
#include "data/text_corpus.h"
#include "models/gpt.h"
#include "models/net.h"
#include "qat/qat_config.h"
#include "qat/quantized_layers.h"
#include "qat/quantized_transformer.h"
#include "qat/winq.h"
#include "train/compute_threads.h"

namespace {

using lowbit::models::Net;
using Clock = std::chrono::steady_clock;

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}
double median(const std::vector<double>& v) { return quantile(v, 0.5); }

// "+x.x % (quartiles a .. b, range c .. d)" of per-round ratios.
std::string overhead_summary(const std::vector<double>& r) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(1) << std::showpos << 100.0 * (median(r) - 1.0) << " % (quartiles "
    << 100.0 * (quantile(r, 0.25) - 1.0) << " .. " << 100.0 * (quantile(r, 0.75) - 1.0) << ", range "
    << 100.0 * (quantile(r, 0.0) - 1.0) << " .. " << 100.0 * (quantile(r, 1.0) - 1.0) << " %)";
  return o.str();
}

bool is_gpt(const std::string& model) { return model == "gpt-tiny"; }

Net make_net(const std::string& model, const std::string& format) {
  torch::manual_seed(0);
  Net net = lowbit::models::make_model(model);
  lowbit::qat::QatFlags f;
  f.weight_format = format;
  f.wbits = format == "int" ? 4 : 2;
  f.abits = 8;
  lowbit::qat::QatConfig config = lowbit::qat::config_from_flags(f);
  if (is_gpt(model)) config = lowbit::qat::with_language_model_defaults(config);
  lowbit::qat::prepare(net, config);
  net->train();
  return net;
}

torch::Tensor loss_of(Net& net, const torch::Tensor& x, const torch::Tensor& y) {
  const torch::Tensor logits = net->forward(x);
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), y.reshape({-1}));
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 7;
  const int block = argc > 2 ? std::atoi(argv[2]) : 8;
  const std::string format = argc > 3 ? argv[3] : "ternary";
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
  const std::string model = argc > 6 ? argv[6] : "cnn";
  const int batch = argc > 5 ? std::atoi(argv[5]) : (is_gpt(model) ? 32 : 128);
  const std::string parts = argc > 7 ? argv[7] : "all";
  if (rounds < 1 || block < 1 || threads < 1 || batch < 1 || (parts != "all" && parts != "winq") ||
      (model != "cnn" && !is_gpt(model))) {
    std::cerr << "usage: winq_hessian_cost_torch [rounds>=1] [steps_per_block>=1] [format] [threads>=1] [batch>=1] "
                 "[cnn|gpt-tiny] [all|winq]\n";
    return 2;
  }
  const bool with_hvp = parts == "all";
  const int blas_threads = lowbit::train::set_compute_threads(threads);
  torch::manual_seed(1);

  // Batches: images, or windows of a random text (a fresh batch every step, as the LM trainer;
  // every arm of a round sees the same batches).
  int64_t context = 0;
  torch::Tensor text;
  at::Generator window_gen = at::make_generator<at::CPUGeneratorImpl>(2);
  std::vector<std::pair<torch::Tensor, torch::Tensor>> batches;
  auto draw_batches = [&] {
    batches.clear();
    for (int i = 0; i < block; ++i) {
      if (is_gpt(model)) {
        const torch::Tensor w = lowbit::data::random_windows(text, batch, context + 1, window_gen);
        batches.emplace_back(w.narrow(1, 0, context), w.narrow(1, 1, context));
      } else {
        batches.emplace_back(torch::rand({batch, 1, 28, 28}), torch::randint(0, 10, {batch}, torch::kInt64));
      }
    }
  };
  if (is_gpt(model)) {
    context = lowbit::models::GptOptions().context;
    text = torch::randint(0, 256, {1 << 20}, torch::kUInt8);
  }
  draw_batches();

  // The arms: the same initial net each; WinQ objects with their own step counters.
  struct Arm {
    std::string name;
    Net net{nullptr};
    std::unique_ptr<torch::optim::AdamW> opt;
    std::unique_ptr<lowbit::qat::Winq> winq;
    int64_t step = 0;
    std::vector<double> ms, ratio, cpu_ratio;
    double cpu_ms = 0.0;  // process CPU time of the last block, per step
  };
  const int64_t total = 1 << 30;
  auto make_arm = [&](const std::string& name, int64_t period) {
    Arm a;
    a.name = name;
    a.net = make_net(model, format);
    a.opt = std::make_unique<torch::optim::AdamW>(a.net->parameters(), torch::optim::AdamWOptions(1e-4));
    if (period >= 0) {
      lowbit::qat::WinqConfig wc;
      wc.enabled = true;
      wc.period = period;
      wc.noise = 1e-3;
      a.winq = std::make_unique<lowbit::qat::Winq>(wc, 0);
    }
    return a;
  };
  std::vector<Arm> arms;
  arms.push_back(make_arm("plain QAT step", -1));
  arms.push_back(make_arm("WinQ, noise only", 0));
  arms.push_back(make_arm("WinQ, noise + reset/10", 10));

  auto step = [&](Arm& a, const torch::Tensor& x, const torch::Tensor& y) {
    if (a.winq) a.winq->before_step(*a.net, a.step, total);
    a.opt->zero_grad();
    loss_of(a.net, x, y).backward();
    a.opt->step();
    if (a.winq) a.winq->after_step(*a.net, ++a.step);
  };
  auto time_block = [&](auto&& fn) {
    const auto t0 = Clock::now();
    for (int i = 0; i < block; ++i) fn(i);
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / block;
  };

  // Hessian-vector product over all weights of the QAT net, one fixed batch (eval mode, as the tool).
  Net hnet = make_net(model, format);
  const torch::Tensor hx = batches[0].first.clone(), hy = batches[0].second.clone();
  {
    torch::NoGradGuard g;
    hnet->forward(hx);  // scales initialised
  }
  hnet->eval();
  std::vector<torch::Tensor> weights;
  for (auto& item : hnet->named_parameters()) {
    const std::string& key = item.key();
    const bool is_weight = key == "weight" || (key.size() > 7 && key.compare(key.size() - 7, 7, ".weight") == 0);
    if (is_weight && item.value().dim() >= 2 && item.value().requires_grad()) weights.push_back(item.value());
  }
  lowbit::analysis::HessianVectorProduct hvp([&](int64_t) { return loss_of(hnet, hx, hy); }, weights, 1);
  // The same product without graph reuse: forward, first backward with its graph, second backward
  // (what the first product of an analysis costs).
  lowbit::analysis::HessianVectorProduct hvp_full([&](int64_t) { return loss_of(hnet, hx, hy); }, weights, 1,
                                                  /*reuse_graph=*/false);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  const torch::Tensor v = torch::randn({hvp.dim()}, gen, torch::kFloat64);

  for (int i = 0; i < 3; ++i) {  // warm-up
    for (Arm& a : arms) step(a, batches[i % block].first, batches[i % block].second);
    if (with_hvp) {
      hvp(v);
      hvp_full(v);
    }
  }
  std::vector<double> t_hvp, r_hvp, t_full, r_full;
  for (int r = 0; r < rounds; ++r) {
    if (is_gpt(model)) draw_batches();
    for (size_t k = 0; k < arms.size(); ++k) {
      Arm& a = arms[r % 2 == 0 ? k : arms.size() - 1 - k];
      const std::clock_t c0 = std::clock();
      a.ms.push_back(time_block([&](int i) { step(a, batches[i].first, batches[i].second); }));
      a.cpu_ms = 1000.0 * static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC / block;
    }
    const double plain = arms[0].ms.back();
    for (Arm& a : arms) {
      a.ratio.push_back(a.ms.back() / plain);
      a.cpu_ratio.push_back(a.cpu_ms / arms[0].cpu_ms);
    }
    if (with_hvp) {
      t_hvp.push_back(time_block([&](int) { hvp(v); }));
      t_full.push_back(time_block([&](int) { hvp_full(v); }));
      r_hvp.push_back(t_hvp.back() / plain);
      r_full.push_back(t_full.back() / plain);
    }
  }
  std::cout << std::fixed << std::setprecision(2) << model << ", " << format << " weights, "
            << (is_gpt(model) ? "per-token int8 inputs, windows of " + std::to_string(context) + " bytes" : "A8")
            << ", batch " << batch << ", " << threads << " threads (BLAS pool " << blas_threads << "), " << rounds
            << " rounds x " << block << " steps, arms interleaved (medians)\n";
  for (const Arm& a : arms) {
    std::cout << "  " << std::left << std::setw(26) << a.name << std::right << median(a.ms) << " ms";
    if (&a != &arms[0]) {
      std::cout << "  overhead " << overhead_summary(a.ratio) << "\n"
                << std::string(28, ' ') << "CPU time " << overhead_summary(a.cpu_ratio);
    }
    std::cout << "\n";
  }
  if (with_hvp) {
    std::cout << std::setprecision(2) << "  one HVP (" << hvp.dim() << " weights) " << median(t_hvp) << " ms\n"
              << "  HVP / training step     " << median(r_hvp) << "x (range " << quantile(r_hvp, 0.0) << " .. "
              << quantile(r_hvp, 1.0) << ")\n"
              << "  HVP without graph reuse " << median(t_full) << " ms, " << median(r_full) << "x a step (range "
              << quantile(r_full, 0.0) << " .. " << quantile(r_full, 1.0) << ")\n";
  }

  if (const char* dir = std::getenv("LOWBIT_PROFILE")) {
    {
      torch::autograd::profiler::RecordProfile guard(std::string(dir) + "/hvp.trace");
      for (int i = 0; i < 3; ++i) hvp(v);
    }
    {
      torch::autograd::profiler::RecordProfile guard(std::string(dir) + "/step.trace");
      for (int i = 0; i < 3; ++i) step(arms[0], batches[i % block].first, batches[i % block].second);
    }
    std::cout << "  profiles: " << dir << "/hvp.trace, " << dir << "/step.trace\n";
  }
  return 0;
}
