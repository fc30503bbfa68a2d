// The bias of a conv or linear layer as the integer model adds it: an int32 count of the
// accumulator's unit s_x * s_w[o] (docs/numerics.md, section 5). Conversion stores these codes;
// QAT's evaluation forward adds code * s_x * s_w[o], so that training sees the bias the
// runtime uses (at 4 bits one unit can be a tenth of an output step).
#pragma once
#include <cstdint>

namespace lowbit::quant {

// round_half_even(bias / (s_x * s_w)) in double, saturated to int32; NaN gives 0.
int32_t quantize_bias(float bias, float s_x, float s_w);

// The float value a bias code stands for: code * s_x * s_w in double, then float.
float dequantize_bias(int32_t code, float s_x, float s_w);

}  // namespace lowbit::quant
