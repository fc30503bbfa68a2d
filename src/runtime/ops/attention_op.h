// Causal multi-head attention with rotary position embedding and a KV cache, in float, as
// models/gpt.h's CausalAttentionImpl and apply_rope:
//   RoPE: pair (x[2i], x[2i+1]) of each head at position p is rotated by angle
//         p * base^(-2i / hd), the angle, cos and sin computed in double and rounded to float,
//         then (a cos - b sin, a sin + b cos) in float;
//   scores[j] = (q . k_j) / sqrt(hd) for cached positions j <= p, softmax (max subtracted),
//   out = sum_j softmax_j * v_j, heads concatenated.
// Rows of one call are consecutive positions; each row only reads the cache up to its own
// position, so a prefill of T tokens and T single-token decodes give identical numbers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/kernels/decoder_float_kernels.h"
#include "runtime/thread_pool.h"

namespace lowbit::runtime::ops {

// cos / sin of every (position < context, pair < hd / 2).
struct RopeTable {
  int32_t context = 0, half = 0;
  std::vector<float> cos, sin;  // [context, half]
  RopeTable() = default;
  RopeTable(int32_t context, int32_t head_size, double base);
};

// Keys (after RoPE) and values of every layer: [layers, context, width] each, and the keys
// transposed, [layers, width, context] (the optimized attention kernels read 8 or 16 positions of
// one dimension at once).
struct KvCache {
  int32_t layers = 0, context = 0, width = 0;
  std::vector<float> k, v, kt;
  KvCache() = default;
  KvCache(int32_t layers, int32_t context, int32_t width);
  float* k_layer(int32_t l) { return k.data() + static_cast<size_t>(l) * context * width; }
  float* v_layer(int32_t l) { return v.data() + static_cast<size_t>(l) * context * width; }
  float* kt_layer(int32_t l) { return kt.data() + static_cast<size_t>(l) * context * width; }
};

// Rotates x [rows, heads * hd] (rows at positions pos0, pos0 + 1, ...) in place.
void apply_rope(float* x, int64_t rows, int64_t pos0, int32_t heads, int32_t hd, const RopeTable& rope);

// q, k, v: [rows, width] at positions pos0.. (k already rotated, q too); writes k, v into the
// layer's cache rows pos0.. (k also into the transposed cache, kt_cache [width, context]), then
// out [rows, width], one (row, head) at a time with the level's attention_row kernel, spread over
// the pool when there is one and the call has at least min_parallel_macs multiply-accumulates
// (scores and weighted sums). `scores`: scratch of `context` floats per pool thread.
void causal_attention(const float* q, const float* k, const float* v, int64_t rows, int64_t pos0, int32_t heads,
                      int32_t hd, float* k_cache, float* v_cache, float* kt_cache, int32_t context, float* scores,
                      float* out, const DecoderFloatKernels& kernels, ThreadPool* pool, int64_t min_parallel_macs = 0);

// Non-causal multi-head attention of encoders (vit-tiny, models/gpt.h AttentionImpl with causal =
// false, no RoPE): every row attends to every row, with the per-row arithmetic of causal_attention
// (scores / sqrt(hd), softmax with the max subtracted, weighted sum of v). q, k, v, out: [rows,
// heads * hd]; `scores`: scratch of at least `rows` floats.
void full_attention(const float* q, const float* k, const float* v, int64_t rows, int32_t heads, int32_t hd,
                    float* scores, float* out);

}  // namespace lowbit::runtime::ops
