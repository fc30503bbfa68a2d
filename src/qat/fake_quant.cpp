#include "qat/fake_quant.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "base/error.h"
#include "qat/fake_quant_aten.h"
#include "qat/fake_quant_kernels.h"
#include "qat/qparam_layout.h"
#include "quant/qparams.h"
#include "quant/quantize.h"

namespace lowbit::qat {
namespace {

std::vector<int64_t> shape_of(const torch::Tensor& t) { return std::vector<int64_t>(t.sizes().begin(), t.sizes().end()); }

void check_inputs(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& zero_point,
                  const quant::QuantSpec& spec, int64_t num_params) {
  spec.validate();
  LOWBIT_CHECK(x.defined() && x.scalar_type() == torch::kFloat32,
               "fake_quantize: the input must be a float32 tensor (got " +
                   (x.defined() ? std::string(c10::toString(x.scalar_type())) + " on " + x.device().str() : "undefined") +
                   ")");
  LOWBIT_CHECK(scale.defined() && scale.scalar_type() == torch::kFloat32 && scale.numel() == num_params,
               "fake_quantize: " + spec.describe() + " on a tensor of shape " + c10::str(x.sizes()) + " needs " +
                   std::to_string(num_params) + " float32 scales (got " +
                   (scale.defined() ? std::to_string(scale.numel()) : std::string("none")) + ")");
  LOWBIT_CHECK(!zero_point.defined() || zero_point.numel() == num_params,
               "fake_quantize: expected " + std::to_string(num_params) + " zero points (got " +
                   std::to_string(zero_point.numel()) + ")");
}

// Grain: about 32K elements per task, whatever the segment length.
int64_t grain_for(const QParamLayout& layout) {
  const int64_t avg = layout.num_segments() > 0 ? std::max<int64_t>(1, layout.numel() / layout.num_segments()) : 1;
  return std::max<int64_t>(1, 32768 / avg);
}

std::vector<float> effective_scales(const torch::Tensor& scale) {
  torch::Tensor s = scale.detach().to(torch::kCPU).contiguous();  // [P]: small, whatever the device
  std::vector<float> out(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
  for (float& v : out) v = std::isnan(v) ? quant::kMinScale : std::max(v, quant::kMinScale);
  return out;
}

std::vector<int32_t> effective_zps(const torch::Tensor& zero_point, const quant::QuantSpec& spec, int64_t n) {
  std::vector<int32_t> out(n, 0);
  if (spec.grid != quant::Grid::Integer || spec.symmetric || !zero_point.defined()) return out;
  torch::Tensor z = zero_point.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const float* zp = z.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    float r = quant::round_half_even(zp[i]);
    if (std::isnan(r)) r = 0.0f;
    r = std::min(std::max(r, static_cast<float>(spec.qmin())), static_cast<float>(spec.qmax()));
    out[i] = static_cast<int32_t>(r);
  }
  return out;
}

// The spec and estimator travel to backward in the context's saved data.
void save_spec(torch::autograd::AutogradContext* ctx, const quant::QuantSpec& spec, Estimator estimator) {
  ctx->saved_data["bits"] = static_cast<int64_t>(spec.bits);
  ctx->saved_data["is_signed"] = spec.is_signed;
  ctx->saved_data["symmetric"] = spec.symmetric;
  ctx->saved_data["narrow_range"] = spec.narrow_range;
  ctx->saved_data["grid"] = static_cast<int64_t>(spec.grid);
  ctx->saved_data["granularity"] = static_cast<int64_t>(spec.granularity);
  ctx->saved_data["axis"] = static_cast<int64_t>(spec.axis);
  ctx->saved_data["group_size"] = static_cast<int64_t>(spec.group_size);
  ctx->saved_data["estimator"] = static_cast<int64_t>(estimator);
}

// The backward of both autograd functions below, on the saved (x, scale, zero_point) the
// forward quantized with: gradients for x, scale and zero point.
torch::autograd::variable_list fake_quantize_autograd_backward(torch::autograd::AutogradContext* ctx,
                                                               const torch::Tensor& grad_output) {
  const auto saved = ctx->get_saved_variables();
  quant::QuantSpec spec;
  spec.bits = static_cast<int>(ctx->saved_data["bits"].toInt());
  spec.is_signed = ctx->saved_data["is_signed"].toBool();
  spec.symmetric = ctx->saved_data["symmetric"].toBool();
  spec.narrow_range = ctx->saved_data["narrow_range"].toBool();
  spec.grid = static_cast<quant::Grid>(ctx->saved_data["grid"].toInt());
  spec.granularity = static_cast<quant::Granularity>(ctx->saved_data["granularity"].toInt());
  spec.axis = static_cast<int>(ctx->saved_data["axis"].toInt());
  spec.group_size = static_cast<int>(ctx->saved_data["group_size"].toInt());
  const auto estimator = static_cast<Estimator>(ctx->saved_data["estimator"].toInt());
  // Scale / zero-point gradients only when autograd asks for them (a Hessian-vector product
  // or an input gradient does not), so the LSQ reduction is skipped there.
  const bool want_qparams = ctx->needs_input_grad(1) || ctx->needs_input_grad(2);
  FakeQuantizeGrads g;
  if (torch::GradMode::is_enabled() && grad_output.requires_grad()) {
    // create_graph (double backward, e.g. Hessian-vector products): the input gradient is
    // grad_output * mask with a mask that is piecewise constant in x, so it is recorded as that
    // product, differentiable in grad_output. Same values as the kernel's (the mask is the
    // kernel's own straight-through gradient of ones). Scale / zero-point gradients stay
    // first-order (constants for a second differentiation).
    const torch::Tensor mask =
        fake_quantize_backward(torch::ones_like(saved[0]), saved[0], saved[1], saved[2], spec, Estimator::Ste).input;
    if (want_qparams && estimator != Estimator::Ste) {
      torch::NoGradGuard no_grad;
      g = fake_quantize_backward(grad_output, saved[0], saved[1], saved[2], spec, estimator);
    }
    g.input = grad_output * mask;
  } else {
    g = fake_quantize_backward(grad_output, saved[0], saved[1], saved[2], spec, want_qparams ? estimator : Estimator::Ste);
  }
  if (g.scale.defined()) g.scale = g.scale.view(saved[1].sizes());
  if (g.zero_point.defined()) g.zero_point = g.zero_point.view(saved[2].sizes());
  return {g.input, g.scale, g.zero_point};
}

struct FakeQuantizeFunction : public torch::autograd::Function<FakeQuantizeFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& scale, const torch::Tensor& zero_point,
                               const quant::QuantSpec& spec, Estimator estimator) {
    ctx->save_for_backward({x, scale, zero_point});
    save_spec(ctx, spec, estimator);
    return fake_quantize_forward(x, scale, zero_point, spec);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    torch::autograd::variable_list g = fake_quantize_autograd_backward(ctx, grad_outputs[0]);
    g.resize(5);  // spec, estimator: no gradient
    return g;
  }
};

