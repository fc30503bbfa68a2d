#include "quant/quantize.h"
#include "runtime/kernels/ref_kernels.h"

namespace lowbit::runtime::ref {

void quantize_input(const float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin, int32_t qmax, uint8_t* y,
                    int64_t y_stride) {
  for (int64_t i = 0; i < n; ++i)
    y[i * y_stride] = static_cast<uint8_t>(quant::quantize_integer(x[i], scale, zero_point, qmin, qmax));
}

}  // namespace lowbit::runtime::ref
