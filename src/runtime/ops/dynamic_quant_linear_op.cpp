#include "runtime/ops/dynamic_quant_linear_op.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "base/error.h"

namespace lowbit::runtime::ops {

DynamicQuantLinear::DynamicQuantLinear(const QuantLinear& w, const TokenGemmConfig& kernel)
    : DynamicQuantLinear(std::vector<const QuantLinear*>{&w}, kernel) {}

DynamicQuantLinear::DynamicQuantLinear(const std::vector<const QuantLinear*>& parts, const TokenGemmConfig& kernel)
    : kernel_(&kernel) {
  LOWBIT_CHECK(!parts.empty(), "DynamicQuantLinear: no projection");
  in_ = parts[0]->in_features;
  group_size_ = parts[0]->group_size;
  groups_ = parts[0]->groups();
  kp_ = token_gemm_padded_group(group_size_);
  for (const QuantLinear* p : parts) {
    LOWBIT_CHECK(p->in_features == in_ && p->group_size == group_size_,
                 "DynamicQuantLinear: projections of one op need equal inputs and groups");
    out_ += p->out_features;
  }
  const int64_t row = int64_t{groups_} * kp_;
  std::vector<int8_t> rows(static_cast<size_t>(out_ * row), 0);  // the row layout
  scales_.assign(static_cast<size_t>(groups_) * out_, 0.0f);
  int32_t o0 = 0;
  for (const QuantLinear* p : parts) {
    const std::vector<int8_t> values = p->values();
    for (int32_t o = 0; o < p->out_features; ++o)
      for (int32_t g = 0; g < groups_; ++g) {
        const int32_t k0 = g * group_size_, len = std::min(group_size_, in_ - k0);
        std::memcpy(rows.data() + (o0 + o) * row + int64_t{g} * kp_, values.data() + int64_t{o} * in_ + k0,
                    static_cast<size_t>(len));
        scales_[static_cast<size_t>(g) * out_ + o0 + o] = p->scales[static_cast<size_t>(o) * groups_ + g];
      }
    o0 += p->out_features;
  }
  w_.resize(kernel.packed_bytes(out_, groups_, kp_));
  kernel.pack(rows.data(), out_, groups_, kp_, w_.data());
}

void DynamicQuantLinear::run(const float* x, int64_t rows, float* y, LinearScratch& s, ThreadPool* pool,
                             int64_t min_parallel_macs, LinearTimes* times) const {
  using Clock = std::chrono::steady_clock;
  const auto t0 = times ? Clock::now() : Clock::time_point{};
  const int64_t row = int64_t{groups_} * kp_;
  s.xq.resize(static_cast<size_t>(rows * row));
  s.sx.resize(static_cast<size_t>(rows));
  s.acc.resize(static_cast<size_t>(rows * out_ * groups_));
  for (int64_t t = 0; t < rows; ++t)
    s.sx[static_cast<size_t>(t)] = kernel_->quantize(x + t * in_, in_, group_size_, groups_, kp_, s.xq.data() + t * row);
  const int64_t acc_stride = int64_t{out_} * groups_;
  const int64_t macs = rows * out_ * int64_t{in_};
  const int32_t block = kernel_->o_block;
  auto range = [&](int32_t o0, int32_t o1) {
    kernel_->gemm(rows, o0, o1, out_, groups_, kp_, s.xq.data(), w_.data(), s.acc.data(), acc_stride);
    kernel_->epilogue(rows, o0, o1, out_, groups_, s.acc.data(), acc_stride, scales_.data(), s.sx.data(), y);
  };
  if (pool && pool->threads() > 1 && macs >= min_parallel_macs) {
    // Blocks of rows, several per thread so that a thread slowed by another process takes fewer.
    const int64_t blocks = (out_ + block - 1) / block;
    const int64_t tasks = std::min<int64_t>(pool->threads() * 4, blocks);
    const int64_t per = (blocks + tasks - 1) / tasks * block;
    pool->parallel_for((out_ + per - 1) / per, [&](int64_t task, int) {
      const int32_t o0 = static_cast<int32_t>(task * per);
      const int32_t o1 = static_cast<int32_t>(std::min<int64_t>(o0 + per, out_));
      if (o0 < o1) range(o0, o1);
    });
  } else if (times) {
    const auto t1 = Clock::now();
    kernel_->gemm(rows, 0, out_, out_, groups_, kp_, s.xq.data(), w_.data(), s.acc.data(), acc_stride);
    const auto t2 = Clock::now();
    kernel_->epilogue(rows, 0, out_, out_, groups_, s.acc.data(), acc_stride, scales_.data(), s.sx.data(), y);
    const auto t3 = Clock::now();
    times->quantize_ms += std::chrono::duration<double, std::milli>(t1 - t0).count();
    times->gemm_ms += std::chrono::duration<double, std::milli>(t2 - t1).count();
    times->epilogue_ms += std::chrono::duration<double, std::milli>(t3 - t2).count();
  } else {
    range(0, out_);
  }
}

FloatHead::FloatHead(const std::vector<float>& w, int32_t in, int32_t out, const DecoderFloatKernels& kernels)
    : in_(in), out_(out), wt_(static_cast<size_t>(in) * out), kernels_(&kernels) {
  for (int32_t o = 0; o < out; ++o)
    for (int32_t k = 0; k < in; ++k) wt_[static_cast<size_t>(k) * out + o] = w[static_cast<size_t>(o) * in + k];
}

void FloatHead::run(const float* x, int64_t rows, float* y, ThreadPool* pool, int64_t min_parallel_macs) const {
  const LinearF32Fn fn = kernels_->linear.fn;
  const int32_t block = kernels_->linear_o_block;
  if (pool && pool->threads() > 1 && rows * in_ * int64_t{out_} >= min_parallel_macs) {
    const int64_t blocks = (out_ + block - 1) / block;
    const int64_t tasks = std::min<int64_t>(pool->threads() * 2, blocks);
    const int64_t per = (blocks + tasks - 1) / tasks * block;
    pool->parallel_for((out_ + per - 1) / per, [&](int64_t task, int) {
      const int32_t o0 = static_cast<int32_t>(task * per);
      const int32_t o1 = static_cast<int32_t>(std::min<int64_t>(o0 + per, out_));
      if (o0 < o1) fn(x, rows, wt_.data(), in_, out_, o0, o1, y);
    });
  } else {
    fn(x, rows, wt_.data(), in_, out_, 0, out_, y);
  }
}

void float_linear(const float* x, int64_t rows, const float* w, int32_t in, int32_t out, float* y) {
  for (int64_t t = 0; t < rows; ++t)
    for (int32_t o = 0; o < out; ++o) {
      const float* wo = w + int64_t{o} * in;
      const float* xt = x + t * in;
      float s = 0.0f;
      for (int32_t k = 0; k < in; ++k) s += xt[k] * wo[k];
      y[t * out + o] = s;
    }
}

}  // namespace lowbit::runtime::ops
