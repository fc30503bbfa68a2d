// The reference float kernels of decoder models (decoder_float_kernels.h) and the per-level table.
#include <algorithm>
#include <cmath>

#include "runtime/kernels/decoder_float_kernels.h"

namespace lowbit::runtime {
namespace ref {

void rmsnorm(const float* x, int64_t rows, int32_t d, const float* w, float eps, float* y) {
  for (int64_t t = 0; t < rows; ++t) {
    const float* xr = x + t * d;
    float* yr = y + t * d;
    double ss = 0.0;
    for (int32_t i = 0; i < d; ++i) ss += static_cast<double>(xr[i]) * static_cast<double>(xr[i]);
    const float mean = static_cast<float>(ss / static_cast<double>(d));
    const float r = 1.0f / std::sqrt(mean + eps);
    for (int32_t i = 0; i < d; ++i) yr[i] = xr[i] * r * w[i];
  }
}

void rope(float* x, int64_t rows, int64_t pos0, int32_t heads, int32_t hd, const float* cos, const float* sin,
          int32_t half) {
  for (int64_t t = 0; t < rows; ++t) {
    const float* c = cos + (pos0 + t) * half;
    const float* s = sin + (pos0 + t) * half;
    for (int32_t h = 0; h < heads; ++h) {
      float* xh = x + t * int64_t{heads} * hd + int64_t{h} * hd;
      for (int32_t i = 0; i < hd / 2; ++i) {
        const float a = xh[2 * i], b = xh[2 * i + 1];
        const float ac = a * c[i], bs = b * s[i], as = a * s[i], bc = b * c[i];
        xh[2 * i] = ac - bs;
        xh[2 * i + 1] = as + bc;
      }
    }
  }
}

void swiglu(const float* gate, const float* up, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void attention_row(const float* q, const float* k, const float* kt, int64_t kt_stride, const float* v, int64_t d,
                   int64_t p, int32_t hd, float inv_scale, float* scores, float* out) {
  float m = -INFINITY;
  for (int64_t j = 0; j <= p; ++j) {
    const float* kj = k + j * d;
    float s = 0.0f;
    for (int32_t i = 0; i < hd; ++i) s += q[i] * kj[i];
    s = s / inv_scale;
    scores[j] = s;
    m = std::max(m, s);
  }
  float sum = 0.0f;
  for (int64_t j = 0; j <= p; ++j) {
    scores[j] = std::exp(scores[j] - m);
    sum += scores[j];
  }
  std::fill(out, out + hd, 0.0f);
  for (int64_t j = 0; j <= p; ++j) {
    const float w = scores[j] / sum;
    const float* vj = v + j * d;
    for (int32_t i = 0; i < hd; ++i) out[i] += w * vj[i];
  }
}

void linear_f32(const float* x, int64_t rows, const float* wt, int32_t in, int32_t out, int32_t o_begin, int32_t o_end,
                float* y) {
  for (int64_t t = 0; t < rows; ++t)
    for (int32_t o = o_begin; o < o_end; ++o) {
      const float* xt = x + t * in;
      float s = 0.0f;
      for (int32_t k = 0; k < in; ++k) s += xt[k] * wt[int64_t{k} * out + o];
      y[t * out + o] = s;
    }
}

}  // namespace ref

const DecoderFloatKernels& decoder_float_kernels(Isa isa) {
  static const DecoderFloatKernels r{Isa::Ref,
                                     LOWBIT_KERNEL(ref::rmsnorm),
                                     LOWBIT_KERNEL(ref::rope),
                                     LOWBIT_KERNEL(ref::swiglu),
                                     LOWBIT_KERNEL(ref::attention_row),
                                     LOWBIT_KERNEL(ref::linear_f32),
                                     1};
#if defined(LOWBIT_ARCH_X86_64)
  static const DecoderFloatKernels avx2{Isa::Avx2,
                                        LOWBIT_KERNEL(ref::rmsnorm),
                                        LOWBIT_KERNEL(ref::rope),
                                        LOWBIT_KERNEL(ref::swiglu),
                                        LOWBIT_KERNEL(f32_attention_row_8x__avx2),
                                        LOWBIT_KERNEL(f32_linear_kinc_1x32__avx2),
                                        32};
  static const DecoderFloatKernels vnni{Isa::Avx512Vnni,
                                        LOWBIT_KERNEL(ref::rmsnorm),
                                        LOWBIT_KERNEL(ref::rope),
                                        LOWBIT_KERNEL(ref::swiglu),
                                        LOWBIT_KERNEL(f32_attention_row_16x__avx512vnni),
                                        LOWBIT_KERNEL(f32_linear_kinc_1x64__avx512vnni),
                                        64};
  if (isa == Isa::Avx2) return avx2;
  if (isa == Isa::Avx512Vnni) return vnni;
#elif defined(LOWBIT_ARCH_AARCH64)
  // Plain Armv8-A kernels: the same row for neon and neondot (no dot product in float code).
  static const DecoderFloatKernels neon{Isa::Neon,
                                        LOWBIT_KERNEL(ref::rmsnorm),
                                        LOWBIT_KERNEL(ref::rope),
                                        LOWBIT_KERNEL(ref::swiglu),
                                        LOWBIT_KERNEL(f32_attention_row_8x__neon),
                                        LOWBIT_KERNEL(f32_linear_kinc_1x16__neon),
                                        16};
  static const DecoderFloatKernels neondot{Isa::NeonDot,
                                           LOWBIT_KERNEL(ref::rmsnorm),
                                           LOWBIT_KERNEL(ref::rope),
                                           LOWBIT_KERNEL(ref::swiglu),
                                           LOWBIT_KERNEL(f32_attention_row_8x__neon),
                                           LOWBIT_KERNEL(f32_linear_kinc_1x16__neon),
                                           16};
  if (isa == Isa::Neon) return neon;
  if (isa == Isa::NeonDot) return neondot;
#endif
  return r;
}

}  // namespace lowbit::runtime
