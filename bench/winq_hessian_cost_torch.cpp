// WinQ's per-step overhead and the cost of one Hessian-vector product, each against a plain QAT
// training step measured in the same run (interleaved blocks, medians of per-round ratios), so
// that the ratios hold on a shared, noisy machine. docs/winq.md and docs/hessian.md quote its
// output.
//
//   build/winq_hessian_cost_torch [rounds=7] [steps_per_block=8] [format=ternary] [threads=2]
//                                 [batch=128 (cnn) | 32 (gpt-tiny)] [model=cnn|gpt-tiny]
//
// cnn: A8, random 28x28 images. gpt-tiny: the default size (models/gpt.h), the language-model
// QAT defaults (per-token int8 projection inputs, embedding and head in float), every step a
// fresh batch of random windows of context + 1 bytes from a random text, as the LM trainer.
// WinQ here: noise sigma 1e-3 on every weight quantizer each step and an interpolation reset
// every 10 steps (far more often than the quarter-of-the-run schedule, so an upper bound).
// The HVP: over all weights of the net (as `lowbit analyze hessian --layers '*'`), eval mode,
// one fixed batch of the same size.
// LOWBIT_PROFILE=DIR: afterwards, 3 HVPs and 3 plain steps under the autograd profiler, written
// as chrome traces DIR/hvp.trace and DIR/step.trace.
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iomanip>
#include <iostream>

#include "analysis/hessian.h"
#include "data/text_corpus.h"
#include "models/gpt.h"
#include "models/net.h"
#include "qat/qat_config.h"
#include "qat/quantized_layers.h"
#include "qat/quantized_transformer.h"
#include "qat/winq.h"

namespace {

using lowbit::models::Net;
using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
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
  torch::set_num_threads(threads);
  torch::manual_seed(1);

  // Batches: images, or windows of a random text (a fresh batch every step, as the LM trainer).
  int64_t context = 0;
  torch::Tensor text;
  at::Generator window_gen = at::make_generator<at::CPUGeneratorImpl>(2);
  torch::Tensor x, y;
  auto next_batch = [&] {
    if (!is_gpt(model)) return;
    const torch::Tensor w = lowbit::data::random_windows(text, batch, context + 1, window_gen);
    x = w.narrow(1, 0, context);
    y = w.narrow(1, 1, context);
  };
  if (is_gpt(model)) {
    context = lowbit::models::GptOptions().context;
    text = torch::randint(0, 256, {1 << 20}, torch::kUInt8);
    next_batch();
  } else {
    x = torch::rand({batch, 1, 28, 28});
    y = torch::randint(0, 10, {batch}, torch::kInt64);
  }

  Net plain = make_net(model, format), winq_net = make_net(model, format);
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
    next_batch();
    if (with_winq) winq.before_step(*net, winq_step, total);
    opt.zero_grad();
    loss_of(net, x, y).backward();
    opt.step();
    if (with_winq) winq.after_step(*net, ++winq_step);
  };
  auto time_block = [&](auto&& fn) {
    const auto t0 = Clock::now();
    for (int i = 0; i < block; ++i) fn();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / block;
  };

  // Hessian-vector product over all weights of the QAT net, one fixed batch (eval mode, as the tool).
  Net hnet = make_net(model, format);
  const torch::Tensor hx = x.clone(), hy = y.clone();
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
    step(plain, opt_plain, false);
    step(winq_net, opt_winq, true);
    hvp(v);
    hvp_full(v);
  }
  std::vector<double> t_plain, t_winq, t_hvp, r_winq, r_hvp, t_full, r_full;
  for (int r = 0; r < rounds; ++r) {
    const double a = time_block([&] { step(plain, opt_plain, false); });
    const double b = time_block([&] { step(winq_net, opt_winq, true); });
    const double c = time_block([&] { hvp(v); });
    const double d = time_block([&] { hvp_full(v); });
    t_full.push_back(d);
    r_full.push_back(d / a);
    t_plain.push_back(a);
    t_winq.push_back(b);
    t_hvp.push_back(c);
    r_winq.push_back(b / a);
    r_hvp.push_back(c / a);
  }
  std::cout << std::fixed << std::setprecision(2) << model << ", " << format << " weights, "
            << (is_gpt(model) ? "per-token int8 inputs, windows of " + std::to_string(context) + " bytes" : "A8")
            << ", batch " << batch << ", " << threads << " threads, " << rounds << " rounds x " << block
            << " steps (medians)\n"
            << "  plain QAT step          " << median(t_plain) << " ms\n"
            << "  WinQ QAT step           " << median(t_winq) << " ms  (noise every step, reset every 10)\n"
            << "  WinQ overhead           " << std::setprecision(1) << 100.0 * (median(r_winq) - 1.0)
            << " % (median of per-round ratios; range " << 100.0 * (*std::min_element(r_winq.begin(), r_winq.end()) - 1.0)
            << " .. " << 100.0 * (*std::max_element(r_winq.begin(), r_winq.end()) - 1.0) << " %)\n"
            << std::setprecision(2) << "  one HVP (" << hvp.dim() << " weights) " << median(t_hvp) << " ms\n"
            << "  HVP / training step     " << median(r_hvp) << "x (range "
            << *std::min_element(r_hvp.begin(), r_hvp.end()) << " .. " << *std::max_element(r_hvp.begin(), r_hvp.end())
            << ")\n"
            << "  HVP without graph reuse " << median(t_full) << " ms, " << median(r_full) << "x a step (range "
            << *std::min_element(r_full.begin(), r_full.end()) << " .. " << *std::max_element(r_full.begin(), r_full.end())
            << ")\n";

  if (const char* dir = std::getenv("LOWBIT_PROFILE")) {
    {
      torch::autograd::profiler::RecordProfile guard(std::string(dir) + "/hvp.trace");
      for (int i = 0; i < 3; ++i) hvp(v);
    }
    {
      torch::autograd::profiler::RecordProfile guard(std::string(dir) + "/step.trace");
      for (int i = 0; i < 3; ++i) step(plain, opt_plain, false);
    }
    std::cout << "  profiles: " << dir << "/hvp.trace, " << dir << "/step.trace\n";
  }
  return 0;
}
