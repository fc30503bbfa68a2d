// Plain NEON (Armv8-A Advanced SIMD) GEMM kernel over int16 activations (x - zero_point) and
// weights whose values fit in int8: s16_w8_gemm_fxp_8x8__neon, the fallback for aarch64 CPUs
// without the dot-product instructions (Cortex-A53/A55/A72/A73 class).
//
// Why exact: SMLAL / SMLAL2 by element (vmlal_lane_s16, vmlal_high_lane_s16) multiply int16 by
// int16 into a full int32 product and add it to an int32 lane with wrap-around, i.e. the
// reference's arithmetic. |x - z_x| <= 255 and |w| <= 128, so the products are exact anyway; there
// is no intermediate narrowing or saturation anywhere.
//
// Tile: 8 rows x 8 columns = 16 int32x4 accumulators. Per group of 4 k: one 4 x int16 load per
// row (its lanes are the four k), 32 weight bytes (4 k x 8 columns) widened to four int16x8, then
// per row and k one SMLAL (columns 0..3) and one SMLAL2 (columns 4..7): 64 instructions of 4 MAC
// each per 4 k, 256 MAC. A rows are padded with zeros to a multiple of 4 k (k_align = 4).
//
// Packed layout, per block of 8 columns: for each k (K rounded up to 4), the 8 columns' int8 values
// (zero where n >= N or k >= K); then 32 bytes of slack after the last block.
#include <arm_neon.h>

#include <vector>

#include "runtime/kernels/gemm_config.h"
#include "runtime/kernels/gemm_kernels.h"
#include "runtime/kernels/gemm_output_neon.h"

namespace lowbit::runtime {
namespace {

using namespace neon;

inline int32_t round_up4(int32_t k) { return (k + 3) & ~3; }

std::vector<uint8_t> pack_w8(const int32_t* w, int32_t N, int32_t K) {
  const int32_t K4 = round_up4(K), blocks = (N + kNR - 1) / kNR;
  std::vector<uint8_t> packed(static_cast<size_t>(blocks) * K4 * kNR + 32, 0);
  for (int32_t b = 0; b < blocks; ++b)
    for (int32_t k = 0; k < K; ++k)
      for (int32_t c = 0; c < kNR && b * kNR + c < N; ++c)
        packed[(static_cast<size_t>(b) * K4 + k) * kNR + c] =
            static_cast<uint8_t>(static_cast<int8_t>(w[static_cast<size_t>(b * kNR + c) * K + k]));
  return packed;
}

// One R x 8 tile over all k: a0 points at the tile's first row of A, w at the block's packed weights.
template <int R>
inline void tile(const int16_t* a0, int64_t lda, const int8_t* w, int32_t groups, int32x4_t (&acc)[R][2]) {
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = vdupq_n_s32(0);
  for (int32_t g = 0; g < groups; ++g, w += 4 * kNR) {
    const int8x16_t w01 = vld1q_s8(w), w23 = vld1q_s8(w + 16);
    const int16x8_t k0 = vmovl_s8(vget_low_s8(w01)), k1 = vmovl_high_s8(w01);
    const int16x8_t k2 = vmovl_s8(vget_low_s8(w23)), k3 = vmovl_high_s8(w23);
    for (int r = 0; r < R; ++r) {
      const int16x4_t x = vld1_s16(a0 + r * lda + 4 * g);  // k = 4g .. 4g + 3 of row r
      acc[r][0] = vmlal_lane_s16(acc[r][0], vget_low_s16(k0), x, 0);
      acc[r][1] = vmlal_high_lane_s16(acc[r][1], k0, x, 0);
      acc[r][0] = vmlal_lane_s16(acc[r][0], vget_low_s16(k1), x, 1);
      acc[r][1] = vmlal_high_lane_s16(acc[r][1], k1, x, 1);
      acc[r][0] = vmlal_lane_s16(acc[r][0], vget_low_s16(k2), x, 2);
      acc[r][1] = vmlal_high_lane_s16(acc[r][1], k2, x, 2);
      acc[r][0] = vmlal_lane_s16(acc[r][0], vget_low_s16(k3), x, 3);
      acc[r][1] = vmlal_high_lane_s16(acc[r][1], k3, x, 3);
    }
  }
}

template <int R>
void tile_and_store(const int16_t* A, int64_t lda, int64_t m0, const int8_t* wb, int32_t groups, int32_t n0,
                    int32_t cols, const GemmOutput& out) {
  int32x4_t acc[R][2];
  tile<R>(A + m0 * lda, lda, wb, groups, acc);
  store_tile<R>(acc, m0, n0, cols, out);
}

void gemm_s16_w8(int64_t M, int32_t N, int32_t K, const void* A_, int64_t lda, const uint8_t* packed,
                 const GemmOutput& out) {
  const int16_t* A = static_cast<const int16_t*>(A_);
  const int32_t groups = round_up4(K) / 4;
  const int64_t block_bytes = int64_t{groups} * 4 * kNR;
  const int32_t blocks = (N + kNR - 1) / kNR;
  for (int64_t m0 = 0; m0 < M;) {
    const int rows = tile_rows(M - m0);
    for (int32_t b = 0; b < blocks; ++b) {
      const int8_t* wb = reinterpret_cast<const int8_t*>(packed + b * block_bytes);
      const int32_t n0 = b * kNR, cols = N - n0 < kNR ? N - n0 : kNR;
      switch (rows) {
        case 8: tile_and_store<8>(A, lda, m0, wb, groups, n0, cols, out); break;
        case 4: tile_and_store<4>(A, lda, m0, wb, groups, n0, cols, out); break;
        case 2: tile_and_store<2>(A, lda, m0, wb, groups, n0, cols, out); break;
        default: tile_and_store<1>(A, lda, m0, wb, groups, n0, cols, out); break;
      }
    }
    m0 += rows;
  }
}

// out[i] = x[i] - zero_point, 16 per step.
void widen_u8_to_s16(const uint8_t* x, int64_t n, int32_t zero_point, int16_t* out) {
  const int16x8_t z = vdupq_n_s16(static_cast<int16_t>(zero_point));
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const uint8x16_t v = vld1q_u8(x + i);
    vst1q_s16(out + i, vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(v))), z));
    vst1q_s16(out + i + 8, vsubq_s16(vreinterpretq_s16_u16(vmovl_high_u8(v)), z));
  }
  for (; i < n; ++i) out[i] = static_cast<int16_t>(x[i] - zero_point);
}

}  // namespace

// The kernel (gemm_kernels.h): an external symbol named as its config.
LOWBIT_DEFINE_GEMM_KERNEL(s16_w8_gemm_fxp_8x8__neon, gemm_s16_w8)

namespace {

const GemmConfig kConfigs[] = {
    {LOWBIT_KERNEL_NAME(s16_w8_gemm_fxp_8x8__neon), Isa::Neon, 8, quant::Grid::Integer, GemmInput::S16, 4, kMR, kNR, pack_w8,
     s16_w8_gemm_fxp_8x8__neon, widen_u8_to_s16, 4},
};

}  // namespace

const GemmConfig* gemm_configs_neon(int* count) {
  *count = static_cast<int>(sizeof(kConfigs) / sizeof(kConfigs[0]));
  return kConfigs;
}

}  // namespace lowbit::runtime
