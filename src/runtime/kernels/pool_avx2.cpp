#include <immintrin.h>

#include "runtime/kernels/pool_kernels.h"

namespace lowbit::runtime {

void u8_maxpool_32c__avx2(const Op& op, const uint8_t* x, int64_t batch, ValueShape in, ValueShape out, uint8_t* y) {
  const int32_t C = in.c;
  for (int64_t n = 0; n < batch; ++n) {
    const uint8_t* xn = x + n * in.size();
    uint8_t* yn = y + n * out.size();
    for (int32_t oh = 0; oh < out.h; ++oh) {
      const int32_t h0 = oh * op.stride_h - op.pad_h;
      const int32_t kh0 = h0 < 0 ? -h0 : 0, kh1 = h0 + op.kernel_h > in.h ? in.h - h0 : op.kernel_h;
      for (int32_t ow = 0; ow < out.w; ++ow) {
        const int32_t w0 = ow * op.stride_w - op.pad_w;
        const int32_t kw0 = w0 < 0 ? -w0 : 0, kw1 = w0 + op.kernel_w > in.w ? in.w - w0 : op.kernel_w;
        uint8_t* dst = yn + (int64_t{oh} * out.w + ow) * C;
        const uint8_t* first = xn + (int64_t{h0 + kh0} * in.w + (w0 + kw0)) * C;
        int32_t c = 0;
        for (; c + 32 <= C; c += 32) {
          __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(first + c));
          for (int32_t kh = kh0; kh < kh1; ++kh)
            for (int32_t kw = kw0; kw < kw1; ++kw) {
              const uint8_t* src = xn + (int64_t{h0 + kh} * in.w + (w0 + kw)) * C + c;
              m = _mm256_max_epu8(m, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
            }
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + c), m);
        }
        for (; c < C; ++c) {
          uint8_t m = first[c];
          for (int32_t kh = kh0; kh < kh1; ++kh)
            for (int32_t kw = kw0; kw < kw1; ++kw) {
              const uint8_t v = xn[(int64_t{h0 + kh} * in.w + (w0 + kw)) * C + c];
              m = v > m ? v : m;
            }
          dst[c] = m;
        }
      }
    }
  }
}

}  // namespace lowbit::runtime
