// Fake quantization for QAT: forward is exactly quant::fake_quantize (bit for bit), backward
// is one of three gradient estimators. One fused CPU kernel per direction: the forward pass
// writes the output in one sweep, the backward pass recomputes x / s (cheaper than storing a
// mask for the common float32 case and exact by construction) and reduces the scale / offset
// gradients per (scale, zero_point) pair.
//
// Notation: v = x / s (one float32 division, as in quant::quantize), z the integer zero point,
// [qmin, qmax] the grid of QuantSpec (Odd grid: the odd values, e.g. [-3, 3] for SEQ 2-bit).
// Clip tests use the UNROUNDED w = v + z (the continuous relaxation's clip range):
// "inside" is qmin <= w <= qmax (closed, as torch.clamp's gradient), "strictly inside"
// qmin < w < qmax (LSQ's case split for the step size, eq. 3 of the paper: -Qn < v/s < Qp).
// q is the forward's integer (clamped, rounded), so q - z = round(v) inside.
//
//   Ste (clipped straight-through): dL/dx = g * inside; no gradient for s or z.
//   Lsq (Esser et al. 2020, "Learned Step Size Quantization", eq. 3 and sec. 2.2):
//       dL/dx = g * inside
//       dL/ds = gs * sum_i g_i * { (q_i - z) - v_i   strictly inside   (= round(v) - v)
//                                  qmin - z           w <= qmin         (= -Qn)
//                                  qmax - z           w >= qmax }       (=  Qp)
//       gs = 1 / sqrt(N * Qp), N = number of elements sharing that scale, Qp = qmax.
//   LsqPlus (Bhalgat et al. 2020): Lsq plus a learned zero point, kept in integer units so the
//       forward stays on the integer grid: the forward uses z = clamp(round_half_even(zp),
//       qmin, qmax) (straight-through for zp), out = s * (q - z); then
//       dL/dzp = gs * sum_i g_i * { 0 strictly inside,  -s at or beyond an edge }
//       (LSQ+'s offset beta = -s * z: its d/dbeta = 1 outside, 0 inside, times dbeta/dz = -s).
//   Odd grid (binary, SEQ 2-bit) and ternary use the same formulas with their grid: the scale
//   gradient is q - v inside and the clamp level (+-1 binary, +-3 SEQ2, +-1 ternary) outside,
//   which is ParetoQ's LSQ-style estimator written for our scale (ParetoQ's alpha is the
//   range edge: alpha = s for binary, 4s for SEQ2, 1.5s for ternary; the ratio is a constant
//   factor absorbed by the learning rate and gs).
//
// Symmetric and Odd specs ignore the zero point tensor (z = 0). Scales below quant::kMinScale
// are raised to it (a learned scale must never reach 0 or go negative). CPU float32 only.
#pragma once
#include <string>

#include "qat/quantizer_options.h"  // Estimator
#include "quant/quant_spec.h"
#include "torch_pch.h"

namespace lowbit::qat {

// The differentiable op. x: float32 CPU tensor of any shape. scale: float32 [P] with
// P = quant::num_qparams(spec, x.sizes()), ordered as quant::qparam_index. zero_point: float32
// [P] or undefined (= zeros). Gradients flow to scale (Lsq, LsqPlus) and zero_point (LsqPlus,
// asymmetric specs) when they require grad. Twice differentiable in x for Hessian-vector
// products (create_graph): the input gradient is recorded as grad_output * mask (the mask is
// piecewise constant, its derivative 0); the scale / zero-point gradients are first-order only.
torch::Tensor fake_quantize(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& zero_point,
                            const quant::QuantSpec& spec, Estimator estimator);

// WinQ's noise-injected quantizer inputs (docs/winq.md), one draw of the counter-based stream
// `key` (kernels::counter_normal) for the tensor and its scales: element i of x gets
// sigma_p * eps(key, i), scale p gets sigma'_p * eps(key, x.numel() + p), where sigma_p = sigma'_p
// = sigma (absolute) or sigma * s_p (relative: s_p the effective scale of element i's
// (scale, zero point) pair, detached). Both are differentiable with gradient 1 (the perturbed x
// is one fused pass over x, recorded as an identity for autograd). Deterministic for any
// thread count and CPU.
struct NoisyQuantizerInputs {
  torch::Tensor x;
  torch::Tensor scale;
};
NoisyQuantizerInputs perturb_quantizer_inputs(const torch::Tensor& x, const torch::Tensor& scale,
                                              const quant::QuantSpec& spec, double sigma, bool relative, uint64_t key);

// fake_quantize(n.x, n.scale, zero_point, spec, estimator) with n = perturb_quantizer_inputs(x,
// scale, spec, sigma, relative, key): the same values and gradients (bit for bit), computed in
// one sweep over x and one autograd node (WinQ's training forwards; the noisy x is never a
// separate tensor with its own node). Gradients to x and scale are those at the noisy point.
torch::Tensor noisy_fake_quantize(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& zero_point,
                                  const quant::QuantSpec& spec, Estimator estimator, double sigma, bool relative,
                                  uint64_t key);

// The raw kernels (no autograd), exposed for tests and for convert-time evaluation.
torch::Tensor fake_quantize_forward(const torch::Tensor& x, const torch::Tensor& scale,
                                    const torch::Tensor& zero_point, const quant::QuantSpec& spec);

struct FakeQuantizeGrads {
  torch::Tensor input;       // same shape as x
  torch::Tensor scale;       // [P], undefined for Ste
  torch::Tensor zero_point;  // [P], undefined unless LsqPlus on an asymmetric integer spec
};
FakeQuantizeGrads fake_quantize_backward(const torch::Tensor& grad_output, const torch::Tensor& x,
                                         const torch::Tensor& scale, const torch::Tensor& zero_point,
                                         const quant::QuantSpec& spec, Estimator estimator);

// The integer zero points the forward actually uses: clamp(round_half_even(zp), qmin, qmax),
// or zeros for symmetric / Odd specs. int32 [P].
torch::Tensor effective_zero_point(const torch::Tensor& zero_point, const quant::QuantSpec& spec, int64_t num_params);

}  // namespace lowbit::qat
