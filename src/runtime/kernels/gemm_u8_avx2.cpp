// AVX2 GEMM kernels over raw uint8 activations with vpmaddubsw: weights of at most 4 bits, and
// int8 weights whose pair sums are proven not to saturate.
//
// Saturation proof: vpmaddubsw adds two products x * w in int16 with saturation. With x in [0, 255]
// and |w| <= W, a pair sum is at most 2 * 255 * W in magnitude; G consecutive pair sums are added
// in int16 before being widened with vpmaddwd(., 1). G is chosen so that G * 2 * 255 * W <= 32767:
//   int4 (W = 8): G = 8 (32640);  odd 4-bit (W = 15): G = 4 (30600);
//   int2 (W = 2), SEQ 2-bit (W = 3), binary (W = 1): G = 16 (<= 24480).
// So no intermediate ever saturates and the int32 result equals the reference exactly.
// int8 weights (u8_w8p): G = 1 and no bound from the width (2 * 255 * 128 > 32767): the config is
// marked pair_bounded and the session uses it only for layers where
// x_max * (|w[n][k]| + |w[n][k + 1]|) <= 32767 for every column n and even k of the packed order
// (gemm_weights_fit_pairs), e.g. 7-bit-range weights (|w| <= 64) with 8-bit activations, or any
// int8 weights with activations of at most 7 bits; otherwise the s16 kernel runs the layer.
// The zero point is not subtracted in the kernel: A holds raw x (conv padding = zero point) and
// the caller's bias already contains -z_x * sum_k w[n][k] (fold_zero_point).
//
// Packed layout: per block of 16 output columns, per group of 4 k ("quad"), 64 codes forming two
// vectors of 32 int8: vector v, byte i holds column 8 v + i / 4, k = 4 quad + i % 4 (vpmaddubsw
// sums k pairs, vpmaddwd the two pairs). The 64 codes are stored in 8 * bits bytes arranged so
// that decoding is a load, a per-64-bit-lane shift, a mask and a vpshufb that maps each code to
// its value (sign extension, and 2c + 1 for the Odd grid, in one table look-up):
//   8 bits: 64 bytes, vector v = bytes 32 v .. 32 v + 31 (values, no decode)
//   4 bits: 32 bytes; byte i low nibble = vector 0 element i, high nibble = vector 1 element i
//   2 bits: 16 bytes (broadcast to both halves); vector v element i = field 2 v + i / 16 of byte i % 16
//   1 bit:  8 bytes (broadcast to all quarters); vector v element i = field 4 v + i / 8 of byte i % 8
#include <immintrin.h>

#include <cstring>

#include "quant/requantize.h"
#include "runtime/kernels/gemm_config.h"
#include "runtime/kernels/gemm_kernels.h"
#include "runtime/kernels/gemm_output_avx2.h"

