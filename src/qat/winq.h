// WinQ (arXiv 2605.17471, "accelerating low-bit QAT around saddle points"; docs/winq.md), for any
// model whose quantized layers implement WeightQuantizedLayer:
//   1. periodic interpolation reset: every `period` optimizer steps, for every weight-quantized
//      layer, in the quantizer's input space (the BN-folded weight for conv+BN):
//          W <- keep * W + (1 - keep) * Q(W)        (Q with the current scales)
//      Optimizer state and scales are not touched. keep = 0.2 is the authors' released code; the
//      paper writes W <- (1 - alpha) W + alpha Q(W), so alpha = 1 - keep (its ablation prefers
//      alpha = 0.4, i.e. keep = 0.6). For a nearest-level quantizer with fixed scales,
//      Q(reset W) == Q(W): the deployed model does not change, the latent weights move toward
//      the centres of their rounding cells.
//   2. noise-injected gradients: every training forward uses Q(W + sigma eps) with scales
//      s + sigma eps' (FakeQuantizeImpl's noise; abs: sigma as given, 1e-3 in the released code;
//      rel: sigma times each row's scale), fresh eps every step, never in evaluation.
// Determinism: the noise of layer i at step t comes from a generator seeded with
// mix(seed, t, i), and resets happen after steps t with t % period == 0, so a run resumed from a
// checkpoint (which restores the step) continues exactly as the uninterrupted run.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "qat/fake_quantize_module.h"
#include "qat/quantizer_options.h"  // WinqConfig
#include "torch_pch.h"

namespace lowbit::train {
struct TrainHooks;
}

namespace lowbit::qat {

// One interpolation reset of every weight-quantized layer of `root`; returns how many layers
// were reset (layers whose quantizer is disabled or has no scales yet are skipped).
int64_t interpolation_reset(torch::nn::Module& root, double keep);

// Sets (or, with sigma 0, clears) the noise of every weight quantizer of `root`.
void set_weight_noise(torch::nn::Module& root, const QuantizerNoise& noise);

// The period "auto" (-1) resolves to for `total_steps` and `root`'s weight quantizers.
int64_t resolve_winq_period(const WinqConfig& config, torch::nn::Module& root, int64_t total_steps);

// The controller: installs itself in a Trainer's hooks (before_step: noise seeds; after_step:
// resets). Attaches to the net the trainer hands it on the first step.
class Winq {
 public:
  Winq(WinqConfig config, uint64_t seed);
  // Adds WinQ to `hooks` (chaining any before_step / after_step already there). The returned
  // hooks share this object's state: keep it alive for the run.
  void install(train::TrainHooks& hooks);

  void before_step(torch::nn::Module& net, int64_t step, int64_t total_steps);
  void after_step(torch::nn::Module& net, int64_t step);

  const WinqConfig& config() const { return config_; }
  int64_t period() const { return period_; }  // resolved (valid after the first step)
  int64_t resets() const { return resets_; }  // resets done by this object

 private:
  void attach(torch::nn::Module& net, int64_t total_steps);
  WinqConfig config_;
  uint64_t seed_;
  torch::nn::Module* attached_ = nullptr;
  int64_t period_ = 0;
  int64_t total_steps_ = 0;
  int64_t resets_ = 0;
};

}  // namespace lowbit::qat
