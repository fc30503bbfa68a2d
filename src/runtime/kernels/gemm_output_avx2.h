// Output stage shared by the AVX2 GEMM kernels (include only from *_avx2.cpp files).
#pragma once
#include <immintrin.h>

#include <cstring>

#include "quant/requantize.h"
#include "runtime/kernels/gemm_config.h"

namespace lowbit::runtime::avx2 {

constexpr int kMR = 6;
constexpr int kNR = 16;

// ---- output stage ---------------------------------------------------------------------------
// Exact vector form of quant::requantize for lanes whose shift is in [31, 61] (multiplier < 1, the
// usual case): the int64 product p (|p| < 2^62) is offset by 2^62 so that logical shifts act as
// arithmetic ones, and round half to even is floor((q + 2^(n-1) - 1 + parity) / 2^n) where parity
// is the lowest bit of floor(q / 2^n) (equal to that of floor(p / 2^n) because n <= 61).
struct RequantParams {
  __m256i mult, shift_even, shift_odd, hm1_even, hm1_odd, off_even, off_odd, lo, hi, zp;
  bool vector_ok;
};

inline RequantParams requant_params(const GemmOutput& out, int32_t n0, int32_t cols) {
  RequantParams r;
  alignas(32) int32_t mult[8] = {0};
  alignas(32) int64_t se[4], so[4], he[4], ho[4], oe[4], oo[4];
  r.vector_ok = true;
  for (int j = 0; j < 8; ++j) {
    int32_t m = 0, s = 31;
    if (j < cols) {
      m = out.multiplier[n0 + j];
      s = out.shift[n0 + j];
      if (m == 0) s = 31;  // any shift gives 0
      if (s < 31 || s > 61) r.vector_ok = false;
    }
    if (s < 31 || s > 61) s = 31;
    mult[j] = m;
    int64_t* sh = (j % 2 == 0) ? se : so;
    int64_t* hm = (j % 2 == 0) ? he : ho;
    int64_t* of = (j % 2 == 0) ? oe : oo;
    sh[j / 2] = s;
    hm[j / 2] = (int64_t{1} << (s - 1)) - 1;
    of[j / 2] = int64_t{1} << (62 - s);
  }
  r.mult = _mm256_load_si256(reinterpret_cast<const __m256i*>(mult));
  r.shift_even = _mm256_load_si256(reinterpret_cast<const __m256i*>(se));
  r.shift_odd = _mm256_load_si256(reinterpret_cast<const __m256i*>(so));
  r.hm1_even = _mm256_load_si256(reinterpret_cast<const __m256i*>(he));
  r.hm1_odd = _mm256_load_si256(reinterpret_cast<const __m256i*>(ho));
  r.off_even = _mm256_load_si256(reinterpret_cast<const __m256i*>(oe));
  r.off_odd = _mm256_load_si256(reinterpret_cast<const __m256i*>(oo));
  r.lo = _mm256_set1_epi32(out.qmin - out.zero_point);
  r.hi = _mm256_set1_epi32(out.qmax - out.zero_point);
  r.zp = _mm256_set1_epi32(out.zero_point);
  return r;
}

inline __m256i round_shift(__m256i p, __m256i shift, __m256i hm1, __m256i off) {
  const __m256i q = _mm256_add_epi64(p, _mm256_set1_epi64x(int64_t{1} << 62));
  const __m256i parity = _mm256_and_si256(_mm256_srlv_epi64(q, shift), _mm256_set1_epi64x(1));
  const __m256i t = _mm256_add_epi64(_mm256_add_epi64(q, hm1), parity);
  return _mm256_sub_epi64(_mm256_srlv_epi64(t, shift), off);
}

inline __m256i requantize8(__m256i acc, const RequantParams& r) {
  const __m256i pe = _mm256_mul_epi32(acc, r.mult);
  const __m256i po = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), _mm256_srli_epi64(r.mult, 32));
  const __m256i ye = round_shift(pe, r.shift_even, r.hm1_even, r.off_even);
  const __m256i yo = round_shift(po, r.shift_odd, r.hm1_odd, r.off_odd);
  __m256i y = _mm256_blend_epi32(ye, _mm256_slli_epi64(yo, 32), 0xAA);
  y = _mm256_min_epi32(_mm256_max_epi32(y, r.lo), r.hi);
  return _mm256_add_epi32(y, r.zp);
}

