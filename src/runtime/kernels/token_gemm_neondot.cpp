// Armv8.2 dot-product (SDOT) GEMM of kernels/token_gemm.h: s8_w8_gemm_grpacc_8x8__neondot.
//
// SDOT adds four int8 x int8 products to an int32 lane (no intermediate rounding or saturation),
// and both the per-token codes and the weights are signed int8, so, unlike the CNN's uint8 GEMM
// (gemm_u8_neondot.cpp) and the VNNI token GEMM, no offset and no correction term are needed:
// each lane is the reference's group sum exactly (it cannot wrap, token_gemm.h).
//
// Packed weights (s8_token_pack_8x4__neondot), per block of 8 output rows and group: kp / 4
// quads of 32 bytes, row r's 4 k at bytes 4r .. 4r + 3 (rows past `out` zero). Tile 8 tokens x 8
// rows: 16 int32x4 accumulators; per 4 quads one 16-byte activation load per token, and per quad
// two weight vectors (rows 0..3, 4..7) that SDOT-by-element (vdotq_laneq_s32) multiplies with the
// quad's lane of each token: 16 SDOT of 16 MAC per quad. Remainders: 4-, 2-, 1-token tiles; after
// each group the sums are stored to acc (the last block's rows past o_end are not stored).
// Epilogue and per-token quantizer: the plain NEON ones (token_gemm_neon.cpp).
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "runtime/kernels/token_gemm.h"

namespace lowbit::runtime {
namespace {

constexpr int32_t kRows = 8;  // rows per packed block

// a[r] += the quad in lane L of x[r] times the quad's rows 0..3 and 4..7.
template <int MR, int L>
inline void quad(const int8_t* wq, const int8x16_t (&x)[MR], int32x4_t (&a)[MR][2]) {
  const int8x16_t w0 = vld1q_s8(wq), w1 = vld1q_s8(wq + 16);
  for (int r = 0; r < MR; ++r) {
    a[r][0] = vdotq_laneq_s32(a[r][0], w0, x[r], L);
    a[r][1] = vdotq_laneq_s32(a[r][1], w1, x[r], L);
  }
}

template <int MR>
void tile(const int8_t* x, int64_t xrow, const int8_t* w, int32_t groups, int32_t kp, int32_t* acc,
          int64_t acc_stride, int32_t out, int32_t rows) {
  for (int32_t g = 0; g < groups; ++g) {
    const int8_t* wg = w + static_cast<size_t>(g) * kp * kRows;
    const int8_t* xg = x + int64_t{g} * kp;
    int32x4_t a[MR][2];
    for (int r = 0; r < MR; ++r) a[r][0] = a[r][1] = vdupq_n_s32(0);
    for (int32_t k = 0; k < kp; k += 16) {  // kp is a multiple of 32: whole groups of 4 quads
      int8x16_t xv[MR];
      for (int r = 0; r < MR; ++r) xv[r] = vld1q_s8(xg + r * xrow + k);
      const int8_t* wq = wg + static_cast<size_t>(k) * kRows;
      quad<MR, 0>(wq, xv, a);
      quad<MR, 1>(wq + 32, xv, a);
      quad<MR, 2>(wq + 64, xv, a);
      quad<MR, 3>(wq + 96, xv, a);
    }
    for (int r = 0; r < MR; ++r) {
      int32_t* ar = acc + r * acc_stride + int64_t{g} * out;
      if (rows == kRows) {
        vst1q_s32(ar, a[r][0]);
        vst1q_s32(ar + 4, a[r][1]);
      } else {
        int32_t tmp[kRows];
        vst1q_s32(tmp, a[r][0]);
        vst1q_s32(tmp + 4, a[r][1]);
        std::memcpy(ar, tmp, sizeof(int32_t) * rows);
      }
    }
  }
}

}  // namespace

size_t s8_token_packed_bytes_8x4__neondot(int32_t out, int32_t groups, int32_t kp) {
  return static_cast<size_t>((out + kRows - 1) / kRows) * groups * kp * kRows;
}

void s8_token_pack_8x4__neondot(const int8_t* rows, int32_t out, int32_t groups, int32_t kp, int8_t* packed) {
  const int64_t row = int64_t{groups} * kp;
  std::memset(packed, 0, s8_token_packed_bytes_8x4__neondot(out, groups, kp));
  for (int32_t o = 0; o < out; ++o)
    for (int32_t g = 0; g < groups; ++g) {
      int8_t* p = packed + (static_cast<size_t>(o / kRows) * groups + g) * kp * kRows;
      const int8_t* src = rows + o * row + int64_t{g} * kp;
      for (int32_t k = 0; k < kp; ++k) p[(k / 4) * 4 * kRows + (o % kRows) * 4 + k % 4] = src[k];
    }
}

void s8_w8_gemm_grpacc_8x8__neondot(int64_t tokens, int32_t o_begin, int32_t o_end, int32_t out, int32_t groups,
                                    int32_t kp, const int8_t* x, const int8_t* w, int32_t* acc, int64_t acc_stride) {
  const int64_t xrow = int64_t{groups} * kp;
  const size_t block_bytes = static_cast<size_t>(groups) * kp * kRows;
  for (int32_t o = o_begin; o < o_end; o += kRows) {  // o_begin is a multiple of 8
    const int8_t* wb = w + static_cast<size_t>(o / kRows) * block_bytes;
    const int32_t rows = std::min(kRows, o_end - o);
    int32_t* ao = acc + o;
    int64_t t = 0;
    for (; t + 8 <= tokens; t += 8) tile<8>(x + t * xrow, xrow, wb, groups, kp, ao + t * acc_stride, acc_stride, out, rows);
    if (t + 4 <= tokens) {
      tile<4>(x + t * xrow, xrow, wb, groups, kp, ao + t * acc_stride, acc_stride, out, rows);
      t += 4;
    }
    if (t + 2 <= tokens) {
      tile<2>(x + t * xrow, xrow, wb, groups, kp, ao + t * acc_stride, acc_stride, out, rows);
      t += 2;
    }
    if (t < tokens) tile<1>(x + t * xrow, xrow, wb, groups, kp, ao + t * acc_stride, acc_stride, out, rows);
  }
}

}  // namespace lowbit::runtime
