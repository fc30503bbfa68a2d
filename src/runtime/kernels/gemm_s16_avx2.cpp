// AVX2 GEMM kernels over int16 activations (x - zero_point) and int8 / int4 / int2 / 1-bit weights.
//
// Why int16 activations: vpmaddubsw (u8 x s8) saturates its int16 pair sums when 8-bit activations
// meet 8-bit weights (2 * 255 * 128 > 32767). vpmaddwd on int16 pairs cannot overflow: a pair sum is
// at most 2 * 255 * 128 = 65280 in magnitude, far inside int32, and it also folds the activation
// zero point in for free. Accumulation is int32 with wrap-around, exactly like the reference.
//
// Packed weight layout (one block per 16 output columns, NR = 16): for each pair of k (kk = k / 2),
// 32 codes in the order (column 0: k even, k odd), (column 1: ...), ..., (column 15: ...), packed
// with quant::pack_codes at the weight's bit width. Sub-byte codes are decoded in registers:
// the bytes of one kk are broadcast, vpshufb puts each code's byte in the high half of its int16
// lane, vpmullw by 2^s moves the code to the top bits and vpsraw sign-extends it.
#include <immintrin.h>

#include <cstring>

#include "quant/bit_packing.h"
#include "quant/requantize.h"
#include "runtime/kernels/gemm_config.h"
#include "runtime/kernels/gemm_output_avx2.h"

namespace lowbit::runtime {
namespace {

using namespace avx2;

inline int32_t round_up2(int32_t k) { return (k + 1) & ~1; }

// ---- weight packing ------------------------------------------------------------------------
template <int Bits, bool Odd>
std::vector<uint8_t> pack_weights(const int32_t* w, int32_t N, int32_t K) {
  const int32_t K2 = round_up2(K), blocks = (N + kNR - 1) / kNR;
  std::vector<int8_t> codes(static_cast<size_t>(blocks) * K2 * kNR, 0);
  size_t i = 0;
  for (int32_t b = 0; b < blocks; ++b)
    for (int32_t kk = 0; kk < K2; kk += 2)
      for (int32_t c = 0; c < kNR; ++c)
        for (int32_t p = 0; p < 2; ++p, ++i) {
          const int32_t n = b * kNR + c, k = kk + p;
          if (n >= N || k >= K) continue;  // padding: A is zero there, or the column is discarded
          const int32_t v = w[static_cast<size_t>(n) * K + k];
          codes[i] = static_cast<int8_t>(Odd ? (v - 1) / 2 : v);
        }
  std::vector<uint8_t> packed = quant::pack_codes(codes, Bits);
  packed.resize(packed.size() + 32, 0);  // slack so that 16-byte loads of the last kk stay inside
  return packed;
}

// ---- in-register decoding of one kk (32 codes) into two vectors of 16 int16 -----------------
template <int Bits>
struct Decoder {
  __m256i shuf0, shuf1, mul;
  Decoder() {
    constexpr int per_byte = 8 / Bits;
    alignas(32) int8_t s0[32], s1[32];
    alignas(32) int16_t m[16];
    for (int j = 0; j < 16; ++j) {
      // int16 lane j of vector v holds element e = 16 v + j; lanes 8..15 sit in the high 128-bit half,
      // whose vpshufb sees the same broadcast bytes.
      const int lane_byte = (j % 8) * 2 + (j / 8) * 16;
      s0[lane_byte] = s1[lane_byte] = static_cast<int8_t>(0x80);
      s0[lane_byte + 1] = static_cast<int8_t>(j / per_byte);
      s1[lane_byte + 1] = static_cast<int8_t>((16 + j) / per_byte);
      m[j] = static_cast<int16_t>(1 << (8 - Bits - Bits * (j % per_byte)));
    }
    shuf0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(s0));
    shuf1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(s1));
    mul = _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
  }
  template <bool Odd>
  inline void decode(const uint8_t* p, __m256i& b0, __m256i& b1) const {
    if constexpr (Bits == 8) {
      b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
    } else {
      const __m256i bytes = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      b0 = _mm256_srai_epi16(_mm256_mullo_epi16(_mm256_shuffle_epi8(bytes, shuf0), mul), 16 - Bits);
      b1 = _mm256_srai_epi16(_mm256_mullo_epi16(_mm256_shuffle_epi8(bytes, shuf1), mul), 16 - Bits);
    }
    if constexpr (Odd) {
      const __m256i one = _mm256_set1_epi16(1);
      b0 = _mm256_add_epi16(_mm256_add_epi16(b0, b0), one);
      b1 = _mm256_add_epi16(_mm256_add_epi16(b1, b1), one);
    }
  }
};

