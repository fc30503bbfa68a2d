// Depthwise convolution kernels; bit-exact with ref::conv2d for groups = in_channels = out_channels
// (any stride, padding and dilation).
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/kernels/gemm_config.h"
#include "runtime/model.h"

namespace lowbit::runtime {

// w: pairs along each kernel row, [KH][ceil(KW / 2)][C], each int32 holding the int16 weights of
// taps (kh, 2j) (low half) and (kh, 2j + 1) (high half; 0 past the row's end), made by
// pack_depthwise_weights; o: bias (bias_q), multipliers or y_i32, ldy = C, y pointers at item 0 of
// `x`'s batch. Padding positions read the zero point zx (they add nothing).
std::vector<int32_t> pack_depthwise_weights(const Op& op);  // depthwise_pack.cpp (every architecture)

// Two int16 values in one int32, lo in the low half: the operand layout of a vpmaddwd pair.
inline int32_t pack_int16_pair(int32_t lo, int32_t hi) {
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint16_t>(hi)) << 16 | static_cast<uint16_t>(lo));
}
void u8_dwconv_s32_fxp_8c__avx2(const Op& op, const int32_t* w, const uint8_t* x, int64_t batch, ValueShape in,
                                int32_t zx, ValueShape out, const GemmOutput& o);

}  // namespace lowbit::runtime
