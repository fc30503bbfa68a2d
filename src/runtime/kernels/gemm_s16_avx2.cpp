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
#include "runtime/kernels/gemm_kernels.h"
#include "runtime/kernels/gemm_output_avx2.h"

namespace lowbit::runtime {
namespace {

using namespace avx2;

inline int32_t round_up2(int32_t k) { return (k + 1) & ~1; }

// Bytes of one pair of k for 16 columns. (Storing int8 weights widened to int16 saves the vpmovsxbw
// of each weight vector but was not measurably faster on conv2 and slower on fc1, whose 800 KB of
// int16 weights no longer fit in L2.)
constexpr int kk_bytes_of(int bits) { return 32 * bits / 8; }

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
// Tile: R rows (4, then 2 / 1 for the remainder) x 16 columns. Per pair of k: two decoded weight
// vectors (16 columns x 2 k as int16), one vpbroadcastd of the row's two int16 activations per row,
// 2 R vpmaddwd + 2 R vpaddd. R = 4: 8 accumulators + 2 weights + 1 broadcast = 11 of the 16 ymm.
// On Zen 3 the vpmaddwd + vpaddd pair is the bound (both on the three integer vector pipes: at most
// 24 MAC per cycle, BM_Avx2Peak "vpmaddwd+vpaddd"); taller tiles would not do fewer of them per MAC,
// and 4-row tiles let a 2x2 max pool be fused into the output stage (rows of one window are
// consecutive). Not inlined into the driver: the tile's registers then stay its own.
// c += v in place. Written as inline asm because GCC 12 otherwise renames the accumulators at every
// step and copies them back (8 extra vmovdqa per pair of k in the 4-row tile, measured ~25 % slower).
inline void accumulate(__m256i& c, __m256i v) { asm("vpaddd %1, %0, %0" : "+x"(c) : "x"(v)); }

// One call: R rows against the column blocks [b0, b1) (for small K the per-call overhead matters:
// conv1 has 5 pairs of k per tile).
template <int Bits, bool Odd, int R>
[[gnu::noinline]] void tile(const Decoder<Bits>& dec, const int16_t* a, int64_t lda, const uint8_t* packed,
                            int64_t block_bytes, int32_t pairs, int64_t m0, int32_t N, int32_t b0, int32_t b1,
                            const GemmOutput& out, const RequantParams (*rq)[2]) {
  constexpr int kk_bytes = kk_bytes_of(Bits);
  const int32_t* a0 = reinterpret_cast<const int32_t*>(a);
  const int32_t* a1 = reinterpret_cast<const int32_t*>(a + (R > 1 ? lda : 0));
  const int32_t* a2 = reinterpret_cast<const int32_t*>(a + (R > 2 ? 2 * lda : 0));
  const int32_t* a3 = reinterpret_cast<const int32_t*>(a + (R > 3 ? 3 * lda : 0));
  const auto row = [](const int32_t* ar, int32_t kk, __m256i b0, __m256i b1, __m256i& c0, __m256i& c1) {
    int32_t pair;
    std::memcpy(&pair, ar + kk, 4);
    const __m256i av = _mm256_set1_epi32(pair);
    accumulate(c0, _mm256_madd_epi16(av, b0));
    accumulate(c1, _mm256_madd_epi16(av, b1));
  };
  for (int32_t b = b0; b < b1; ++b) {
    const uint8_t* w = packed + b * block_bytes;
    // Named accumulators (an array indexed in the loop made GCC 12 copy every accumulator and store
    // one to the stack at each step).
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    for (int32_t kk = 0; kk < pairs; ++kk, w += kk_bytes) {
      __m256i w0, w1;
      dec.template decode<Odd>(w, w0, w1);
      row(a0, kk, w0, w1, c00, c01);
      if constexpr (R > 1) row(a1, kk, w0, w1, c10, c11);
      if constexpr (R > 2) row(a2, kk, w0, w1, c20, c21);
      if constexpr (R > 3) row(a3, kk, w0, w1, c30, c31);
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
    // the pool size is a template argument so that the accumulators stay in registers
    switch (out.pool_rows) {
      case 1: store_rows<R, 1>(acc, m0, n0, cols, out, rq[b - b0]); break;
      case 2: if constexpr (R % 2 == 0) store_rows<R, 2>(acc, m0, n0, cols, out, rq[b - b0]); break;
      default: if constexpr (R % 4 == 0) store_rows<R, 4>(acc, m0, n0, cols, out, rq[b - b0]); break;
    }
  }
}

template <int Bits, bool Odd>
void gemm_s16(int64_t M, int32_t N, int32_t K, const void* A_, int64_t lda, const uint8_t* packed,
              const GemmOutput& out) {
  const int16_t* A = static_cast<const int16_t*>(A_);
  static const Decoder<Bits> dec;
  const int32_t K2 = round_up2(K), pairs = K2 / 2;
  constexpr int kk_bytes = kk_bytes_of(Bits);
  const int64_t block_bytes = static_cast<int64_t>(pairs) * kk_bytes;
  const int32_t blocks = (N + kNR - 1) / kNR;
  RequantParams rq[64][2];  // per column block; N <= 1024 handled in one pass, larger in chunks below
  for (int32_t bc = 0; bc < blocks; bc += 64) {
    const int32_t bend = blocks < bc + 64 ? blocks : bc + 64;
    requant_blocks(out, N, bc, bend, rq);
    for (int64_t m0 = 0; m0 < M;) {
      // 4-row tiles, then 2 + 1: when M is a multiple of pool_rows (1, 2 or 4) so is every tile
      const int64_t left = M - m0;
      const int rows = left >= 4 ? 4 : left >= 2 ? 2 : 1;
      const int16_t* a = A + m0 * lda;
      switch (rows) {
        case 4: tile<Bits, Odd, 4>(dec, a, lda, packed, block_bytes, pairs, m0, N, bc, bend, out, rq); break;
        case 2: tile<Bits, Odd, 2>(dec, a, lda, packed, block_bytes, pairs, m0, N, bc, bend, out, rq); break;
        default: tile<Bits, Odd, 1>(dec, a, lda, packed, block_bytes, pairs, m0, N, bc, bend, out, rq); break;
      }
      m0 += rows;
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

}  // namespace

// The kernels (gemm_kernels.h): external symbols named as their configs.
LOWBIT_DEFINE_GEMM_KERNEL(s16_w8_gemm_fxp_4x16__avx2, gemm_s16<8, false>)
LOWBIT_DEFINE_GEMM_KERNEL(s16_w4_gemm_fxp_4x16__avx2, gemm_s16<4, false>)
LOWBIT_DEFINE_GEMM_KERNEL(s16_w2_gemm_fxp_4x16__avx2, gemm_s16<2, false>)
LOWBIT_DEFINE_GEMM_KERNEL(s16_w4odd_gemm_fxp_4x16__avx2, gemm_s16<4, true>)
LOWBIT_DEFINE_GEMM_KERNEL(s16_w2odd_gemm_fxp_4x16__avx2, gemm_s16<2, true>)
LOWBIT_DEFINE_GEMM_KERNEL(s16_w1odd_gemm_fxp_4x16__avx2, gemm_s16<1, true>)

namespace {

#define LOWBIT_S16_CONFIG(kernel, bits, grid, odd) \
  {LOWBIT_KERNEL_NAME(kernel), Isa::Avx2, bits, grid, GemmInput::S16, 2, 4, kNR, pack_weights<bits, odd>, kernel, widen_u8_to_s16, 4}

const GemmConfig kConfigs[] = {
    LOWBIT_S16_CONFIG(s16_w8_gemm_fxp_4x16__avx2, 8, kInt, false),
    LOWBIT_S16_CONFIG(s16_w4_gemm_fxp_4x16__avx2, 4, kInt, false),
    LOWBIT_S16_CONFIG(s16_w2_gemm_fxp_4x16__avx2, 2, kInt, false),
    LOWBIT_S16_CONFIG(s16_w4odd_gemm_fxp_4x16__avx2, 4, kOdd, true),
    LOWBIT_S16_CONFIG(s16_w2odd_gemm_fxp_4x16__avx2, 2, kOdd, true),
    LOWBIT_S16_CONFIG(s16_w1odd_gemm_fxp_4x16__avx2, 1, kOdd, true),
};

#undef LOWBIT_S16_CONFIG

}  // namespace

const GemmConfig* gemm_configs_s16_avx2(int* count) {
  *count = static_cast<int>(sizeof(kConfigs) / sizeof(kConfigs[0]));
  return kConfigs;
}

}  // namespace lowbit::runtime
