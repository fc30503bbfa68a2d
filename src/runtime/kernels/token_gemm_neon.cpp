// Plain Armv8-A NEON kernels of kernels/token_gemm.h (neon level; neondot takes the epilogue and
// the quantizer from here too, they need no dot product).
//
// GEMM s8_w8_gemm_grpacc_2x4__neon, on the row layout (s8_token_pack_rows__ref): per 16 k,
// SMULL multiplies the low 8 int8 pairs into int16 and SMLAL2 adds the high 8 to them, so each
// int16 lane holds x_k w_k + x_{k+8} w_{k+8}. That cannot overflow: the codes are narrow
// (|x| <= 127) and |w| <= 128, so |pair| <= 2 * 127 * 128 = 32512 < 32767. SADALP then adds the
// int16 lanes pairwise into int32 lanes (exact; the group sum cannot wrap, token_gemm.h).
// 3 instructions per 16 MAC. Tile 2 tokens x 4 rows: each 16-byte activation load serves 4
// rows, each weight load 2 tokens; one pairwise-add tree gives the 4 rows' sums in one vector.
//
// Epilogue s32_f32_grpscale_8x__neon: 8 output rows per step, FMUL then FADD per group in
// increasing g (no FMLA), as the reference. Quantizer f32_s8_quantize_token_8x__neon: the
// reference's max (a > m ? a : m per lane: NaN ignored; FMAX would propagate it) and
// quant::quantize_integer's IEEE operations (FDIV, FRINTN = ties to even, NaN -> 0, clamp).
#pragma GCC optimize("fp-contract=off")  // also set for every aarch64 file by CMake
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/per_token.h"
#include "runtime/kernels/token_gemm.h"

