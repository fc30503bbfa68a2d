// Output stage shared by the NEON GEMM kernels (include only from *_neon.cpp / *_neondot.cpp files).
//
// Everything here has internal linkage (anonymous namespace): the *_neondot.cpp files are compiled
// for Armv8.2 + dot product and the *_neon.cpp files for plain Armv8-A, so an inline function
// shared between them could otherwise be merged by the linker into the Armv8.2 copy.
#pragma once
#include <arm_neon.h>

#include <cstring>

#include "runtime/kernels/gemm_config.h"

namespace lowbit::runtime::neon {
namespace {

// Tiles: up to 8 rows x 8 columns, each row's 8 int32 accumulators in two int32x4_t (columns 0..3, 4..7).
constexpr int kMR = 8;
constexpr int kNR = 8;

// Requantization parameters of 4 columns, lane-wise: y = clamp(apply_multiplier(v) + zp, qmin, qmax).
struct Requant4 {
  int32x4_t mult;
  int64x2_t shift_lo, shift_hi, neg_shift_lo, neg_shift_hi, half_lo, half_hi;
};

inline Requant4 requant4(const int32_t* mult, const int32_t* shift) {
  Requant4 r;
  r.mult = vld1q_s32(mult);
  const int32x4_t n = vld1q_s32(shift);
  r.shift_lo = vmovl_s32(vget_low_s32(n));
  r.shift_hi = vmovl_high_s32(n);
  r.neg_shift_lo = vnegq_s64(r.shift_lo);
  r.neg_shift_hi = vnegq_s64(r.shift_hi);
  // 2^(n - 1); for n = 0 any half > 0 works (the remainder is 0: no rounding), 1 is used.
  alignas(16) int64_t h[4];
  for (int j = 0; j < 4; ++j) h[j] = shift[j] > 0 ? int64_t{1} << (shift[j] - 1) : 1;
  r.half_lo = vld1q_s64(h);
  r.half_hi = vld1q_s64(h + 2);
  return r;
}

// quant::shift_right_round_half_even on two int64 lanes, step for step: floor(p / 2^n), the
// remainder, and +1 when it is above half or equal to half with an odd floor (shifts 0..62).
inline int64x2_t shift_right_round_half_even(int64x2_t p, int64x2_t shift, int64x2_t neg_shift, int64x2_t half) {
  const int64x2_t floor_q = vshlq_s64(p, neg_shift);  // arithmetic shift right
  const int64x2_t rem = vsubq_s64(p, vshlq_s64(floor_q, shift));
  const uint64x2_t odd = vtstq_s64(floor_q, vdupq_n_s64(1));
  const uint64x2_t up = vorrq_u64(vcgtq_s64(rem, half), vandq_u64(vceqq_s64(rem, half), odd));
  return vsubq_s64(floor_q, vreinterpretq_s64_u64(up));  // up lanes are all ones, i.e. -1
}

// quant::requantize on 4 lanes. The int64 results are narrowed with saturation before the clamp:
// clamp(q, qmin - zp, qmax - zp) + zp = clamp(q + zp, qmin, qmax), and a q outside int32 clamps
// to the same limit as its saturated value, because qmin - zp and qmax - zp lie within [-255, 255].
inline int32x4_t requantize4(int32x4_t v, const Requant4& r, int32x4_t lo, int32x4_t hi, int32x4_t zp) {
  const int64x2_t p_lo = vmull_s32(vget_low_s32(v), vget_low_s32(r.mult));
  const int64x2_t p_hi = vmull_high_s32(v, r.mult);
  const int64x2_t q_lo = shift_right_round_half_even(p_lo, r.shift_lo, r.neg_shift_lo, r.half_lo);
  const int64x2_t q_hi = shift_right_round_half_even(p_hi, r.shift_hi, r.neg_shift_hi, r.half_hi);
  const int32x4_t q = vcombine_s32(vqmovn_s64(q_lo), vqmovn_s64(q_hi));
  return vaddq_s32(vminq_s32(vmaxq_s32(q, lo), hi), zp);
}

// The output stage of one tile's 8 columns [n0, n0 + cols): bias, the requantization parameters
// (zero beyond cols, so that nothing past N is read) and the call's constants.
struct TileOutput {
  int32x4_t bias0, bias1;
  Requant4 rq0, rq1;
  int32x4_t lo, hi, zp;
  TileOutput(const GemmOutput& out, int32_t n0, int32_t cols) {
    alignas(16) int32_t b[kNR] = {0}, m[kNR] = {0}, s[kNR] = {0};
    const size_t bytes = sizeof(int32_t) * static_cast<size_t>(cols);
    std::memcpy(b, out.bias + n0, bytes);
    bias0 = vld1q_s32(b);
    bias1 = vld1q_s32(b + 4);
    if (out.y_i32 == nullptr) {
      std::memcpy(m, out.multiplier + n0, bytes);
      std::memcpy(s, out.shift + n0, bytes);
    }
    rq0 = requant4(m, s);
    rq1 = requant4(m + 4, s + 4);
    lo = vdupq_n_s32(out.qmin - out.zero_point);
    hi = vdupq_n_s32(out.qmax - out.zero_point);
    zp = vdupq_n_s32(out.zero_point);
  }
};

// One output row (or pooled row) of `cols` <= 8 columns from v = acc + bias: int32 for the output
// layer, else requantized to uint8.
inline void store_row(int32x4_t v0, int32x4_t v1, int64_t row, int32_t n0, int32_t cols, const GemmOutput& out,
                      const TileOutput& t) {
  if (out.y_i32 != nullptr) {
    alignas(16) int32_t c[kNR];
    vst1q_s32(c, v0);
    vst1q_s32(c + 4, v1);
    std::memcpy(out.y_i32 + row * out.ldy + n0, c, sizeof(int32_t) * static_cast<size_t>(cols));
    return;
  }
  const int32x4_t y0 = requantize4(v0, t.rq0, t.lo, t.hi, t.zp), y1 = requantize4(v1, t.rq1, t.lo, t.hi, t.zp);
  // values are in [qmin, qmax] within [0, 255]: the saturating narrowings are exact
  const uint8x8_t y = vqmovn_u16(vcombine_u16(vqmovun_s32(y0), vqmovun_s32(y1)));
  uint8_t* dst = out.y_u8 + row * out.ldy + n0;
  if (cols == kNR) {
    vst1_u8(dst, y);
  } else {
    alignas(8) uint8_t b[kNR];
    vst1_u8(b, y);
    std::memcpy(dst, b, static_cast<size_t>(cols));
  }
}

// Rows [m0, m0 + R) of an R x 8 tile: acc + bias (int32, wrapping as the reference), with the max
// over each group of P consecutive rows taken before requantization (fused max pooling, exact
// because requantize is non-decreasing; P = 1: none). R and m0 are multiples of P.
template <int R, int P>
inline void store_tile_pooled(const int32x4_t (&acc)[R][2], int64_t m0, int32_t n0, int32_t cols,
                              const GemmOutput& out) {
  const TileOutput t(out, n0, cols);
  for (int r0 = 0; r0 < R; r0 += P) {
    int32x4_t v0 = vaddq_s32(acc[r0][0], t.bias0), v1 = vaddq_s32(acc[r0][1], t.bias1);
    for (int r = r0 + 1; r < r0 + P; ++r) {
      v0 = vmaxq_s32(v0, vaddq_s32(acc[r][0], t.bias0));
      v1 = vmaxq_s32(v1, vaddq_s32(acc[r][1], t.bias1));
    }
    store_row(v0, v1, (m0 + r0) / P, n0, cols, out, t);
  }
}

template <int R>
inline void store_tile(const int32x4_t (&acc)[R][2], int64_t m0, int32_t n0, int32_t cols, const GemmOutput& out) {
  switch (out.pool_rows) {
    case 1: store_tile_pooled<R, 1>(acc, m0, n0, cols, out); break;
    case 2: if constexpr (R % 2 == 0) store_tile_pooled<R, 2>(acc, m0, n0, cols, out); break;
    default: if constexpr (R % 4 == 0) store_tile_pooled<R, 4>(acc, m0, n0, cols, out); break;
  }
}

// Rows of the next tile: 8 while there are, then 4, 2, 1 (when M is a multiple of the pool size,
// 1, 2 or 4, so is every tile's height and start).
inline int tile_rows(int64_t left) { return left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1; }

}  // namespace
}  // namespace lowbit::runtime::neon
