#include "runtime/ops/im2col.h"

namespace lowbit::runtime {

bool stacks_rows(const Op& op, const GemmConfig* config) {
  if (op.kind != OpKind::Conv2d || op.groups != 1 || config->input != GemmInput::U8 || config->k_align != 4) return false;
  if (op.dilation_h != 1 || op.dilation_w != 1) return false;  // a window's columns are not contiguous
  const int32_t col = op.in_channels * op.kernel_h, K = col * op.kernel_w;
  return col <= 4 && op.kernel_w <= 4 && 4 * op.kernel_w == (K + 3) / 4 * 4;
}

void stack_rows(const Op& op, const uint8_t* padded, int64_t pad_w, int32_t C, int32_t OH, StackRowsC1Fn stack_c1,
                uint8_t* out) {
  const int32_t col = C * op.kernel_h;
  for (int32_t oh = 0; oh < OH; ++oh) {
    const uint8_t* rows = padded + int64_t{oh} * op.stride_h * pad_w * C;
    uint8_t* t = out + int64_t{oh} * pad_w * 4;
    if (C == 1 && pad_w >= 16 && stack_c1 != nullptr) {
      const uint8_t* r[4] = {rows, rows, rows, rows};
      for (int32_t j = 1; j < op.kernel_h; ++j) r[j] = rows + j * pad_w;
      stack_c1(r, op.kernel_h, pad_w, t);
      continue;
    }
    if (C == 1) {  // whole 32-bit columns
      const uint8_t* r0 = rows;
      const uint8_t* r1 = rows + (op.kernel_h > 1 ? pad_w : 0);
      const uint8_t* r2 = rows + (op.kernel_h > 2 ? 2 * pad_w : 0);
      const uint8_t* r3 = rows + (op.kernel_h > 3 ? 3 * pad_w : 0);
      const uint32_t m1 = op.kernel_h > 1, m2 = op.kernel_h > 2, m3 = op.kernel_h > 3;
      for (int64_t w = 0; w < pad_w; ++w) {
        const uint32_t v = uint32_t{r0[w]} | (m1 * r1[w]) << 8 | (m2 * r2[w]) << 16 | (m3 * r3[w]) << 24;
        std::memcpy(t + 4 * w, &v, 4);
      }
      continue;
    }
    for (int64_t w = 0; w < pad_w; ++w)
      for (int32_t j = 0; j < 4; ++j)
        t[4 * w + j] = j < col ? rows[(j / C) * pad_w * C + w * C + j % C] : 0;
  }
}

}  // namespace lowbit::runtime