namespace lowbit::runtime {
namespace {

using namespace avx2;

inline int32_t round_up4(int32_t k) { return (k + 3) & ~3; }

// (byte index, field index) of vector v element i within a quad's bytes.
template <int Bits>
inline void code_position(int v, int i, int& byte, int& field) {
  if constexpr (Bits == 8) {
    byte = 32 * v + i;
    field = 0;
  } else if constexpr (Bits == 4) {
    byte = i;
    field = v;
  } else if constexpr (Bits == 2) {
    byte = i % 16;
    field = 2 * v + i / 16;
  } else {
    byte = i % 8;
    field = 4 * v + i / 8;
  }
}

template <int Bits, bool Odd>
std::vector<uint8_t> pack_weights(const int32_t* w, int32_t N, int32_t K) {
  const int32_t K4 = round_up4(K), blocks = (N + kNR - 1) / kNR, quads = K4 / 4;
  constexpr int quad_bytes = 8 * Bits;
  std::vector<uint8_t> packed(static_cast<size_t>(blocks) * quads * quad_bytes + 32, 0);
  const uint32_t mask = Bits == 8 ? 0xFFu : (1u << Bits) - 1u;
  for (int32_t b = 0; b < blocks; ++b)
    for (int32_t q = 0; q < quads; ++q) {
      uint8_t* dst = packed.data() + (static_cast<size_t>(b) * quads + q) * quad_bytes;
      for (int v = 0; v < 2; ++v)
        for (int i = 0; i < 32; ++i) {
          const int32_t n = b * kNR + 8 * v + i / 4, k = 4 * q + i % 4;
          if (n >= N || k >= K) continue;  // padding: A is zero there, or the column is discarded
          const int32_t value = w[static_cast<size_t>(n) * K + k];
          const int32_t code = Odd ? (value - 1) / 2 : value;
          int byte = 0, field = 0;
          code_position<Bits>(v, i, byte, field);
          dst[byte] |= static_cast<uint8_t>((static_cast<uint32_t>(code) & mask) << (field * Bits % 8));
        }
    }
  return packed;
}

template <int Bits, bool Odd>
struct Decoder {
  __m256i shift0, shift1, lut;
  Decoder() {
    if constexpr (Bits == 2) {
      shift0 = _mm256_setr_epi64x(0, 0, 2, 2);
      shift1 = _mm256_setr_epi64x(4, 4, 6, 6);
    } else if constexpr (Bits == 1) {
      shift0 = _mm256_setr_epi64x(0, 1, 2, 3);
      shift1 = _mm256_setr_epi64x(4, 5, 6, 7);
    } else {
      shift0 = shift1 = _mm256_setzero_si256();
    }
    // value of each code 0 .. 2^Bits - 1 (two's complement field; Odd grid: 2c + 1)
    alignas(32) int8_t t[32] = {};
    for (int c = 0; c < (Bits < 8 ? (1 << Bits) : 0); ++c) {
      const int code = c >= (1 << (Bits - 1)) ? c - (1 << Bits) : c;
      t[c] = t[16 + c] = static_cast<int8_t>(Odd ? 2 * code + 1 : code);
    }
    lut = _mm256_load_si256(reinterpret_cast<const __m256i*>(t));
  }
  inline __m256i finish(__m256i f) const {
    return _mm256_shuffle_epi8(lut, _mm256_and_si256(f, _mm256_set1_epi8(static_cast<char>((1 << Bits) - 1))));
  }
  inline void decode(const uint8_t* p, __m256i& b0, __m256i& b1) const {
    if constexpr (Bits == 8) {
      b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    } else if constexpr (Bits == 4) {
      const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      b0 = finish(bytes);
      b1 = finish(_mm256_srli_epi64(bytes, 4));
    } else {
      __m256i bytes;
      if constexpr (Bits == 2) {
        bytes = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      } else {
        int64_t q;
        std::memcpy(&q, p, 8);
        bytes = _mm256_set1_epi64x(q);
      }
      b0 = finish(_mm256_srlv_epi64(bytes, shift0));
      b1 = finish(_mm256_srlv_epi64(bytes, shift1));
    }
  }
};

template <int Bits, bool Odd>
constexpr int group_quads() {
  return Bits == 8 ? 1 : Bits == 4 ? (Odd ? 4 : 8) : 16;
}

// c += v in place (int32 / int16 lanes). Inline asm: GCC 12 otherwise renames the accumulators at
// every step and copies them back (see gemm_s16_avx2.cpp).
inline void add32(__m256i& c, __m256i v) { asm("vpaddd %1, %0, %0" : "+x"(c) : "x"(v)); }
inline void add16(__m256i& c, __m256i v) { asm("vpaddw %1, %0, %0" : "+x"(c) : "x"(v)); }

// One call: R rows (4, then 2 / 1 for the remainder) against the column blocks [b0, b1). Per quad:
// two weight vectors (16 columns x 4 k), one vpbroadcastd of 4 activation bytes per row, 2 R
// vpmaddubsw summed in int16 for G quads (G = 1: int8) and widened with vpmaddwd(., 1).
// 4-row tiles let a 2x2 max pool be fused into the output stage (store_rows).
template <int Bits, bool Odd, int R>
[[gnu::noinline]] void tile(const Decoder<Bits, Odd>& dec, const uint8_t* a, int64_t lda, const uint8_t* packed,
                            int64_t block_bytes, int32_t quads, int64_t m0, int32_t N, int32_t b0, int32_t b1,
                            const GemmOutput& out, const RequantParams (*rq)[2]) {
  constexpr int quad_bytes = 8 * Bits;
  constexpr int G = group_quads<Bits, Odd>();
  const __m256i ones = _mm256_set1_epi16(1);
  const uint8_t* a0 = a;
  const uint8_t* a1 = a + (R > 1 ? lda : 0);
  const uint8_t* a2 = a + (R > 2 ? 2 * lda : 0);
  const uint8_t* a3 = a + (R > 3 ? 3 * lda : 0);
  const auto bcast = [](const uint8_t* ar, int32_t q) {
    int32_t x;
    std::memcpy(&x, ar + 4 * q, 4);
    return _mm256_set1_epi32(x);
  };
  for (int32_t b = b0; b < b1; ++b) {
    const uint8_t* w = packed + b * block_bytes;
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    if constexpr (G == 1) {  // int8: every quad widened at once
      const auto row = [&](const uint8_t* ar, int32_t q, __m256i w0, __m256i w1, __m256i& x0, __m256i& x1) {
        const __m256i av = bcast(ar, q);
        add32(x0, _mm256_madd_epi16(_mm256_maddubs_epi16(av, w0), ones));
        add32(x1, _mm256_madd_epi16(_mm256_maddubs_epi16(av, w1), ones));
      };
      for (int32_t q = 0; q < quads; ++q, w += quad_bytes) {
        __m256i w0, w1;
        dec.decode(w, w0, w1);
        row(a0, q, w0, w1, c00, c01);
        if constexpr (R > 1) row(a1, q, w0, w1, c10, c11);
        if constexpr (R > 2) row(a2, q, w0, w1, c20, c21);
        if constexpr (R > 3) row(a3, q, w0, w1, c30, c31);
      }
    } else {
      const auto row = [&](const uint8_t* ar, int32_t q, __m256i w0, __m256i w1, __m256i& s0, __m256i& s1) {
        const __m256i av = bcast(ar, q);
        add16(s0, _mm256_maddubs_epi16(av, w0));
        add16(s1, _mm256_maddubs_epi16(av, w1));
      };
      for (int32_t q0 = 0; q0 < quads; q0 += G) {
        const int32_t q1 = q0 + G < quads ? q0 + G : quads;
        __m256i s00 = _mm256_setzero_si256(), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00, s30 = s00, s31 = s00;
        for (int32_t q = q0; q < q1; ++q, w += quad_bytes) {
          __m256i w0, w1;
          dec.decode(w, w0, w1);
          row(a0, q, w0, w1, s00, s01);
          if constexpr (R > 1) row(a1, q, w0, w1, s10, s11);
          if constexpr (R > 2) row(a2, q, w0, w1, s20, s21);
          if constexpr (R > 3) row(a3, q, w0, w1, s30, s31);
        }
        c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(s00, ones));
        c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(s01, ones));
        if constexpr (R > 1) {
          c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(s10, ones));
          c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(s11, ones));
        }
        if constexpr (R > 3) {
          c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(s20, ones));
          c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(s21, ones));
          c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(s30, ones));
          c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(s31, ones));
        }
      }
    }
    __m256i acc[R][2];
    acc[0][0] = c00;
    acc[0][1] = c01;
    if constexpr (R > 1) {
      acc[1][0] = c10;
      acc[1][1] = c11;
    }
    if constexpr (R > 3) {
      acc[2][0] = c20;
      acc[2][1] = c21;
      acc[3][0] = c30;
      acc[3][1] = c31;
    }
    const int32_t n0 = b * kNR, cols = N - n0 < kNR ? N - n0 : kNR;
    switch (out.pool_rows) {
      case 1: store_rows<R, 1>(acc, m0, n0, cols, out, rq[b - b0]); break;
      case 2: if constexpr (R % 2 == 0) store_rows<R, 2>(acc, m0, n0, cols, out, rq[b - b0]); break;
      default: if constexpr (R % 4 == 0) store_rows<R, 4>(acc, m0, n0, cols, out, rq[b - b0]); break;
    }
  }
}