template <int MaxRows>
inline void store_tile_n(const __m256i acc[][2], int rows, int64_t m0, int32_t n0, int32_t cols, const GemmOutput& out,
                         const RequantParams rq[2]) {
  if (cols == kNR && out.y_i32 == nullptr && rq[0].vector_ok && rq[1].vector_ok) {
    // Fast path: full 16-column tile, vector requantization, 16 bytes stored per row.
    const __m256i bias0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(out.bias + n0));
    const __m256i bias1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(out.bias + n0 + 8));
    for (int r = 0; r < rows; ++r) {
      const __m256i lo = requantize8(_mm256_add_epi32(acc[r][0], bias0), rq[0]);
      const __m256i hi = requantize8(_mm256_add_epi32(acc[r][1], bias1), rq[1]);
      const __m256i p16 = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xD8);
      const __m128i p8 = _mm_packus_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out.y_u8 + (m0 + r) * out.ldy + n0), p8);
    }
    return;
  }
  alignas(32) int32_t c[MaxRows][kNR];
  for (int r = 0; r < rows; ++r) {
    for (int h = 0; h < 2; ++h) {
      const int32_t nb = n0 + 8 * h, hc = cols - 8 * h;
      if (hc <= 0) break;
      __m256i bias;
      if (hc >= 8) {
        bias = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(out.bias + nb));
      } else {
        alignas(32) int32_t tmp[8] = {0};
        std::memcpy(tmp, out.bias + nb, sizeof(int32_t) * hc);
        bias = _mm256_load_si256(reinterpret_cast<const __m256i*>(tmp));
      }
      const __m256i v = _mm256_add_epi32(acc[r][h], bias);
      if (out.y_i32 != nullptr) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(&c[r][8 * h]), v);
      } else if (rq[h].vector_ok) {
        const __m256i y = requantize8(v, rq[h]);
        _mm256_store_si256(reinterpret_cast<__m256i*>(&c[r][8 * h]), y);
      } else {
        _mm256_store_si256(reinterpret_cast<__m256i*>(&c[r][8 * h]), v);
        for (int j = 0; j < 8 && j < hc; ++j)
          c[r][8 * h + j] = quant::requantize(c[r][8 * h + j], {out.multiplier[nb + j], out.shift[nb + j]},
                                              out.zero_point, out.qmin, out.qmax);
      }
    }
    const int64_t row = (m0 + r) * out.ldy + n0;
    if (out.y_i32 != nullptr) {
      std::memcpy(out.y_i32 + row, c[r], sizeof(int32_t) * cols);
    } else {
      const __m256i lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(&c[r][0]));
      const __m256i hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(&c[r][8]));
      // values are in [0, 255]: saturating packs are exact
      __m256i p16 = _mm256_packus_epi32(lo, hi);             // 0..3 8..11 | 4..7 12..15
      p16 = _mm256_permute4x64_epi64(p16, 0xD8);             // 0..7 | 8..15
      const __m128i p8 = _mm_packus_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
      if (cols == kNR) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out.y_u8 + row), p8);
      } else {
        alignas(16) uint8_t b[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(b), p8);
        std::memcpy(out.y_u8 + row, b, static_cast<size_t>(cols));
      }
    }
  }
}
inline void store_tile(const __m256i acc[kMR][2], int rows, int64_t m0, int32_t n0, int32_t cols, const GemmOutput& out,
                       const RequantParams rq[2]) {
  store_tile_n<kMR>(acc, rows, m0, n0, cols, out, rq);
}

