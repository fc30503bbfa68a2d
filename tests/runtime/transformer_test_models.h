// Random decoder (gpt-tiny-like) and encoder (vit-tiny-like) models for the runtime tests
// (decoder_test.cpp, encoder_test.cpp) and the fuzz seeds (fuzz/make_fuzz_seeds.cpp):
// deterministic from a seed, built with the runtime's own set_quant_linear. No gtest, no LibTorch.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "runtime/decoder_model.h"
#include "runtime/encoder_model.h"

namespace lowbit::runtime::rtest {

// A weight format: bits, grid and the value range a test draws from (Odd grid: odd values only).
struct Format {
  const char* name;
  int32_t bits;
  quant::Grid grid;
  int32_t lo, hi;
};
inline const Format kFormats[] = {{"int8", 8, quant::Grid::Integer, -128, 127}, {"int4", 4, quant::Grid::Integer, -8, 7},
                                  {"ternary", 2, quant::Grid::Integer, -1, 1},  {"int2", 2, quant::Grid::Integer, -2, 1},
                                  {"binary", 1, quant::Grid::Odd, -1, 1},       {"seq2", 2, quant::Grid::Odd, -3, 3}};

// Weights [out, in] of format `f` in groups of `group` inputs, scales uniform in [scale_lo, scale_hi).
inline QuantLinear random_quant_linear(std::mt19937& rng, int32_t in, int32_t out, int32_t group, const Format& f,
                                       float scale_lo = 0.001f, float scale_hi = 0.05f) {
  std::vector<int32_t> values(static_cast<size_t>(in) * out);
  std::uniform_int_distribution<int> d(f.lo, f.hi);
  for (auto& v : values) {
    v = d(rng);
    if (f.grid == quant::Grid::Odd && v % 2 == 0) v = v >= 0 ? v + 1 : v - 1;
    if (v > f.hi) v = f.hi;
  }
  const int32_t groups = (in + group - 1) / group;
  std::vector<float> scales(static_cast<size_t>(out) * groups);
  std::uniform_real_distribution<float> s(scale_lo, scale_hi);
  for (auto& v : scales) v = s(rng);
  QuantLinear w;
  set_quant_linear(w, in, out, group, f.bits, f.grid, values, scales);
  return w;
}

// Normal(0, scale) values.
inline std::vector<float> random_floats(std::mt19937& rng, size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Uniform values in [lo, hi).
inline std::vector<float> uniform_floats(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// The tests' decoder: width 32, 4 heads, hidden 64, context 24, 2 layers.
struct DecoderShape {
  int32_t width = 32, heads = 4, hidden = 64, context = 24, layers = 2;
};

// A float head unless `quantized_head`.
inline DecoderModel random_decoder(uint32_t seed, const Format& f, int32_t group, bool quantized_head = false,
                                   const DecoderShape& shape = {}) {
  std::mt19937 rng(seed);
  DecoderModel m;
  m.name = "test decoder";
  m.width = shape.width;
  m.heads = shape.heads;
  m.hidden = shape.hidden;
  m.context = shape.context;
  m.embedding = random_floats(rng, static_cast<size_t>(256 * m.width));
  for (int l = 0; l < shape.layers; ++l) {
    DecoderLayer L;
    L.norm1 = random_floats(rng, static_cast<size_t>(m.width), 0.3f);
    L.norm2 = random_floats(rng, static_cast<size_t>(m.width), 0.3f);
    for (auto& v : L.norm1) v += 1.0f;
    for (auto& v : L.norm2) v += 1.0f;
    const int32_t gw = std::min(group, m.width), gh = std::min(group, m.hidden);
    for (QuantLinear* w : {&L.q, &L.k, &L.v, &L.o}) *w = random_quant_linear(rng, m.width, m.width, gw, f);
    L.gate = random_quant_linear(rng, m.width, m.hidden, gw, f);
    L.up = random_quant_linear(rng, m.width, m.hidden, gw, f);
    L.down = random_quant_linear(rng, m.hidden, m.width, gh, f);
    m.layers.push_back(std::move(L));
  }
  m.norm_f = std::vector<float>(static_cast<size_t>(m.width), 1.0f);
  if (quantized_head) {
    m.head_quantized = true;
    m.head_q = random_quant_linear(rng, m.width, 256, std::min(group, m.width), f);
  } else {
    m.head = random_floats(rng, static_cast<size_t>(256 * m.width), 0.2f);
  }
  return m;
}

inline ActGrid random_grid(std::mt19937& rng, int bits) {
  ActGrid g;
  g.qmin = 0;
  g.qmax = (1 << bits) - 1;
  g.zero_point = std::uniform_int_distribution<int32_t>(0, g.qmax)(rng);
  g.scale = std::uniform_real_distribution<float>(0.01f, 0.1f)(rng);
  return g;
}

// A quantized encoder linear with a bias; `input`: the grid its input lies on (null: float input);
// out_bits > 0: an output grid of that many bits.
inline EncoderLinear random_encoder_linear(std::mt19937& rng, int32_t in, int32_t out, const Format& f, int32_t group,
                                           const ActGrid* input, int out_bits) {
  EncoderLinear l;
  l.in_features = in;
  l.out_features = out;
  l.quantized = true;
  l.w = random_quant_linear(rng, in, out, group, f, 0.01f, 0.05f);
  l.bias.resize(static_cast<size_t>(out));
  for (float& b : l.bias) b = std::uniform_real_distribution<float>(-0.2f, 0.2f)(rng);
  if (input) {
    l.has_input_grid = true;
    l.input_grid = *input;
  }
  if (out_bits > 0) {
    l.has_output_grid = true;
    l.output_grid = random_grid(rng, out_bits);
    l.output_grid.scale = 0.05f;
  }
  return l;
}

// A small vit-like model: patch 7 (16 tokens), width 16, 2 heads, hidden 32, 2 layers; integer
// patch embedding and fc2, the other linears read float inputs.
inline EncoderModel random_encoder(uint32_t seed, const Format& f, int32_t group, int act_bits,
                                   bool quantize_head = true) {
  std::mt19937 rng(seed);
  EncoderModel m;
  m.name = "test encoder";
  m.patch = 7;
  m.width = 16;
  m.heads = 2;
  m.hidden = 32;
  m.input_quantized = true;
  m.input_grid = ActGrid{1.0f / 255.0f, 0, 0, 255};
  const int32_t d = m.width, P = m.patch_features();
  m.patch_embed = random_encoder_linear(rng, P, d, f, std::min(group, P), &m.input_grid, act_bits);
  m.position = uniform_floats(rng, static_cast<size_t>(m.tokens()) * d, -0.1f, 0.1f);
  for (int l = 0; l < 2; ++l) {
    EncoderLayer L;
    L.norm1_w = uniform_floats(rng, d, 0.8f, 1.2f);
    L.norm1_b = uniform_floats(rng, d, -0.1f, 0.1f);
    L.norm2_w = uniform_floats(rng, d, 0.8f, 1.2f);
    L.norm2_b = uniform_floats(rng, d, -0.1f, 0.1f);
    L.q = random_encoder_linear(rng, d, d, f, group, nullptr, act_bits);
    L.k = random_encoder_linear(rng, d, d, f, group, nullptr, act_bits);
    L.v = random_encoder_linear(rng, d, d, f, group, nullptr, act_bits);
    L.o = random_encoder_linear(rng, d, d, f, group, nullptr, act_bits);
    L.fc1 = random_encoder_linear(rng, d, m.hidden, f, group, nullptr, act_bits);
    L.fc1.gelu = true;
    L.fc2 = random_encoder_linear(rng, m.hidden, d, f, group, &L.fc1.output_grid, act_bits);
    L.has_add1_grid = L.has_add2_grid = true;
    L.add1_grid = random_grid(rng, act_bits);
    L.add2_grid = random_grid(rng, act_bits);
    L.add1_grid.scale = L.add2_grid.scale = 0.1f;
    m.layers.push_back(std::move(L));
  }
  m.norm_f_w = uniform_floats(rng, d, 0.8f, 1.2f);
  m.norm_f_b = uniform_floats(rng, d, -0.1f, 0.1f);
  m.head = random_encoder_linear(rng, d, m.classes, f, group, nullptr, 0);
  if (!quantize_head) {
    m.head.quantized = false;
    m.head.weight = uniform_floats(rng, static_cast<size_t>(d) * m.classes, -0.5f, 0.5f);
    m.head.w = QuantLinear();
  }
  return m;
}

// n images of 28 x 28 pixels in [0, 1).
inline std::vector<float> random_images(uint32_t seed, int64_t n) {
  std::mt19937 rng(seed);
  return uniform_floats(rng, static_cast<size_t>(n) * 28 * 28, 0.0f, 1.0f);
}

// Cuts the serialized model `bytes` at about 97 lengths from 0 up and flips 50 random bytes (checksums not
// resealed), parsing each with `parse(bytes, name)`; returns what went wrong: a damaged file that
// loaded, or an error that does not name the file. Empty when every one is a clean lowbit::Error.
template <typename Parse>
std::vector<std::string> damage_problems(const std::string& bytes, Parse parse) {
  std::vector<std::string> problems;
  for (size_t n = 0; n < bytes.size(); n += std::max<size_t>(1, bytes.size() / 97)) {
    try {
      parse(bytes.substr(0, n), "cut.lbq");
      problems.push_back("a file cut to " + std::to_string(n) + " bytes loaded");
    } catch (const Error& e) {
      if (std::string(e.what()).find("cut.lbq") == std::string::npos) problems.push_back(e.what());
    }
  }
  std::mt19937 rng(3);
  for (int i = 0; i < 50; ++i) {
    std::string b = bytes;
    const char flip = static_cast<char>(1 + rng() % 255);  // drawn first, as in `b[rng() % n] ^= 1 + rng() % 255`
    const size_t at = rng() % b.size();
    b[at] ^= flip;
    try {
      parse(b, "flip.lbq");
      problems.push_back("a file with byte " + std::to_string(at) + " changed loaded");
    } catch (const Error&) {
    }
  }
  return problems;
}

// A path for a test file: in $LOWBIT_TEST_TMP, else /tmp.
inline std::string tmp_file(const std::string& name) {
  const char* dir = std::getenv("LOWBIT_TEST_TMP");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

}  // namespace lowbit::runtime::rtest
