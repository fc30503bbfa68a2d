// Max pooling over channels on NEON, 16 channels per vector (UMAX); bit-exact with ref::max_pool.
#include <arm_neon.h>

#include "runtime/kernels/pool_kernels.h"

namespace lowbit::runtime {

void u8_maxpool_16c__neon(const Op& op, const uint8_t* x, int64_t batch, ValueShape in, ValueShape out, uint8_t* y) {
  const int32_t C = in.c;
  for (int64_t n = 0; n < batch; ++n) {
    const uint8_t* xn = x + n * in.size();
    uint8_t* yn = y + n * out.size();
    for (int32_t oh = 0; oh < out.h; ++oh) {
      // the window's rows and columns inside the input (padding never holds the maximum)
      const int32_t h0 = oh * op.stride_h - op.pad_h;
      const int32_t kh0 = h0 < 0 ? -h0 : 0, kh1 = h0 + op.kernel_h > in.h ? in.h - h0 : op.kernel_h;
      for (int32_t ow = 0; ow < out.w; ++ow) {
        const int32_t w0 = ow * op.stride_w - op.pad_w;
        const int32_t kw0 = w0 < 0 ? -w0 : 0, kw1 = w0 + op.kernel_w > in.w ? in.w - w0 : op.kernel_w;
        uint8_t* dst = yn + (int64_t{oh} * out.w + ow) * C;
        const auto at = [&](int32_t kh, int32_t kw) { return xn + (int64_t{h0 + kh} * in.w + (w0 + kw)) * C; };
        int32_t c = 0;
        for (; c + 16 <= C; c += 16) {
          uint8x16_t m = vld1q_u8(at(kh0, kw0) + c);
          for (int32_t kh = kh0; kh < kh1; ++kh)
            for (int32_t kw = kw0; kw < kw1; ++kw) m = vmaxq_u8(m, vld1q_u8(at(kh, kw) + c));
          vst1q_u8(dst + c, m);
        }
        for (; c < C; ++c) {
          uint8_t m = at(kh0, kw0)[c];
          for (int32_t kh = kh0; kh < kh1; ++kh)
            for (int32_t kw = kw0; kw < kw1; ++kw) m = at(kh, kw)[c] > m ? at(kh, kw)[c] : m;
          dst[c] = m;
        }
      }
    }
  }
}

}  // namespace lowbit::runtime
