// The non-GEMM kernels of an ISA level: one config record per kernel family (the GemmConfig idea
// for the other families), gathered in one row per level. An op takes its family's record from its
// level's row when it is prepared and calls through it, so no op asks which instruction set runs.
//
// Every entry is made with LOWBIT_KERNEL(fn): its name is the stringified symbol of the function it
// points to, so the names Session::kernel_names() prints are the real symbols and cannot drift.
// Optimized kernels follow the grammar of gemm_config.h (<input>_<op>_..._<tile>__<isa>); the
// reference kernels are named by their qualified name (ref::max_pool, ref_kernels.h). A kernel in
// plain C++ that every optimized level shares ends in __portable (u8_add_lut64k__portable).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/cpu_features.h"
#include "runtime/kernels/gemm_config.h"
#include "runtime/model.h"

// {"fn", fn}: a kernel record whose name is the function's own symbol.
#define LOWBIT_KERNEL(fn) \
  { LOWBIT_KERNEL_NAME(fn), fn }

namespace lowbit::runtime {

template <class Fn>
struct Kernel {
  const char* name = nullptr;
  Fn fn = nullptr;  // nullptr where the level has no kernel of this family (see the family's record)
};

// y[i * y_stride] = quant::quantize_integer(x[i], scale, zero_point, qmin, qmax) for i < n, exactly.
using QuantizeInputFn = void (*)(const float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin, int32_t qmax,
                                 uint8_t* y, int64_t y_stride);
// The contracts of ref::max_pool, ref::avg_pool, ref::add and ref::flatten (ref_kernels.h).
using MaxPoolFn = void (*)(const Op& op, const uint8_t* x, int64_t batch, ValueShape in, ValueShape out, uint8_t* y);
using AvgPoolFn = void (*)(const Op& op, const uint8_t* x, int64_t batch, ValueShape in, const ActQParams& in_q,
                           ValueShape out, uint8_t* y);
using AddFn = void (*)(const Op& op, const uint8_t* a, const ActQParams& qa, const uint8_t* b, const ActQParams& qb,
                       int64_t n, uint8_t* y);
using FlattenFn = void (*)(const uint8_t* x, int64_t batch, ValueShape in, uint8_t* y);
// The contract of ref::lookup: y[i] = table[x[i]] for i < n.
using LookupFn = void (*)(const uint8_t* table, const uint8_t* x, int64_t n, uint8_t* y);
// y[i] = table[a[i] * 256 + b[i]] for i < n: a residual add through the op's 65,536-entry table of
// quant::requantize_add, made when the op is prepared (add_kernels.h).
using AddTableFn = void (*)(const uint8_t* table, const uint8_t* a, const uint8_t* b, int64_t n, uint8_t* y);
// The contracts of ref::conv2d and ref::linear: conv / linear layers without a GEMM kernel.
using Conv2dFn = void (*)(const Op& op, const uint8_t* x, int64_t batch, ValueShape in, int32_t zx, ValueShape out,
                          uint8_t* y_u8, int32_t* y_i32);
using LinearFn = void (*)(const Op& op, const uint8_t* x, int64_t batch, int32_t zx, uint8_t* y_u8, int32_t* y_i32);
// Depthwise conv (groups = in_channels = out_channels) on weights packed by pack_depthwise_weights
// (depthwise_kernels.h).
using DepthwiseFn = void (*)(const Op& op, const int32_t* w, const uint8_t* x, int64_t batch, ValueShape in, int32_t zx,
                             ValueShape out, const GemmOutput& o);
// im2col rows of a uint8 conv with groups == 1 (contract and slack in im2col_kernels.h).
using GatherRowsFn = void (*)(const uint8_t* src, const int64_t* offsets, int64_t rows, int32_t runs,
                              int64_t run_stride, int32_t run_len, int32_t K, int32_t Kp, uint8_t* dst);
// Stacked-rows image of a 1-channel conv, rows of n >= 16 bytes (im2col_kernels.h).
using StackRowsC1Fn = void (*)(const uint8_t* const* row, int32_t rows, int64_t n, uint8_t* out);

// Input quantization (float NCHW -> uint8 NHWC codes); always set.
struct QuantizeConfig {
  Kernel<QuantizeInputFn> quantize_input;
};
// MaxPool2d, AvgPool2d and GlobalAvgPool; always set.
struct PoolConfig {
  Kernel<MaxPoolFn> max_pool;
  Kernel<AvgPoolFn> avg_pool;  // AvgPool2d and GlobalAvgPool
};
// Residual add; `add` always set. Where `table` is set, the op runs it instead on a table of all
// 256 x 256 input pairs (64 KiB per add op, built from the same quant::requantize_add, so exact).
struct AddConfig {
  Kernel<AddFn> add;
  Kernel<AddTableFn> table;
};
// Flatten to PyTorch's C-major order; always set (optimized levels usually fold it, flatten_op.h).
struct FlattenConfig {
  Kernel<FlattenFn> flatten;
};
// Element-wise table lookup (sigmoid, LeakyReLU, ... as 256 codes); always set. One load per
// element is already what any level would do, so every level shares ref::lookup.
struct LookupConfig {
  Kernel<LookupFn> lookup;
};
// Conv2d / Linear for layers no GEMM config covers (the reference level; grouped convs whose
// groups have fewer than 4 output channels); always set.
struct DirectConvConfig {
  Kernel<Conv2dFn> conv2d;
  Kernel<LinearFn> linear;
};
// Depthwise conv; depthwise.fn == nullptr: depthwise convs run as grouped convs.
struct DepthwiseConfig {
  Kernel<DepthwiseFn> depthwise;
};
// im2col row builders for uint8-input GEMMs; nullptr entries: the GEMM op's portable loops.
struct Im2colConfig {
  Kernel<GatherRowsFn> gather_rows;     // nullptr: runs copied in 16-byte blocks
  Kernel<StackRowsC1Fn> stack_rows_c1;  // nullptr: the stacked-rows image built with scalar code
};

// One row of the table: every non-GEMM kernel family of a level.
struct IsaKernels {
  Isa isa;          // the level whose instructions these kernels use
  bool split_work;  // false (the reference level, the specification): every op on the calling thread
  QuantizeConfig quantize;
  PoolConfig pool;
  AddConfig add;
  FlattenConfig flatten;
  LookupConfig lookup;
  DirectConvConfig direct_conv;
  DepthwiseConfig depthwise;
  Im2colConfig im2col;
};

// The row of `isa`; levels this build lacks get the reference row (callers check cpu_supports /
// require_isa first).
const IsaKernels& isa_kernels(Isa isa);

// Per-architecture rows, defined in the levels' own files (compiled for their architecture only).
const IsaKernels& isa_kernels_avx2();  // avx2 and avx512vnni
const IsaKernels& isa_kernels_neon();  // neon and neondot

// Every kernel name `isa` can report: its row's non-null entries and its GEMM configs (including
// those find_gemm_config falls back to), for tests and documentation.
std::vector<std::string> isa_kernel_names(Isa isa);

}  // namespace lowbit::runtime
