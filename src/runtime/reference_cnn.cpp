#include "runtime/reference_cnn.h"

#include <cmath>
#include <random>

namespace lowbit::runtime {
namespace {

void fill(std::mt19937& rng, Op& op, int32_t bits, quant::Grid grid, float s_x, bool output_layer) {
  const int32_t lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
  std::uniform_int_distribution<int32_t> code(lo, hi);
  std::vector<int32_t> w(static_cast<size_t>(op.weight_count()));
  for (auto& v : w) v = grid == quant::Grid::Odd ? 2 * code(rng) + 1 : code(rng);
  set_weight_values(op.weight, bits, grid, w);
  const float K = float(op.weight_count() / op.out_channels);
  const float wmax = grid == quant::Grid::Odd ? float((1 << bits) - 1) : float(1 << (bits - 1));
  std::vector<float> s_w(op.out_channels), bias(op.out_channels);
  std::uniform_real_distribution<float> u(0.5f, 1.5f), b(-0.1f, 0.1f);
  for (int32_t o = 0; o < op.out_channels; ++o) {
    s_w[o] = u(rng) / (wmax * std::sqrt(K));
    bias[o] = b(rng);
  }
  if (output_layer) {
    set_output_layer(op, s_x, s_w, bias);
  } else {
    ActQParams out{0.02f, 0, 0, 255};  // ReLU fused: act_min = zero point
    set_requantization(op, s_x, s_w, bias, out);
  }
}

}  // namespace

Model random_reference_cnn(uint32_t seed, int32_t bits, quant::Grid grid) {
  std::mt19937 rng(seed);
  Model m;
  m.name = "reference CNN (random weights, " + std::to_string(bits) + "-bit)";
  m.in_channels = 1;
  m.in_height = m.in_width = 28;
  m.input = {1.0f / 255.0f, 0, 0, 255};
  Op c1 = make_conv2d(0, 1, 32, 3, 1, 1);
  fill(rng, c1, bits, grid, m.input.scale, false);
  int32_t v = m.add(c1);
  Op p1 = make_max_pool(v, 2, 2);
  p1.out = m.ops.back().out;
  v = m.add(p1);
  Op c2 = make_conv2d(v, 32, 64, 3, 1, 1);
  fill(rng, c2, bits, grid, m.ops.back().out.scale, false);
  v = m.add(c2);
  Op p2 = make_max_pool(v, 2, 2);
  p2.out = m.ops.back().out;
  v = m.add(p2);
  Op fl = make_flatten(v);
  fl.out = m.ops.back().out;
  v = m.add(fl);
  Op f1 = make_linear(v, 3136, 128);
  fill(rng, f1, bits, grid, m.ops.back().out.scale, false);
  v = m.add(f1);
  Op f2 = make_linear(v, 128, 10);
  fill(rng, f2, bits, grid, m.ops.back().out.scale, true);
  m.add(f2);
  return m;
}

}  // namespace lowbit::runtime
