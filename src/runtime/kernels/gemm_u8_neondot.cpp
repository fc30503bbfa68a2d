// NEON dot-product (Armv8.2 DotProd: SDOT) GEMM kernel over raw uint8 activations and weights whose
// values fit in int8: u8_w8_gemm_fxp_8x8__neondot (Cortex-A55/A76/A78, Neoverse N1/V1 and later).
//
// The U8-input contract (gemm_config.h): A holds raw x (conv padding = zero point) and the caller's
// bias holds -z_x * sum_k w[n][k] (fold_zero_point), so the kernel must produce sum_k x * w exactly.
// SDOT multiplies int8 by int8 and UDOT uint8 by uint8; neither takes x in [0, 255] with signed w.
// So the kernel feeds SDOT x - 128 (x XOR 0x80 read as int8, in [-128, 127]) and adds the
// difference back:  sum_k x * w = sum_k (x - 128) * w + 128 * sum_k w.
// 128 * sum_k w[n][k] is computed once by the packing function and stored at the head of each
// block (int32, wrapping), and the accumulators start from it, so the caller's bias stays what
// fold_zero_point makes for every U8 kernel. Padding k (A zero up to the multiple of 4, i.e.
// x - 128 = -128 there) meets zero weights. SDOT adds its four int8 x int8 products to an int32
// lane with wrap-around and no intermediate saturation, so every sum is the reference's modulo 2^32.
// (Widening to int16 instead would need twice the instructions: see gemm_s16_neon.cpp.)
//
// Tile: 8 rows x 8 columns = 16 int32x4 accumulators. Per group of 4 quads (16 k): one 16-byte
// load per row (its four 32-bit lanes are the four quads), and per quad two weight vectors (4
// columns x 4 k each); SDOT by element (vdotq_laneq_s32) picks the quad's lane of the row: 16 SDOT
// of 16 MAC per quad = 256 MAC. A trailing 1..3 quads are loaded 4 bytes at a time.
//
// Packed layout, per block of 8 columns: 8 int32 (128 * sum_k w, little-endian), then per quad
// 32 bytes: column c's 4 k at bytes 4c .. 4c + 3 (zero where n >= N or k >= K); then 32 bytes of
// slack after the last block.
#include <arm_neon.h>

#include <cstring>
#include <vector>

#include "runtime/kernels/gemm_config.h"
#include "runtime/kernels/gemm_kernels.h"
#include "runtime/kernels/gemm_output_neon.h"

namespace lowbit::runtime {
namespace {

using namespace neon;

constexpr int kHeaderBytes = kNR * 4;
constexpr int kQuadBytes = 4 * kNR;

inline int32_t quads_of(int32_t K) { return (K + 3) / 4; }

std::vector<uint8_t> pack_w8(const int32_t* w, int32_t N, int32_t K) {
  const int32_t quads = quads_of(K), blocks = (N + kNR - 1) / kNR;
  const size_t block_bytes = kHeaderBytes + static_cast<size_t>(quads) * kQuadBytes;
  std::vector<uint8_t> packed(blocks * block_bytes + 32, 0);
  for (int32_t b = 0; b < blocks; ++b) {
    uint8_t* block = packed.data() + b * block_bytes;
    for (int32_t c = 0; c < kNR && b * kNR + c < N; ++c) {
      const int32_t* wn = w + static_cast<size_t>(b * kNR + c) * K;
      uint32_t sum = 0;  // wrapping, as the accumulators
      for (int32_t k = 0; k < K; ++k) {
        sum += static_cast<uint32_t>(wn[k]);
        block[kHeaderBytes + (k / 4) * kQuadBytes + 4 * c + k % 4] = static_cast<uint8_t>(static_cast<int8_t>(wn[k]));
      }
      const uint32_t correction = sum * 128u;
      std::memcpy(block + 4 * c, &correction, 4);
    }
  }
  return packed;
}

// x - 128 as int8 for 16 bytes of A.
inline int8x16_t load16_offset(const uint8_t* p) {
  return vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p), vdupq_n_u8(0x80)));
}
// The same for one quad (4 bytes) in lane 0.
inline int8x16_t load4_offset(const uint8_t* p) {
  uint32_t q;
  std::memcpy(&q, p, 4);
  return vreinterpretq_s8_u8(veorq_u8(vreinterpretq_u8_u32(vdupq_n_u32(q)), vdupq_n_u8(0x80)));
}

