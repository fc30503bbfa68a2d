// Depthwise convolution kernels; bit-exact with ref::conv2d for groups = in_channels = out_channels.
#pragma once
#include <cstdint>

#include "runtime/kernels/gemm_config.h"
#include "runtime/model.h"

namespace lowbit::runtime {

// w: tap-major weight values [KH * KW][C]; o: bias (bias_q), multipliers or y_i32, ldy = C,
// y pointers at item 0 of `x`'s batch.
void u8_dwconv_s32_fxp_8c__avx2(const Op& op, const int32_t* w, const uint8_t* x, int64_t batch, ValueShape in,
                                int32_t zx, ValueShape out, const GemmOutput& o);

}  // namespace lowbit::runtime
