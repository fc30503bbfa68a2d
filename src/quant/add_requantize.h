// Requantization of a residual add of two quantized tensors with different scales.
//
//   y = clamp(round_half_even(((a - za) * A + (b - zb) * B) / 2^shift) + zy, qmin, qmax)
//
// where A ~= (sa / sy) * 2^shift and B ~= (sb / sy) * 2^shift share one shift, chosen so that
// the larger of A and B lies in [2^30, 2^31). The sum is exact in int64 (|a - za| <= 2^16 is
// checked at construction), so there is one rounding only. Used by QAT's convert mode and
// by the integer runtime.
#pragma once
#include <cstdint>

#include "quant/rounding.h"

namespace lowbit::quant {

struct AddMultipliers {
  int32_t a = 0;
  int32_t b = 0;
  int32_t shift = 0;
};

// ratio_a = sa / sy, ratio_b = sb / sy; both finite, > 0 and < 2^15.
AddMultipliers make_add_multipliers(double ratio_a, double ratio_b);

inline int32_t requantize_add(int32_t a_minus_za, int32_t b_minus_zb, AddMultipliers m, int32_t zero_point,
                              int32_t qmin, int32_t qmax) {
  const int64_t sum = static_cast<int64_t>(a_minus_za) * m.a + static_cast<int64_t>(b_minus_zb) * m.b;
  int64_t y = shift_right_round_half_even(sum, m.shift) + zero_point;
  y = y < qmin ? qmin : y;
  y = y > qmax ? qmax : y;
  return static_cast<int32_t>(y);
}

}  // namespace lowbit::quant