// acc[r] += the quad in lane L of x[r] times the quad's two weight vectors (columns 0..3, 4..7).
template <int R, int L>
inline void quad_step(const int8_t* wq, const int8x16_t (&x)[R], int32x4_t (&acc)[R][2]) {
  const int8x16_t w0 = vld1q_s8(wq), w1 = vld1q_s8(wq + 16);
  for (int r = 0; r < R; ++r) {
    acc[r][0] = vdotq_laneq_s32(acc[r][0], w0, x[r], L);
    acc[r][1] = vdotq_laneq_s32(acc[r][1], w1, x[r], L);
  }
}

// One R x 8 tile over all quads: a0 points at the tile's first row of A, block at the packed block.
template <int R>
inline void tile(const uint8_t* a0, int64_t lda, const uint8_t* block, int32_t quads, int32x4_t (&acc)[R][2]) {
  int32_t head[kNR];
  std::memcpy(head, block, sizeof(head));  // 128 * sum_k w per column
  const int32x4_t c0 = vld1q_s32(head), c1 = vld1q_s32(head + 4);
  for (int r = 0; r < R; ++r) {
    acc[r][0] = c0;
    acc[r][1] = c1;
  }
  const int8_t* w = reinterpret_cast<const int8_t*>(block + kHeaderBytes);
  int32_t q = 0;
  for (; q + 4 <= quads; q += 4, w += 4 * kQuadBytes) {
    int8x16_t x[R];
    for (int r = 0; r < R; ++r) x[r] = load16_offset(a0 + r * lda + 4 * q);
    quad_step<R, 0>(w, x, acc);
    quad_step<R, 1>(w + kQuadBytes, x, acc);
    quad_step<R, 2>(w + 2 * kQuadBytes, x, acc);
    quad_step<R, 3>(w + 3 * kQuadBytes, x, acc);
  }
  for (; q < quads; ++q, w += kQuadBytes) {
    int8x16_t x[R];
    for (int r = 0; r < R; ++r) x[r] = load4_offset(a0 + r * lda + 4 * q);
    quad_step<R, 0>(w, x, acc);
  }
}

template <int R>
void tile_and_store(const uint8_t* A, int64_t lda, int64_t m0, const uint8_t* block, int32_t quads, int32_t n0,
                    int32_t cols, const GemmOutput& out) {
  int32x4_t acc[R][2];
  tile<R>(A + m0 * lda, lda, block, quads, acc);
  store_tile<R>(acc, m0, n0, cols, out);
}

void gemm_u8_w8(int64_t M, int32_t N, int32_t K, const void* A_, int64_t lda, const uint8_t* packed,
                const GemmOutput& out) {
  const uint8_t* A = static_cast<const uint8_t*>(A_);
  const int32_t quads = quads_of(K);
  const int64_t block_bytes = kHeaderBytes + int64_t{quads} * kQuadBytes;
  const int32_t blocks = (N + kNR - 1) / kNR;
  for (int64_t m0 = 0; m0 < M;) {
    const int rows = tile_rows(M - m0);
    for (int32_t b = 0; b < blocks; ++b) {
      const uint8_t* block = packed + b * block_bytes;
      const int32_t n0 = b * kNR, cols = N - n0 < kNR ? N - n0 : kNR;
      switch (rows) {
        case 8: tile_and_store<8>(A, lda, m0, block, quads, n0, cols, out); break;
        case 4: tile_and_store<4>(A, lda, m0, block, quads, n0, cols, out); break;
        case 2: tile_and_store<2>(A, lda, m0, block, quads, n0, cols, out); break;
        default: tile_and_store<1>(A, lda, m0, block, quads, n0, cols, out); break;
      }
    }
    m0 += rows;
  }
}

}  // namespace

// The kernel (gemm_kernels.h): an external symbol named as its config.
LOWBIT_DEFINE_GEMM_KERNEL(u8_w8_gemm_fxp_8x8__neondot, gemm_u8_w8)

namespace {

const GemmConfig kConfigs[] = {
    {LOWBIT_KERNEL_NAME(u8_w8_gemm_fxp_8x8__neondot), Isa::NeonDot, 8, quant::Grid::Integer, GemmInput::U8, 4, kMR, kNR, pack_w8,
     u8_w8_gemm_fxp_8x8__neondot, nullptr, 4},
};

}  // namespace

const GemmConfig* gemm_configs_neondot(int* count) {
  *count = static_cast<int>(sizeof(kConfigs) / sizeof(kConfigs[0]));
  return kConfigs;
}

}  // namespace lowbit::runtime
