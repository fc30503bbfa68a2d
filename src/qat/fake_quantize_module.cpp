#include "qat/fake_quantize_module.h"

#include <cmath>

#include "base/error.h"
#include "quant/qparams.h"

namespace lowbit::qat {

FakeQuantizeImpl::FakeQuantizeImpl(FakeQuantizeOptions options)
    : options_(std::move(options)), observer_(options_.spec, options_.observer) {
  LOWBIT_CHECK(options_.init_batches >= 1, "fake quantizer: init_batches must be >= 1 (got " +
                                               std::to_string(options_.init_batches) + ")");
  if (options_.estimator == Estimator::LsqPlus) {
    LOWBIT_CHECK(options_.spec.grid == quant::Grid::Integer && !options_.spec.symmetric,
                 "fake quantizer " + options_.spec.describe() +
                     ": lsqplus learns a zero point and needs an asymmetric integer spec; use lsq for symmetric ones");
  }
  if (learned_scale()) {
    scale = register_parameter("scale", torch::ones({1}));
  } else {
    scale = register_buffer("scale", torch::ones({1}));
  }
  if (learned_zero_point()) {
    zero_point = register_parameter("zero_point", torch::zeros({1}));
  } else {
    zero_point = register_buffer("zero_point", torch::zeros({1}));
  }
  initialized_ = register_buffer("initialized", torch::zeros({1}, torch::kBool));
  // The observer's state as buffers, so a resumed run continues its moving average / freeze
  // count instead of restarting from the first batch after the checkpoint.
  register_buffer("observer_min", torch::zeros({0}));
  register_buffer("observer_max", torch::zeros({0}));
  register_buffer("observer_steps", torch::zeros({1}, torch::kInt64));
}

namespace {
// Observer <-> buffers. Buffers are resized in place (set_) so the registered tensors stay.
void observe_with_state(Observer& obs, torch::nn::Module& m, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  auto buffers = m.named_buffers(/*recurse=*/false);
  torch::Tensor& mn = buffers["observer_min"];
  torch::Tensor& mx = buffers["observer_max"];
  torch::Tensor& steps = buffers["observer_steps"];
  if (!obs.has_range() && mn.numel() > 0) {  // restored from a checkpoint
    const int64_t n = steps.item<int64_t>();
    const int64_t freeze = obs.options().freeze_after;
    obs.load_state(mn, mx, n, freeze >= 0 && n >= freeze);
  }
  // Training forwards run on every rank in step, so their ranges are combined across ranks;
  // evaluation forwards are rank-local.
  obs.observe(x, /*combine=*/m.is_training());
  mn.set_(obs.min().clone());
  mx.set_(obs.max().clone());
  steps.fill_(obs.steps());
}
}  // namespace

bool FakeQuantizeImpl::learned_zero_point() const { return options_.estimator == Estimator::LsqPlus; }

void FakeQuantizeImpl::resize_for(const torch::Tensor& x) {
  const int64_t p = quant::num_qparams(options_.spec, std::vector<int64_t>(x.sizes().begin(), x.sizes().end()));
  if (scale.numel() == p) return;
  LOWBIT_CHECK(!initialized(), "fake quantizer " + options_.spec.describe() + " was set up for " +
                                   std::to_string(scale.numel()) + " scales but now sees a tensor of shape " +
                                   c10::str(x.sizes()) + " needing " + std::to_string(p));
  torch::NoGradGuard no_grad;
  scale.set_data(torch::ones({p}, scale.options()));  // on the module's device (--device cuda)
  zero_point.set_data(torch::zeros({p}, zero_point.options()));
}

void FakeQuantizeImpl::initialise_from_observed(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const QParamTensors from_range = observer_.qparams();
  ScaleInit init = options_.init;
  if (init == ScaleInit::Auto) {
    init = options_.spec.grid == quant::Grid::Odd && options_.spec.bits == 1 ? ScaleInit::MeanAbs : ScaleInit::Observer;
  }
  torch::Tensor s;
  switch (init) {
    case ScaleInit::Auto:
    case ScaleInit::Observer: s = from_range.scale; break;
    case ScaleInit::LsqMeanAbs:
      s = 2.0 * mean_abs_per_param(x, options_.spec) / std::sqrt(static_cast<double>(std::max(1, options_.spec.qmax())));
      break;
    case ScaleInit::MeanAbs: s = mean_abs_per_param(x, options_.spec); break;
  }
  scale.copy_(s.clamp_min(quant::kMinScale).to(torch::kFloat32));
  zero_point.copy_(from_range.zero_point.to(torch::kFloat32));
  initialized_.fill_(true);
}

torch::Tensor FakeQuantizeImpl::forward(const torch::Tensor& x) {
  if (!enabled_ && !observing_) return x;
  resize_for(x);
  if ((is_training() || options_.observe_in_eval) && observing_) {
    const bool need_init = learned_scale() && !initialized();
    if (!learned_scale() && !observer_.frozen()) {
      observe_with_state(observer_, *this, x);
      torch::NoGradGuard no_grad;
      const QParamTensors qp = observer_.qparams();
      scale.copy_(qp.scale);
      zero_point.copy_(qp.zero_point.to(torch::kFloat32));
      initialized_.fill_(true);
    } else if (need_init) {
      observe_with_state(observer_, *this, x);
      if (++init_seen_ >= options_.init_batches) initialise_from_observed(x.detach());
    }
  }
  if (!enabled_) return x;
  LOWBIT_CHECK(initialized(), "fake quantizer " + options_.spec.describe() +
                                  " has no quantization parameters yet: run a training-mode forward (calibration) "
                                  "before evaluating, or load them from a checkpoint");
  if (is_training() && noise_.sigma > 0.0) return noisy_fake_quantize(x);
  return fake_quantize(x, scale, zero_point, options_.spec, options_.estimator);
}

void FakeQuantizeImpl::set_noise(const QuantizerNoise& noise) {
  LOWBIT_CHECK(std::isfinite(noise.sigma) && noise.sigma >= 0.0,
               "quantizer noise: sigma must be a finite number >= 0 (got " + std::to_string(noise.sigma) + ")");
  noise_ = noise;
}

namespace {
uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace

torch::Tensor FakeQuantizeImpl::noisy_fake_quantize(const torch::Tensor& x) {
  // The key of this forward's draw: the noise seed (set per step and layer by qat::Winq) and the
  // number of forwards since. The noise itself is counter-based (fake_quant.h).
  const uint64_t key = splitmix64(noise_seed_ ^ splitmix64(++noise_draws_));
  // One fused pass (fake_quant.h): the same values and gradients as fake_quantize of
  // perturb_quantizer_inputs' noisy x and scales.
  return qat::noisy_fake_quantize(x, scale, zero_point, options_.spec, options_.estimator, noise_.sigma,
                                  noise_.mode == NoiseMode::Relative, key);
}

void FakeQuantizeImpl::set_fixed_qparams(const torch::Tensor& s, const torch::Tensor& z) {
  torch::NoGradGuard no_grad;
  LOWBIT_CHECK(s.numel() == z.numel() && s.numel() >= 1, "fixed qparams: scale and zero point need the same size");
  scale.set_data(s.detach().to(scale.device(), torch::kFloat32).reshape({-1}).clone());
  zero_point.set_data(z.detach().to(zero_point.device(), torch::kFloat32).reshape({-1}).clone());
  scale.requires_grad_(false);
  zero_point.requires_grad_(false);
  initialized_.fill_(true);
  observing_ = false;
  observer_.freeze();
}

QParamTensors FakeQuantizeImpl::qparams() const {
  return {scale.detach().clamp_min(quant::kMinScale).to(torch::kFloat32).contiguous().clone(),
          effective_zero_point(zero_point.detach(), options_.spec, zero_point.numel())};
}

}  // namespace lowbit::qat
