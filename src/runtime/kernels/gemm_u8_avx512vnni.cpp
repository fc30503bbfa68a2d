// AVX-512 VNNI GEMM kernels: raw uint8 activations x signed weights with vpdpbusd.
//
// Why exact: vpdpbusd adds four u8 x s8 products to an int32 lane with wrap-around and without
// any intermediate saturation (unlike vpmaddubsw), which is the reference's int32 arithmetic.
// As in the AVX2 u8 kernels the zero point is not subtracted here: A holds raw x (conv padding =
// zero point) and the caller's bias holds -z_x * sum_k w[n][k] (fold_zero_point).
//
// Tile: MR = 12 rows x NR = 32 columns = 24 zmm accumulators (16 int32 columns each); per group of
// 4 k ("quad") two weight vectors of 16 columns x 4 k and one vpbroadcastd of 4 activation bytes per
// row. That uses 27 of the 32 zmm registers and does 24 vpdpbusd per 2 weight decodes and 12
// broadcasts. Small M (batch-1 linear layers: M = 1) uses 1-, 2- and 4-row tiles whose quads are
// split over 2 or 4 accumulator sets so that the vpdpbusd latency chain does not limit them.
//
// Sub-byte weights are decoded in registers, scaled by a power of two S so that each decode is an
// AND (or one vpternlogd) after at most one shift: the code c sits in the top bits of its byte,
// so the byte read as int8 is S * c (Integer grid) or S * (2c + 1) (Odd grid, low bit added by
// vpternlogd). |S * w| <= 128, so a sum over at most kChunkQuads = 8192 quads is below
// 8192 * 4 * 255 * 128 < 2^31 in magnitude: it is exact and an arithmetic shift by log2 S
// recovers sum x * w exactly. Longer K is summed chunk by chunk (int32 wrap-around, as the
// reference). Binary weights are expanded from a bit mask with vpblendmb (exact +-1, S = 1).
//
// Packed layout, per block of 32 columns, per quad, vector v (0: columns 0..15, 1: 16..31),
// element i (0..63) = column 16 v + i / 4, k = 4 quad + i % 4 (what vpdpbusd sums per lane):
//   w8:           128 bytes, byte 64 v + i
//   w4 / w4odd:   64 bytes, byte i: low nibble vector 0, high nibble vector 1 (S = 16 / 8)
//   w2 / w2odd:   32 bytes, read as [b, b] (256-bit broadcast); vector v element i is the field at
//                 bits 7 - 2 (2 v + i / 32) .. of byte i % 32 (S = 64 / 32)
//   w1odd:        16 bytes: bit i of 64-bit word v is set when the weight is -1
#include <immintrin.h>

#include <cstring>

// GCC 12's AVX-512 headers self-initialise _mm512_undefined_*() values, which -Wmaybe-uninitialized
// reports at every inlined call site (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "runtime/kernels/gemm_config.h"
#include "runtime/kernels/gemm_kernels.h"
#include "runtime/kernels/gemm_output_avx512.h"

