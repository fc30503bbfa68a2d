// The non-GEMM kernels of an ISA level in one record (the GemmConfig idea for the other kernel
// families): a Session takes its level's record once when it is created and calls through it, so
// that no op has to ask which instruction set is running. Each name is the kernel's symbol name,
// following the grammar of gemm_config.h (<input>_..._<tile>__<isa>), or "ref" for the reference
// kernels of ref_kernels.h, and is what Session::kernel_names() reports.
#pragma once
#include <cstdint>

#include "runtime/cpu_features.h"
#include "runtime/kernels/gemm_config.h"
#include "runtime/model.h"

namespace lowbit::runtime {

template <class Fn>
struct Kernel {
  const char* name = nullptr;
  Fn fn = nullptr;  // nullptr where the level has no kernel of this family (see IsaKernels)
};

// y[i * y_stride] = quant::quantize_integer(x[i], scale, zero_point, qmin, qmax) for i < n, exactly.
using QuantizeInputFn = void (*)(const float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin, int32_t qmax,
                                 uint8_t* y, int64_t y_stride);
// ref::max_pool's contract.
using MaxPoolFn = void (*)(const Op& op, const uint8_t* x, int64_t batch, ValueShape in, ValueShape out, uint8_t* y);
// Depthwise conv (groups = in_channels = out_channels) on tap-major weight values [KH * KW][C]
// (depthwise_kernels.h).
using DepthwiseFn = void (*)(const Op& op, const int32_t* w, const uint8_t* x, int64_t batch, ValueShape in, int32_t zx,
                             ValueShape out, const GemmOutput& o);
// im2col rows of a uint8 conv with groups == 1 (contract and slack in im2col_kernels.h).
using GatherRowsFn = void (*)(const uint8_t* src, const int64_t* offsets, int64_t rows, int32_t runs,
                              int64_t run_stride, int32_t run_len, int32_t K, int32_t Kp, uint8_t* dst);
// Stacked-rows image of a 1-channel conv, rows of n >= 16 bytes (im2col_kernels.h).
using StackRowsC1Fn = void (*)(const uint8_t* const* row, int32_t rows, int64_t n, uint8_t* out);

struct IsaKernels {
  Isa isa;                                 // the level whose instructions these kernels use
  Kernel<QuantizeInputFn> quantize_input;  // always set
  Kernel<MaxPoolFn> max_pool;              // always set (unless fused into a conv's GEMM)
  Kernel<DepthwiseFn> depthwise;           // nullptr: depthwise convs run as grouped convs
  Kernel<GatherRowsFn> gather_rows;        // nullptr: the session copies each run in 16-byte blocks
  Kernel<StackRowsC1Fn> stack_rows_c1;     // nullptr: the session builds the image with scalar code
};

// The record of `isa`; levels this build lacks get the reference record (callers check
// cpu_supports / require_isa first).
const IsaKernels& isa_kernels(Isa isa);

// Per-architecture records, defined in the levels' own files (compiled for their architecture only).
const IsaKernels& isa_kernels_avx2();  // avx2 and avx512vnni
const IsaKernels& isa_kernels_neon();  // neon and neondot

}  // namespace lowbit::runtime
