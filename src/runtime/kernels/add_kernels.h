// Residual add through a table: the output of an add depends only on its two uint8 inputs, so the
// op tabulates quant::requantize_add for all 65,536 pairs once (add_op.cpp) and the kernel looks
// them up: exact by construction, and free of the int64 product and rounding per element.
#pragma once
#include <cstdint>

namespace lowbit::runtime {

// The AddTableFn contract (isa_kernels.h); plain C++ (__portable), used by every optimized level.
void u8_add_lut64k__portable(const uint8_t* table, const uint8_t* a, const uint8_t* b, int64_t n, uint8_t* y);

}  // namespace lowbit::runtime
