// Each op on the optimized paths (every level this build, CPU and LOWBIT_ISA allow; 1 and 2 threads) against the
// reference kernels, through
// single-op models: hidden layers are exposed exactly by an identity output layer
// (int logit = (y - z_y) for every element of the hidden output).
#include <gtest/gtest.h>

#include <random>

#include "quant/quantize.h"
#include "runtime/kernels/isa_kernels.h"
#include "runtime/session.h"
#include "test_models.h"

using namespace lowbit::runtime;
using namespace lowbit;

namespace {

// Appends flatten + identity linear output layer reading value v (int logits = y - z_y).
void expose(Model& m, int32_t v, int32_t features) {
  if (m.ops[v - 1].kind != OpKind::Flatten && features > 0) {
    Op fl = make_flatten(v);
    fl.out = rtest::value_qparams(m, v);
    v = m.add(fl);
  }
  Op id = make_linear(v, features, features);
  std::vector<int32_t> w(static_cast<size_t>(features) * features, 0);
  for (int32_t i = 0; i < features; ++i) w[static_cast<size_t>(i) * features + i] = 1;
  set_weight_values(id.weight, 8, quant::Grid::Integer, w);
  id.output_layer = true;
  id.bias_q.assign(features, 0);
  id.out_scale.assign(features, 1.0f);
  m.add(id);
}

void compare(const Model& m, int64_t batch, uint32_t seed) {
  const std::vector<float> x = rtest::random_input(m, batch, seed);
  Session ref(m, {1, "ref"});
  const RunResult want = ref.run(x.data(), batch);
  for (const std::string& isa : rtest::optimized_isas()) {
    for (int threads : {1, 2}) {
      Session opt(m, {threads, isa, false, 0});
      const RunResult got = opt.run(x.data(), batch);
      ASSERT_EQ(got.int_logits, want.int_logits)
          << m.name << " " << isa << " threads=" << threads << " kernels: " << opt.kernel_names()[0];
      ASSERT_EQ(got.argmax, want.argmax);
    }
  }
}

Model conv_model(std::mt19937& rng, rtest::WeightKind k, int32_t cin, int32_t cout, int32_t h, int32_t w, int32_t kernel,
                 int32_t stride, int32_t pad, int32_t groups, bool output_layer) {
  Model m;
  m.name = "conv " + std::to_string(cin) + "->" + std::to_string(cout) + " k" + std::to_string(kernel) + " s" +
           std::to_string(stride) + " p" + std::to_string(pad) + " g" + std::to_string(groups) + " w" +
           std::to_string(k.bits) + (k.grid == quant::Grid::Odd ? "odd" : "");
  m.in_channels = cin;
  m.in_height = h;
  m.in_width = w;
  m.input = rtest::random_act(rng);
  Op c = make_conv2d(0, cin, cout, kernel, stride, pad, groups);
  rtest::fill_layer(rng, c, k, m.input, output_layer);
  const int32_t v = m.add(c);
  if (!output_layer) {
    const int32_t oh = (h + 2 * pad - kernel) / stride + 1, ow = (w + 2 * pad - kernel) / stride + 1;
    expose(m, v, cout * oh * ow);
  }
  return m;
}

}  // namespace

