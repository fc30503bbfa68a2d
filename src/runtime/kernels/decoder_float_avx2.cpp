// AVX2 float kernels of decoder models (decoder_float_kernels.h). Lanes run across outputs, each
// lane does the reference's operations in the reference's order: bit-identical results.
#pragma GCC optimize("fp-contract=off")  // vmulps then vaddps, as the reference
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "runtime/kernels/decoder_float_kernels.h"

namespace lowbit::runtime {

void f32_attention_row_8x__avx2(const float* q, const float* k, const float* kt, int64_t kt_stride, const float* v,
                                int64_t d, int64_t p, int32_t hd, float inv_scale, float* scores, float* out) {
  const int64_t n = p + 1;
  const __m256 div = _mm256_set1_ps(inv_scale);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 s = _mm256_setzero_ps();
    for (int32_t i = 0; i < hd; ++i)
      s = _mm256_add_ps(s, _mm256_mul_ps(_mm256_set1_ps(q[i]), _mm256_loadu_ps(kt + i * kt_stride + j)));
    _mm256_storeu_ps(scores + j, _mm256_div_ps(s, div));
  }
  for (; j < n; ++j) {
    float s = 0.0f;
    for (int32_t i = 0; i < hd; ++i) s += q[i] * kt[i * kt_stride + j];
    scores[j] = s / inv_scale;
  }
  float mx = -INFINITY;
  for (j = 0; j < n; ++j) mx = std::max(mx, scores[j]);
  float sum = 0.0f;
  for (j = 0; j < n; ++j) {
    scores[j] = std::exp(scores[j] - mx);
    sum += scores[j];
  }
  int32_t i0 = 0;
  for (; i0 + 8 <= hd; i0 += 8) {
    __m256 o = _mm256_setzero_ps();
    for (j = 0; j < n; ++j)
      o = _mm256_add_ps(o, _mm256_mul_ps(_mm256_set1_ps(scores[j] / sum), _mm256_loadu_ps(v + j * d + i0)));
    _mm256_storeu_ps(out + i0, o);
  }
  for (; i0 < hd; ++i0) {
    float o = 0.0f;
    for (j = 0; j < n; ++j) o += scores[j] / sum * v[j * d + i0];
    out[i0] = o;
  }
}

void f32_linear_kinc_1x32__avx2(const float* x, int64_t rows, const float* wt, int32_t in, int32_t out,
                                int32_t o_begin, int32_t o_end, float* y) {
  for (int64_t t = 0; t < rows; ++t) {
    const float* xt = x + t * in;
    int32_t o = o_begin;
    for (; o + 32 <= o_end; o += 32) {
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (int32_t k = 0; k < in; ++k) {
        const __m256 xk = _mm256_set1_ps(xt[k]);
        const float* w = wt + int64_t{k} * out + o;
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(xk, _mm256_loadu_ps(w)));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(xk, _mm256_loadu_ps(w + 8)));
        a2 = _mm256_add_ps(a2, _mm256_mul_ps(xk, _mm256_loadu_ps(w + 16)));
        a3 = _mm256_add_ps(a3, _mm256_mul_ps(xk, _mm256_loadu_ps(w + 24)));
      }
      float* yt = y + t * out + o;
      _mm256_storeu_ps(yt, a0);
      _mm256_storeu_ps(yt + 8, a1);
      _mm256_storeu_ps(yt + 16, a2);
      _mm256_storeu_ps(yt + 24, a3);
    }
    for (; o < o_end; ++o) {
      float s = 0.0f;
      for (int32_t k = 0; k < in; ++k) s += xt[k] * wt[int64_t{k} * out + o];
      y[t * out + o] = s;
    }
  }
}

}  // namespace lowbit::runtime
