// im2col row builders for the uint8-input GEMM kernels.
#pragma once
#include <cstdint>

namespace lowbit::runtime {

// Bytes a caller must allow past the end of the source and the destination of u8_im2col_gather_32b__avx2.
constexpr int64_t kGatherSlack = 32;

// Row r of dst (stride Kp bytes) = `runs` runs of run_len bytes, run j read from
// src + offsets[r] + j * run_stride, placed back to back (runs * run_len = K), then zeros up to Kp.
// Copies whole 32-byte blocks: reads and writes up to 31 bytes past a run (kGatherSlack); what it
// writes past a run is overwritten by the next run or row or zeroed, so rows must be built in order.
void u8_im2col_gather_32b__avx2(const uint8_t* src, const int64_t* offsets, int64_t rows, int32_t runs,
                                int64_t run_stride, int32_t run_len, int32_t K, int32_t Kp, uint8_t* dst);

// Interleaves `rows` (1..4) byte rows of n >= 16 bytes into n 4-byte columns: out[4 w + j] = row j's
// byte w (0 for j >= rows). The stacked-rows image of a 1-channel conv (stacks_rows in session.cpp).
// Reads and writes nothing past the n bytes / columns.
void u8_stack_rows_c1_16x__avx2(const uint8_t* const* row, int32_t rows, int64_t n, uint8_t* out);
// The same on NEON (aarch64 builds): one ST4 per 16 columns.
void u8_stack_rows_c1_16x__neon(const uint8_t* const* row, int32_t rows, int64_t n, uint8_t* out);

}  // namespace lowbit::runtime
