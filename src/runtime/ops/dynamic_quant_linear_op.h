// The integer projection of decoder models: per-token dynamic int8 activations (quant/per_token.h)
// times low-bit weights with float scales per (output row, group), integer accumulation per group
// (kernels/token_gemm.h), then float:
//
//   y[t, o] = s_x[t] * sum_g s_w[o, g] * (float)acc[t, o, g]
//
// summed over g in increasing order in float32 (the order is part of the op: every kernel level
// gives the same int32 acc and does the same float operations, so the same y). The weights are
// widened to int8 and packed for the level's kernel when the op is created. Projections that read
// the same input (q, k, v; gate, up) can be one op: their rows are concatenated, the input is
// quantized once and one parallel loop covers them all. The float head (FloatHead) is plain float.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/decoder_model.h"
#include "runtime/kernels/decoder_float_kernels.h"
#include "runtime/kernels/token_gemm.h"
#include "runtime/thread_pool.h"

namespace lowbit::runtime::ops {

// Per-call scratch (grown on first use, reused afterwards).
struct LinearScratch {
  std::vector<int8_t> xq;    // [rows, groups * kp] codes
  std::vector<float> sx;     // [rows] token scales
  std::vector<int32_t> acc;  // [rows, groups, out]
};

// Where one run's time went (bench/profile_decoder.cpp), in ms.
struct LinearTimes {
  double quantize_ms = 0, gemm_ms = 0, epilogue_ms = 0;
};

class DynamicQuantLinear {
 public:
  DynamicQuantLinear() = default;
  DynamicQuantLinear(const QuantLinear& w, const TokenGemmConfig& kernel);
  // Several projections of the same input (equal in_features and group_size): output rows are
  // those of parts[0], then parts[1], ...
  DynamicQuantLinear(const std::vector<const QuantLinear*>& parts, const TokenGemmConfig& kernel);
  // y [rows, out] = op(x [rows, in]). With a pool of more than one thread and at least
  // `min_parallel_macs` multiply-accumulates, output rows are split across the pool (GEMM and
  // epilogue of a block of rows in one task). `times` (optional): the quantize / GEMM / epilogue
  // split, measured on the calling thread without a pool.
  void run(const float* x, int64_t rows, float* y, LinearScratch& s, ThreadPool* pool, int64_t min_parallel_macs,
           LinearTimes* times = nullptr) const;
  const TokenGemmConfig& kernel() const { return *kernel_; }
  int32_t in_features() const { return in_; }
  int32_t out_features() const { return out_; }

 private:
  int32_t in_ = 0, out_ = 0, group_size_ = 0, groups_ = 0, kp_ = 0;
  std::vector<int8_t> w_;      // the level's packing of [out, groups * kp]
  std::vector<float> scales_;  // [groups, out] (transposed: the epilogue runs across rows)
  const TokenGemmConfig* kernel_ = nullptr;
};

// The float output head: y [rows, out] = x [rows, in] . W^T for W [out, in], each dot product
// summed in float in increasing k (ref::float_linear's order; the weights are kept transposed,
// [in, out], for the levels' kernels, which run across outputs). Output columns are split across
// the pool.
class FloatHead {
 public:
  FloatHead() = default;
  FloatHead(const std::vector<float>& w, int32_t in, int32_t out, const DecoderFloatKernels& kernels);
  // Output columns split across the pool from min_parallel_macs multiply-accumulates per call.
  void run(const float* x, int64_t rows, float* y, ThreadPool* pool, int64_t min_parallel_macs) const;

 private:
  int32_t in_ = 0, out_ = 0;
  std::vector<float> wt_;  // [in, out]
  const DecoderFloatKernels* kernels_ = nullptr;
};

// The reference float linear with W [out, in] as stored (tests, tools).
void float_linear(const float* x, int64_t rows, const float* w, int32_t in, int32_t out, float* y);

}  // namespace lowbit::runtime::ops