template <int Bits, bool Odd>
void gemm_u8(int64_t M, int32_t N, int32_t K, const void* A_, int64_t lda, const uint8_t* packed, const GemmOutput& out) {
  static const Decoder<Bits, Odd> dec;
  const uint8_t* A = static_cast<const uint8_t*>(A_);
  const int32_t quads = round_up4(K) / 4;
  const int64_t block_bytes = static_cast<int64_t>(quads) * 8 * Bits;
  const int32_t blocks = (N + kNR - 1) / kNR;
  RequantParams rq[64][2];
  for (int32_t bc = 0; bc < blocks; bc += 64) {
    const int32_t bend = blocks < bc + 64 ? blocks : bc + 64;
    requant_blocks(out, N, bc, bend, rq);
    for (int64_t m0 = 0; m0 < M;) {
      // 4-row tiles, then 2 + 1: when M is a multiple of pool_rows (1, 2 or 4) so is every tile
      const int64_t left = M - m0;
      const int rows = left >= 4 ? 4 : left >= 2 ? 2 : 1;
      const uint8_t* a = A + m0 * lda;
      switch (rows) {
        case 4: tile<Bits, Odd, 4>(dec, a, lda, packed, block_bytes, quads, m0, N, bc, bend, out, rq); break;
        case 2: tile<Bits, Odd, 2>(dec, a, lda, packed, block_bytes, quads, m0, N, bc, bend, out, rq); break;
        default: tile<Bits, Odd, 1>(dec, a, lda, packed, block_bytes, quads, m0, N, bc, bend, out, rq); break;
      }
      m0 += rows;
    }
  }
}

