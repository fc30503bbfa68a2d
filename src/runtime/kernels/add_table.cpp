#include "runtime/kernels/add_kernels.h"

namespace lowbit::runtime {

void u8_add_lut64k__portable(const uint8_t* table, const uint8_t* a, const uint8_t* b, int64_t n, uint8_t* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = table[(static_cast<uint32_t>(a[i]) << 8) | b[i]];
}

}  // namespace lowbit::runtime
