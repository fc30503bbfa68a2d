// Vector form of quant::quantize_integer on NEON: the same IEEE operations in the same order, so
// the codes are identical (FDIV is the correctly rounded division, FRINTN rounds to nearest with
// ties to even as nearbyint does under the default rounding mode, the clamp bounds are integers
// held exactly in float, and NaN is replaced by the zero point as in the scalar code).
#include <arm_neon.h>

#include "quant/quantize.h"
#include "runtime/kernels/quantize_kernels.h"

namespace lowbit::runtime {

void f32_quantize_8x__neon(const float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin, int32_t qmax,
                           uint8_t* y, int64_t y_stride) {
  const float32x4_t s = vdupq_n_f32(scale), z = vdupq_n_f32(static_cast<float>(zero_point));
  const float32x4_t lo = vdupq_n_f32(static_cast<float>(qmin)), hi = vdupq_n_f32(static_cast<float>(qmax));
  const auto codes4 = [&](const float* p) {
    const float32x4_t t = vaddq_f32(vrndnq_f32(vdivq_f32(vld1q_f32(p), s)), z);
    const uint32x4_t number = vceqq_f32(t, t);  // false for NaN
    const float32x4_t c = vbslq_f32(number, vminq_f32(vmaxq_f32(t, lo), hi), z);
    return vmovn_u32(vcvtq_u32_f32(c));  // integers in [0, 255]
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint8x8_t b = vmovn_u16(vcombine_u16(codes4(x + i), codes4(x + i + 4)));
    if (y_stride == 1) {
      vst1_u8(y + i, b);
    } else {
      uint8_t tmp[8];
      vst1_u8(tmp, b);
      for (int j = 0; j < 8; ++j) y[(i + j) * y_stride] = tmp[j];
    }
  }
  for (; i < n; ++i)
    y[i * y_stride] = static_cast<uint8_t>(quant::quantize_integer(x[i], scale, zero_point, qmin, qmax));
}

}  // namespace lowbit::runtime
