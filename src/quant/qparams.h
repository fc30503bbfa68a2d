// Scale and zero point from an observed range [min, max].
//
//   Integer, symmetric, signed:   s = max(|min|, |max|) / qmax,            z = 0
//   Integer, symmetric, unsigned: s = max(max, 0) / qmax,                  z = 0
//   Integer, asymmetric:          range widened to include 0,
//                                 s = (max - min) / (qmax - qmin),
//                                 z = clamp(qmin - round_half_even(min / s), qmin, qmax)
//   Odd grid:                     s = max(|min|, |max|) / (2^b - 1)        z = 0
//                                 (the outermost level +-(2^b-1)*s lands on the range edge)
//
// A zero range gives s = 1 (every value quantizes to zero, any s would do); scales are
// clamped below at kMinScale so that x / s never overflows to inf for finite x.
#pragma once
#include <cstdint>

#include "quant/quant_spec.h"

namespace lowbit::quant {

struct QParams {
  float scale = 1.0f;
  int32_t zero_point = 0;
};

constexpr float kMinScale = 1e-12f;

// Throws lowbit::Error if min or max is not finite or min > max.
QParams choose_qparams(float min, float max, const QuantSpec& spec);

}  // namespace lowbit::quant
