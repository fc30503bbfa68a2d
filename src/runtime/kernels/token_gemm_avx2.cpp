// AVX2 kernel of kernels/token_gemm.h: four output rows share each 32-byte activation load.
// int8 x int8 products through vpmaddubsw: |w| as the unsigned operand (|-128| = 128 fits) and x
// with w's sign applied (vpsignb; x in [-127, 127] negates without overflow), so each pair sum
// is at most 2 * 128 * 127 = 32512 < 32767: never saturates, exact like the reference.
#include <immintrin.h>

#include "runtime/kernels/token_gemm.h"

namespace lowbit::runtime {
namespace {

inline __m256i dot32(__m256i xv, __m256i wv, __m256i acc, __m256i ones) {
  const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
}

inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_hadd_epi32(s, s);
  s = _mm_hadd_epi32(s, s);
  return _mm_cvtsi128_si32(s);
}

}  // namespace

void s8_w8_gemm_grpacc_1x4__avx2(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t groups, int32_t kp,
                                 const int8_t* x, const int8_t* w, int32_t* acc, int64_t acc_stride) {
  const int64_t row = int64_t{groups} * kp;
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t t = 0; t < tokens; ++t) {
    const int8_t* xt = x + t * row;
    int32_t* at = acc + t * acc_stride;
    int32_t o = o_begin;
    for (; o + 4 <= o_end; o += 4) {
      const int8_t* w0 = w + int64_t{o} * row;
      for (int32_t g = 0; g < groups; ++g) {
        const int64_t base = int64_t{g} * kp;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        for (int32_t k = 0; k < kp; k += 32) {
          const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xt + base + k));
          a0 = dot32(xv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w0 + base + k)), a0, ones);
          a1 = dot32(xv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w0 + row + base + k)), a1, ones);
          a2 = dot32(xv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w0 + 2 * row + base + k)), a2, ones);
          a3 = dot32(xv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w0 + 3 * row + base + k)), a3, ones);
        }
        // Four horizontal sums at once: lane i of the result is the sum of a_i.
        const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
        const __m128i r = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        at[int64_t{o} * groups + g] = _mm_extract_epi32(r, 0);
        at[int64_t{o + 1} * groups + g] = _mm_extract_epi32(r, 1);
        at[int64_t{o + 2} * groups + g] = _mm_extract_epi32(r, 2);
        at[int64_t{o + 3} * groups + g] = _mm_extract_epi32(r, 3);
      }
    }
    for (; o < o_end; ++o) {
      const int8_t* wo = w + int64_t{o} * row;
      for (int32_t g = 0; g < groups; ++g) {
        const int64_t base = int64_t{g} * kp;
        __m256i a = _mm256_setzero_si256();
        for (int32_t k = 0; k < kp; k += 32)
          a = dot32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xt + base + k)),
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wo + base + k)), a, ones);
        at[int64_t{o} * groups + g] = hsum(a);
      }
    }
  }
}

}  // namespace lowbit::runtime
