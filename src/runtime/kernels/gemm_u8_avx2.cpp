// AVX2 GEMM kernels over raw uint8 activations and weights of at most 4 bits, with vpmaddubsw.
//
// Saturation proof: vpmaddubsw adds two products x * w in int16 with saturation. With x in [0, 255]
// and |w| <= W, a pair sum is at most 2 * 255 * W in magnitude; G consecutive pair sums are added
// in int16 before being widened with vpmaddwd(., 1). G is chosen so that G * 2 * 255 * W <= 32767:
//   int4 (W = 8): G = 8 (32640);  odd 4-bit (W = 15): G = 4 (30600);
//   int2 (W = 2), SEQ 2-bit (W = 3), binary (W = 1): G = 16 (<= 24480).
// So no intermediate ever saturates and the int32 result equals the reference exactly.
// The zero point is not subtracted in the kernel: A holds raw x (conv padding = zero point) and
// the caller's bias already contains -z_x * sum_k w[n][k] (fold_zero_point).
//
// Packed layout: per block of 16 output columns, per group of 4 k ("quad"), 64 codes forming two
// vectors of 32 int8: vector v, byte i holds column 8 v + i / 4, k = 4 quad + i % 4 (vpmaddubsw
// sums k pairs, vpmaddwd the two pairs). The 64 codes are stored in 8 * bits bytes arranged so
// that decoding is a load, a per-64-bit-lane shift and a mask:
//   4 bits: 32 bytes; byte i low nibble = vector 0 element i, high nibble = vector 1 element i
//   2 bits: 16 bytes (broadcast to both halves); vector v element i = field 2 v + i / 16 of byte i % 16
//   1 bit:  8 bytes (broadcast to all quarters); vector v element i = field 4 v + i / 8 of byte i % 8
#include <immintrin.h>

#include <cstring>

#include "quant/requantize.h"
#include "runtime/kernels/gemm_config.h"
#include "runtime/kernels/gemm_output_avx2.h"

