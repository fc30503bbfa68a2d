// The one rounding rule of lowbit: round half to even, everywhere (fake quantization,
// observers, PTQ, conversion, requantization and the runtime). Mixing rules is a classic
// source of "accuracy changed after convert"; every rounding in the code base calls here.
#pragma once
#include <cmath>
#include <cstdint>

namespace lowbit::quant {

// Round a float to the nearest integer value, ties to even (std::nearbyint under the
// default FE_TONEAREST mode, which lowbit never changes).
inline float round_half_even(float x) { return std::nearbyint(x); }

// The same rule for |x| <= kRoundBoundedLimit (2^22), written as float additions so that loops
// over tensors vectorise on baseline x86-64, whose SSE2 has no rounding instruction: adding
// 1.5 * 2^23 moves x into [2^23, 2^24), where floats are exactly the integers, so the FPU's
// default rounding (to nearest, ties to even) drops the fraction; subtracting gives it back.
// Equal to round_half_even on that range (tests/quant/rounding_test.cpp checks every float
// with |x| >= 1/4; smaller ones all give 0), except that it returns +0 where nearbyint keeps
// the sign of a negative zero result. Callers clamp x to the limit first; beyond it every
// quantization clamps anyway. Compiled without -ffast-math, which would fold the two additions.
constexpr float kRoundBoundedLimit = 4194304.0f;  // 2^22
inline float round_half_even_bounded(float x) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (x + kMagic) - kMagic;
}
inline double round_half_even(double x) { return std::nearbyint(x); }

// x / 2^n rounded to nearest, ties to even, computed exactly on integers (0 <= n <= 62).
// This is the only rounding inside requantization: there is no double rounding.
inline int64_t shift_right_round_half_even(int64_t x, int n) {
  if (n == 0) return x;
  const int64_t floor_q = x >> n;                       // arithmetic shift: floor(x / 2^n)
  const int64_t rem = x - (floor_q * (int64_t{1} << n)); // in [0, 2^n)
  const int64_t half = int64_t{1} << (n - 1);
  if (rem > half || (rem == half && (floor_q & 1))) return floor_q + 1;
  return floor_q;
}

}  // namespace lowbit::quant
