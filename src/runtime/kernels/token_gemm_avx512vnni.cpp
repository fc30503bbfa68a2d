// AVX-512 VNNI kernels of kernels/token_gemm.h.
//
// GEMM: vpdpbusd adds four uint8 x int8 products to an int32 lane with wrap-around and no
// intermediate saturation. The activations are signed codes, so the kernel feeds x + 128 (x XOR
// 0x80 read as uint8, in [1, 255]) and starts each accumulator from -128 * sum_k w[o, g, k],
// stored by the packing: sum (x + 128) w - 128 sum w = sum x w modulo 2^32, i.e. exactly the
// reference's int32 (which cannot wrap, token_gemm.h). Packed weights per block of 16 rows and
// group: 16 int32 corrections (64 bytes), then kp / 4 quads of 64 bytes (row r's 4 k at bytes
// 4r..4r+3). Tile 8 tokens x 32 rows: 16 zmm accumulators, 2 weight vectors per quad, one
// broadcast of 4 activation bytes per token; after each group the 8 x 32 sums are stored to
// acc (rows contiguous), the last block of 16 rows with a mask.
//
// Epilogue: 16 output rows per step, vmulps then vaddps per group in increasing g (no FMA), so the
// floats are the reference's bit for bit.
#pragma GCC optimize("fp-contract=off")  // the epilogue: vmulps then vaddps, as the reference
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include <cmath>

#include "quant/per_token.h"
#include "runtime/kernels/token_gemm.h"

namespace lowbit::runtime {
namespace {

constexpr int32_t kRows = 16;  // rows per packed block (one zmm of int32)

inline size_t block_group_bytes(int32_t kp) { return 64 + static_cast<size_t>(kp) * kRows; }

// See gemm_u8_avx512vnni.cpp: inline asm keeps GCC 12 from copying the accumulator around every
// _mm512_dpbusd_epi32.
inline __m512i dpbusd(__m512i acc, __m512i u8, __m512i s8) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));
  return acc;
}

// MR tokens x NB blocks of 16 rows, every group. x: token 0 of the tile; w: block 0 of the tile;
// acc: token 0, row 0 of the tile. `last_mask`: lanes of the last block (of NB) to store.
template <int MR, int NB>
[[gnu::noinline]] void tile(const int8_t* x, int64_t xrow, const int8_t* w, size_t block_bytes, int32_t groups,
                            int32_t kp, int32_t* acc, int64_t acc_stride, int32_t out, __mmask16 last_mask) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const size_t gbytes = block_group_bytes(kp);
  for (int32_t g = 0; g < groups; ++g) {
    const int8_t* wg = w + g * gbytes;
    __m512i a[MR][NB];
    for (int n = 0; n < NB; ++n) {
      const __m512i c = _mm512_loadu_si512(wg + n * block_bytes);
      for (int r = 0; r < MR; ++r) a[r][n] = c;
    }
    const int8_t* xg = x + int64_t{g} * kp;
    for (int32_t q = 0; q < kp / 4; ++q) {
      __m512i wv[NB];
      for (int n = 0; n < NB; ++n) wv[n] = _mm512_loadu_si512(wg + n * block_bytes + 64 + q * 64);
      for (int r = 0; r < MR; ++r) {
        int32_t v;
        std::memcpy(&v, xg + r * xrow + 4 * q, 4);
        const __m512i xb = _mm512_xor_si512(_mm512_set1_epi32(v), flip);
        for (int n = 0; n < NB; ++n) a[r][n] = dpbusd(a[r][n], xb, wv[n]);
      }
    }
    for (int r = 0; r < MR; ++r) {
      int32_t* ar = acc + r * acc_stride + int64_t{g} * out;
      for (int n = 0; n < NB - 1; ++n) _mm512_storeu_si512(ar + n * kRows, a[r][n]);
      _mm512_mask_storeu_epi32(ar + (NB - 1) * kRows, last_mask, a[r][NB - 1]);
    }
  }
}

template <int NB>
void token_rows(int64_t tokens, const int8_t* x, int64_t xrow, const int8_t* w, size_t block_bytes, int32_t groups,
                int32_t kp, int32_t* acc, int64_t acc_stride, int32_t out, __mmask16 last_mask) {
  int64_t t = 0;
  for (; t + 8 <= tokens; t += 8)
    tile<8, NB>(x + t * xrow, xrow, w, block_bytes, groups, kp, acc + t * acc_stride, acc_stride, out, last_mask);
  if (t + 4 <= tokens) {
    tile<4, NB>(x + t * xrow, xrow, w, block_bytes, groups, kp, acc + t * acc_stride, acc_stride, out, last_mask);
    t += 4;
  }
  if (t + 2 <= tokens) {
    tile<2, NB>(x + t * xrow, xrow, w, block_bytes, groups, kp, acc + t * acc_stride, acc_stride, out, last_mask);
    t += 2;
  }
  if (t < tokens)
    tile<1, NB>(x + t * xrow, xrow, w, block_bytes, groups, kp, acc + t * acc_stride, acc_stride, out, last_mask);
}

}  // namespace

size_t s8_token_packed_bytes_16x4__avx512vnni(int32_t out, int32_t groups, int32_t kp) {
  return static_cast<size_t>((out + kRows - 1) / kRows) * groups * block_group_bytes(kp);
}

