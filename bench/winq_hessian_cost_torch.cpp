// WinQ's per-step overhead and the cost of one Hessian-vector product, each against a plain QAT
// training step measured in the same run (interleaved blocks, medians), so that the ratios hold
// on a shared, noisy machine. docs/winq.md and docs/hessian.md quote its output.
//
//   build/winq_hessian_cost_torch [rounds=7] [steps_per_block=8] [format=ternary] [threads=2] [batch=128]
//
// WinQ here: noise sigma 1e-3 on every weight quantizer each step and an interpolation reset
// every 10 steps (far more often than the quarter-of-the-run schedule, so an upper bound).
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>

#include "analysis/hessian.h"
#include "models/net.h"
#include "qat/qat_config.h"
#include "qat/quantized_layers.h"
#include "qat/winq.h"

namespace {

using lowbit::models::Net;
using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Net make_net(const std::string& format) {
  torch::manual_seed(0);
  Net net = lowbit::models::make_model("cnn");
  lowbit::qat::QatFlags f;
  f.weight_format = format;
  f.wbits = format == "int" ? 4 : 2;
  f.abits = 8;
  lowbit::qat::prepare(net, lowbit::qat::config_from_flags(f));
  net->train();
  return net;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 7;
  const int block = argc > 2 ? std::atoi(argv[2]) : 8;
  const std::string format = argc > 3 ? argv[3] : "ternary";
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
  const int batch = argc > 5 ? std::atoi(argv[5]) : 128;
  torch::set_num_threads(threads);
  torch::manual_seed(1);
  const torch::Tensor x = torch::rand({batch, 1, 28, 28});
  const torch::Tensor y = torch::randint(0, 10, {batch}, torch::kInt64);

  Net plain = make_net(format), winq_net = make_net(format);
  torch::optim::AdamW opt_plain(plain->parameters(), torch::optim::AdamWOptions(1e-4));
  torch::optim::AdamW opt_winq(winq_net->parameters(), torch::optim::AdamWOptions(1e-4));
  lowbit::qat::WinqConfig wc;
  wc.enabled = true;
  wc.period = 10;
  wc.noise = 1e-3;
  lowbit::qat::Winq winq(wc, 0);
  int64_t winq_step = 0;
  const int64_t total = 1 << 30;

  auto step = [&](Net& net, torch::optim::AdamW& opt, bool with_winq) {
    if (with_winq) winq.before_step(*net, winq_step, total);
    opt.zero_grad();
    torch::nn::functional::cross_entropy(net->forward(x), y).backward();
    opt.step();
    if (with_winq) winq.after_step(*net, ++winq_step);
  };
  auto time_block = [&](auto&& fn) {
    const auto t0 = Clock::now();
    for (int i = 0; i < block; ++i) fn();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / block;
  };

  // Hessian-vector product over all weights of the QAT net, one batch (eval mode, as the tool).
  Net hnet = make_net(format);
  {
    torch::NoGradGuard g;
    hnet->forward(x);  // scales initialised
  }
  hnet->eval();
  std::vector<torch::Tensor> weights;
  for (auto& [name, layer] : lowbit::qat::weight_quantized_layers(*hnet)) weights.push_back(layer->latent_weight());
  lowbit::analysis::HessianVectorProduct hvp(
      [&](int64_t) { return torch::nn::functional::cross_entropy(hnet->forward(x), y); }, weights, 1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  const torch::Tensor v = torch::randn({hvp.dim()}, gen, torch::kFloat64);

  for (int i = 0; i < 3; ++i) {  // warm-up
    step(plain, opt_plain, false);
    step(winq_net, opt_winq, true);
    hvp(v);
  }
  std::vector<double> t_plain, t_winq, t_hvp, r_winq, r_hvp;
  for (int r = 0; r < rounds; ++r) {
    const double a = time_block([&] { step(plain, opt_plain, false); });
    const double b = time_block([&] { step(winq_net, opt_winq, true); });
    const double c = time_block([&] { hvp(v); });
    t_plain.push_back(a);
    t_winq.push_back(b);
    t_hvp.push_back(c);
    r_winq.push_back(b / a);
    r_hvp.push_back(c / a);
  }
  std::cout << std::fixed << std::setprecision(2) << "cnn, " << format << " weights, A8, batch " << batch << ", "
            << threads << " threads, " << rounds << " rounds x " << block << " steps (medians)\n"
            << "  plain QAT step          " << median(t_plain) << " ms\n"
            << "  WinQ QAT step           " << median(t_winq) << " ms  (noise every step, reset every 10)\n"
            << "  WinQ overhead           " << std::setprecision(1) << 100.0 * (median(r_winq) - 1.0)
            << " % (median of per-round ratios; range " << 100.0 * (*std::min_element(r_winq.begin(), r_winq.end()) - 1.0)
            << " .. " << 100.0 * (*std::max_element(r_winq.begin(), r_winq.end()) - 1.0) << " %)\n"
            << std::setprecision(2) << "  one HVP (" << hvp.dim() << " weights) " << median(t_hvp) << " ms\n"
            << "  HVP / training step     " << median(r_hvp) << "x (range "
            << *std::min_element(r_hvp.begin(), r_hvp.end()) << " .. " << *std::max_element(r_hvp.begin(), r_hvp.end())
            << ")\n";
  return 0;
}
