// Element-wise functions that run on the integer runtime as a 256-entry lookup table: LeakyReLU,
// sigmoid, hard sigmoid, hard swish, tanh and SiLU (x * sigmoid(x)) (the activations of imported ONNX models that are
// not a clamp, so they cannot be fused into a requantization as ReLU and ReLU6 are), and the affine
// map alpha * x + beta (an input normalisation (x - mean) / std, or a scaling by a constant).
//
// A uint8 input code q has exactly one real value, s_x * (q - z_x), so f applied to every code and
// quantized onto the output grid is a table of 256 codes: the runtime then computes f by one load
// per element, and it computes exactly what the table says on every kernel level. The table is
// built here, once, by the converter; the runtime only reads it from the .lbq file.
//
// Worked example (docs/numerics.md, "Lookup tables"; tests/quant/pointwise_function_test.cpp):
// LeakyReLU with alpha 0.125, input scale 0.0625 zero point 128, output scale 0.03125 zero point
// 16. Code 100 is 0.0625 * (100 - 128) = -1.75; f = -0.21875 = -7 output steps; + 16 gives
// table[100] = 9. Code 140 is 0.75 = 24 steps: table[140] = 40. Code 255 is 7.9375 = 254 steps,
// 270 after the zero point, clamped to 255.
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace lowbit::quant {

enum class PointwiseKind { LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Tanh, Silu, Affine };

struct PointwiseFunction {
  PointwiseKind kind = PointwiseKind::Sigmoid;
  // LeakyRelu: slope for x < 0 (ONNX default 0.01). HardSigmoid: max(0, min(1, alpha * x + beta))
  // (ONNX default alpha 0.2, beta 0.5; PyTorch's Hardsigmoid is alpha 1/6). Unused otherwise.
  float alpha = 0.0f;
  float beta = 0.0f;

  // f(x) in double precision: the definition the lookup tables are built from.
  double operator()(double x) const;
  // "leaky_relu", "sigmoid", "hard_sigmoid", "hard_swish", "tanh", "silu", "affine"
  std::string name() const;
  // e.g. "leaky_relu(alpha=0.1)"
  std::string describe() const;
  bool operator==(const PointwiseFunction& o) const { return kind == o.kind && alpha == o.alpha && beta == o.beta; }
};

// Throws lowbit::Error for an unknown name; alpha and beta as given (the caller applies defaults).
PointwiseFunction pointwise_function(const std::string& name, float alpha = 0.0f, float beta = 0.0f);

// table[q] = quantize_integer(f(s_in * (q - z_in)), s_out, z_out, qmin_out, qmax_out) for q in
// [0, 255]: the input's real value is computed in float32 as every dequantization in lowbit is,
// f in double, the result rounded once, half to even (quant/rounding.h).
std::array<uint8_t, 256> make_pointwise_table(const PointwiseFunction& f, float in_scale, int32_t in_zero_point,
                                              float out_scale, int32_t out_zero_point, int32_t out_qmin, int32_t out_qmax);

// The same with f(x) = x: table[q] = quantize_integer(s_in * (q - z_in), s_out, z_out, qmin, qmax),
// a code moved onto another grid exactly as fake quantization moves the value it stands for
// (Concat's inputs onto its output grid). Identity when the grids are equal.
std::array<uint8_t, 256> make_requantize_table(float in_scale, int32_t in_zero_point, float out_scale,
                                               int32_t out_zero_point, int32_t out_qmin, int32_t out_qmax);

}  // namespace lowbit::quant
