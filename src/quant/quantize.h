// Scalar quantize / dequantize: the specification every vectorised or torch-side
// implementation must reproduce bit for bit.
//
//   Integer grid: q = clamp(round_half_even(x / s) + z, qmin, qmax)      x_hat = s * (q - z)
//   Odd grid:     c = clamp(round_half_even(x / (2s) - 0.5), cmin, cmax)  q = 2c + 1, x_hat = s * q
//
// x / s is one IEEE float32 division (never x * (1/s), which rounds differently).
// NaN inputs quantize to the zero point (Integer) or to +1 (Odd); +-inf saturate.
#pragma once
#include <cmath>
#include <cstdint>

#include "quant/quant_spec.h"
#include "quant/rounding.h"

namespace lowbit::quant {

// The grid constants a kernel needs, taken once from a QuantSpec.
struct GridParams {
  Grid grid = Grid::Integer;
  int32_t qmin = -128;
  int32_t qmax = 127;
  int32_t code_min = -128;  // Odd grid: clamp range of c
  int32_t code_max = 127;

  static GridParams of(const QuantSpec& spec) {
    return GridParams{spec.grid, spec.qmin(), spec.qmax(), spec.code_min(), spec.code_max()};
  }
};

inline int32_t quantize_integer(float x, float scale, int32_t zero_point, int32_t qmin, int32_t qmax) {
  float t = round_half_even(x / scale) + static_cast<float>(zero_point);
  if (std::isnan(t)) return zero_point;
  t = t < static_cast<float>(qmin) ? static_cast<float>(qmin) : t;
  t = t > static_cast<float>(qmax) ? static_cast<float>(qmax) : t;
  return static_cast<int32_t>(t);
}

inline int32_t quantize_odd(float x, float scale, int32_t code_min, int32_t code_max) {
  float t = round_half_even(x / (2.0f * scale) - 0.5f);
  if (std::isnan(t)) return 1;
  t = t < static_cast<float>(code_min) ? static_cast<float>(code_min) : t;
  t = t > static_cast<float>(code_max) ? static_cast<float>(code_max) : t;
  return 2 * static_cast<int32_t>(t) + 1;
}

// Returns q (for the Odd grid the odd value, not the code).
inline int32_t quantize(float x, float scale, int32_t zero_point, const GridParams& g) {
  return g.grid == Grid::Integer ? quantize_integer(x, scale, zero_point, g.qmin, g.qmax)
                                 : quantize_odd(x, scale, g.code_min, g.code_max);
}

inline float dequantize(int32_t q, float scale, int32_t zero_point) {
  return scale * static_cast<float>(q - zero_point);
}

// quantize then dequantize: what a fake-quantization node computes in its forward pass.
inline float fake_quantize(float x, float scale, int32_t zero_point, const GridParams& g) {
  return dequantize(quantize(x, scale, zero_point, g), scale, g.grid == Grid::Integer ? zero_point : 0);
}

// Odd grid: stored code <-> value.
inline int32_t odd_code_of(int32_t q) { return (q - 1) / 2; }  // q - 1 is even: exact
inline int32_t odd_value_of(int32_t code) { return 2 * code + 1; }

}  // namespace lowbit::quant