namespace lowbit::runtime {
namespace {

using namespace avx2;

inline int32_t round_up4(int32_t k) { return (k + 3) & ~3; }

// (byte index, field index) of vector v element i within a quad's bytes.
template <int Bits>
inline void code_position(int v, int i, int& byte, int& field) {
  if constexpr (Bits == 4) {
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
  const uint32_t mask = (1u << Bits) - 1u;
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
          dst[byte] |= static_cast<uint8_t>((static_cast<uint32_t>(code) & mask) << (field * Bits));
        }
    }
  return packed;
}

template <int Bits, bool Odd>
struct Decoder {
  __m256i shift0, shift1;
  Decoder() {
    if constexpr (Bits == 4) {
      shift0 = _mm256_set1_epi64x(0);
      shift1 = _mm256_set1_epi64x(4);
    } else if constexpr (Bits == 2) {
      shift0 = _mm256_setr_epi64x(0, 0, 2, 2);
      shift1 = _mm256_setr_epi64x(4, 4, 6, 6);
    } else {
      shift0 = _mm256_setr_epi64x(0, 1, 2, 3);
      shift1 = _mm256_setr_epi64x(4, 5, 6, 7);
    }
  }
  inline __m256i finish(__m256i f) const {
    const __m256i mask = _mm256_set1_epi8(static_cast<char>((1 << Bits) - 1));
    const __m256i sign = _mm256_set1_epi8(static_cast<char>(1 << (Bits - 1)));
    f = _mm256_sub_epi8(_mm256_xor_si256(_mm256_and_si256(f, mask), sign), sign);  // sign-extend the field
    if constexpr (Odd) f = _mm256_add_epi8(_mm256_add_epi8(f, f), _mm256_set1_epi8(1));
    return f;
  }
  inline void decode(const uint8_t* p, __m256i& b0, __m256i& b1) const {
    __m256i bytes;
    if constexpr (Bits == 4) {
      bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    } else if constexpr (Bits == 2) {
      bytes = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    } else {
      int64_t q;
      std::memcpy(&q, p, 8);
      bytes = _mm256_set1_epi64x(q);
    }
    b0 = finish(_mm256_srlv_epi64(bytes, shift0));
    b1 = finish(_mm256_srlv_epi64(bytes, shift1));
  }
};

template <int Bits, bool Odd>
constexpr int group_quads() {
  return Bits == 4 ? (Odd ? 4 : 8) : 16;
}

template <int Bits, bool Odd>
inline void microkernel_6x16(const Decoder<Bits, Odd>& dec, const uint8_t* const a[kMR], const uint8_t* w, int32_t quads,
                             __m256i acc[kMR][2]) {
  constexpr int quad_bytes = 8 * Bits;
  constexpr int G = group_quads<Bits, Odd>();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (int32_t q0 = 0; q0 < quads; q0 += G) {
    const int32_t q1 = q0 + G < quads ? q0 + G : quads;
    __m256i s00 = _mm256_setzero_si256(), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00, s30 = s00, s31 = s00,
            s40 = s00, s41 = s00, s50 = s00, s51 = s00;
    const uint8_t* wq = w + static_cast<int64_t>(q0) * quad_bytes;
    for (int32_t q = q0; q < q1; ++q, wq += quad_bytes) {
      __m256i b0, b1;
      dec.decode(wq, b0, b1);
      int32_t x;
      std::memcpy(&x, a[0] + 4 * q, 4);
      __m256i av = _mm256_set1_epi32(x);
      s00 = _mm256_add_epi16(s00, _mm256_maddubs_epi16(av, b0));
      s01 = _mm256_add_epi16(s01, _mm256_maddubs_epi16(av, b1));
      std::memcpy(&x, a[1] + 4 * q, 4);
      av = _mm256_set1_epi32(x);
      s10 = _mm256_add_epi16(s10, _mm256_maddubs_epi16(av, b0));
      s11 = _mm256_add_epi16(s11, _mm256_maddubs_epi16(av, b1));
      std::memcpy(&x, a[2] + 4 * q, 4);
      av = _mm256_set1_epi32(x);
      s20 = _mm256_add_epi16(s20, _mm256_maddubs_epi16(av, b0));
      s21 = _mm256_add_epi16(s21, _mm256_maddubs_epi16(av, b1));
      std::memcpy(&x, a[3] + 4 * q, 4);
      av = _mm256_set1_epi32(x);
      s30 = _mm256_add_epi16(s30, _mm256_maddubs_epi16(av, b0));
      s31 = _mm256_add_epi16(s31, _mm256_maddubs_epi16(av, b1));
      std::memcpy(&x, a[4] + 4 * q, 4);
      av = _mm256_set1_epi32(x);
      s40 = _mm256_add_epi16(s40, _mm256_maddubs_epi16(av, b0));
      s41 = _mm256_add_epi16(s41, _mm256_maddubs_epi16(av, b1));
      std::memcpy(&x, a[5] + 4 * q, 4);
      av = _mm256_set1_epi32(x);
      s50 = _mm256_add_epi16(s50, _mm256_maddubs_epi16(av, b0));
      s51 = _mm256_add_epi16(s51, _mm256_maddubs_epi16(av, b1));
    }
    acc[0][0] = _mm256_add_epi32(acc[0][0], _mm256_madd_epi16(s00, ones));
    acc[0][1] = _mm256_add_epi32(acc[0][1], _mm256_madd_epi16(s01, ones));
    acc[1][0] = _mm256_add_epi32(acc[1][0], _mm256_madd_epi16(s10, ones));
    acc[1][1] = _mm256_add_epi32(acc[1][1], _mm256_madd_epi16(s11, ones));
    acc[2][0] = _mm256_add_epi32(acc[2][0], _mm256_madd_epi16(s20, ones));
    acc[2][1] = _mm256_add_epi32(acc[2][1], _mm256_madd_epi16(s21, ones));
    acc[3][0] = _mm256_add_epi32(acc[3][0], _mm256_madd_epi16(s30, ones));
    acc[3][1] = _mm256_add_epi32(acc[3][1], _mm256_madd_epi16(s31, ones));
    acc[4][0] = _mm256_add_epi32(acc[4][0], _mm256_madd_epi16(s40, ones));
    acc[4][1] = _mm256_add_epi32(acc[4][1], _mm256_madd_epi16(s41, ones));
    acc[5][0] = _mm256_add_epi32(acc[5][0], _mm256_madd_epi16(s50, ones));
    acc[5][1] = _mm256_add_epi32(acc[5][1], _mm256_madd_epi16(s51, ones));
  }
}

// Tiles of R < 6 rows (batch-1 linear layers are GEMV: M = 1).
template <int Bits, bool Odd, int R>
inline void microkernel_rx16(const Decoder<Bits, Odd>& dec, const uint8_t* const a[kMR], const uint8_t* w, int32_t quads,
                             __m256i acc[kMR][2]) {
  constexpr int quad_bytes = 8 * Bits;
  constexpr int G = group_quads<Bits, Odd>();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (int32_t q0 = 0; q0 < quads; q0 += G) {
    const int32_t q1 = q0 + G < quads ? q0 + G : quads;
    __m256i s[R][2];
    for (int r = 0; r < R; ++r) s[r][0] = s[r][1] = _mm256_setzero_si256();
    const uint8_t* wq = w + static_cast<int64_t>(q0) * quad_bytes;
    for (int32_t q = q0; q < q1; ++q, wq += quad_bytes) {
      __m256i b0, b1;
      dec.decode(wq, b0, b1);
      for (int r = 0; r < R; ++r) {
        int32_t x;
        std::memcpy(&x, a[r] + 4 * q, 4);
        const __m256i av = _mm256_set1_epi32(x);
        s[r][0] = _mm256_add_epi16(s[r][0], _mm256_maddubs_epi16(av, b0));
        s[r][1] = _mm256_add_epi16(s[r][1], _mm256_maddubs_epi16(av, b1));
      }
    }
    for (int r = 0; r < R; ++r) {
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(s[r][0], ones));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(s[r][1], ones));
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
    for (int64_t m0 = 0; m0 < M; m0 += kMR) {
      const int rows = M - m0 < kMR ? static_cast<int>(M - m0) : kMR;
      const uint8_t* a[kMR];
      for (int r = 0; r < kMR; ++r) a[r] = A + (m0 + (r < rows ? r : 0)) * lda;
      for (int32_t b = bc; b < bend; ++b) {
        __m256i acc[kMR][2];
        const uint8_t* wb = packed + b * block_bytes;
        if (rows == 1) {
          microkernel_rx16<Bits, Odd, 1>(dec, a, wb, quads, acc);
        } else if (rows == 2) {
          microkernel_rx16<Bits, Odd, 2>(dec, a, wb, quads, acc);
        } else {
          microkernel_6x16<Bits, Odd>(dec, a, wb, quads, acc);
        }
        const int32_t cols = N - b * kNR < kNR ? N - b * kNR : kNR;
        store_tile(acc, rows, m0, b * kNR, cols, out, rq[b - bc]);
      }
    }
  }
}

