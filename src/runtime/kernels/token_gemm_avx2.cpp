// AVX2 kernel of kernels/token_gemm.h: four output rows share each 32-byte activation load.
// int8 x int8 products through vpmaddubsw: |w| as the unsigned operand (|-128| = 128 fits) and x
// with w's sign applied (vpsignb; x in [-127, 127] negates without overflow), so each pair sum
// is at most 2 * 128 * 127 = 32512 < 32767: never saturates, exact like the reference.
#pragma GCC optimize("fp-contract=off")  // the epilogue: vmulps then vaddps, as the reference
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/per_token.h"
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

void s8_w8_gemm_grpacc_1x4__avx2(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups,
                                 int32_t kp, const int8_t* x, const int8_t* w, int32_t* acc, int64_t acc_stride) {
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
        _mm_storeu_si128(reinterpret_cast<__m128i*>(at + int64_t{g} * out + o), r);  // rows o..o+3
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
        at[int64_t{g} * out + o] = hsum(a);
      }
    }
  }
}

// Per-token quantization, 8 floats at a time: the max of |x| (order-free; NaN ignored, as
// quant::token_scale: vmaxps returns its second operand when the first is NaN) and
// quant::quantize_integer's operations (vdivps, round to nearest even, NaN -> 0, clamp).
float f32_s8_quantize_token_8x__avx2(const float* x, int32_t in, int32_t group_size, int32_t groups, int32_t kp,
                                     int8_t* q) {
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256 mv = _mm256_setzero_ps();
  int32_t i = 0;
  for (; i + 8 <= in; i += 8) mv = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), absmask), mv);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, mv);
  float m = 0.0f;
  for (float v : lanes) m = v > m ? v : m;
  for (; i < in; ++i) {
    const float a = std::fabs(x[i]);
    m = a > m ? a : m;
  }
  const float st = m > 0.0f ? m / static_cast<float>(quant::kTokenQMax) : 1.0f;
  const __m256 s = _mm256_set1_ps(st), zero = _mm256_setzero_ps();
  const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  for (int32_t g = 0; g < groups; ++g) {
    const int32_t k0 = g * group_size, len = std::min(group_size, in - k0);
    int8_t* qg = q + int64_t{g} * kp;
    const float* xg = x + k0;
    int32_t k = 0;
    for (; k + 8 <= len; k += 8) {
      __m256 t = _mm256_add_ps(
          _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(xg + k), s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), zero);
      const __m256 nan = _mm256_cmp_ps(t, t, _CMP_UNORD_Q);
      t = _mm256_blendv_ps(_mm256_min_ps(_mm256_max_ps(t, lo), hi), zero, nan);
      const __m256i v = _mm256_cvttps_epi32(t);
      const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(qg + k), _mm_packs_epi16(w, w));
    }
    quant::quantize_token(xg + k, len - k, st, qg + k);
    std::memset(qg + len, 0, static_cast<size_t>(kp - len));
  }
  return st;
}

// The epilogue of token_gemm.h, 8 output rows per step: per lane the reference's operations in
// its order (vmulps, then vaddps; no FMA), so the floats are the reference's.
void s32_f32_grpscale_8x__avx2(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups,
                               const int32_t* acc, int64_t acc_stride, const float* scales, const float* sx, float* y) {
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t* at = acc + t * acc_stride;
    const __m256 st = _mm256_set1_ps(sx[t]);
    int32_t o = o_begin;
    for (; o + 8 <= o_end; o += 8) {
      __m256 sum = _mm256_setzero_ps();
      for (int32_t g = 0; g < groups; ++g) {
        const int64_t i = int64_t{g} * out + o;
        const __m256 a = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + i)));
        sum = _mm256_add_ps(sum, _mm256_mul_ps(_mm256_loadu_ps(scales + i), a));
      }
      _mm256_storeu_ps(y + t * out + o, _mm256_mul_ps(st, sum));
    }
    for (; o < o_end; ++o) {
      float sum = 0.0f;
      for (int32_t g = 0; g < groups; ++g)
        sum += scales[int64_t{g} * out + o] * static_cast<float>(at[int64_t{g} * out + o]);
      y[t * out + o] = sx[t] * sum;
    }
  }
}

}  // namespace lowbit::runtime
