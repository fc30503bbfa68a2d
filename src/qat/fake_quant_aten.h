// Fake quantization written with ATen tensor ops: the same function as the fused CPU kernels of
// fake_quant.cpp / fake_quant_kernels.cpp, for tensors the kernels cannot read (a CUDA tensor,
// --device cuda). fake_quant.cpp dispatches through fused_kernels_apply, the one place that
// decides; the numbers, and where they may differ, are in docs/qat.md "Training on a GPU" and are
// tested on the CPU by forcing this path (tests/qat/fake_quant_aten_test.cpp).
#pragma once
#include "qat/fake_quant.h"
#include "torch_pch.h"

namespace lowbit::qat {

// True when the fused CPU kernels compute fake quantization of `x`: x is a CPU tensor and the
// ATen path is not forced. Forced by LOWBIT_FAKE_QUANT_ATEN=1 in the environment (read once) or
// by force_aten_fake_quant(true), so that one CPU machine tests both paths.
bool fused_kernels_apply(const torch::Tensor& x);
void force_aten_fake_quant(bool force);  // tests; false returns to the fused kernels on the CPU

// fake_quantize_forward / fake_quantize_backward (fake_quant.h) on x's device. The forward and
// the input gradient are bit-exact with the kernels (the same float operations in the same
// order); the scale and zero-point gradients are double-precision sums in another order (a
// scatter-add), so they may differ in the last float bit.
torch::Tensor fake_quantize_forward_aten(const torch::Tensor& x, const torch::Tensor& scale,
                                         const torch::Tensor& zero_point, const quant::QuantSpec& spec);
FakeQuantizeGrads fake_quantize_backward_aten(const torch::Tensor& grad_output, const torch::Tensor& x,
                                              const torch::Tensor& scale, const torch::Tensor& zero_point,
                                              const quant::QuantSpec& spec, Estimator estimator);

// Per-token int8 fake quantization (quant/per_token.h: s_t = max |x_t| / 127, NaN ignored, 1 for
// an all-zero row) of the last dimension, forward only; bit-exact with quant::quantize_token_row.
torch::Tensor fake_quantize_per_token_aten(const torch::Tensor& x);

}  // namespace lowbit::qat
