// Output stage shared by the AVX-512 GEMM kernels (include only from *_avx512vnni.cpp files).
#pragma once
#include <immintrin.h>

#include "quant/requantize.h"
#include "runtime/kernels/gemm_config.h"

namespace lowbit::runtime::avx512 {

// Exact vector form of quant::requantize for 16 columns. The int64 product p = acc * multiplier
// (|p| < 2^62) is shifted with vpsraq (AVX-512 has arithmetic 64-bit shifts, so no offset trick is
// needed); round half to even is floor((p + 2^(n-1) - 1 + parity) / 2^n) with parity the lowest bit
// of floor(p / 2^n):
//   rem > half: rem + half - 1 + parity >= 2^n  -> floor + 1
//   rem = half: 2^n - 1 + parity                -> floor + parity (ties to even)
//   rem < half: < 2^n                            -> floor
// The clamp is done in int64 before narrowing, so every shift in [1, 62] takes the vector path;
// shift 0 (multiplier >= 2^30, never produced for real layers) takes the scalar one.
struct Requant16 {
  __m512i mult_even, mult_odd;    // multiplier of column 2j / 2j+1 in 64-bit lane j
  __m512i shift_even, shift_odd;  // n
  __m512i hm1_even, hm1_odd;      // 2^(n-1) - 1
  bool vector_ok;
};

inline Requant16 requant_params(const GemmOutput& out, int32_t n0, int32_t cols) {
  alignas(64) int64_t me[8], mo[8], se[8], so[8], he[8], ho[8];
  Requant16 r;
  r.vector_ok = true;
  for (int j = 0; j < 16; ++j) {
    int32_t m = 0, s = 31;
    if (j < cols) {
      m = out.multiplier[n0 + j];
      s = m == 0 ? 31 : out.shift[n0 + j];  // multiplier 0 gives 0 with any shift
      if (s < 1 || s > 62) r.vector_ok = false;
    }
    if (s < 1 || s > 62) s = 31;
    (j % 2 == 0 ? me : mo)[j / 2] = m;
    (j % 2 == 0 ? se : so)[j / 2] = s;
    (j % 2 == 0 ? he : ho)[j / 2] = (int64_t{1} << (s - 1)) - 1;
  }
  r.mult_even = _mm512_load_si512(me);
  r.mult_odd = _mm512_load_si512(mo);
  r.shift_even = _mm512_load_si512(se);
  r.shift_odd = _mm512_load_si512(so);
  r.hm1_even = _mm512_load_si512(he);
  r.hm1_odd = _mm512_load_si512(ho);
  return r;
}

// Clamp limits and zero point of a call, broadcast once.
struct OutputConsts {
  __m512i lo, hi, zp;  // lo / hi: qmin - zp, qmax - zp as int64; zp as int32
  explicit OutputConsts(const GemmOutput& out)
      : lo(_mm512_set1_epi64(out.qmin - out.zero_point)),
        hi(_mm512_set1_epi64(out.qmax - out.zero_point)),
        zp(_mm512_set1_epi32(out.zero_point)) {}
};

inline __m512i round_shift_clamp(__m512i p, __m512i n, __m512i hm1, const OutputConsts& c) {
  const __m512i parity = _mm512_and_si512(_mm512_srav_epi64(p, n), _mm512_set1_epi64(1));
  const __m512i y = _mm512_srav_epi64(_mm512_add_epi64(_mm512_add_epi64(p, hm1), parity), n);
  return _mm512_min_epi64(_mm512_max_epi64(y, c.lo), c.hi);
}

// requantize(v[j], M[j], zp, qmin, qmax) for 16 lanes (vector_ok parameters only).
inline __m512i requantize16(__m512i v, const Requant16& r, const OutputConsts& c) {
  const __m512i pe = _mm512_mul_epi32(v, r.mult_even);
  const __m512i po = _mm512_mul_epi32(_mm512_srli_epi64(v, 32), r.mult_odd);
  const __m512i ye = round_shift_clamp(pe, r.shift_even, r.hm1_even, c);
  const __m512i yo = round_shift_clamp(po, r.shift_odd, r.hm1_odd, c);
  return _mm512_add_epi32(_mm512_mask_blend_epi32(0xAAAA, ye, _mm512_slli_epi64(yo, 32)), c.zp);
}

inline __mmask16 column_mask(int32_t cols) {
  return cols >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (cols > 0 ? cols : 0)) - 1u);
}

// Writes 16 columns [n0, n0 + cols) of one row: v already holds acc + bias.
inline void store16(__m512i v, int64_t row, int32_t n0, int32_t cols, const GemmOutput& out, const Requant16& rq,
                    const OutputConsts& c) {
  const __mmask16 mask = column_mask(cols);
  if (out.y_i32 != nullptr) {
    _mm512_mask_storeu_epi32(out.y_i32 + row * out.ldy + n0, mask, v);
  } else if (rq.vector_ok) {
    // values are in [qmin, qmax] within [0, 255]: the unsigned saturating narrowing is exact
    _mm512_mask_cvtusepi32_storeu_epi8(out.y_u8 + row * out.ldy + n0, mask, requantize16(v, rq, c));
  } else {
    alignas(64) int32_t t[16];
    _mm512_store_si512(t, v);
    for (int j = 0; j < cols && j < 16; ++j)
      out.y_u8[row * out.ldy + n0 + j] = static_cast<uint8_t>(quant::requantize(
          t[j], {out.multiplier[n0 + j], out.shift[n0 + j]}, out.zero_point, out.qmin, out.qmax));
  }
}

}  // namespace lowbit::runtime::avx512
