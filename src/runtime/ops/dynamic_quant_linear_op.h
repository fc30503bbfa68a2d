// The integer projection of decoder models: per-token dynamic int8 activations (quant/per_token.h)
// times low-bit weights with float scales per (output row, group), integer accumulation per group
// (kernels/token_gemm.h), then float:
//
//   y[t, o] = s_x[t] * sum_g s_w[o, g] * (float)acc[t, o, g]
//
// summed over g in increasing order in float32 (the order is part of the op: every kernel level
// gives the same int32 acc, so the same y). The weights are widened to int8 in the kernels'
// padded group layout when the op is created; the float head (FloatLinear) is plain float.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/decoder_model.h"
#include "runtime/kernels/token_gemm.h"
#include "runtime/thread_pool.h"

namespace lowbit::runtime::ops {

// Per-call scratch (grown on first use, reused afterwards).
struct LinearScratch {
  std::vector<int8_t> xq;    // [rows, groups * kp] codes
  std::vector<float> sx;     // [rows] token scales
  std::vector<int32_t> acc;  // [rows, out, groups]
};

class DynamicQuantLinear {
 public:
  DynamicQuantLinear() = default;
  DynamicQuantLinear(const QuantLinear& w, const TokenGemmConfig& kernel);
  // y [rows, out] = op(x [rows, in]). With a pool of more than one thread and at least
  // `min_parallel_macs` multiply-accumulates, output rows are split across the pool.
  void run(const float* x, int64_t rows, float* y, LinearScratch& s, ThreadPool* pool, int64_t min_parallel_macs) const;
  const TokenGemmConfig& kernel() const { return *kernel_; }
  int32_t in_features() const { return in_; }
  int32_t out_features() const { return out_; }

 private:
  int32_t in_ = 0, out_ = 0, group_size_ = 0, groups_ = 0, kp_ = 0;
  std::vector<int8_t> w_;      // [out, groups * kp]
  std::vector<float> scales_;  // [out, groups]
  const TokenGemmConfig* kernel_ = nullptr;
};

// y [rows, out] = x [rows, in] . W^T for a float W [out, in] (the float output head), each dot
// product summed in float in increasing k.
void float_linear(const float* x, int64_t rows, const float* w, int32_t in, int32_t out, float* y);

}  // namespace lowbit::runtime::ops