namespace lowbit::runtime {
namespace {

using namespace avx512;

constexpr int kMR = 12;
constexpr int kNR = 32;
constexpr int32_t kChunkQuads = 8192;

inline int32_t quads_of(int32_t K) { return (K + 3) / 4; }

// ---- decoders: one quad of 32 columns -> two vectors of 64 int8 ----------------------------
struct W8 {
  static constexpr int kQuadBytes = 128, kScaleShift = 0;
  static void place(uint8_t* q, int v, int i, int32_t value) { q[64 * v + i] = static_cast<uint8_t>(value); }
  static inline void decode(const uint8_t* p, __m512i& b0, __m512i& b1) {
    b0 = _mm512_loadu_si512(p);
    b1 = _mm512_loadu_si512(p + 64);
  }
};

// (A & B) | C as a vpternlogd immediate (A = 0xF0, B = 0xCC, C = 0xAA).
constexpr int kAndOr = 0xEA;

template <bool Odd>
struct W4 {
  static constexpr int kQuadBytes = 64, kScaleShift = Odd ? 3 : 4;
  static void place(uint8_t* q, int v, int i, int32_t value) {
    const uint32_t code = static_cast<uint32_t>(Odd ? (value - 1) / 2 : value) & 15u;
    q[i] |= static_cast<uint8_t>(code << (4 * v));
  }
  static inline void decode(const uint8_t* p, __m512i& b0, __m512i& b1) {
    const __m512i x = _mm512_loadu_si512(p);
    const __m512i lo = _mm512_slli_epi16(x, 4);  // low nibbles to the top of their byte
    const __m512i top = _mm512_set1_epi8(static_cast<char>(0xF0));
    if constexpr (Odd) {  // 16 c + 8 = 8 (2 c + 1)
      const __m512i half = _mm512_set1_epi8(8);
      b0 = _mm512_ternarylogic_epi32(lo, top, half, kAndOr);
      b1 = _mm512_ternarylogic_epi32(x, top, half, kAndOr);
    } else {  // 16 c
      b0 = _mm512_and_si512(lo, top);
      b1 = _mm512_and_si512(x, top);
    }
  }
};

template <bool Odd>
struct W2 {
  static constexpr int kQuadBytes = 32, kScaleShift = Odd ? 5 : 6;
  static void place(uint8_t* q, int v, int i, int32_t value) {
    const uint32_t code = static_cast<uint32_t>(Odd ? (value - 1) / 2 : value) & 3u;
    q[i % 32] |= static_cast<uint8_t>(code << (6 - 2 * (2 * v + i / 32)));
  }
  static inline void decode(const uint8_t* p, __m512i& b0, __m512i& b1) {
    const __m512i x = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    // per 64-bit lane shifts: lanes 0-3 hold elements 0..31, lanes 4-7 elements 32..63
    const __m512i s0 = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0), s1 = _mm512_set_epi64(6, 6, 6, 6, 4, 4, 4, 4);
    const __m512i top = _mm512_set1_epi8(static_cast<char>(0xC0));
    const __m512i f0 = _mm512_sllv_epi64(x, s0), f1 = _mm512_sllv_epi64(x, s1);
    if constexpr (Odd) {  // 64 c + 32 = 32 (2 c + 1)
      const __m512i half = _mm512_set1_epi8(32);
      b0 = _mm512_ternarylogic_epi32(f0, top, half, kAndOr);
      b1 = _mm512_ternarylogic_epi32(f1, top, half, kAndOr);
    } else {  // 64 c
      b0 = _mm512_and_si512(f0, top);
      b1 = _mm512_and_si512(f1, top);
    }
  }
};

struct W1Odd {
  static constexpr int kQuadBytes = 16, kScaleShift = 0;
  static void place(uint8_t* q, int v, int i, int32_t value) {
    if (value < 0) q[8 * v + i / 8] |= static_cast<uint8_t>(1u << (i % 8));
  }
  static inline void decode(const uint8_t* p, __m512i& b0, __m512i& b1) {
    uint64_t m0, m1;
    std::memcpy(&m0, p, 8);
    std::memcpy(&m1, p + 8, 8);
    const __m512i plus = _mm512_set1_epi8(1), minus = _mm512_set1_epi8(-1);
    b0 = _mm512_mask_blend_epi8(m0, plus, minus);
    b1 = _mm512_mask_blend_epi8(m1, plus, minus);
  }
};

template <class Dec>
std::vector<uint8_t> pack_weights(const int32_t* w, int32_t N, int32_t K) {
  const int32_t quads = quads_of(K), blocks = (N + kNR - 1) / kNR;
  // +32: the slack every packed buffer carries (the session derives block sizes from it)
  std::vector<uint8_t> packed(static_cast<size_t>(blocks) * quads * Dec::kQuadBytes + 32, 0);
  for (int32_t b = 0; b < blocks; ++b)
    for (int32_t q = 0; q < quads; ++q) {
      uint8_t* dst = packed.data() + (static_cast<size_t>(b) * quads + q) * Dec::kQuadBytes;
      for (int v = 0; v < 2; ++v)
        for (int i = 0; i < 64; ++i) {
          const int32_t n = b * kNR + 16 * v + i / 4, k = 4 * q + i % 4;
          if (n >= N || k >= K) continue;  // padding: A is zero there, or the column is discarded
          Dec::place(dst, v, i, w[static_cast<size_t>(n) * K + k]);
        }
    }
  return packed;
}

// ---- microkernel: R rows x 32 columns over quads [q0, q1), S interleaved accumulator sets ------
// acc + sum of 4 u8 x s8 products per int32 lane (vpdpbusd). Written as inline asm because GCC 12
// copies the accumulator to a fresh register around every _mm512_dpbusd_epi32 in unrolled loops
// (one extra vector move per vpdpbusd, spills at 24 accumulators); "+v" keeps it in place.
inline __m512i dpbusd(__m512i acc, __m512i u8, __m512i s8) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));
  return acc;
}

