// Where a QAT training step's time goes: runs FP32 and QAT training steps of `cnn` on random
// Fashion-MNIST-shaped batches under LibTorch's profiler and prints the operators that take the
// most self time, for each. A diagnostic for docs/BENCHMARKS.md, not a benchmark with a target.
//
//   build/profile_qat_step_torch [steps=30] [wbits=4] [abits=4] [threads=2] [bn_freeze_step=0]
//   (bn_freeze_step -1: batch-statistics BN throughout, approximate folding, as PyTorch's QAT)
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/optim/adam.h>

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <map>

#include "models/net.h"
#include "qat/qat_config.h"
#include "qat/quantized_layers.h"

namespace {

using lowbit::models::Net;

struct OpTotal {
  double ms = 0.0;
  int64_t calls = 0;
};

// Runs `steps` Adam steps and returns the wall milliseconds per step.
double run_steps(Net& net, int steps, const torch::Tensor& x, const torch::Tensor& y) {
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-4));
  net->train();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(x), y);
    loss.backward();
    opt.step();
  }
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / steps;
}

void profile(const std::string& title, Net& net, int steps, const torch::Tensor& x, const torch::Tensor& y) {
  run_steps(net, 3, x, y);  // warm-up: allocator, oneDNN primitive caches
  const double plain_ms = run_steps(net, steps, x, y);
  std::map<std::string, OpTotal> totals;
  {
    torch::autograd::profiler::ProfilerConfig config(torch::autograd::profiler::ProfilerState::CPU);
    torch::autograd::profiler::enableProfilerLegacy(config);
    run_steps(net, steps, x, y);
    auto events = torch::autograd::profiler::disableProfilerLegacy();
    // Legacy events come as push/pop pairs per thread; self time = own span minus children.
    for (auto& thread_events : events) {
      std::vector<std::pair<const torch::autograd::profiler::LegacyEvent*, double>> stack;
      for (auto& e : thread_events) {
        if (e.kindStr() == "push") {
          stack.emplace_back(&e, 0.0);
        } else if (e.kindStr() == "pop" && !stack.empty()) {
          auto [start, child_ms] = stack.back();
          stack.pop_back();
          const double span = start->cpuElapsedUs(e) / 1000.0;
          OpTotal& t = totals[start->name()];
          t.ms += span - child_ms;
          t.calls += 1;
          if (!stack.empty()) stack.back().second += span;
        }
      }
    }
  }
  std::vector<std::pair<std::string, OpTotal>> sorted(totals.begin(), totals.end());
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.second.ms > b.second.ms; });
  double sum = 0.0;
  for (auto& [name, t] : sorted) sum += t.ms;
  std::cout << "== " << title << ": " << std::fixed << std::setprecision(1) << plain_ms
            << " ms per step without the profiler; profiled self time per step, top operators:\n";
  for (size_t i = 0; i < std::min<size_t>(sorted.size(), 22); ++i) {
    std::cout << "  " << std::setw(7) << std::setprecision(2) << sorted[i].second.ms / steps << " ms  "
              << std::setw(5) << std::setprecision(1) << 100.0 * sorted[i].second.ms / sum << "%  "
              << sorted[i].first << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 30;
  const int wbits = argc > 2 ? std::atoi(argv[2]) : 4;
  const int abits = argc > 3 ? std::atoi(argv[3]) : 4;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
  const int64_t bn_freeze_step = argc > 5 ? std::atoll(argv[5]) : 0;
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  const torch::Tensor x = torch::rand({128, 1, 28, 28});
  const torch::Tensor y = torch::randint(0, 10, {128}, torch::kInt64);

  Net fp32 = lowbit::models::make_model("cnn");
  profile("FP32 cnn", fp32, steps, x, y);

  Net qat = lowbit::models::make_model("cnn");
  lowbit::qat::QatFlags flags;
  flags.wbits = wbits;
  flags.abits = abits;
  flags.bn_freeze_step = bn_freeze_step;
  lowbit::qat::prepare(qat, lowbit::qat::config_from_flags(flags));
  profile("QAT cnn W" + std::to_string(wbits) + "A" + std::to_string(abits) +
              (bn_freeze_step < 0 ? " (batch-statistics BN)" : " (BN frozen from step " + std::to_string(bn_freeze_step) + ")"),
          qat, steps, x, y);
  return 0;
}
