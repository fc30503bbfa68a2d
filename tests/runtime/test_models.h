// Random models and ops for runtime tests (deterministic from a seed).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "quant/requantize.h"
#include "runtime/cpu_features.h"
#include "runtime/model.h"

namespace lowbit::runtime::rtest {

// Whether the tests exercise the optimized level `isa`: this build has its kernels, the CPU runs
// them, and LOWBIT_ISA, when set, names this level (so that `LOWBIT_ISA=neon ctest` tests the neon
// level against the reference, and LOWBIT_ISA=ref the reference alone). Otherwise `why` says why not.
inline bool level_enabled(Isa isa, std::string* why = nullptr) {
  std::string reason;
  const char* env = std::getenv("LOWBIT_ISA");
  if (!build_has_isa(isa)) {
    reason = std::string("this build has no ") + isa_name(isa) + " kernels (other architecture)";
  } else if (!cpu_supports(isa)) {
    reason = std::string("CPU lacks ") + isa_name(isa);
  } else if (env != nullptr && *env != '\0' && std::string(env) != isa_name(isa)) {
    reason = std::string("LOWBIT_ISA=") + env + " selects another level than " + isa_name(isa);
  }
  if (why != nullptr) *why = reason;
  return reason.empty();
}

// The optimized levels (not ref) the tests exercise here, best first.
inline std::vector<std::string> optimized_isas() {
  std::vector<std::string> v;
  for (Isa isa : supported_isas())
    if (isa != Isa::Ref && level_enabled(isa)) v.push_back(isa_name(isa));
  return v;
}

struct WeightKind {
  int32_t bits;
  quant::Grid grid;
};

inline const std::vector<WeightKind>& all_weight_kinds() {
  static const std::vector<WeightKind> kinds = {{8, quant::Grid::Integer}, {4, quant::Grid::Integer},
                                                {2, quant::Grid::Integer}, {4, quant::Grid::Odd},
                                                {2, quant::Grid::Odd},     {1, quant::Grid::Odd}};
  return kinds;
}

inline int32_t random_weight(std::mt19937& rng, WeightKind k) {
  const int32_t lo = -(1 << (k.bits - 1)), hi = (1 << (k.bits - 1)) - 1;
  const int32_t c = std::uniform_int_distribution<int32_t>(lo, hi)(rng);
  return k.grid == quant::Grid::Odd ? 2 * c + 1 : c;
}

inline ActQParams random_act(std::mt19937& rng, bool relu = false) {
  ActQParams q;
  q.scale = std::uniform_real_distribution<float>(0.01f, 0.2f)(rng);
  const int bits = std::uniform_int_distribution<int>(0, 3)(rng) == 0 ? 4 : 8;
  q.qmin = 0;
  q.qmax = (1 << bits) - 1;
  // zero points include the clamp limits
  const int zsel = std::uniform_int_distribution<int>(0, 3)(rng);
  q.zero_point = zsel == 0 ? q.qmin : zsel == 1 ? q.qmax : std::uniform_int_distribution<int32_t>(q.qmin, q.qmax)(rng);
  if (relu) q.qmin = q.zero_point;
  return q;
}

// Fills weights, bias and requantization (or the output stage) of a conv2d / linear op.
inline void fill_layer(std::mt19937& rng, Op& op, WeightKind k, const ActQParams& in_q, bool output_layer,
                       float out_scale_factor = 1.0f) {
  std::vector<int32_t> w(static_cast<size_t>(op.weight_count()));
  for (auto& v : w) v = random_weight(rng, k);
  set_weight_values(op.weight, k.bits, k.grid, w);
  const int64_t K = op.weight_count() / op.out_channels;
  std::vector<float> s_w(op.out_channels), bias(op.out_channels);
  const float wmax = k.grid == quant::Grid::Odd ? float((1 << k.bits) - 1) : float(1 << (k.bits - 1));
  for (int32_t o = 0; o < op.out_channels; ++o) {
    s_w[o] = std::uniform_real_distribution<float>(0.5f, 2.0f)(rng) / wmax;
    bias[o] = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
  }
  if (output_layer) {
    set_output_layer(op, in_q.scale, s_w, bias);
  } else {
    ActQParams out = random_act(rng, std::uniform_int_distribution<int>(0, 1)(rng) == 1);
    // output scale of the order of the accumulator's spread so that outputs are not all clamped
    out.scale = in_q.scale * std::sqrt(float(K)) * 30.0f * out_scale_factor /
                std::uniform_real_distribution<float>(1.0f, 4.0f)(rng);
    set_requantization(op, in_q.scale, s_w, bias, out);
    // Some channels get multipliers of exactly 2^-j so that round-half-to-even ties occur.
    for (auto& m : op.multipliers)
      if (std::uniform_int_distribution<int>(0, 3)(rng) == 0)
        m = quant::make_fixed_point_multiplier(std::ldexp(1.0, -std::uniform_int_distribution<int>(1, 6)(rng)));
  }
}

inline const ActQParams& value_qparams(const Model& m, int32_t v) { return v == 0 ? m.input : m.ops[v - 1].out; }

// A small random graph: conv -> (maxpool|avgpool) -> conv -> conv (dense or depthwise) + residual add
// -> concat of the add and the residual branch (2 * C channels) -> (global avgpool | maxpool + flatten)
// -> linear -> lookup -> linear output layer. Weight kinds per layer.
inline Model random_graph(uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto kind = [&] { return all_weight_kinds()[pick(0, 5)]; };
  auto win = [](int32_t in, int32_t k, int32_t s, int32_t p) { return (in + 2 * p - k) / s + 1; };
  Model m;
  m.name = "random graph " + std::to_string(seed);
  m.in_channels = pick(1, 3);
  int32_t h = pick(8, 13), w = pick(8, 13);
  m.in_height = h;
  m.in_width = w;
  m.input = random_act(rng);
  const int32_t c1 = pick(3, 20);
  Op conv1 = make_conv2d(0, m.in_channels, c1, 3, pick(1, 2), pick(0, 1));
  fill_layer(rng, conv1, kind(), m.input, false);
  h = win(h, 3, conv1.stride_h, conv1.pad_h);
  w = win(w, 3, conv1.stride_w, conv1.pad_w);
  int32_t v = m.add(conv1);
  Op pool = pick(0, 1) ? make_max_pool(v, 2, 2, 0) : make_avg_pool(v, 3, pick(1, 2), 1);
  pool.out = pool.kind == OpKind::MaxPool2d ? value_qparams(m, v) : random_act(rng);
  h = win(h, pool.kernel_h, pool.stride_h, pool.pad_h);
  w = win(w, pool.kernel_w, pool.stride_w, pool.pad_w);
  v = m.add(pool);
  const int32_t c2 = pick(4, 24);
  const int32_t k2 = pick(0, 1) ? 3 : 1;
  Op conv2 = make_conv2d(v, c1, c2, k2, 1, k2 / 2);
  fill_layer(rng, conv2, kind(), value_qparams(m, v), false);
  const int32_t v2 = m.add(conv2);
  Op conv3 = make_conv2d(v2, c2, c2, 3, 1, 1, pick(0, 1) ? c2 : 1);
  fill_layer(rng, conv3, kind(), value_qparams(m, v2), false);
  const int32_t v3 = m.add(conv3);
  Op add = make_add(v3, v2);
  add.out = random_act(rng, pick(0, 1) == 1);
  add.out.scale = std::max(value_qparams(m, v2).scale, value_qparams(m, v3).scale) * 1.5f;
  v = m.add(add);
  {  // Channel concatenation, each input through its own table (own generator, as the lookup below).
    std::mt19937 table_rng(seed + 5555);
    Op cat = make_concat({v, v3});
    cat.out = random_act(table_rng);
    cat.table.resize(512);
    for (uint8_t& t : cat.table) t = static_cast<uint8_t>(std::uniform_int_distribution<int>(cat.out.qmin, cat.out.qmax)(table_rng));
    v = m.add(cat);
  }
  int32_t features = 2 * c2;
  if (pick(0, 1) || h < 2 || w < 2) {
    Op gap = make_global_avg_pool(v);
    gap.out = random_act(rng);
    gap.out.scale = value_qparams(m, v).scale * 0.5f;
    v = m.add(gap);
  } else {
    Op p2 = make_max_pool(v, 2, 2, 0);
    p2.out = value_qparams(m, v);
    h = win(h, 2, 2, 0);
    w = win(w, 2, 2, 0);
    v = m.add(p2);
    Op fl = make_flatten(v);
    fl.out = value_qparams(m, v);
    v = m.add(fl);
    features = 2 * c2 * h * w;
  }
  const int32_t hidden = pick(5, 40);
  Op fc1 = make_linear(v, features, hidden);
  fill_layer(rng, fc1, kind(), value_qparams(m, v), false);
  v = m.add(fc1);
  {  // An element-wise function as a table (own generator: the picks above stay as they were).
    std::mt19937 table_rng(seed + 7777);
    std::vector<uint8_t> table(256);
    ActQParams out = random_act(table_rng);
    for (uint8_t& t : table) t = static_cast<uint8_t>(std::uniform_int_distribution<int>(out.qmin, out.qmax)(table_rng));
    Op lookup = make_lookup(v, table);
    lookup.out = out;
    v = m.add(lookup);
  }
  Op fc2 = make_linear(v, hidden, pick(2, 12));
  fill_layer(rng, fc2, kind(), value_qparams(m, v), true);
  m.add(fc2);
  return m;
}

inline std::vector<float> random_input(const Model& m, int64_t batch, uint32_t seed) {
  std::mt19937 rng(seed);
  const float span = m.input.scale * 300.0f;
  std::uniform_real_distribution<float> d(-0.2f * span, span);
  std::vector<float> x(static_cast<size_t>(batch * m.in_channels * m.in_height * m.in_width));
  for (auto& v : x) v = d(rng);
  return x;
}

}  // namespace lowbit::runtime::rtest
