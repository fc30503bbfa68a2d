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