void s8_token_pack_16x4__avx512vnni(const int8_t* rows, int32_t out, int32_t groups, int32_t kp, int8_t* packed) {
  const int64_t row = int64_t{groups} * kp;
  const size_t gbytes = block_group_bytes(kp);
  const int32_t blocks = (out + kRows - 1) / kRows;
  std::memset(packed, 0, s8_token_packed_bytes_16x4__avx512vnni(out, groups, kp));
  for (int32_t b = 0; b < blocks; ++b)
    for (int32_t g = 0; g < groups; ++g) {
      int8_t* p = packed + (static_cast<size_t>(b) * groups + g) * gbytes;
      for (int32_t r = 0; r < kRows; ++r) {
        const int32_t o = b * kRows + r;
        if (o >= out) break;
        const int8_t* src = rows + o * row + int64_t{g} * kp;
        int32_t sum = 0;
        for (int32_t k = 0; k < kp; ++k) {
          sum += src[k];
          p[64 + (k / 4) * 64 + r * 4 + k % 4] = src[k];
        }
        const int32_t correction = -128 * sum;
        std::memcpy(p + 4 * r, &correction, 4);
      }
    }
}

void s8_w8_gemm_grpacc_8x32__avx512vnni(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups,
                                        int32_t kp, const int8_t* x, const int8_t* w, int32_t* acc,
                                        int64_t acc_stride) {
  const int64_t xrow = int64_t{groups} * kp;
  const size_t block_bytes = static_cast<size_t>(groups) * block_group_bytes(kp);
  int32_t o = o_begin;  // a multiple of 16
  while (o < o_end) {
    const int32_t left = o_end - o;
    const int8_t* wb = w + static_cast<size_t>(o / kRows) * block_bytes;
    if (left > kRows) {
      const int32_t last = std::min(left, 2 * kRows) - kRows;
      const __mmask16 m = static_cast<__mmask16>((1u << last) - 1);
      token_rows<2>(tokens, x, xrow, wb, block_bytes, groups, kp, acc + o, acc_stride, out, m);
      o += 2 * kRows;
    } else {
      const __mmask16 m = static_cast<__mmask16>((1u << left) - 1);
      token_rows<1>(tokens, x, xrow, wb, block_bytes, groups, kp, acc + o, acc_stride, out, m);
      o += kRows;
    }
  }
}

// Per-token quantization, 16 floats at a time (see f32_s8_quantize_token_8x__avx2: the same
// operations as quant::token_scale and quant::quantize_integer).
float f32_s8_quantize_token_16x__avx512vnni(const float* x, int32_t in, int32_t group_size, int32_t groups, int32_t kp,
                                            int8_t* q) {
  __m512 mv = _mm512_setzero_ps();
  int32_t i = 0;
  for (; i + 16 <= in; i += 16) mv = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i)), mv);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, mv);
  float m = 0.0f;
  for (float v : lanes) m = v > m ? v : m;
  for (; i < in; ++i) {
    const float a = std::fabs(x[i]);
    m = a > m ? a : m;
  }
  const float st = m > 0.0f ? m / static_cast<float>(quant::kTokenQMax) : 1.0f;
  const __m512 s = _mm512_set1_ps(st), zero = _mm512_setzero_ps();
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  for (int32_t g = 0; g < groups; ++g) {
    const int32_t k0 = g * group_size, len = std::min(group_size, in - k0);
    int8_t* qg = q + int64_t{g} * kp;
    const float* xg = x + k0;
    for (int32_t k = 0; k < kp; k += 16) {
      const int32_t left = len - k;
      const __mmask16 mk = left >= 16 ? static_cast<__mmask16>(0xFFFF)
                                      : left > 0 ? static_cast<__mmask16>((1u << left) - 1) : static_cast<__mmask16>(0);
      __m512 t = _mm512_add_ps(
          _mm512_roundscale_ps(_mm512_div_ps(_mm512_maskz_loadu_ps(mk, xg + k), s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
          zero);
      const __mmask16 ok = _mm512_cmp_ps_mask(t, t, _CMP_ORD_Q) & mk;  // NaN and the block tail -> 0
      t = _mm512_maskz_mov_ps(ok, _mm512_min_ps(_mm512_max_ps(t, lo), hi));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qg + k), _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(t)));
    }
  }
  return st;
}

void s32_f32_grpscale_16x__avx512vnni(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups,
                                      const int32_t* acc, int64_t acc_stride, const float* scales, const float* sx,
                                      float* y) {
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t* at = acc + t * acc_stride;
    const __m512 st = _mm512_set1_ps(sx[t]);
    for (int32_t o = o_begin; o < o_end; o += 16) {
      const int32_t left = o_end - o;
      const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
      __m512 sum = _mm512_setzero_ps();
      for (int32_t g = 0; g < groups; ++g) {
        const int64_t i = int64_t{g} * out + o;
        const __m512 a = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m, at + i));
        sum = _mm512_add_ps(sum, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, scales + i), a));
      }
      _mm512_mask_storeu_ps(y + t * out + o, m, _mm512_mul_ps(st, sum));
    }
  }
}

}  // namespace lowbit::runtime
