// FakeQuantize: the torch::nn::Module that sits on a weight or an activation during QAT.
// It holds a QuantSpec, a gradient estimator, an observer, and the quantization parameters:
//   * Ste (observed qparams): scale / zero_point are buffers set from the observer (through
//     quant::choose_qparams) on every training forward until the observer freezes.
//   * Lsq / LsqPlus (learned qparams): scale is a parameter (and zero_point too for LsqPlus on
//     an asymmetric spec); it is initialised once, from the first `init_batches` training
//     batches, then trained by the optimizer.
// Scale initialisation for learned scales (ScaleInit):
//   Auto      binary grid -> MeanAbs, otherwise Observer (our choice: with the min-max
//             observer this is ParetoQ's max|W_row| / (2^(b-1) - 1) for 3-4 bit weights, and it
//             is the same number PTQ would pick, so QAT starts from the PTQ model);
//   Observer  quant::choose_qparams from the observer's range (scale and zero point);
//   LsqMeanAbs  LSQ paper: s = 2 * mean|x| / sqrt(Qp) per (scale, zero_point) pair;
//   MeanAbs   ParetoQ binary: s = mean|x| per pair (for binary, our scale is ParetoQ's alpha).
// The number of (scale, zero_point) pairs comes from the first tensor seen (per-channel
// activations do not know C before that); the parameter keeps its identity (set_data), so an
// optimizer built before the first forward keeps working.
//
// Flags: enabled (false: forward returns x unchanged), observing (false: the observer is not
// updated). Observation happens only in training mode (unless options.observe_in_eval).
// Noise (WinQ's noise-injected gradients, docs/winq.md): with noise().sigma > 0, a training-mode
// forward returns Q(x + sx * eps) computed with scales s + ss * eps', eps and eps' ~ N(0, 1) drawn
// afresh for every forward; absolute mode: sx = ss = sigma; relative mode: sx = sigma * (the
// element's scale), ss = sigma * s. Observers see the clean x. Evaluation-mode forwards, qparams()
// and therefore convert never see noise. The draws come from a generator seeded with
// mix(noise seed, forwards since set_noise_seed), so a caller that sets the seed from the
// training step (qat::Winq does) gets noise that a resumed run reproduces exactly.
// Buffers: scale, zero_point, initialized, observer_min / observer_max / observer_steps (the
// observer state, so a resumed run continues its moving average and freeze count).
#pragma once
#include <string>

#include "qat/fake_quant.h"
#include "qat/observers.h"
#include "qat/quantizer_options.h"  // ScaleInit, FakeQuantizeOptions, NoiseMode, QuantizerNoise
#include "torch_pch.h"

namespace lowbit::qat {

class FakeQuantizeImpl : public torch::nn::Module {
 public:
  explicit FakeQuantizeImpl(FakeQuantizeOptions options);

  torch::Tensor forward(const torch::Tensor& x);

  void set_enabled(bool on) { enabled_ = on; }
  bool enabled() const { return enabled_; }
  void set_observing(bool on) { observing_ = on; }
  bool observing() const { return observing_; }
  // Fixed quantization parameters (e.g. the network input: uint8, scale 1/255, zp 0): sets
  // them, marks them initialised and stops observing; learned parameters stop requiring grad.
  void set_fixed_qparams(const torch::Tensor& scale, const torch::Tensor& zero_point);
  bool initialized() const { return initialized_.item<bool>(); }

  // WinQ noise (see the header comment). Not part of the module state: set by qat::Winq.
  void set_noise(const QuantizerNoise& noise);
  const QuantizerNoise& noise() const { return noise_; }
  void set_noise_seed(uint64_t seed) {
    noise_seed_ = seed;
    noise_draws_ = 0;
  }

  // The parameters the forward uses: scale (clamped at quant::kMinScale) float32 [P] and the
  // integer zero point int32 [P]. What convert hands to the integer runtime.
  QParamTensors qparams() const;

  const FakeQuantizeOptions& options() const { return options_; }
  const Observer& observer() const { return observer_; }
  Observer& observer() { return observer_; }
  bool learned_scale() const { return options_.estimator != Estimator::Ste; }
  bool learned_zero_point() const;

  torch::Tensor scale;        // float32 [P]: parameter (learned) or buffer (observed)
  torch::Tensor zero_point;   // float32 [P]: parameter (LsqPlus, asymmetric) or buffer

 private:
  void resize_for(const torch::Tensor& x);
  void initialise_from_observed(const torch::Tensor& x);
  torch::Tensor noisy_fake_quantize(const torch::Tensor& x);

  FakeQuantizeOptions options_;
  Observer observer_;
  torch::Tensor initialized_;  // bool buffer, so a checkpoint remembers it
  bool enabled_ = true;
  bool observing_ = true;
  int64_t init_seen_ = 0;
  QuantizerNoise noise_;
  uint64_t noise_seed_ = 0;
  uint64_t noise_draws_ = 0;
};
TORCH_MODULE(FakeQuantize);

}  // namespace lowbit::qat