TEST(OpKernels, ConvMatchesReference) {
  if (rtest::optimized_isas().empty()) GTEST_SKIP() << "no optimized ISA level to compare (build, CPU or LOWBIT_ISA)";
  std::mt19937 rng(11);
  struct Case { int32_t cin, cout, h, w, kernel, stride, pad, groups; };
  const Case cases[] = {{1, 32, 9, 9, 3, 1, 1, 1},  {3, 5, 7, 6, 3, 2, 1, 1},  {8, 17, 5, 5, 1, 1, 0, 1},
                        {7, 16, 6, 7, 3, 1, 0, 1},  {4, 8, 6, 6, 3, 1, 1, 2},  {12, 12, 5, 5, 3, 1, 1, 12},
                        {16, 33, 4, 4, 3, 2, 1, 1}, {32, 64, 5, 5, 3, 1, 1, 1}, {9, 4, 8, 8, 5, 3, 2, 1},
                        {32, 32, 7, 7, 3, 2, 1, 32}, {16, 16, 6, 6, 5, 1, 2, 16},
                        // depthwise with 32-channel blocks, an 8-channel block and a scalar tail
                        {72, 72, 6, 5, 3, 1, 1, 72}, {45, 45, 5, 6, 3, 2, 1, 45}};
  for (const auto& k : rtest::all_weight_kinds()) {
    for (const Case& c : cases) {
      for (bool output_layer : {false, true}) {
        const Model m = conv_model(rng, k, c.cin, c.cout, c.h, c.w, c.kernel, c.stride, c.pad, c.groups, output_layer);
        compare(m, 3, 5);
        if (HasFatalFailure()) return;
        if (c.groups == c.cin && c.groups > 1) {  // depthwise at batch 1 as well
          compare(m, 1, 6);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

// Dilated convolutions (dense, grouped, depthwise; dilation 2 and 3, unequal [dh, dw]; stride 1 and 2;
// with padding): first the reference itself against the same conv with the dilated kernel written out
// (zero weights between the taps, dilation 1), then every optimized level against the reference.
TEST(OpKernels, DilatedConvMatchesReference) {
  std::mt19937 rng(17);
  struct Case { int32_t cin, cout, h, w, kernel, stride, pad, groups, dh, dw; };
  const Case cases[] = {{3, 8, 9, 9, 3, 1, 2, 1, 2, 2},     {1, 32, 11, 10, 3, 1, 1, 1, 2, 2},  // 1 channel (no stacked rows)
                        {8, 17, 10, 9, 3, 2, 3, 1, 3, 3},   {16, 33, 9, 11, 3, 1, 0, 1, 2, 3},
                        {4, 8, 8, 8, 3, 1, 2, 2, 2, 2},     {16, 32, 9, 9, 3, 2, 2, 4, 3, 1},   // grouped, dilation_w 1
                        {12, 12, 9, 8, 3, 1, 2, 12, 2, 2},  {72, 72, 10, 9, 3, 1, 3, 72, 3, 3},  // depthwise
                        {45, 45, 9, 10, 3, 2, 2, 45, 2, 3}, {16, 16, 12, 12, 5, 1, 4, 16, 2, 2},
                        {16, 16, 8, 9, 2, 1, 1, 16, 3, 2},  {5, 9, 7, 12, 1, 2, 0, 1, 2, 3},
                        // dilation_h only: the gather's runs of KW * C bytes, dilation_h rows apart
                        {8, 16, 9, 9, 3, 1, 2, 1, 2, 1},    {4, 8, 11, 9, 3, 2, 1, 1, 3, 1}};
  const bool optimized = !rtest::optimized_isas().empty();
  bool first_kind = true;
  for (const auto& k : rtest::all_weight_kinds()) {
    for (const Case& c : cases) {
      const int32_t eh = c.dh * (c.kernel - 1) + 1, ew = c.dw * (c.kernel - 1) + 1;
      const int32_t oh = (c.h + 2 * c.pad - eh) / c.stride + 1, ow = (c.w + 2 * c.pad - ew) / c.stride + 1;
      // int32 outputs for every weight kind; the requantized uint8 output (exposed through an identity
      // linear, slow in the reference kernels) for the first kind and outputs of at most 1100 values
      // only: the output stage knows no dilation.
      for (bool output_layer : {false, true}) {
        if (!output_layer && (!first_kind || c.cout * oh * ow > 1100)) continue;
        Model m;
        m.name = "conv " + std::to_string(c.cin) + "->" + std::to_string(c.cout) + " k" + std::to_string(c.kernel) +
                 " s" + std::to_string(c.stride) + " p" + std::to_string(c.pad) + " g" + std::to_string(c.groups) +
                 " d" + std::to_string(c.dh) + "x" + std::to_string(c.dw) + " w" + std::to_string(k.bits) +
                 (k.grid == quant::Grid::Odd ? "odd" : "");
        m.in_channels = c.cin;
        m.in_height = c.h;
        m.in_width = c.w;
        m.input = rtest::random_act(rng);
        Op conv = make_conv2d(0, c.cin, c.cout, c.kernel, c.stride, c.pad, c.groups, c.dh);
        conv.dilation_w = c.dw;
        rtest::fill_layer(rng, conv, k, m.input, output_layer);
        const int32_t v = m.add(conv);
        if (!output_layer) expose(m, v, c.cout * oh * ow);
        ASSERT_EQ(validate_model(m, m.name)[1], (ValueShape{c.cout, oh, ow})) << m.name;

        // The same conv with its taps spread out: kernel eh x ew, dilation 1, 8-bit integer weights
        // holding the same values (0 between the taps).
        Model spread = m;
        Op& s = spread.ops[0];
        s.kernel_h = eh;
        s.kernel_w = ew;
        s.dilation_h = s.dilation_w = 1;
        const int32_t cg = c.cin / c.groups;
        std::vector<int32_t> w(static_cast<size_t>(c.cout) * cg * eh * ew, 0);
        for (int32_t o = 0; o < c.cout; ++o)
          for (int32_t ch = 0; ch < cg; ++ch)
            for (int32_t kh = 0; kh < c.kernel; ++kh)
              for (int32_t kw = 0; kw < c.kernel; ++kw)
                w[((static_cast<size_t>(o) * cg + ch) * eh + kh * c.dh) * ew + kw * c.dw] =
                    conv.weight.value(((static_cast<size_t>(o) * cg + ch) * c.kernel + kh) * c.kernel + kw);
        set_weight_values(s.weight, 8, quant::Grid::Integer, w);
        if (output_layer) {
          const std::vector<float> x = rtest::random_input(m, 2, 7);
          const RunResult dilated = Session(m, {1, "ref"}).run(x.data(), 2);
          const RunResult spread_out = Session(spread, {1, "ref"}).run(x.data(), 2);
          ASSERT_EQ(dilated.int_logits, spread_out.int_logits) << m.name << ": reference vs the spread-out kernel";
        }

        if (!optimized) continue;
        compare(m, 3, 5);
        if (HasFatalFailure()) return;
        if (c.groups == c.cin && c.groups > 1) {  // depthwise at batch 1 as well
          compare(m, 1, 6);
          if (HasFatalFailure()) return;
        }
      }
    }
    first_kind = false;
  }
}

// Small-K convolutions whose im2col rows come from the stacked-rows image (C * KH <= 4, KW <= 4,
// no extra quads of K: conv1's 1-channel 3x3 and its relatives), alone and with a fused 2x2 or 2x1
// max pool; odd sizes, strides, paddings, input zero points at both clamp limits, batch 1, a few
// items and more items than one L2 slice.
TEST(OpKernels, SmallKConvStackedRowsMatchReference) {
  if (rtest::optimized_isas().empty()) GTEST_SKIP() << "no optimized ISA level to compare (build, CPU or LOWBIT_ISA)";
  std::mt19937 rng(13);
  struct Case { int32_t cin, cout, h, w, kernel, stride, pad, pool_h, pool_w; int64_t batch; };
  const Case cases[] = {{1, 32, 9, 9, 3, 1, 1, 2, 2, 3},   {1, 32, 11, 7, 3, 1, 1, 0, 0, 1}, {1, 17, 10, 9, 3, 2, 1, 2, 1, 2},
                        {1, 33, 8, 12, 3, 1, 0, 2, 2, 1},  {1, 5, 7, 7, 3, 1, 2, 0, 0, 3},   {2, 16, 9, 8, 2, 1, 1, 2, 2, 2},
                        {4, 8, 6, 5, 1, 1, 0, 2, 2, 3},    {3, 40, 5, 9, 1, 2, 0, 0, 0, 2},  {1, 16, 10, 10, 4, 1, 2, 2, 2, 2},
                        {1, 4, 5, 5, 1, 1, 0, 0, 0, 2},    {1, 16, 20, 20, 3, 1, 1, 2, 2, 41},
                        // padded rows of >= 16 bytes (the vector stacked-rows build): 16, 19, 30, 31, 32, 34
                        {1, 8, 16, 16, 1, 1, 0, 0, 0, 2},  {1, 16, 15, 17, 3, 1, 1, 2, 2, 1}, {1, 8, 16, 28, 3, 1, 1, 2, 2, 2},
                        {1, 8, 6, 31, 3, 2, 0, 0, 0, 2},   {1, 16, 5, 32, 1, 1, 0, 2, 1, 3}, {1, 4, 9, 30, 4, 1, 2, 2, 2, 1}};
  int index = 0;
  for (const auto& k : rtest::all_weight_kinds()) {
    for (const Case& c : cases) {
      Model m = conv_model(rng, k, c.cin, c.cout, c.h, c.w, c.kernel, c.stride, c.pad, 1, true);
      m.ops.clear();
      m.input.zero_point = index % 3 == 0 ? m.input.qmin : index % 3 == 1 ? m.input.qmax : m.input.zero_point;
      ++index;
      Op conv = make_conv2d(0, c.cin, c.cout, c.kernel, c.stride, c.pad);
      rtest::fill_layer(rng, conv, k, m.input, false);
      int32_t v = m.add(conv);
      int32_t oh = (c.h + 2 * c.pad - c.kernel) / c.stride + 1, ow = (c.w + 2 * c.pad - c.kernel) / c.stride + 1;
      if (c.pool_h > 0) {
        Op mp = make_max_pool(v, 2, 2);
        mp.kernel_h = mp.stride_h = c.pool_h;
        mp.kernel_w = mp.stride_w = c.pool_w;
        mp.out = m.ops.back().out;
        v = m.add(mp);
        oh /= c.pool_h;
        ow /= c.pool_w;
      }
      m.name += c.pool_h > 0 ? " + max pool" : "";
      expose(m, v, c.cout * oh * ow);
      compare(m, c.batch, static_cast<uint32_t>(index));
      if (HasFatalFailure()) return;
    }
  }
}

TEST(OpKernels, LinearMatchesReference) {
  if (rtest::optimized_isas().empty()) GTEST_SKIP() << "no optimized ISA level to compare (build, CPU or LOWBIT_ISA)";
  std::mt19937 rng(12);
  for (const auto& k : rtest::all_weight_kinds()) {
    for (int32_t in : {1, 2, 15, 16, 17, 63, 300}) {
      for (int32_t out : {1, 8, 10, 17, 40}) {
        for (bool output_layer : {false, true}) {
          Model m;
          m.name = "linear " + std::to_string(in) + "->" + std::to_string(out);
          m.in_channels = in;
          m.input = rtest::random_act(rng);
          Op fc = make_linear(0, in, out);
          rtest::fill_layer(rng, fc, k, m.input, output_layer);
          const int32_t v = m.add(fc);
          if (!output_layer) expose(m, v, out);
          for (int64_t batch : {1, 5}) {
            compare(m, batch, static_cast<uint32_t>(in * 100 + out));
            if (HasFatalFailure()) return;
          }
        }
      }
    }
  }
}

TEST(OpKernels, PoolsAndAddMatchReference) {
  if (rtest::optimized_isas().empty()) GTEST_SKIP() << "no optimized ISA level to compare (build, CPU or LOWBIT_ISA)";
  for (uint32_t seed = 0; seed < 20; ++seed) {
    std::mt19937 rng(seed);
    Model m;
    m.name = "pools " + std::to_string(seed);
    m.in_channels = seed % 2 == 0 ? 5 : 37;  // 37: vector steps of 16 or 32 channels and a tail
    m.in_height = 9;
    m.in_width = 8;
    m.input = rtest::random_act(rng);
    Op mp = make_max_pool(0, 3, 2, 1);
    mp.out = m.input;
    const int32_t a = m.add(mp);
    Op ap = make_avg_pool(a, 3, 1, 1);
    ap.out = rtest::random_act(rng);
    const int32_t b = m.add(ap);
    Op add = make_add(a, b);
    add.out = rtest::random_act(rng, true);
    const int32_t c = m.add(add);
    Op gap = make_global_avg_pool(c);
    gap.out = rtest::random_act(rng);
    const int32_t d = m.add(gap);
    expose(m, d, m.in_channels);
    compare(m, 4, seed);
    if (HasFatalFailure()) return;
  }
}

// The vector input quantization equals quant::quantize_integer on special values (NaN, infinities,
// ties, negative zero, huge) and random ones, with and without a channel stride.
TEST(OpKernels, InputQuantizationMatchesScalar) {
  if (rtest::optimized_isas().empty()) GTEST_SKIP() << "no optimized ISA level to compare (build, CPU or LOWBIT_ISA)";
  std::mt19937 rng(3);
  std::vector<float> x = {std::nanf(""), INFINITY, -INFINITY, -0.0f, 0.0f, 1e30f, -1e30f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f};
  for (int i = 0; i < 1000; ++i) x.push_back(std::uniform_real_distribution<float>(-3.0f, 3.0f)(rng));
  for (int i = 0; i < 64; ++i) x.push_back(0.1f * (i - 32) + 0.05f);  // near-ties after division by 0.1
  for (float scale : {0.1f, 1.0f / 255.0f, 0.5f, 0.0137f})
    for (int32_t zp : {0, 7, 128, 255})
      for (int32_t qmax : {15, 255}) {
        const int32_t z = std::min(zp, qmax);
        for (int64_t stride : {1, 3}) {
          for (const std::string& isa : rtest::optimized_isas()) {
            const Kernel<QuantizeInputFn> k = isa_kernels(parse_isa(isa)).quantize.quantize_input;
            std::vector<uint8_t> got(x.size() * stride, 0xEE);
            k.fn(x.data(), static_cast<int64_t>(x.size()), scale, z, 0, qmax, got.data(), stride);
            for (size_t i = 0; i < x.size(); ++i)
              ASSERT_EQ(got[i * stride], quant::quantize_integer(x[i], scale, z, 0, qmax))
                  << k.name << " x=" << x[i] << " scale=" << scale;
          }
        }
      }
}

// AVX2 int8 dispatch: the vpmaddubsw kernel (u8_w8p) runs a layer only when its weights and input
// range are proven not to saturate the int16 pair sums; a layer with one pair that would saturate
// runs the s16 kernel. Results equal the reference either way, including inputs at the clamp limit.
TEST(OpKernels, Avx2Int8PairBoundDispatch) {
  if (!cpu_supports(Isa::Avx2)) GTEST_SKIP() << "CPU lacks AVX2";
  std::mt19937 rng(21);
  struct Case { int32_t qmax; int32_t wmax; bool saturating_pair; const char* want; };
  const Case cases[] = {{255, 64, false, "u8_w8p_gemm"},   // 7-bit-range weights, 8-bit activations
                        {255, 64, true, "s16_w8_gemm"},    // ... but one adjacent pair (-128, -100)
                        {255, 128, false, "s16_w8_gemm"},  // full-range weights
                        {127, 128, true, "u8_w8p_gemm"},   // 7-bit activations: any int8 pair fits
                        {255, 65, false, "s16_w8_gemm"}};  // 255 * (65 + 65) > 32767
  for (bool linear : {false, true})
    for (const Case& c : cases) {
      Model m;
      m.input = {0.05f, 3, 0, c.qmax};
      Op op = linear ? make_linear(0, 36, 20) : make_conv2d(0, 4, 20, 3, 1, 1);
      if (linear) {
        m.in_channels = 36;
      } else {
        m.in_channels = 4;
        m.in_height = m.in_width = 6;
      }
      rtest::fill_layer(rng, op, {8, quant::Grid::Integer}, m.input, false);
      std::vector<int32_t> w(static_cast<size_t>(op.weight_count()));
      for (auto& v : w) v = std::uniform_int_distribution<int32_t>(-std::min(c.wmax, 127), c.wmax == 128 ? 127 : c.wmax)(rng);
      if (c.wmax == 65) std::fill(w.begin(), w.end(), 65);
      if (c.wmax == 128) w[1] = -128;
      if (c.saturating_pair) {
        // packed k 0 and 1 (both orders put them side by side): linear columns 0, 1; conv (kh 0,
        // kw 0) channels 0 and 1, i.e. PyTorch indices [o][0][0][0] and [o][1][0][0]
        const size_t second = linear ? 1 : 9;
        w[static_cast<size_t>(op.weight_count() / op.out_channels) * 7] = -128;
        w[static_cast<size_t>(op.weight_count() / op.out_channels) * 7 + second] = -100;
      }
      set_weight_values(op.weight, 8, quant::Grid::Integer, w);
      const int32_t v = m.add(op);
      m.name = std::string(linear ? "linear" : "conv") + " qmax " + std::to_string(c.qmax) + " wmax " + std::to_string(c.wmax) +
               (c.saturating_pair ? " + saturating pair" : "");
      expose(m, v, linear ? 20 : 20 * 36);
      Session s(m, {1, "avx2"});
      EXPECT_NE(s.kernel_names()[0].find(c.want), std::string::npos) << m.name << ": " << s.kernel_names()[0];
      compare(m, 5, 77);
      // every input at the clamp limit (x = qmax, the worst case for the pair sums)
      const int64_t items = 3, size = int64_t{m.in_channels} * m.in_height * m.in_width;
      const std::vector<float> high(static_cast<size_t>(items * size), 1e4f);
      Session ref(m, {1, "ref"});
      EXPECT_EQ(s.run(high.data(), items).int_logits, ref.run(high.data(), items).int_logits) << m.name;
      if (HasFatalFailure()) return;
    }
}