namespace lowbit::runtime {
namespace {

// acc += pairwise sums of x[0..15] * w[0..15] (4 int32 lanes, each the sum of 4 products).
inline int32x4_t dot16(int32x4_t acc, int8x16_t x, int8x16_t w) {
  int16x8_t p = vmull_s8(vget_low_s8(x), vget_low_s8(w));
  p = vmlal_high_s8(p, x, w);
  return vpadalq_s16(acc, p);
}

// MR tokens x NR rows (NR = 4 or 1) over every group; writes acc[t][g][o .. o + NR).
template <int MR, int NR>
void tile(const int8_t* x, int64_t xrow, const int8_t* w, int64_t wrow, int32_t groups, int32_t kp, int32_t* acc,
          int64_t acc_stride, int32_t out) {
  for (int32_t g = 0; g < groups; ++g) {
    const int64_t base = int64_t{g} * kp;
    int32x4_t a[MR][NR];
    for (int r = 0; r < MR; ++r)
      for (int n = 0; n < NR; ++n) a[r][n] = vdupq_n_s32(0);
    for (int32_t k = 0; k < kp; k += 16) {
      int8x16_t xv[MR];
      for (int r = 0; r < MR; ++r) xv[r] = vld1q_s8(x + r * xrow + base + k);
      for (int n = 0; n < NR; ++n) {
        const int8x16_t wv = vld1q_s8(w + n * wrow + base + k);
        for (int r = 0; r < MR; ++r) a[r][n] = dot16(a[r][n], xv[r], wv);
      }
    }
    for (int r = 0; r < MR; ++r) {
      int32_t* ar = acc + r * acc_stride + int64_t{g} * out;
      if constexpr (NR == 4) {
        // Lane n of the result is the sum of a[r][n]'s lanes.
        vst1q_s32(ar, vpaddq_s32(vpaddq_s32(a[r][0], a[r][1]), vpaddq_s32(a[r][2], a[r][3])));
      } else {
        *ar = vaddvq_s32(a[r][0]);
      }
    }
  }
}

template <int NR>
void token_rows(int64_t tokens, const int8_t* x, int64_t xrow, const int8_t* w, int32_t groups, int32_t kp,
                int32_t* acc, int64_t acc_stride, int32_t out) {
  int64_t t = 0;
  for (; t + 2 <= tokens; t += 2)
    tile<2, NR>(x + t * xrow, xrow, w, xrow, groups, kp, acc + t * acc_stride, acc_stride, out);
  if (t < tokens) tile<1, NR>(x + t * xrow, xrow, w, xrow, groups, kp, acc + t * acc_stride, acc_stride, out);
}

// 4 float lanes of the reference epilogue: sum over g of s * float(acc), then times s_t.
inline float32x4_t grpscale4(const int32_t* at, const float* scales, int32_t out, int32_t groups, int32_t o) {
  float32x4_t sum = vdupq_n_f32(0.0f);
  for (int32_t g = 0; g < groups; ++g) {
    const int64_t i = int64_t{g} * out + o;
    sum = vaddq_f32(sum, vmulq_f32(vld1q_f32(scales + i), vcvtq_f32_s32(vld1q_s32(at + i))));
  }
  return sum;
}

// 4 codes of quant::quantize_integer(x, s, 0, -127, 127) as int32 lanes.
inline int32x4_t codes4(const float* p, float32x4_t s) {
  const float32x4_t zero = vdupq_n_f32(0.0f), lo = vdupq_n_f32(-127.0f), hi = vdupq_n_f32(127.0f);
  const float32x4_t t = vaddq_f32(vrndnq_f32(vdivq_f32(vld1q_f32(p), s)), zero);
  const uint32x4_t number = vceqq_f32(t, t);  // false for NaN
  return vcvtq_s32_f32(vbslq_f32(number, vminq_f32(vmaxq_f32(t, lo), hi), zero));
}

}  // namespace

void s8_w8_gemm_grpacc_2x4__neon(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups,
                                 int32_t kp, const int8_t* x, const int8_t* w, int32_t* acc, int64_t acc_stride) {
  const int64_t row = int64_t{groups} * kp;
  int32_t o = o_begin;
  for (; o + 4 <= o_end; o += 4) token_rows<4>(tokens, x, row, w + int64_t{o} * row, groups, kp, acc + o, acc_stride, out);
  for (; o < o_end; ++o) token_rows<1>(tokens, x, row, w + int64_t{o} * row, groups, kp, acc + o, acc_stride, out);
}

float f32_s8_quantize_token_8x__neon(const float* x, int32_t in, int32_t group_size, int32_t groups, int32_t kp,
                                     int8_t* q) {
  // Per lane the reference's m = a > m ? a : m (order-free: the max of non-NaN values is exact).
  float32x4_t mv = vdupq_n_f32(0.0f);
  int32_t i = 0;
  for (; i + 4 <= in; i += 4) {
    const float32x4_t a = vabsq_f32(vld1q_f32(x + i));
    mv = vbslq_f32(vcgtq_f32(a, mv), a, mv);
  }
  float lanes[4];
  vst1q_f32(lanes, mv);
  float m = 0.0f;
  for (float v : lanes) m = v > m ? v : m;
  for (; i < in; ++i) {
    const float a = std::fabs(x[i]);
    m = a > m ? a : m;
  }
  const float st = m > 0.0f ? m / static_cast<float>(quant::kTokenQMax) : 1.0f;
  const float32x4_t s = vdupq_n_f32(st);
  for (int32_t g = 0; g < groups; ++g) {
    const int32_t k0 = g * group_size, len = std::min(group_size, in - k0);
    int8_t* qg = q + int64_t{g} * kp;
    const float* xg = x + k0;
    int32_t k = 0;
    for (; k + 8 <= len; k += 8) {
      const int16x8_t c = vcombine_s16(vmovn_s32(codes4(xg + k, s)), vmovn_s32(codes4(xg + k + 4, s)));
      vst1_s8(qg + k, vmovn_s16(c));  // codes in [-127, 127]: narrowing is exact
    }
    quant::quantize_token(xg + k, len - k, st, qg + k);
    std::memset(qg + len, 0, static_cast<size_t>(kp - len));
  }
  return st;
}

void s32_f32_grpscale_8x__neon(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups,
                               const int32_t* acc, int64_t acc_stride, const float* scales, const float* sx, float* y) {
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t* at = acc + t * acc_stride;
    const float32x4_t st = vdupq_n_f32(sx[t]);
    float* yt = y + t * out;
    int32_t o = o_begin;
    for (; o + 8 <= o_end; o += 8) {
      vst1q_f32(yt + o, vmulq_f32(st, grpscale4(at, scales, out, groups, o)));
      vst1q_f32(yt + o + 4, vmulq_f32(st, grpscale4(at, scales, out, groups, o + 4)));
    }
    if (o + 4 <= o_end) {
      vst1q_f32(yt + o, vmulq_f32(st, grpscale4(at, scales, out, groups, o)));
      o += 4;
    }
    for (; o < o_end; ++o) {
      float sum = 0.0f;
      for (int32_t g = 0; g < groups; ++g)
        sum += scales[int64_t{g} * out + o] * static_cast<float>(at[int64_t{g} * out + o]);
      yt[o] = sx[t] * sum;
    }
  }
}

}  // namespace lowbit::runtime