constexpr quant::Grid kInt = quant::Grid::Integer;
constexpr quant::Grid kOdd = quant::Grid::Odd;

const GemmConfig kConfigs[] = {
    {"u8_w4_gemm_fxp_6x16__avx2", Isa::Avx2, 4, kInt, GemmInput::U8, 4, kMR, kNR, pack_weights<4, false>, gemm_u8<4, false>, nullptr},
    {"u8_w2_gemm_fxp_6x16__avx2", Isa::Avx2, 2, kInt, GemmInput::U8, 4, kMR, kNR, pack_weights<2, false>, gemm_u8<2, false>, nullptr},
    {"u8_w4odd_gemm_fxp_6x16__avx2", Isa::Avx2, 4, kOdd, GemmInput::U8, 4, kMR, kNR, pack_weights<4, true>, gemm_u8<4, true>, nullptr},
    {"u8_w2odd_gemm_fxp_6x16__avx2", Isa::Avx2, 2, kOdd, GemmInput::U8, 4, kMR, kNR, pack_weights<2, true>, gemm_u8<2, true>, nullptr},
    {"u8_w1odd_gemm_fxp_6x16__avx2", Isa::Avx2, 1, kOdd, GemmInput::U8, 4, kMR, kNR, pack_weights<1, true>, gemm_u8<1, true>, nullptr},
};

}  // namespace

const GemmConfig* gemm_configs_u8_avx2(int* count) {
  *count = static_cast<int>(sizeof(kConfigs) / sizeof(kConfigs[0]));
  return kConfigs;
}

}  // namespace lowbit::runtime
