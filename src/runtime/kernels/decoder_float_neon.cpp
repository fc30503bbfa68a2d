// NEON float kernels of decoder models (decoder_float_kernels.h), plain Armv8-A, used by the neon
// and neondot levels. Lanes run across outputs (keys for the scores, head dimensions for the
// weighted sum, output columns for the head), each lane doing the reference's operations in its
// order: FMUL then FADD (never FMLA, which rounds once), FDIV for the scale, exp from the same
// std::exp, so the results equal the reference's bit for bit.
#pragma GCC optimize("fp-contract=off")  // also set for every aarch64 file by CMake
#include <arm_neon.h>

#include <algorithm>
#include <cmath>

#include "runtime/kernels/decoder_float_kernels.h"

namespace lowbit::runtime {

void f32_attention_row_8x__neon(const float* q, const float* k, const float* kt, int64_t kt_stride, const float* v,
                                int64_t d, int64_t p, int32_t hd, float inv_scale, float* scores, float* out) {
  const int64_t n = p + 1;
  const float32x4_t div = vdupq_n_f32(inv_scale);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {  // keys j..j+7 from the transposed cache
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0;
    for (int32_t i = 0; i < hd; ++i) {
      const float32x4_t qi = vdupq_n_f32(q[i]);
      const float* kr = kt + i * kt_stride + j;
      s0 = vaddq_f32(s0, vmulq_f32(qi, vld1q_f32(kr)));
      s1 = vaddq_f32(s1, vmulq_f32(qi, vld1q_f32(kr + 4)));
    }
    vst1q_f32(scores + j, vdivq_f32(s0, div));
    vst1q_f32(scores + j + 4, vdivq_f32(s1, div));
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
  for (; i0 + 8 <= hd; i0 += 8) {  // dimensions i0..i0+7, keys in increasing order
    float32x4_t o0 = vdupq_n_f32(0.0f), o1 = o0;
    for (j = 0; j < n; ++j) {
      const float32x4_t wj = vdupq_n_f32(scores[j] / sum);
      const float* vr = v + j * d + i0;
      o0 = vaddq_f32(o0, vmulq_f32(wj, vld1q_f32(vr)));
      o1 = vaddq_f32(o1, vmulq_f32(wj, vld1q_f32(vr + 4)));
    }
    vst1q_f32(out + i0, o0);
    vst1q_f32(out + i0 + 4, o1);
  }
  for (; i0 < hd; ++i0) {
    float o = 0.0f;
    for (j = 0; j < n; ++j) o += scores[j] / sum * v[j * d + i0];
    out[i0] = o;
  }
}

void f32_linear_kinc_1x16__neon(const float* x, int64_t rows, const float* wt, int32_t in, int32_t out,
                                int32_t o_begin, int32_t o_end, float* y) {
  for (int64_t t = 0; t < rows; ++t) {
    const float* xt = x + t * in;
    int32_t o = o_begin;
    for (; o + 16 <= o_end; o += 16) {
      float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
      for (int32_t k = 0; k < in; ++k) {
        const float32x4_t xk = vdupq_n_f32(xt[k]);
        const float* w = wt + int64_t{k} * out + o;
        a0 = vaddq_f32(a0, vmulq_f32(xk, vld1q_f32(w)));
        a1 = vaddq_f32(a1, vmulq_f32(xk, vld1q_f32(w + 4)));
        a2 = vaddq_f32(a2, vmulq_f32(xk, vld1q_f32(w + 8)));
        a3 = vaddq_f32(a3, vmulq_f32(xk, vld1q_f32(w + 12)));
      }
      float* yt = y + t * out + o;
      vst1q_f32(yt, a0);
      vst1q_f32(yt + 4, a1);
      vst1q_f32(yt + 8, a2);
      vst1q_f32(yt + 12, a3);
    }
    for (; o < o_end; ++o) {
      float s = 0.0f;
      for (int32_t k = 0; k < in; ++k) s += xt[k] * wt[int64_t{k} * out + o];
      y[t * out + o] = s;
    }
  }
}

}  // namespace lowbit::runtime