// ---- the kernel -----------------------------------------------------------------------------
// One 6x16 tile over all k: named accumulators so that they stay in registers (12 of 16 ymm).
template <int Bits, bool Odd>
inline void microkernel_6x16(const Decoder<Bits>& dec, const int16_t* const a[kMR], const uint8_t* w, int32_t pairs,
                             __m256i acc[kMR][2]) {
  constexpr int kk_bytes = 32 * Bits / 8;
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
          c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  const int32_t* a0 = reinterpret_cast<const int32_t*>(a[0]);
  const int32_t* a1 = reinterpret_cast<const int32_t*>(a[1]);
  const int32_t* a2 = reinterpret_cast<const int32_t*>(a[2]);
  const int32_t* a3 = reinterpret_cast<const int32_t*>(a[3]);
  const int32_t* a4 = reinterpret_cast<const int32_t*>(a[4]);
  const int32_t* a5 = reinterpret_cast<const int32_t*>(a[5]);
  for (int32_t kk = 0; kk < pairs; ++kk, w += kk_bytes) {
    __m256i b0, b1;
    dec.template decode<Odd>(w, b0, b1);
    __m256i av = _mm256_set1_epi32(a0[kk]);
    c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(av, b0));
    c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(av, b1));
    av = _mm256_set1_epi32(a1[kk]);
    c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(av, b0));
    c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(av, b1));
    av = _mm256_set1_epi32(a2[kk]);
    c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(av, b0));
    c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(av, b1));
    av = _mm256_set1_epi32(a3[kk]);
    c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(av, b0));
    c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(av, b1));
    av = _mm256_set1_epi32(a4[kk]);
    c40 = _mm256_add_epi32(c40, _mm256_madd_epi16(av, b0));
    c41 = _mm256_add_epi32(c41, _mm256_madd_epi16(av, b1));
    av = _mm256_set1_epi32(a5[kk]);
    c50 = _mm256_add_epi32(c50, _mm256_madd_epi16(av, b0));
    c51 = _mm256_add_epi32(c51, _mm256_madd_epi16(av, b1));
  }
  acc[0][0] = c00; acc[0][1] = c01; acc[1][0] = c10; acc[1][1] = c11;
  acc[2][0] = c20; acc[2][1] = c21; acc[3][0] = c30; acc[3][1] = c31;
  acc[4][0] = c40; acc[4][1] = c41; acc[5][0] = c50; acc[5][1] = c51;
}

// Tiles of R < 6 rows (batch-1 linear layers are GEMV: M = 1); arrays of 2R accumulators.
template <int Bits, bool Odd, int R>
inline void microkernel_rx16(const Decoder<Bits>& dec, const int16_t* const a[kMR], const uint8_t* w, int32_t pairs,
                             __m256i acc[kMR][2]) {
  constexpr int kk_bytes = 32 * Bits / 8;
  __m256i c[R][2];
  for (int r = 0; r < R; ++r) c[r][0] = c[r][1] = _mm256_setzero_si256();
  for (int32_t kk = 0; kk < pairs; ++kk, w += kk_bytes) {
    __m256i b0, b1;
    dec.template decode<Odd>(w, b0, b1);
    for (int r = 0; r < R; ++r) {
      int32_t pair;
      std::memcpy(&pair, a[r] + 2 * kk, 4);
      const __m256i av = _mm256_set1_epi32(pair);
      c[r][0] = _mm256_add_epi32(c[r][0], _mm256_madd_epi16(av, b0));
      c[r][1] = _mm256_add_epi32(c[r][1], _mm256_madd_epi16(av, b1));
    }
  }
  for (int r = 0; r < R; ++r) {
    acc[r][0] = c[r][0];
    acc[r][1] = c[r][1];
  }
}