// x + noise, the noise fixed by (key, per-pair sigma); backward: the identity.
struct NoisyInputFunction : public torch::autograd::Function<NoisyInputFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x_in,
                               const quant::QuantSpec& spec, const std::vector<float>& sigma, uint64_t key) {
    // Not on the CPU (fused_kernels_apply): the counter-based noise is a pure function of (key,
    // index), so it is computed by the same kernel on a CPU copy and copied back: the same values
    // on every device.
    if (!x_in.device().is_cpu())
      return forward(ctx, x_in.detach().to(torch::kCPU), spec, sigma, key).to(x_in.device());
    const torch::Tensor x = x_in.detach().contiguous();
    torch::Tensor y = torch::empty_like(x);
    const QParamLayout layout(spec, shape_of(x));
    const float* xp = x.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    at::parallel_for(0, layout.num_segments(), grain_for(layout), [&](int64_t first, int64_t last) {
      for (int64_t i = first; i < last; ++i) {
        const Segment seg = layout.segment(i);
        kernels::add_counter_normal(xp + seg.begin, yp + seg.begin, seg.length, sigma[seg.param], key,
                                    static_cast<uint64_t>(seg.begin));
      }
    });
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    return {grad_outputs[0], torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// The noise's standard deviation per (scale, zero point) pair: sigma, or sigma * s_p.
std::vector<float> noise_sigmas(const torch::Tensor& scale, int64_t num_params, double sigma, bool relative) {
  LOWBIT_CHECK(std::isfinite(sigma) && sigma >= 0.0, "quantizer noise: sigma must be a finite number >= 0");
  std::vector<float> per_param(num_params, static_cast<float>(sigma));
  if (relative) {
    const std::vector<float> s = effective_scales(scale);
    for (int64_t p = 0; p < num_params; ++p) per_param[p] = static_cast<float>(sigma) * s[p];
  }
  return per_param;
}

// The scales' noise: sigma_p * eps(key, numel + p), float32 [P].
torch::Tensor scale_noise(const std::vector<float>& per_param, uint64_t key, int64_t numel) {
  const int64_t num_params = static_cast<int64_t>(per_param.size());
  torch::Tensor eps_s = torch::empty({num_params}, torch::kFloat32);
  float* ep = eps_s.data_ptr<float>();
  const uint64_t base = static_cast<uint64_t>(numel);
  for (int64_t p = 0; p < num_params; ++p) ep[p] = per_param[p] * kernels::counter_normal(key, base + static_cast<uint64_t>(p));
  return eps_s;
}

// fake_quantize(x + noise, scale + noise', zero_point) with perturb_quantizer_inputs' noise, in
// one autograd node and one sweep: the kernel draws the noise, writes the noisy input (saved
// for backward) and its fake quantization. Gradients: those of fake_quantize at the noisy point,
// passed to x and scale unchanged (the noise is additive).
struct NoisyFakeQuantizeFunction : public torch::autograd::Function<NoisyFakeQuantizeFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x_in,
                               const torch::Tensor& scale, const torch::Tensor& zero_point,
                               const quant::QuantSpec& spec, Estimator estimator, const std::vector<float>& sigma,
                               uint64_t key) {
    const std::vector<int64_t> shape = shape_of(x_in);
    const int64_t num_params = static_cast<int64_t>(sigma.size());
    const torch::Tensor x = x_in.detach().contiguous();
    const torch::Tensor noisy_scale =
        (scale.detach() + scale_noise(sigma, key, x.numel()).view(scale.sizes())).contiguous();
    torch::Tensor xn = torch::empty_like(x), y = torch::empty_like(x);
    const QParamLayout layout(spec, shape);
    const std::vector<float> s = effective_scales(noisy_scale);
    const std::vector<int32_t> z = effective_zps(zero_point, spec, num_params);
    const float* xp = x.data_ptr<float>();
    float* xnp = xn.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    const bool odd = spec.grid == quant::Grid::Odd;
    const float lo = static_cast<float>(odd ? spec.code_min() : spec.qmin());
    const float hi = static_cast<float>(odd ? spec.code_max() : spec.qmax());
    at::parallel_for(0, layout.num_segments(), grain_for(layout), [&](int64_t first, int64_t last) {
      for (int64_t i = first; i < last; ++i) {
        const Segment seg = layout.segment(i);
        const uint64_t at = static_cast<uint64_t>(seg.begin);
        if (odd) {
          kernels::noisy_fake_quantize_odd(xp + seg.begin, xnp + seg.begin, yp + seg.begin, seg.length,
                                           sigma[seg.param], key, at, s[seg.param], lo, hi);
        } else {
          kernels::noisy_fake_quantize_integer(xp + seg.begin, xnp + seg.begin, yp + seg.begin, seg.length,
                                               sigma[seg.param], key, at, s[seg.param], z[seg.param], lo, hi);
        }
      }
    });
    ctx->save_for_backward({xn, noisy_scale, zero_point});
    save_spec(ctx, spec, estimator);
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    torch::autograd::variable_list g = fake_quantize_autograd_backward(ctx, grad_outputs[0]);
    g.resize(7);  // spec, estimator, sigma, key: no gradient
    return g;
  }
};

}  // namespace

