#include "runtime/ops/dynamic_quant_linear_op.h"

#include <algorithm>
#include <cstring>

#include "quant/per_token.h"

namespace lowbit::runtime::ops {

DynamicQuantLinear::DynamicQuantLinear(const QuantLinear& w, const TokenGemmConfig& kernel)
    : in_(w.in_features),
      out_(w.out_features),
      group_size_(w.group_size),
      groups_(w.groups()),
      kp_(token_gemm_padded_group(w.group_size)),
      scales_(w.scales),
      kernel_(&kernel) {
  const std::vector<int8_t> values = w.values();
  const int64_t row = int64_t{groups_} * kp_;
  w_.assign(static_cast<size_t>(out_ * row), 0);
  for (int32_t o = 0; o < out_; ++o)
    for (int32_t g = 0; g < groups_; ++g) {
      const int32_t k0 = g * group_size_, len = std::min(group_size_, in_ - k0);
      std::memcpy(w_.data() + o * row + int64_t{g} * kp_, values.data() + int64_t{o} * in_ + k0, static_cast<size_t>(len));
    }
}

void DynamicQuantLinear::run(const float* x, int64_t rows, float* y, LinearScratch& s, ThreadPool* pool,
                             int64_t min_parallel_macs) const {
  const int64_t row = int64_t{groups_} * kp_;
  s.xq.assign(static_cast<size_t>(rows * row), 0);  // block tails stay zero
  s.sx.resize(static_cast<size_t>(rows));
  s.acc.resize(static_cast<size_t>(rows * out_ * groups_));
  for (int64_t t = 0; t < rows; ++t) {
    const float* xt = x + t * in_;
    const float st = quant::token_scale(xt, in_);
    s.sx[static_cast<size_t>(t)] = st;
    for (int32_t g = 0; g < groups_; ++g) {
      const int32_t k0 = g * group_size_, len = std::min(group_size_, in_ - k0);
      quant::quantize_token(xt + k0, len, st, s.xq.data() + t * row + int64_t{g} * kp_);
    }
  }
  const int64_t acc_stride = int64_t{out_} * groups_;
  const int64_t macs = rows * out_ * int64_t{in_};
  if (pool && pool->threads() > 1 && macs >= min_parallel_macs) {
    const int64_t tasks = std::min<int64_t>(pool->threads() * 4, (out_ + 3) / 4);
    const int64_t per = ((out_ + tasks - 1) / tasks + 3) / 4 * 4;  // multiples of the 4-row tile
    pool->parallel_for(tasks, [&](int64_t task, int) {
      const int32_t o0 = static_cast<int32_t>(std::min<int64_t>(task * per, out_));
      const int32_t o1 = static_cast<int32_t>(std::min<int64_t>(o0 + per, out_));
      if (o0 < o1) kernel_->gemm(rows, o0, o1, groups_, kp_, s.xq.data(), w_.data(), s.acc.data(), acc_stride);
    });
  } else {
    kernel_->gemm(rows, 0, out_, groups_, kp_, s.xq.data(), w_.data(), s.acc.data(), acc_stride);
  }
  for (int64_t t = 0; t < rows; ++t) {
    const int32_t* at = s.acc.data() + t * acc_stride;
    const float st = s.sx[static_cast<size_t>(t)];
    for (int32_t o = 0; o < out_; ++o) {
      float sum = 0.0f;
      for (int32_t g = 0; g < groups_; ++g)
        sum += scales_[static_cast<size_t>(o) * groups_ + g] * static_cast<float>(at[int64_t{o} * groups_ + g]);
      y[t * out_ + o] = st * sum;
    }
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
