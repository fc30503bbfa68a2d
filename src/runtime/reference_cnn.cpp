#include "runtime/reference_cnn.h"

#include <cmath>
#include <random>
#include <string>

namespace lowbit::runtime {
namespace {

// ReLU (or ReLU6, the same clamp at these scales) fused: act_min = zero point.
constexpr ActQParams kRelu{0.02f, 0, 0, 255};

void fill(std::mt19937& rng, Op& op, int32_t bits, quant::Grid grid, float s_x, bool output_layer,
          ActQParams out = kRelu) {
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
    set_requantization(op, s_x, s_w, bias, out);
  }
}

// A model with no ops yet whose input is one 28x28 channel of pixels / 255.
Model fashion_mnist_input(const std::string& shape, int32_t bits) {
  Model m;
  m.name = shape + " (random weights, " + std::to_string(bits) + "-bit)";
  m.in_channels = 1;
  m.in_height = m.in_width = 28;
  m.input = {1.0f / 255.0f, 0, 0, 255};
  return m;
}

}  // namespace

Model random_reference_cnn(uint32_t seed, int32_t bits, quant::Grid grid) {
  std::mt19937 rng(seed);
  Model m = fashion_mnist_input("reference CNN", bits);
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

Model random_mobilenet_tiny(uint32_t seed, int32_t bits, quant::Grid grid) {
  std::mt19937 rng(seed);
  Model m = fashion_mnist_input("MobileNetV2-tiny shape", bits);
  const ActQParams linear{0.05f, 128, 0, 255};  // projections and adds: no activation
  const auto scale_of = [&](int32_t v) { return v == 0 ? m.input.scale : m.ops[v - 1].out.scale; };
  const auto conv = [&](int32_t x, int32_t cin, int32_t cout, int32_t k, int32_t stride, int32_t groups,
                        ActQParams out) {
    Op c = make_conv2d(x, cin, cout, k, stride, k / 2, groups);
    fill(rng, c, bits, grid, scale_of(x), false, out);
    return m.add(c);
  };
  int32_t v = conv(0, 1, 16, 3, 1, 1, kRelu);
  struct Block { int32_t cin, cout, stride, expand; };
  for (const Block b : {Block{16, 16, 1, 2}, Block{16, 24, 2, 4}, Block{24, 24, 1, 4}, Block{24, 48, 2, 4},
                        Block{48, 48, 1, 4}}) {
    const int32_t hidden = b.cin * b.expand;
    int32_t h = conv(v, b.cin, hidden, 1, 1, 1, kRelu);
    h = conv(h, hidden, hidden, 3, b.stride, hidden, kRelu);
    h = conv(h, hidden, b.cout, 1, 1, 1, linear);
    if (b.stride == 1 && b.cin == b.cout) {
      Op add = make_add(v, h);
      add.out = {0.07f, 128, 0, 255};
      h = m.add(add);
    }
    v = h;
  }
  Op gap = make_global_avg_pool(v);
  gap.out = m.ops.back().out;
  v = m.add(gap);
  Op fc = make_linear(v, 48, 10);
  fill(rng, fc, bits, grid, scale_of(v), true);
  m.add(fc);
  return m;
}

}  // namespace lowbit::runtime