inline __m512i broadcast4(const uint8_t* p) {
  int32_t x;
  std::memcpy(&x, p, 4);
  return _mm512_set1_epi32(x);
}

template <class Dec, int R>
inline void step(const uint8_t* a, int64_t lda, const uint8_t* wq, int32_t q, __m512i (&acc)[R][2]) {
  __m512i b0, b1;
  Dec::decode(wq, b0, b1);
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    const __m512i av = broadcast4(a + r * lda + 4 * q);
    acc[r][0] = dpbusd(acc[r][0], av, b0);
    acc[r][1] = dpbusd(acc[r][1], av, b1);
  }
}

// sum over quads [q0, q1) (q1 - q0 <= kChunkQuads) of x * w, exact (the scale shifted out).
template <class Dec, int R, int S>
inline void chunk_tile(const uint8_t* a, int64_t lda, const uint8_t* w, int32_t q0, int32_t q1, __m512i (&out)[R][2]) {
  __m512i acc[S][R][2];
#pragma GCC unroll 4
  for (int s = 0; s < S; ++s)
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) acc[s][r][0] = acc[s][r][1] = _mm512_setzero_si512();
  int32_t q = q0;
  const uint8_t* wq = w + static_cast<int64_t>(q0) * Dec::kQuadBytes;
  for (; q + S <= q1; q += S, wq += S * Dec::kQuadBytes)
#pragma GCC unroll 4
    for (int s = 0; s < S; ++s) step<Dec, R>(a, lda, wq + s * Dec::kQuadBytes, q + s, acc[s]);
  for (; q < q1; ++q, wq += Dec::kQuadBytes) step<Dec, R>(a, lda, wq, q, acc[0]);
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
    for (int h = 0; h < 2; ++h) {
      __m512i v = acc[0][r][h];
#pragma GCC unroll 4
      for (int s = 1; s < S; ++s) v = _mm512_add_epi32(v, acc[s][r][h]);
      out[r][h] = Dec::kScaleShift ? _mm512_srai_epi32(v, Dec::kScaleShift) : v;
    }
}

// K longer than one chunk (> 32768): chunk sums added in memory with int32 wrap-around.
template <class Dec, int R, int S>
[[gnu::noinline]] void long_tile(const uint8_t* a, int64_t lda, const uint8_t* w, int32_t quads, __m512i (&out)[R][2]) {
  alignas(64) int32_t total[R][2][16] = {};
  for (int32_t q0 = 0; q0 < quads; q0 += kChunkQuads) {
    __m512i part[R][2];
    chunk_tile<Dec, R, S>(a, lda, w, q0, q0 + kChunkQuads < quads ? q0 + kChunkQuads : quads, part);
    for (int r = 0; r < R; ++r)
      for (int h = 0; h < 2; ++h)
        _mm512_store_si512(total[r][h], _mm512_add_epi32(_mm512_load_si512(total[r][h]), part[r][h]));
  }
  for (int r = 0; r < R; ++r)
    for (int h = 0; h < 2; ++h) out[r][h] = _mm512_load_si512(total[r][h]);
}

