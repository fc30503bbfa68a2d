#include "runtime/ops/attention_op.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lowbit::runtime::ops {

RopeTable::RopeTable(int32_t context_, int32_t head_size, double base) : context(context_), half(head_size / 2) {
  cos.resize(static_cast<size_t>(context) * half);
  sin.resize(cos.size());
  for (int32_t i = 0; i < half; ++i) {
    const double inv_freq = std::pow(base, -static_cast<double>(2 * i) / static_cast<double>(head_size));
    for (int32_t p = 0; p < context; ++p) {
      const double angle = static_cast<double>(p) * inv_freq;
      cos[static_cast<size_t>(p) * half + i] = static_cast<float>(std::cos(angle));
      sin[static_cast<size_t>(p) * half + i] = static_cast<float>(std::sin(angle));
    }
  }
}

KvCache::KvCache(int32_t layers_, int32_t context_, int32_t width_)
    : layers(layers_), context(context_), width(width_) {
  const size_t n = static_cast<size_t>(layers) * context * width;
  k.assign(n, 0.0f);
  v.assign(n, 0.0f);
  kt.assign(n, 0.0f);
}

void apply_rope(float* x, int64_t rows, int64_t pos0, int32_t heads, int32_t hd, const RopeTable& rope) {
  ref::rope(x, rows, pos0, heads, hd, rope.cos.data(), rope.sin.data(), rope.half);
}

void causal_attention(const float* q, const float* k, const float* v, int64_t rows, int64_t pos0, int32_t heads,
                      int32_t hd, float* k_cache, float* v_cache, float* kt_cache, int32_t context, float* scores,
                      float* out, const DecoderFloatKernels& kernels, ThreadPool* pool, int64_t min_parallel_macs) {
  const int64_t d = int64_t{heads} * hd;
  std::memcpy(k_cache + pos0 * d, k, static_cast<size_t>(rows * d) * sizeof(float));
  std::memcpy(v_cache + pos0 * d, v, static_cast<size_t>(rows * d) * sizeof(float));
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t i = 0; i < d; ++i) kt_cache[i * context + pos0 + t] = k[t * d + i];
  const float inv_scale = static_cast<float>(std::sqrt(static_cast<double>(hd)));  // scores / sqrt(hd), as LibTorch
  const AttentionRowFn row = kernels.attention_row.fn;
  auto one = [&](int64_t task, int thread) {
    const int64_t t = task / heads;
    const int32_t h = static_cast<int32_t>(task % heads);
    row(q + t * d + int64_t{h} * hd, k_cache + int64_t{h} * hd, kt_cache + int64_t{h} * hd * context, context,
        v_cache + int64_t{h} * hd, d, pos0 + t, hd, inv_scale, scores + int64_t{thread} * context,
        out + t * d + int64_t{h} * hd);
  };
  const int64_t tasks = rows * heads;
  const int64_t macs = 2 * rows * (pos0 + (rows + 1) / 2) * int64_t{heads} * hd;  // q.k and weights.v
  if (pool != nullptr && pool->threads() > 1 && rows > 1 && macs >= min_parallel_macs) {
    pool->parallel_for(tasks, one);
  } else {
    for (int64_t task = 0; task < tasks; ++task) one(task, 0);
  }
}

void full_attention(const float* q, const float* k, const float* v, int64_t rows, int32_t heads, int32_t hd,
                    float* scores, float* out) {
  const int64_t d = int64_t{heads} * hd;
  const float inv_scale = static_cast<float>(std::sqrt(static_cast<double>(hd)));
  for (int64_t t = 0; t < rows; ++t) {
    for (int32_t h = 0; h < heads; ++h) {
      const float* qh = q + t * d + int64_t{h} * hd;
      float m = -INFINITY;
      for (int64_t j = 0; j < rows; ++j) {
        const float* kj = k + j * d + int64_t{h} * hd;
        float s = 0.0f;
        for (int32_t i = 0; i < hd; ++i) s += qh[i] * kj[i];
        s = s / inv_scale;
        scores[j] = s;
        m = std::max(m, s);
      }
      float sum = 0.0f;
      for (int64_t j = 0; j < rows; ++j) {
        scores[j] = std::exp(scores[j] - m);
        sum += scores[j];
      }
      float* oh = out + t * d + int64_t{h} * hd;
      std::fill(oh, oh + hd, 0.0f);
      for (int64_t j = 0; j < rows; ++j) {
        const float w = scores[j] / sum;
        const float* vj = v + j * d + int64_t{h} * hd;
        for (int32_t i = 0; i < hd; ++i) oh[i] += w * vj[i];
      }
    }
  }
}

}  // namespace lowbit::runtime::ops
