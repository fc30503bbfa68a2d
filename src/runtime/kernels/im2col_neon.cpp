#include <arm_neon.h>

#include "runtime/kernels/im2col_kernels.h"

namespace lowbit::runtime {

// One ST4 interleaves 16 columns of the four rows; the last step is moved back to end at n (it
// overlaps the previous one and rewrites the same bytes), so nothing past the row is read or written.
void u8_stack_rows_c1_16x__neon(const uint8_t* const* row, int32_t rows, int64_t n, uint8_t* out) {
  for (int64_t w0 = 0; w0 < n; w0 += 16) {
    const int64_t w = w0 + 16 <= n ? w0 : n - 16;
    uint8x16x4_t v;
    v.val[0] = vld1q_u8(row[0] + w);
    v.val[1] = rows > 1 ? vld1q_u8(row[1] + w) : vdupq_n_u8(0);
    v.val[2] = rows > 2 ? vld1q_u8(row[2] + w) : vdupq_n_u8(0);
    v.val[3] = rows > 3 ? vld1q_u8(row[3] + w) : vdupq_n_u8(0);
    vst4q_u8(out + 4 * w, v);
  }
}

}  // namespace lowbit::runtime
