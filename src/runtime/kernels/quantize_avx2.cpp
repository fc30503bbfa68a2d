// Vector form of quant::quantize_integer: the same IEEE operations in the same order, so the codes are
// identical (vdivps is the correctly rounded division, vroundps with _MM_FROUND_TO_NEAREST_INT is
// nearbyint under the default rounding mode, and the clamp bounds are integers held exactly in float).
#include <immintrin.h>

#include "quant/quantize.h"
#include "runtime/kernels/quantize_kernels.h"

namespace lowbit::runtime {

void f32_quantize_8x__avx2(const float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin, int32_t qmax,
                           uint8_t* y, int64_t y_stride) {
  const __m256 s = _mm256_set1_ps(scale), z = _mm256_set1_ps(static_cast<float>(zero_point));
  const __m256 lo = _mm256_set1_ps(static_cast<float>(qmin)), hi = _mm256_set1_ps(static_cast<float>(qmax));
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 q = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x + i), s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 t = _mm256_add_ps(q, z);
    const __m256 nan = _mm256_cmp_ps(t, t, _CMP_UNORD_Q);
    t = _mm256_blendv_ps(_mm256_min_ps(_mm256_max_ps(t, lo), hi), z, nan);  // NaN -> zero point
    const __m256i v = _mm256_cvttps_epi32(t);                               // integers in [0, 255]
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    const __m128i b = _mm_packus_epi16(w, w);
    if (y_stride == 1) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i), b);
    } else {
      alignas(16) uint8_t tmp[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp), b);
      for (int j = 0; j < 8; ++j) y[(i + j) * y_stride] = tmp[j];
    }
  }
  for (; i < n; ++i) y[i * y_stride] = static_cast<uint8_t>(quant::quantize_integer(x[i], scale, zero_point, qmin, qmax));
}

}  // namespace lowbit::runtime
