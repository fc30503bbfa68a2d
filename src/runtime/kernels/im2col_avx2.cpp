// im2col rows for the uint8 GEMMs with 32-byte copies (the generic build's 16-byte copies made conv2's
// im2col, 3 runs of 96 bytes per row, cost ~15 % of the layer).
#include <immintrin.h>

#include "runtime/kernels/im2col_kernels.h"

namespace lowbit::runtime {

void gather_rows_u8_avx2(const uint8_t* src, const int64_t* offsets, int64_t rows, int32_t runs, int64_t run_stride,
                         int32_t run_len, int32_t K, int32_t Kp, uint8_t* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* d = dst + r * Kp;
    const uint8_t* s = src + offsets[r];
    for (int32_t j = 0; j < runs; ++j, s += run_stride, d += run_len)
      for (int32_t b = 0; b < run_len; b += 32)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + b), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + b)));
    for (int32_t k = K; k < Kp; ++k) dst[r * Kp + k] = 0;
  }
}

}  // namespace lowbit::runtime