// Output stage of an R x 16 tile whose rows are [m0, m0 + R): acc + bias (wrapping int32), the max
// over each group of P consecutive rows (fused max pooling, GemmOutput::pool_rows; P = 1: none; R
// and m0 are multiples of P), then requantized to uint8 or stored as int32 logits in output row
// (m0 + r) / P. Exact: requantize is non-decreasing in its input, so pooling before it is pooling
// after it, and the max is taken on the same wrapped acc + bias the reference requantizes.
template <int R, int P>
[[gnu::noinline]] void store_rows_general(const __m256i (&acc)[R][2], int64_t m0, int32_t n0, int32_t cols,
                                          const GemmOutput& out, const RequantParams rq[2]) {
  alignas(32) int32_t bias[kNR] = {0};
  std::memcpy(bias, out.bias + n0, sizeof(int32_t) * cols);
  const __m256i bias0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(bias));
  const __m256i bias1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(bias + 8));
  __m256i pooled[R / P][2];
  for (int r0 = 0; r0 < R; r0 += P) {
    __m256i v0 = _mm256_add_epi32(acc[r0][0], bias0), v1 = _mm256_add_epi32(acc[r0][1], bias1);
    for (int r = r0 + 1; r < r0 + P; ++r) {
      v0 = _mm256_max_epi32(v0, _mm256_add_epi32(acc[r][0], bias0));
      v1 = _mm256_max_epi32(v1, _mm256_add_epi32(acc[r][1], bias1));
    }
    // store_tile_n adds its bias: hand it the pooled values minus the bias (wrapping, exact)
    pooled[r0 / P][0] = _mm256_sub_epi32(v0, bias0);
    pooled[r0 / P][1] = _mm256_sub_epi32(v1, bias1);
  }
  store_tile_n<R / P>(pooled, R / P, m0 / P, n0, cols, out, rq);
}

template <int R, int P>
[[gnu::always_inline]] inline void store_rows(const __m256i (&acc)[R][2], int64_t m0, int32_t n0, int32_t cols,
                                              const GemmOutput& out, const RequantParams rq[2]) {
  static_assert(R % P == 0, "tile height must be a multiple of the pool size");
  if (cols != kNR || out.y_i32 != nullptr || !rq[0].vector_ok || !rq[1].vector_ok)
    return store_rows_general<R, P>(acc, m0, n0, cols, out, rq);
  // full 16-column tile, vector requantization, 16 bytes stored per output row
  const __m256i bias0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(out.bias + n0));
  const __m256i bias1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(out.bias + n0 + 8));
#pragma GCC unroll 8
  for (int r0 = 0; r0 < R; r0 += P) {
    __m256i v0 = _mm256_add_epi32(acc[r0][0], bias0), v1 = _mm256_add_epi32(acc[r0][1], bias1);
#pragma GCC unroll 4
    for (int r = r0 + 1; r < r0 + P; ++r) {
      v0 = _mm256_max_epi32(v0, _mm256_add_epi32(acc[r][0], bias0));
      v1 = _mm256_max_epi32(v1, _mm256_add_epi32(acc[r][1], bias1));
    }
    const __m256i p16 = _mm256_permute4x64_epi64(_mm256_packus_epi32(requantize8(v0, rq[0]), requantize8(v1, rq[1])), 0xD8);
    const __m128i p8 = _mm_packus_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out.y_u8 + (m0 + r0) / P * out.ldy + n0), p8);
  }
}

// Requantization parameters of every 16-column block of a call (blocks [b0, b1)).
inline void requant_blocks(const GemmOutput& out, int32_t N, int32_t b0, int32_t b1, RequantParams (*rq)[2]) {
  if (out.y_i32 != nullptr) return;
  for (int32_t b = b0; b < b1; ++b) {
    const int32_t cols = N - b * kNR < kNR ? N - b * kNR : kNR;
    rq[b - b0][0] = requant_params(out, b * kNR, cols < 8 ? cols : 8);
    if (cols > 8) rq[b - b0][1] = requant_params(out, b * kNR + 8, cols - 8);
  }
}

}  // namespace lowbit::runtime::avx2
