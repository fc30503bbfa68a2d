// Depthwise 2-D convolution (groups = in_channels = out_channels), NHWC, AVX2: 8 channels per
// vector, int32 products (vpmulld) of (x - z_x) and the weight, so nothing can saturate; padding
// taps are skipped (they would add (z_x - z_x) * w = 0). Weights are unpacked once at load time
// into a tap-major int32 table [KH * KW][C] (C * KH * KW values: tiny for depthwise layers).
#include <immintrin.h>

#include "runtime/kernels/depthwise_kernels.h"
#include "runtime/kernels/gemm_output_avx2.h"

namespace lowbit::runtime {

using namespace avx2;

void u8_dwconv_s32_fxp_8c__avx2(const Op& op, const int32_t* w, const uint8_t* x, int64_t batch, ValueShape in,
                                int32_t zx, ValueShape out, const GemmOutput& o) {
  const int32_t C = in.c;
  const int32_t C8 = C / 8 * 8;
  std::vector<RequantParams> rq(static_cast<size_t>(C8 / 8));
  if (o.y_i32 == nullptr)
    for (int32_t c = 0; c < C8; c += 8) rq[c / 8] = requant_params(o, c, 8);
  const __m256i z = _mm256_set1_epi32(zx);
  for (int64_t n = 0; n < batch; ++n) {
    for (int32_t oh = 0; oh < out.h; ++oh) {
      for (int32_t ow = 0; ow < out.w; ++ow) {
        const int64_t orow = (n * out.h + oh) * out.w + ow;
        for (int32_t c = 0; c < C; c += 8) {
          const bool full = c < C8;
          __m256i acc = _mm256_setzero_si256();
          int32_t tail[8] = {0};
          for (int32_t kh = 0; kh < op.kernel_h; ++kh) {
            const int32_t ih = oh * op.stride_h - op.pad_h + kh;
            if (ih < 0 || ih >= in.h) continue;
            for (int32_t kw = 0; kw < op.kernel_w; ++kw) {
              const int32_t iw = ow * op.stride_w - op.pad_w + kw;
              if (iw < 0 || iw >= in.w) continue;
              const uint8_t* src = x + ((n * in.h + ih) * in.w + iw) * C + c;
              const int32_t* wt = w + static_cast<int64_t>(kh * op.kernel_w + kw) * C + c;
              if (full) {
                int64_t eight;
                std::memcpy(&eight, src, 8);
                const __m256i xv = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(eight)), z);
                const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wt));
                acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(xv, wv));
              } else {
                for (int32_t j = 0; j < C - c; ++j)
                  tail[j] = static_cast<int32_t>(static_cast<uint32_t>(tail[j]) +
                                                 static_cast<uint32_t>((src[j] - zx) * wt[j]));
              }
            }
          }
          if (full) {
            acc = _mm256_add_epi32(acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(o.bias + c)));
            if (o.y_i32 != nullptr) {
              _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.y_i32 + orow * o.ldy + c), acc);
            } else if (rq[c / 8].vector_ok) {
              const __m256i y = requantize8(acc, rq[c / 8]);
              const __m128i p16 = _mm_packus_epi32(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
              _mm_storel_epi64(reinterpret_cast<__m128i*>(o.y_u8 + orow * o.ldy + c), _mm_packus_epi16(p16, p16));
            } else {
              alignas(32) int32_t v[8];
              _mm256_store_si256(reinterpret_cast<__m256i*>(v), acc);
              for (int j = 0; j < 8; ++j)
                o.y_u8[orow * o.ldy + c + j] = static_cast<uint8_t>(
                    quant::requantize(v[j], {o.multiplier[c + j], o.shift[c + j]}, o.zero_point, o.qmin, o.qmax));
            }
          } else {
            for (int32_t j = 0; j < C - c; ++j) {
              const int32_t a = static_cast<int32_t>(static_cast<uint32_t>(tail[j]) + static_cast<uint32_t>(o.bias[c + j]));
              if (o.y_i32 != nullptr) {
                o.y_i32[orow * o.ldy + c + j] = a;
              } else {
                o.y_u8[orow * o.ldy + c + j] = static_cast<uint8_t>(
                    quant::requantize(a, {o.multiplier[c + j], o.shift[c + j]}, o.zero_point, o.qmin, o.qmax));
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace lowbit::runtime