// Output stage of one R x 32 tile: acc + bias, with fused max pooling over groups of P rows
// (P = 1: none), requantized (or int32) through store16.
template <int R, int P>
inline void store_tile(const __m512i (&acc)[R][2], int64_t m0, int32_t n0, int32_t cols, const GemmOutput& out,
                       const Requant16* rq, const OutputConsts& c) {
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const int32_t hc = cols - 16 * h;
    if (hc <= 0) continue;
    const __m512i bias = _mm512_maskz_loadu_epi32(column_mask(hc), out.bias + n0 + 16 * h);
#pragma GCC unroll 12
    for (int r0 = 0; r0 < R; r0 += P) {
      __m512i v = _mm512_add_epi32(acc[r0][h], bias);
#pragma GCC unroll 4
      for (int r = r0 + 1; r < r0 + P; ++r) v = _mm512_max_epi32(v, _mm512_add_epi32(acc[r][h], bias));
      store16(v, (m0 + r0) / P, n0 + 16 * h, hc, out, rq[h], c);
    }
  }
}

// One R x 32 tile: rows [m0, m0 + R) of A times block b, stored through the output stage.
// Not inlined: inside the caller GCC keeps the caller's values in zmm registers and then spills the
// decoded weights of the inner loop (measured: the int8 kernel ran at half speed).
template <class Dec, int R, int S>
[[gnu::noinline]] void tile(const uint8_t* A, int64_t lda, int64_t m0, const uint8_t* wb, int32_t quads, int32_t n0,
                 int32_t cols, const GemmOutput& out, const Requant16* rq, const OutputConsts& c) {
  __m512i acc[R][2];
  const uint8_t* a = A + m0 * lda;
  if (Dec::kScaleShift == 0 || quads <= kChunkQuads) {
    chunk_tile<Dec, R, S>(a, lda, wb, 0, quads, acc);
  } else {
    long_tile<Dec, R, S>(a, lda, wb, quads, acc);
  }
  // R and m0 are multiples of pool_rows; the pool size is a template argument so that the
  // accumulators stay in registers (a run-time loop over pool groups spilled all 24 of them).
  switch (out.pool_rows) {
    case 1: store_tile<R, 1>(acc, m0, n0, cols, out, rq, c); break;
    case 2: if constexpr (R % 2 == 0) store_tile<R, 2>(acc, m0, n0, cols, out, rq, c); break;
    default: if constexpr (R % 4 == 0) store_tile<R, 4>(acc, m0, n0, cols, out, rq, c); break;
  }
}

template <class Dec>
void gemm_u8(int64_t M, int32_t N, int32_t K, const void* A_, int64_t lda, const uint8_t* packed, const GemmOutput& out) {
  constexpr int32_t kBlocksPerPass = 16;  // requantization parameters of 512 columns at a time
  const uint8_t* A = static_cast<const uint8_t*>(A_);
  const int32_t quads = quads_of(K);
  const int64_t block_bytes = static_cast<int64_t>(quads) * Dec::kQuadBytes;
  const int32_t blocks = (N + kNR - 1) / kNR;
  const OutputConsts c(out);
  Requant16 rq[kBlocksPerPass][2];
  for (int32_t bc = 0; bc < blocks; bc += kBlocksPerPass) {
    const int32_t bend = blocks < bc + kBlocksPerPass ? blocks : bc + kBlocksPerPass;
    for (int32_t b = bc; b < bend && out.y_i32 == nullptr; ++b) {
      const int32_t cols = N - b * kNR < kNR ? N - b * kNR : kNR;
      rq[b - bc][0] = requant_params(out, b * kNR, cols < 16 ? cols : 16);
      rq[b - bc][1] = requant_params(out, b * kNR + 16, cols - 16);
    }
    for (int64_t m0 = 0; m0 < M;) {
      const int64_t left = M - m0;
      // 12-row tiles, then the remainder as 8 + 4 + 2 + 1 rows: when M is a multiple of pool_rows
      // (1, 2 or 4) so is every tile height and start.
      const int rows = left >= 12 ? 12 : left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
      for (int32_t b = bc; b < bend; ++b) {
        const uint8_t* wb = packed + b * block_bytes;
        const int32_t n0 = b * kNR, cols = N - n0 < kNR ? N - n0 : kNR;
        const Requant16* r = rq[b - bc];
        switch (rows) {
          case 12: tile<Dec, 12, 1>(A, lda, m0, wb, quads, n0, cols, out, r, c); break;
          case 8: tile<Dec, 8, 1>(A, lda, m0, wb, quads, n0, cols, out, r, c); break;
          case 4: tile<Dec, 4, 1>(A, lda, m0, wb, quads, n0, cols, out, r, c); break;
          case 2: tile<Dec, 2, 2>(A, lda, m0, wb, quads, n0, cols, out, r, c); break;
          default: tile<Dec, 1, 4>(A, lda, m0, wb, quads, n0, cols, out, r, c); break;
        }
      }
      m0 += rows;
    }
  }
}

