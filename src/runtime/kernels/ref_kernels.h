// Scalar reference kernels: the executable specification of every op (docs/runtime.md).
// Activations are uint8 in NHWC order ([N, H, W, C]); an output layer writes int32 NHWC.
// Simple loops, no tricks; optimized kernels must reproduce them bit for bit.
// Accumulation is int32 with two's-complement wrap-around (computed on uint32 so that it is
// defined behaviour); the loader does not reject layers whose accumulators could wrap, and every
// kernel wraps the same way.
#pragma once
#include <cstdint>

#include "runtime/model.h"

namespace lowbit::runtime::ref {

// Input quantization: y[i * y_stride] = quant::quantize_integer(x[i], scale, zero_point, qmin, qmax).
void quantize_input(const float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin, int32_t qmax, uint8_t* y,
                    int64_t y_stride);
// Conv2d (any stride, padding, groups). Padding positions read the input zero point zx.
// y_u8 (hidden layer) or y_i32 (output layer) receives [N, OH, OW, O].
void conv2d(const Op& op, const uint8_t* x, int64_t batch, ValueShape in, int32_t zx, ValueShape out, uint8_t* y_u8,
            int32_t* y_i32);
// Linear over [N, I] -> [N, O].
void linear(const Op& op, const uint8_t* x, int64_t batch, int32_t zx, uint8_t* y_u8, int32_t* y_i32);
// MaxPool2d; padding positions are ignored (never the maximum).
void max_pool(const Op& op, const uint8_t* x, int64_t batch, ValueShape in, ValueShape out, uint8_t* y);
// AvgPool2d (count = number of non-padding elements) and GlobalAvgPool (out is [C, 1, 1]).
void avg_pool(const Op& op, const uint8_t* x, int64_t batch, ValueShape in, const ActQParams& in_q, ValueShape out,
              uint8_t* y);
// Residual add of two tensors of n elements per batch item.
void add(const Op& op, const uint8_t* a, const ActQParams& qa, const uint8_t* b, const ActQParams& qb, int64_t n,
         uint8_t* y);
// Flatten NHWC [N, H, W, C] to [N, C*H*W] in C-major order (index c*H*W + h*W + w).
void flatten(const uint8_t* x, int64_t batch, ValueShape in, uint8_t* y);
// Lookup: y[i] = table[x[i]] for i < n (table: 256 codes, Op::table).
void lookup(const uint8_t* table, const uint8_t* x, int64_t n, uint8_t* y);

}  // namespace lowbit::runtime::ref
