#include "qat/winq.h"

#include <cmath>
#include <memory>

#include "base/error.h"
#include "qat/fake_quant.h"
#include "qat/weight_quantized_layer.h"
#include "train/trainer.h"

namespace lowbit::qat {
namespace {

uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

int64_t interpolation_reset(torch::nn::Module& root, double keep) {
  LOWBIT_CHECK(keep >= 0.0 && keep < 1.0, "interpolation_reset: keep must be in [0, 1), got " + std::to_string(keep));
  torch::NoGradGuard no_grad;
  int64_t count = 0;
  for (auto& [name, layer] : weight_quantized_layers(root)) {
    FakeQuantizeImpl& fq = layer->weight_fake_quant();
    if (!fq.enabled() || !fq.initialized()) continue;
    const torch::Tensor w = layer->quantizer_input();
    // Q(W) with the current scales: the same kernel as the forward (one rounding rule).
    const torch::Tensor q = fake_quantize_forward(w, fq.scale.detach(), fq.zero_point.detach(), fq.options().spec);
    layer->set_quantizer_input(w * static_cast<float>(keep) + q * static_cast<float>(1.0 - keep));
    ++count;
  }
  return count;
}

void set_weight_noise(torch::nn::Module& root, const QuantizerNoise& noise) {
  for (auto& [name, layer] : weight_quantized_layers(root)) layer->weight_fake_quant().set_noise(noise);
}

int64_t resolve_winq_period(const WinqConfig& config, torch::nn::Module& root, int64_t total_steps) {
  if (config.period >= 0) return config.period;
  int max_bits = 0;
  for (auto& [name, layer] : weight_quantized_layers(root)) {
    max_bits = std::max(max_bits, layer->weight_fake_quant().options().spec.bits);
  }
  const int64_t divisor = max_bits <= 2 ? 4 : 2;
  return std::max<int64_t>(1, total_steps / divisor);
}

Winq::Winq(WinqConfig config, uint64_t seed) : config_(std::move(config)), seed_(seed) { config_.validate(); }

void Winq::attach(torch::nn::Module& net, int64_t total_steps) {
  attached_ = &net;
  total_steps_ = total_steps;
  period_ = resolve_winq_period(config_, net, total_steps);
  QuantizerNoise n;
  n.sigma = config_.noise;
  n.mode = noise_mode_from_string(config_.noise_mode);
  set_weight_noise(net, n);
}

void Winq::before_step(torch::nn::Module& net, int64_t step, int64_t total_steps) {
  if (attached_ != &net || total_steps != total_steps_) attach(net, total_steps);
  if (config_.noise <= 0.0) return;
  const uint64_t base = splitmix64(seed_ ^ 0x57494E51ull /* "WINQ" */) ^ splitmix64(static_cast<uint64_t>(step));
  uint64_t i = 0;
  for (auto& [name, layer] : weight_quantized_layers(net)) {
    layer->weight_fake_quant().set_noise_seed(splitmix64(base + 0x9E3779B97F4A7C15ull * ++i));
  }
}

void Winq::after_step(torch::nn::Module& net, int64_t step) {
  if (period_ <= 0 || step % period_ != 0 || step >= total_steps_) return;
  interpolation_reset(net, config_.keep);
  ++resets_;
}

void Winq::install(train::TrainHooks& hooks) {
  auto prev_before = hooks.before_step;
  auto prev_after = hooks.after_step;
  hooks.before_step = [this, prev_before](models::Net& net, int64_t step, int64_t total) {
    if (prev_before) prev_before(net, step, total);
    before_step(*net, step, total);
  };
  hooks.after_step = [this, prev_after](models::Net& net, int64_t step) {
    if (prev_after) prev_after(net, step);
    after_step(*net, step);
  };
}

}  // namespace lowbit::qat