template <int Bits, bool Odd>
void gemm_s16(int64_t M, int32_t N, int32_t K, const void* A_, int64_t lda, const uint8_t* packed,
              const GemmOutput& out) {
  const int16_t* A = static_cast<const int16_t*>(A_);
  static const Decoder<Bits> dec;
  const int32_t K2 = round_up2(K), pairs = K2 / 2;
  constexpr int kk_bytes = 32 * Bits / 8;
  const int64_t block_bytes = static_cast<int64_t>(pairs) * kk_bytes;
  const int32_t blocks = (N + kNR - 1) / kNR;
  RequantParams rq[64][2];  // per column block; N <= 1024 handled in one pass, larger in chunks below
  for (int32_t bc = 0; bc < blocks; bc += 64) {
    const int32_t bend = blocks < bc + 64 ? blocks : bc + 64;
    requant_blocks(out, N, bc, bend, rq);
    for (int64_t m0 = 0; m0 < M; m0 += kMR) {
      const int rows = M - m0 < kMR ? static_cast<int>(M - m0) : kMR;
      const int16_t* a[kMR];
      for (int r = 0; r < kMR; ++r) a[r] = A + (m0 + (r < rows ? r : 0)) * lda;
      for (int32_t b = bc; b < bend; ++b) {
        const uint8_t* w = packed + b * block_bytes;
        __m256i acc[kMR][2];
        if (rows == 1) {
          microkernel_rx16<Bits, Odd, 1>(dec, a, w, pairs, acc);
        } else if (rows == 2) {
          microkernel_rx16<Bits, Odd, 2>(dec, a, w, pairs, acc);
        } else {
          microkernel_6x16<Bits, Odd>(dec, a, w, pairs, acc);
        }
        const int32_t cols = N - b * kNR < kNR ? N - b * kNR : kNR;
        store_tile(acc, rows, m0, b * kNR, cols, out, rq[b - bc]);
      }
    }
  }
}

void widen_u8_to_s16(const uint8_t* x, int64_t n, int32_t zero_point, int16_t* out) {
  const __m256i z = _mm256_set1_epi16(static_cast<int16_t>(zero_point));
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_sub_epi16(v, z));
  }
  for (; i < n; ++i) out[i] = static_cast<int16_t>(x[i] - zero_point);
}

constexpr quant::Grid kInt = quant::Grid::Integer;
constexpr quant::Grid kOdd = quant::Grid::Odd;

const GemmConfig kConfigs[] = {
    {"s16_w8_gemm_fxp_6x16__avx2", Isa::Avx2, 8, kInt, GemmInput::S16, 2, kMR, kNR, pack_weights<8, false>, gemm_s16<8, false>, widen_u8_to_s16},
    {"s16_w4_gemm_fxp_6x16__avx2", Isa::Avx2, 4, kInt, GemmInput::S16, 2, kMR, kNR, pack_weights<4, false>, gemm_s16<4, false>, widen_u8_to_s16},
    {"s16_w2_gemm_fxp_6x16__avx2", Isa::Avx2, 2, kInt, GemmInput::S16, 2, kMR, kNR, pack_weights<2, false>, gemm_s16<2, false>, widen_u8_to_s16},
    {"s16_w4odd_gemm_fxp_6x16__avx2", Isa::Avx2, 4, kOdd, GemmInput::S16, 2, kMR, kNR, pack_weights<4, true>, gemm_s16<4, true>, widen_u8_to_s16},
    {"s16_w2odd_gemm_fxp_6x16__avx2", Isa::Avx2, 2, kOdd, GemmInput::S16, 2, kMR, kNR, pack_weights<2, true>, gemm_s16<2, true>, widen_u8_to_s16},
    {"s16_w1odd_gemm_fxp_6x16__avx2", Isa::Avx2, 1, kOdd, GemmInput::S16, 2, kMR, kNR, pack_weights<1, true>, gemm_s16<1, true>, widen_u8_to_s16},
};

}  // namespace

const GemmConfig* gemm_configs_s16_avx2(int* count) {
  *count = static_cast<int>(sizeof(kConfigs) / sizeof(kConfigs[0]));
  return kConfigs;
}

}  // namespace lowbit::runtime
