// Optimized pooling kernels (NHWC, vectorized over channels); bit-exact with ref::max_pool.
#pragma once
#include <cstdint>

#include "runtime/model.h"

namespace lowbit::runtime {

// Same contract as ref::max_pool.
void u8_maxpool_32c__avx2(const Op& op, const uint8_t* x, int64_t batch, ValueShape in, ValueShape out, uint8_t* y);
// The same on NEON (aarch64 builds), 16 channels per vector.
void u8_maxpool_16c__neon(const Op& op, const uint8_t* x, int64_t batch, ValueShape in, ValueShape out, uint8_t* y);

}  // namespace lowbit::runtime