NoisyQuantizerInputs perturb_quantizer_inputs(const torch::Tensor& x, const torch::Tensor& scale,
                                              const quant::QuantSpec& spec, double sigma, bool relative, uint64_t key) {
  const int64_t num_params = quant::num_qparams(spec, shape_of(x));
  check_inputs(x, scale, torch::Tensor(), spec, num_params);
  const std::vector<float> per_param = noise_sigmas(scale, num_params, sigma, relative);
  const torch::Tensor eps_s = scale_noise(per_param, key, x.numel());
  NoisyQuantizerInputs out;
  out.x = NoisyInputFunction::apply(x, spec, per_param, key);
  out.scale = scale + eps_s.view(scale.sizes()).to(scale.device());
  return out;
}

torch::Tensor effective_zero_point(const torch::Tensor& zero_point, const quant::QuantSpec& spec, int64_t num_params) {
  std::vector<int32_t> z = effective_zps(zero_point, spec, num_params);
  return torch::from_blob(z.data(), {num_params}, torch::kInt32).clone();
}

torch::Tensor fake_quantize_forward(const torch::Tensor& x_in, const torch::Tensor& scale,
                                    const torch::Tensor& zero_point, const quant::QuantSpec& spec) {
  const std::vector<int64_t> shape = shape_of(x_in);
  const int64_t num_params = quant::num_qparams(spec, shape);
  check_inputs(x_in, scale, zero_point, spec, num_params);
  if (!fused_kernels_apply(x_in)) return fake_quantize_forward_aten(x_in, scale, zero_point, spec);
  const torch::Tensor x = x_in.detach().contiguous();
  torch::Tensor y = torch::empty_like(x);
  const QParamLayout layout(spec, shape);
  const std::vector<float> s = effective_scales(scale);
  const std::vector<int32_t> z = effective_zps(zero_point, spec, num_params);
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const bool odd = spec.grid == quant::Grid::Odd;
  const float lo = static_cast<float>(odd ? spec.code_min() : spec.qmin());
  const float hi = static_cast<float>(odd ? spec.code_max() : spec.qmax());
  at::parallel_for(0, layout.num_segments(), grain_for(layout), [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) {
      const Segment seg = layout.segment(i);
      if (odd) {
        kernels::fake_quantize_odd(xp + seg.begin, yp + seg.begin, seg.length, s[seg.param], lo, hi);
      } else {
        kernels::fake_quantize_integer(xp + seg.begin, yp + seg.begin, seg.length, s[seg.param], z[seg.param], lo, hi);
      }
    }
  });
  return y;
}