constexpr quant::Grid kInt = quant::Grid::Integer;
constexpr quant::Grid kOdd = quant::Grid::Odd;

}  // namespace

// The kernels (gemm_kernels.h): external symbols named as their configs.
LOWBIT_DEFINE_GEMM_KERNEL(u8_w4_gemm_fxp_4x16__avx2, gemm_u8<4, false>)
LOWBIT_DEFINE_GEMM_KERNEL(u8_w2_gemm_fxp_4x16__avx2, gemm_u8<2, false>)
LOWBIT_DEFINE_GEMM_KERNEL(u8_w4odd_gemm_fxp_4x16__avx2, gemm_u8<4, true>)
LOWBIT_DEFINE_GEMM_KERNEL(u8_w2odd_gemm_fxp_4x16__avx2, gemm_u8<2, true>)
LOWBIT_DEFINE_GEMM_KERNEL(u8_w1odd_gemm_fxp_4x16__avx2, gemm_u8<1, true>)
LOWBIT_DEFINE_GEMM_KERNEL(u8_w8p_gemm_fxp_4x16__avx2, gemm_u8<8, false>)

namespace {

#define LOWBIT_U8_CONFIG(kernel, bits, grid, odd, pair_bounded) \
  {LOWBIT_KERNEL_NAME(kernel), Isa::Avx2, bits, grid, GemmInput::U8, 4, 4, kNR, pack_weights<bits, odd>, kernel, nullptr, 4, pair_bounded}

const GemmConfig kConfigs[] = {
    LOWBIT_U8_CONFIG(u8_w4_gemm_fxp_4x16__avx2, 4, kInt, false, false),
    LOWBIT_U8_CONFIG(u8_w2_gemm_fxp_4x16__avx2, 2, kInt, false, false),
    LOWBIT_U8_CONFIG(u8_w4odd_gemm_fxp_4x16__avx2, 4, kOdd, true, false),
    LOWBIT_U8_CONFIG(u8_w2odd_gemm_fxp_4x16__avx2, 2, kOdd, true, false),
    LOWBIT_U8_CONFIG(u8_w1odd_gemm_fxp_4x16__avx2, 1, kOdd, true, false),
    // int8 weights whose pair sums fit in int16 (pair_bounded: the GEMM op proves it per layer)
    LOWBIT_U8_CONFIG(u8_w8p_gemm_fxp_4x16__avx2, 8, kInt, false, true),
};

#undef LOWBIT_U8_CONFIG

}  // namespace

const GemmConfig* gemm_configs_u8_avx2(int* count) {
  *count = static_cast<int>(sizeof(kConfigs) / sizeof(kConfigs[0]));
  return kConfigs;
}

}  // namespace lowbit::runtime
