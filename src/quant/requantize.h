// Requantization of int32 accumulators: the output stage of every integer layer.
//
// A real multiplier m (typically s_in * s_w / s_out, in (0, 2^31)) is represented as
//     m ~= multiplier * 2^-shift,   multiplier in [2^30, 2^31), shift in [0, 62],
// so the relative representation error is below 2^-31. The output is
//     y = clamp(round_half_even((int64)acc * multiplier / 2^shift) + zero_point, qmin, qmax)
// computed exactly on 64-bit integers with one rounding (shift_right_round_half_even).
// Multipliers below 2^-32 cannot move any int32 accumulator off zero; they are stored as
// multiplier 0. The integer runtime and the QAT evaluation ("convert") mode both call this.
#pragma once
#include <cstdint>

#include "quant/rounding.h"

namespace lowbit::quant {

struct FixedPointMultiplier {
  int32_t multiplier = 0;
  int32_t shift = 0;
  double value() const;  // multiplier * 2^-shift, exactly representable in a double
};

// Throws lowbit::Error for m <= 0, m >= 2^31 or non-finite m.
FixedPointMultiplier make_fixed_point_multiplier(double real_multiplier);

// acc * multiplier / 2^shift rounded half to even, without zero point or clamp.
inline int64_t apply_multiplier(int32_t acc, FixedPointMultiplier m) {
  return shift_right_round_half_even(static_cast<int64_t>(acc) * m.multiplier, m.shift);
}

inline int32_t requantize(int32_t acc, FixedPointMultiplier m, int32_t zero_point, int32_t qmin, int32_t qmax) {
  int64_t y = apply_multiplier(acc, m) + zero_point;
  y = y < qmin ? qmin : y;
  y = y > qmax ? qmax : y;
  return static_cast<int32_t>(y);
}

}  // namespace lowbit::quant
