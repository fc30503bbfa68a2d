// SwiGLU gating in float, as models/gpt.h's SwiGLUImpl: y = silu(gate) * up,
// silu(g) = g / (1 + exp(-g)).
#pragma once
#include <cstdint>

namespace lowbit::runtime::ops {

void swiglu(const float* gate, const float* up, int64_t n, float* y);

}  // namespace lowbit::runtime::ops
