#include "runtime/ops/swiglu_op.h"

#include <cmath>

namespace lowbit::runtime::ops {

void swiglu(const float* gate, const float* up, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace lowbit::runtime::ops