FakeQuantizeGrads fake_quantize_backward(const torch::Tensor& grad_output, const torch::Tensor& x_in,
                                         const torch::Tensor& scale, const torch::Tensor& zero_point,
                                         const quant::QuantSpec& spec, Estimator estimator) {
  const std::vector<int64_t> shape = shape_of(x_in);
  const int64_t num_params = quant::num_qparams(spec, shape);
  check_inputs(x_in, scale, zero_point, spec, num_params);
  LOWBIT_CHECK(grad_output.sizes() == x_in.sizes(), "fake_quantize backward: gradient shape " +
                                                        c10::str(grad_output.sizes()) + " differs from input shape " +
                                                        c10::str(x_in.sizes()));
  if (!fused_kernels_apply(x_in)) return fake_quantize_backward_aten(grad_output, x_in, scale, zero_point, spec, estimator);
  const torch::Tensor x = x_in.detach().contiguous();
  const torch::Tensor g = grad_output.detach().to(torch::kFloat32).contiguous();
  const QParamLayout layout(spec, shape);
  const std::vector<float> s = effective_scales(scale);
  const std::vector<int32_t> z = effective_zps(zero_point, spec, num_params);
  const bool odd = spec.grid == quant::Grid::Odd;
  const bool want_scale = estimator != Estimator::Ste;
  const bool want_zp = estimator == Estimator::LsqPlus && !odd && !spec.symmetric;
  const float qmin = static_cast<float>(spec.qmin()), qmax = static_cast<float>(spec.qmax());
  const float cmin = static_cast<float>(spec.code_min()), cmax = static_cast<float>(spec.code_max());

  FakeQuantizeGrads out;
  out.input = torch::empty_like(x);
  // Per-segment partial sums in double, reduced in segment order afterwards: deterministic for
  // any thread count.
  std::vector<double> part_s(want_scale ? layout.num_segments() : 0), part_z(want_zp ? layout.num_segments() : 0);
  const float* xp = x.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  float* dxp = out.input.data_ptr<float>();
  at::parallel_for(0, layout.num_segments(), grain_for(layout), [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) {
      const Segment seg = layout.segment(i);
      const float sc = s[seg.param];
      const float zf = static_cast<float>(z[seg.param]);
      if (!want_scale) {
        kernels::straight_through_gradient(xp + seg.begin, gp + seg.begin, dxp + seg.begin, seg.length, sc, zf, qmin, qmax);
        continue;
      }
      double acc_s = 0.0, acc_z = 0.0;
      for (int64_t j = seg.begin; j < seg.begin + seg.length; ++j) {
        const float v = xp[j] / sc;
        const float w = v + zf;
        const bool inside = w >= qmin && w <= qmax;
        dxp[j] = inside ? gp[j] : 0.0f;
        // LSQ's case split: strictly inside -> q - z - v; at or beyond an edge -> the clamp
        // level (at the edge v = level exactly, where the paper gives Qp / -Qn, not 0).
        float ds;
        bool clamped = true;
        if (w <= qmin) {
          ds = qmin - zf;
        } else if (w >= qmax) {
          ds = qmax - zf;
        } else if (inside) {
          clamped = false;
          float qz;  // q - z, exactly as the forward computes it
          if (odd) {
            float c = quant::round_half_even_bounded(xp[j] / (2.0f * sc) - 0.5f);  // inside: |.| is small
            c = c < cmin ? cmin : (c > cmax ? cmax : c);
            qz = 2.0f * c + 1.0f;
          } else {
            float t = quant::round_half_even_bounded(v) + zf;
            t = t < qmin ? qmin : (t > qmax ? qmax : t);
            qz = t - zf;
          }
          ds = qz - v;
        } else {
          ds = 0.0f;  // NaN input: no gradient anywhere
          clamped = false;
        }
        acc_s += static_cast<double>(gp[j]) * ds;
        if (want_zp && clamped) acc_z -= static_cast<double>(gp[j]) * sc;
      }
      if (want_scale) part_s[i] = acc_s;
      if (want_zp) part_z[i] = acc_z;
    }
  });
  if (want_scale) {
    std::vector<double> sum_s(num_params, 0.0), sum_z(num_params, 0.0);
    for (int64_t i = 0; i < layout.num_segments(); ++i) {
      const int64_t p = layout.segment(i).param;
      sum_s[p] += part_s[i];
      if (want_zp) sum_z[p] += part_z[i];
    }
    out.scale = torch::empty({num_params}, torch::kFloat32);
    if (want_zp) out.zero_point = torch::empty({num_params}, torch::kFloat32);
    const double qp = std::max(1.0f, qmax);
    // Through raw pointers: Tensor::operator[] assignment costs a few microseconds per element,
    // which per-group scales (one per 32 weights) turned into a fifth of a gpt-tiny QAT step.
    float* gsp = out.scale.data_ptr<float>();
    float* gzp = want_zp ? out.zero_point.data_ptr<float>() : nullptr;
    for (int64_t p = 0; p < num_params; ++p) {
      const int64_t n = layout.elements_of(p);
      const double gs = n > 0 ? 1.0 / std::sqrt(static_cast<double>(n) * qp) : 0.0;
      gsp[p] = static_cast<float>(sum_s[p] * gs);
      if (want_zp) gzp[p] = static_cast<float>(sum_z[p] * gs);
    }
  }
  return out;
}

torch::Tensor fake_quantize(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& zero_point,
                            const quant::QuantSpec& spec, Estimator estimator) {
  const torch::Tensor zp = zero_point.defined() ? zero_point : torch::zeros_like(scale);
  return FakeQuantizeFunction::apply(x, scale, zp, spec, estimator);
}

torch::Tensor noisy_fake_quantize(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& zero_point,
                                  const quant::QuantSpec& spec, Estimator estimator, double sigma, bool relative,
                                  uint64_t key) {
  const int64_t num_params = quant::num_qparams(spec, shape_of(x));
  const torch::Tensor zp = zero_point.defined() ? zero_point : torch::zeros_like(scale);
  check_inputs(x, scale, zp, spec, num_params);
  if (!fused_kernels_apply(x)) {  // the same function in two nodes: the noise, then the ATen fake quantization
    const NoisyQuantizerInputs n = perturb_quantizer_inputs(x, scale, spec, sigma, relative, key);
    return fake_quantize(n.x, n.scale, zp, spec, estimator);
  }
  return NoisyFakeQuantizeFunction::apply(x, scale, zp, spec, estimator, noise_sigmas(scale, num_params, sigma, relative),
                                          key);
}

}  // namespace lowbit::qat