constexpr quant::Grid kInt = quant::Grid::Integer;
constexpr quant::Grid kOdd = quant::Grid::Odd;

}  // namespace

// The kernels (gemm_kernels.h): external symbols named as their configs.
LOWBIT_DEFINE_GEMM_KERNEL(u8_w8_gemm_fxp_12x32__avx512vnni, gemm_u8<W8>)
LOWBIT_DEFINE_GEMM_KERNEL(u8_w4_gemm_fxp_12x32__avx512vnni, gemm_u8<W4<false>>)
LOWBIT_DEFINE_GEMM_KERNEL(u8_w2_gemm_fxp_12x32__avx512vnni, gemm_u8<W2<false>>)
LOWBIT_DEFINE_GEMM_KERNEL(u8_w4odd_gemm_fxp_12x32__avx512vnni, gemm_u8<W4<true>>)
LOWBIT_DEFINE_GEMM_KERNEL(u8_w2odd_gemm_fxp_12x32__avx512vnni, gemm_u8<W2<true>>)
LOWBIT_DEFINE_GEMM_KERNEL(u8_w1odd_gemm_fxp_12x32__avx512vnni, gemm_u8<W1Odd>)

namespace {

#define LOWBIT_VNNI_CONFIG(kernel, bits, grid, Dec) \
  {LOWBIT_KERNEL_NAME(kernel), Isa::Avx512Vnni, bits, grid, GemmInput::U8, 4, kMR, kNR, pack_weights<Dec>, kernel, nullptr, 4}

const GemmConfig kConfigs[] = {
    LOWBIT_VNNI_CONFIG(u8_w8_gemm_fxp_12x32__avx512vnni, 8, kInt, W8),
    LOWBIT_VNNI_CONFIG(u8_w4_gemm_fxp_12x32__avx512vnni, 4, kInt, W4<false>),
    LOWBIT_VNNI_CONFIG(u8_w2_gemm_fxp_12x32__avx512vnni, 2, kInt, W2<false>),
    LOWBIT_VNNI_CONFIG(u8_w4odd_gemm_fxp_12x32__avx512vnni, 4, kOdd, W4<true>),
    LOWBIT_VNNI_CONFIG(u8_w2odd_gemm_fxp_12x32__avx512vnni, 2, kOdd, W2<true>),
    LOWBIT_VNNI_CONFIG(u8_w1odd_gemm_fxp_12x32__avx512vnni, 1, kOdd, W1Odd),
};

#undef LOWBIT_VNNI_CONFIG

}  // namespace

const GemmConfig* gemm_configs_u8_avx512vnni(int* count) {
  *count = static_cast<int>(sizeof(kConfigs) / sizeof(kConfigs[0]));
  return kConfigs;
}

}  // namespace lowbit::runtime
