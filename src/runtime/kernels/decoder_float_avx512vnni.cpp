// AVX-512 float kernels of decoder models (decoder_float_kernels.h; AVX-512F instructions, the
// avx512vnni level's file). Lanes run across outputs, each lane does the reference's operations
// in the reference's order: bit-identical results.
#pragma GCC optimize("fp-contract=off")  // vmulps then vaddps, as the reference
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "runtime/kernels/decoder_float_kernels.h"

namespace lowbit::runtime {

void f32_attention_row_16x__avx512vnni(const float* q, const float* k, const float* kt, int64_t kt_stride,
                                       const float* v, int64_t d, int64_t p, int32_t hd, float inv_scale, float* scores,
                                       float* out) {
  const int64_t n = p + 1;
  const __m512 div = _mm512_set1_ps(inv_scale);
  __m512 mv = _mm512_set1_ps(-INFINITY);
  // Scores of 16 keys at a time: lane j sums q[i] * k_j[i] over i increasing, as the reference.
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = n - j >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - j)) - 1);
    __m512 s = _mm512_setzero_ps();
    for (int32_t i = 0; i < hd; ++i)
      s = _mm512_add_ps(s, _mm512_mul_ps(_mm512_set1_ps(q[i]), _mm512_maskz_loadu_ps(m, kt + i * kt_stride + j)));
    s = _mm512_div_ps(s, div);
    _mm512_mask_storeu_ps(scores + j, m, s);
    mv = _mm512_mask_max_ps(mv, m, mv, s);
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, mv);
  float mx = lanes[0];  // max is exact in any order
  for (int l = 1; l < 16; ++l) mx = std::max(mx, lanes[l]);
  float sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    scores[j] = std::exp(scores[j] - mx);
    sum += scores[j];
  }
  // Weighted sum: lanes across the head's dimensions, keys in increasing order.
  for (int32_t i0 = 0; i0 < hd; i0 += 16) {
    const __mmask16 m = hd - i0 >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (hd - i0)) - 1);
    __m512 o = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      const __m512 w = _mm512_set1_ps(scores[j] / sum);
      o = _mm512_add_ps(o, _mm512_mul_ps(w, _mm512_maskz_loadu_ps(m, v + j * d + i0)));
    }
    _mm512_mask_storeu_ps(out + i0, m, o);
  }
}

void f32_linear_kinc_1x64__avx512vnni(const float* x, int64_t rows, const float* wt, int32_t in, int32_t out,
                                      int32_t o_begin, int32_t o_end, float* y) {
  for (int64_t t = 0; t < rows; ++t) {
    const float* xt = x + t * in;
    int32_t o = o_begin;
    for (; o + 64 <= o_end; o += 64) {
      __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (int32_t k = 0; k < in; ++k) {
        const __m512 xk = _mm512_set1_ps(xt[k]);
        const float* w = wt + int64_t{k} * out + o;
        a0 = _mm512_add_ps(a0, _mm512_mul_ps(xk, _mm512_loadu_ps(w)));
        a1 = _mm512_add_ps(a1, _mm512_mul_ps(xk, _mm512_loadu_ps(w + 16)));
        a2 = _mm512_add_ps(a2, _mm512_mul_ps(xk, _mm512_loadu_ps(w + 32)));
        a3 = _mm512_add_ps(a3, _mm512_mul_ps(xk, _mm512_loadu_ps(w + 48)));
      }
      float* yt = y + t * out + o;
      _mm512_storeu_ps(yt, a0);
      _mm512_storeu_ps(yt + 16, a1);
      _mm512_storeu_ps(yt + 32, a2);
      _mm512_storeu_ps(yt + 48, a3);
    }
    for (; o < o_end; o += 16) {
      const __mmask16 m =
          o_end - o >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (o_end - o)) - 1);
      __m512 a = _mm512_setzero_ps();
      for (int32_t k = 0; k < in; ++k)
        a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_set1_ps(xt[k]), _mm512_maskz_loadu_ps(m, wt + int64_t{k} * out + o)));
      _mm512_mask_storeu_ps(y + t * out + o, m, a);
    }
  }
}

}  // namespace lowbit::runtime
