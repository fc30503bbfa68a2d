// im2col rows for the uint8 GEMMs with 32-byte copies (the generic build's 16-byte copies made conv2's
// im2col, 3 runs of 96 bytes per row, cost ~15 % of the layer).
#include <immintrin.h>

#include "runtime/kernels/im2col_kernels.h"

namespace lowbit::runtime {

void u8_im2col_gather_32b__avx2(const uint8_t* src, const int64_t* offsets, int64_t rows, int32_t runs,
                                int64_t run_stride, int32_t run_len, int32_t K, int32_t Kp, uint8_t* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* d = dst + r * Kp;
    const uint8_t* s = src + offsets[r];
    for (int32_t j = 0; j < runs; ++j, s += run_stride, d += run_len)
      for (int32_t b = 0; b < run_len; b += 32)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + b), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + b)));
    for (int32_t k = K; k < Kp; ++k) dst[r * Kp + k] = 0;
  }
}

void u8_stack_rows_c1_16x__avx2(const uint8_t* const* row, int32_t rows, int64_t n, uint8_t* out) {
  const auto load = [&](int32_t j, int64_t w) {
    return j < rows ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(row[j] + w)) : _mm_setzero_si128();
  };
  // 16 columns per step; the last step is moved back to end at n (it overlaps the previous one and
  // rewrites the same bytes), so nothing past the row is read or written.
  for (int64_t w0 = 0; w0 < n; w0 += 16) {
    const int64_t w = w0 + 16 <= n ? w0 : n - 16;
    const __m128i r01_lo = _mm_unpacklo_epi8(load(0, w), load(1, w)), r01_hi = _mm_unpackhi_epi8(load(0, w), load(1, w));
    const __m128i r23_lo = _mm_unpacklo_epi8(load(2, w), load(3, w)), r23_hi = _mm_unpackhi_epi8(load(2, w), load(3, w));
    __m128i* d = reinterpret_cast<__m128i*>(out + 4 * w);
    _mm_storeu_si128(d + 0, _mm_unpacklo_epi16(r01_lo, r23_lo));
    _mm_storeu_si128(d + 1, _mm_unpackhi_epi16(r01_lo, r23_lo));
    _mm_storeu_si128(d + 2, _mm_unpacklo_epi16(r01_hi, r23_hi));
    _mm_storeu_si128(d + 3, _mm_unpackhi_epi16(r01_hi, r23_hi));
  }
}

}  // namespace lowbit::runtime
