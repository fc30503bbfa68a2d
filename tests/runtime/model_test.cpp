// Whole random graphs: every optimized level (1 and 2 threads) equals the reference, and both equal an independent
// float64 evaluation of the documented integer formulas in NCHW layout (docs/runtime.md).
#include <gtest/gtest.h>

#include <cmath>

#include "quant/add_requantize.h"
#include "quant/quantize.h"
#include "runtime/reference_cnn.h"
#include "runtime/session.h"
#include "test_models.h"

using namespace lowbit::runtime;
using namespace lowbit;

namespace {

using rtest::optimized_isas;

// Exact in double for these small models: |acc| < 2^24 and multipliers < 2^31, so every product
// below is an integer under 2^53, and division by 2^shift is exact.
double requant_f64(double acc, quant::FixedPointMultiplier m, const ActQParams& q) {
  double y = std::nearbyint(acc * m.multiplier / std::ldexp(1.0, m.shift)) + q.zero_point;
  return std::min<double>(std::max<double>(y, q.qmin), q.qmax);
}

struct Tensor {
  int c, h, w;
  std::vector<double> v;  // NCHW for one item
  double at(int ci, int y, int x) const { return v[(static_cast<size_t>(ci) * h + y) * w + x]; }
};

std::vector<double> eval_f64(const Model& m, const float* x) {
  std::vector<Tensor> vals;
  Tensor in{m.in_channels, m.in_height, m.in_width, {}};
  for (int i = 0; i < in.c * in.h * in.w; ++i)
    in.v.push_back(quant::quantize_integer(x[i], m.input.scale, m.input.zero_point, m.input.qmin, m.input.qmax));
  vals.push_back(in);
  std::vector<const ActQParams*> qp{&m.input};
  for (const Op& op : m.ops) {
    const Tensor& a = vals[op.inputs[0]];
    const ActQParams& qa = *qp[op.inputs[0]];
    Tensor o{};
    if (op.kind == OpKind::Conv2d || op.kind == OpKind::Linear) {
      const bool conv = op.kind == OpKind::Conv2d;
      const int kh = conv ? op.kernel_h : 1, kw = conv ? op.kernel_w : 1, sh = conv ? op.stride_h : 1,
                sw = conv ? op.stride_w : 1, ph = conv ? op.pad_h : 0, pw = conv ? op.pad_w : 0, g = conv ? op.groups : 1;
      o = {op.out_channels, (a.h + 2 * ph - kh) / sh + 1, (a.w + 2 * pw - kw) / sw + 1, {}};
      const int cg = op.in_channels / g, og = op.out_channels / g;
      for (int oc = 0; oc < o.c; ++oc)
        for (int y = 0; y < o.h; ++y)
          for (int xx = 0; xx < o.w; ++xx) {
            double acc = op.bias_q[oc];
            for (int c = 0; c < cg; ++c)
              for (int i = 0; i < kh; ++i)
                for (int j = 0; j < kw; ++j) {
                  const int iy = y * sh - ph + i, ix = xx * sw - pw + j;
                  const double xv = (iy < 0 || iy >= a.h || ix < 0 || ix >= a.w) ? qa.zero_point
                                                                                 : a.at((oc / og) * cg + c, iy, ix);
                  acc += (xv - qa.zero_point) * op.weight.value(((static_cast<size_t>(oc) * cg + c) * kh + i) * kw + j);
                }
            o.v.push_back(op.output_layer ? acc : requant_f64(acc, op.multipliers[oc], op.out));
          }
    } else if (op.kind == OpKind::MaxPool2d || op.kind == OpKind::AvgPool2d || op.kind == OpKind::GlobalAvgPool) {
      const bool global = op.kind == OpKind::GlobalAvgPool;
      const int kh = global ? a.h : op.kernel_h, kw = global ? a.w : op.kernel_w, sh = global ? 1 : op.stride_h,
                sw = global ? 1 : op.stride_w, ph = global ? 0 : op.pad_h, pw = global ? 0 : op.pad_w;
      o = {a.c, (a.h + 2 * ph - kh) / sh + 1, (a.w + 2 * pw - kw) / sw + 1, {}};
      for (int c = 0; c < o.c; ++c)
        for (int y = 0; y < o.h; ++y)
          for (int xx = 0; xx < o.w; ++xx) {
            double best = -1, sum = 0, count = 0;
            for (int i = 0; i < kh; ++i)
              for (int j = 0; j < kw; ++j) {
                const int iy = y * sh - ph + i, ix = xx * sw - pw + j;
                if (iy < 0 || iy >= a.h || ix < 0 || ix >= a.w) continue;
                best = std::max(best, a.at(c, iy, ix));
                sum += a.at(c, iy, ix) - qa.zero_point;
                count += 1;
              }
            if (op.kind == OpKind::MaxPool2d) {
              o.v.push_back(best);
            } else {
              o.v.push_back(requant_f64(sum, quant::make_fixed_point_multiplier(double(qa.scale) / (double(op.out.scale) * count)), op.out));
            }
          }
    } else if (op.kind == OpKind::Add) {
      const Tensor& b = vals[op.inputs[1]];
      const ActQParams& qb = *qp[op.inputs[1]];
      const auto am = quant::make_add_multipliers(double(qa.scale) / op.out.scale, double(qb.scale) / op.out.scale);
      o = {a.c, a.h, a.w, {}};
      for (size_t i = 0; i < a.v.size(); ++i) {
        const double s = (a.v[i] - qa.zero_point) * am.a + (b.v[i] - qb.zero_point) * am.b;
        double y = std::nearbyint(s / std::ldexp(1.0, am.shift)) + op.out.zero_point;
        o.v.push_back(std::min<double>(std::max<double>(y, op.out.qmin), op.out.qmax));
      }
    } else if (op.kind == OpKind::Lookup) {
      o = {a.c, a.h, a.w, {}};
      for (double q : a.v) o.v.push_back(op.table.at(static_cast<size_t>(q)));
    } else if (op.kind == OpKind::Concat) {  // NCHW: the inputs one after another, each through its table
      o = {0, a.h, a.w, {}};
      for (size_t k = 0; k < op.inputs.size(); ++k) {
        const Tensor& t = vals[op.inputs[k]];
        o.c += t.c;
        for (double q : t.v) o.v.push_back(op.table.at(256 * k + static_cast<size_t>(q)));
      }
    } else {  // Flatten: NCHW already is C-major
      o = {a.c * a.h * a.w, 1, 1, a.v};
    }
    vals.push_back(o);
    qp.push_back(&op.out);
  }
  return vals.back().v;
}

// What validate_model says about `m` (as file "t.lbq"), or "(valid)".
std::string validation_message(const Model& m) {
  try {
    validate_model(m, "t.lbq");
  } catch (const Error& e) {
    return std::string(e.what());
  }
  return std::string("(valid)");
}

}  // namespace

TEST(Model, RandomGraphsMatchReferenceAndFloat64) {
  for (uint32_t seed = 0; seed < 40; ++seed) {
    const Model m = rtest::random_graph(seed);
    const int64_t batch = 1 + seed % 4;
    const std::vector<float> x = rtest::random_input(m, batch, seed + 1000);
    Session ref(m, {1, "ref"});
    const RunResult want = ref.run(x.data(), batch);
    const int64_t item = int64_t{m.in_channels} * m.in_height * m.in_width;
    for (int64_t n = 0; n < batch; ++n) {
      const std::vector<double> f = eval_f64(m, x.data() + n * item);
      ASSERT_EQ(static_cast<int64_t>(f.size()), want.classes);
      for (int32_t k = 0; k < want.classes; ++k)
        ASSERT_EQ(want.int_logits[n * want.classes + k], static_cast<int32_t>(f[k])) << m.name << " item " << n << " logit " << k;
    }
    for (const std::string& isa : optimized_isas())
      for (int threads : {1, 2}) {
        Session opt(m, {threads, isa, false, 0});
        const RunResult got = opt.run(x.data(), batch);
        ASSERT_EQ(got.int_logits, want.int_logits) << m.name << " " << isa << " threads " << threads;
        ASSERT_EQ(got.logits, want.logits);
        ASSERT_EQ(got.argmax, want.argmax);
      }
  }
}

// Batches split into pieces that run in parallel, one workspace per thread (batch >= threads), and
// in several L2 slices: uneven pieces, more pieces than threads, odd thread counts, the fused
// conv + pool and stacked-rows paths of the reference CNN, float and uint8 input, and the
// per-op profile (which must cover every op whatever the split).
TEST(Model, BatchPiecesAcrossThreadsMatchReference) {
  if (optimized_isas().empty()) GTEST_SKIP() << "no optimized ISA level to compare (build, CPU or LOWBIT_ISA)";
  std::vector<Model> models = {random_reference_cnn(3, 8), random_reference_cnn(4, 4, quant::Grid::Odd)};
  for (uint32_t seed : {5u, 6u}) models.push_back(rtest::random_graph(seed));
  for (const Model& m : models) {
    const int64_t item = int64_t{m.in_channels} * m.in_height * m.in_width;
    for (int64_t batch : {2, 3, 25}) {
      const std::vector<float> x = rtest::random_input(m, batch, static_cast<uint32_t>(batch));
      Session ref(m, {1, "ref"});
      const RunResult want = ref.run(x.data(), batch);
      for (const std::string& isa : optimized_isas())
        for (int threads : {1, 2, 3}) {
          Session opt(m, {threads, isa, true, 0});
          const RunResult got = opt.run(x.data(), batch);
          ASSERT_EQ(got.batch, batch);
          ASSERT_EQ(got.int_logits, want.int_logits) << m.name << " " << isa << " threads " << threads << " batch " << batch;
          ASSERT_EQ(got.logits, want.logits);
          ASSERT_EQ(got.argmax, want.argmax);
          ASSERT_EQ(opt.op_times_ms().size(), m.ops.size() + 1);
          if (m.input.scale == 1.0f / 255.0f && m.input.zero_point == 0) {
            std::vector<uint8_t> px(static_cast<size_t>(batch * item));
            std::vector<float> xf(px.size());
            for (size_t i = 0; i < px.size(); ++i) {
              px[i] = static_cast<uint8_t>((i * 131) % 256);
              xf[i] = static_cast<float>(px[i]) / 255.0f;
            }
            EXPECT_EQ(opt.run_u8(px.data(), batch).int_logits, ref.run(xf.data(), batch).int_logits);
          }
        }
    }
  }
}

TEST(Model, ArgmaxTiesGoToLowestIndexAndLogitsAreScaled) {
  Model m;
  m.in_channels = 3;
  m.input = {0.1f, 0, 0, 255};
  Op fc = make_linear(0, 3, 4);
  set_weight_values(fc.weight, 8, quant::Grid::Integer, {1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1});
  fc.output_layer = true;
  fc.bias_q = {0, 0, 0, 0};
  fc.out_scale = {0.5f, 1.0f, 0.5f, 0.25f};
  m.add(fc);
  Session s(m, {1, "ref"});
  const float x[3] = {0.2f, 0.1f, 0.4f};  // codes 2, 1, 4
  const RunResult r = s.run(x, 1);
  EXPECT_EQ(r.int_logits, (std::vector<int32_t>{2, 1, 2, 4}));
  EXPECT_EQ(r.logits, (std::vector<float>{1.0f, 1.0f, 1.0f, 1.0f}));
  EXPECT_EQ(r.argmax[0], 0);
}

TEST(Model, Uint8PixelFastPathEqualsFloatPath) {
  Model m = rtest::random_graph(3);
  m.input = {1.0f / 255.0f, 0, 0, 255};
  const int64_t batch = 3, n = batch * m.in_channels * m.in_height * m.in_width;
  std::vector<uint8_t> px(static_cast<size_t>(n));
  std::vector<float> xf(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    px[i] = static_cast<uint8_t>((i * 37) % 256);
    xf[i] = static_cast<float>(px[i]) / 255.0f;
  }
  std::vector<std::string> isas = optimized_isas();
  isas.push_back("ref");
  for (const std::string& isa : isas) {
    Session s(m, {2, isa, false, 0});
    EXPECT_EQ(s.run_u8(px.data(), batch).int_logits, s.run(xf.data(), batch).int_logits);
  }
  Model other = rtest::random_graph(4);
  Session s(other, {1, "ref"});
  EXPECT_THROW(s.run_u8(px.data(), 1), Error);
}

TEST(Model, ValidationNamesTheProblem) {
  Model m = rtest::random_graph(5);
  m.ops[1].inputs[0] = 7;
  try {
    validate_model(m, "x.lbq");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.lbq: op 1"), std::string::npos) << e.what();
  }
}

// A lookup op's table: 256 codes, each inside the op's output range; no other op has one.
TEST(Model, LookupTablesAreValidated) {
  const Model good = rtest::random_graph(3);
  size_t lookup = good.ops.size();
  for (size_t i = 0; i < good.ops.size(); ++i)
    if (good.ops[i].kind == OpKind::Lookup) lookup = i;
  ASSERT_LT(lookup, good.ops.size());
  EXPECT_EQ(validation_message(good), "(valid)");
  Model short_table = good;
  short_table.ops[lookup].table.pop_back();
  EXPECT_NE(validation_message(short_table).find("table has 255 entries, expected 256"), std::string::npos) << validation_message(short_table);
  Model out_of_range = good;
  ActQParams& q = out_of_range.ops[lookup].out;
  q.qmin = 0;
  q.qmax = 200;
  q.zero_point = std::min(q.zero_point, 200);
  out_of_range.ops[lookup].table.assign(256, 0);
  out_of_range.ops[lookup].table[17] = 201;
  EXPECT_NE(validation_message(out_of_range).find("table[17] = 201 is outside the output range"), std::string::npos)
      << validation_message(out_of_range);
  Model stray = good;
  stray.ops[0].table.assign(256, 0);
  EXPECT_NE(validation_message(stray).find("only a lookup or concat op has a table"), std::string::npos) << validation_message(stray);
}

// A concat op: 2..64 inputs of equal H and W, 256 table codes per input inside the output range.
TEST(Model, ConcatOpsAreValidated) {
  const Model good = rtest::random_graph(3);
  size_t cat = good.ops.size();
  for (size_t i = 0; i < good.ops.size(); ++i)
    if (good.ops[i].kind == OpKind::Concat) cat = i;
  ASSERT_LT(cat, good.ops.size());
  EXPECT_EQ(validation_message(good), "(valid)");
  Model one_input = good;
  one_input.ops[cat].inputs.pop_back();
  EXPECT_NE(validation_message(one_input).find("reads 1 values, expected 2..64"), std::string::npos) << validation_message(one_input);
  Model short_table = good;
  short_table.ops[cat].table.resize(256);
  EXPECT_NE(validation_message(short_table).find("table has 256 entries, expected 256 per input (512)"), std::string::npos)
      << validation_message(short_table);
  // Some earlier value whose height or width differs from the concat's first input.
  const std::vector<ValueShape> shapes = validate_model(good);
  const ValueShape first = shapes[good.ops[cat].inputs[0]];
  int32_t other = -1;
  for (int32_t v = 0; v <= static_cast<int32_t>(cat); ++v)
    if (shapes[v].h != first.h || shapes[v].w != first.w) other = v;
  ASSERT_GE(other, 0);
  Model other_size = good;
  other_size.ops[cat].inputs[1] = other;
  EXPECT_NE(validation_message(other_size).find("concatenated values need equal H and W"), std::string::npos) << validation_message(other_size);
}

TEST(Isa, SelectionAndErrors) {
  EXPECT_THROW(parse_isa("sse9"), Error);
  const Isa all[] = {Isa::Ref, Isa::Avx2, Isa::Avx512Vnni, Isa::Neon, Isa::NeonDot};
  for (Isa isa : all) EXPECT_EQ(parse_isa(isa_name(isa)), isa);
  // A level this build or CPU lacks is a clear error that says which and what to do.
  const Model m = rtest::random_graph(1);
  for (Isa isa : all) {
    if (cpu_supports(isa)) continue;
    try {
      Session s(m, {1, isa_name(isa)});
      ADD_FAILURE() << isa_name(isa) << " should not run here";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(std::string("'") + isa_name(isa) + "'"), std::string::npos) << msg;
      const char* why = build_has_isa(isa) ? "not supported by this CPU" : "not in this build";
      EXPECT_NE(msg.find(why), std::string::npos) << msg;
      EXPECT_NE(msg.find("LOWBIT_ISA"), std::string::npos) << msg;
    }
  }
  // x86-64 builds have avx2 / avx512vnni, aarch64 builds neon / neondot, never both.
  EXPECT_FALSE(build_has_isa(Isa::Avx2) && build_has_isa(Isa::Neon));
  EXPECT_EQ(build_has_isa(Isa::Avx2), build_has_isa(Isa::Avx512Vnni));
  EXPECT_EQ(build_has_isa(Isa::Neon), build_has_isa(Isa::NeonDot));
  // The level choice, restoring the caller's LOWBIT_ISA (ctest runs this binary once per level).
  const char* env = std::getenv("LOWBIT_ISA");
  const std::string saved = env != nullptr ? env : "";
  ::unsetenv("LOWBIT_ISA");
  EXPECT_EQ(select_isa(), supported_isas().front());
  EXPECT_EQ(supported_isas().back(), Isa::Ref);
  ::setenv("LOWBIT_ISA", "bogus", 1);
  EXPECT_THROW(select_isa(), Error);
  ::setenv("LOWBIT_ISA", "ref", 1);
  EXPECT_EQ(select_isa(), Isa::Ref);
  for (Isa isa : supported_isas()) {
    ::setenv("LOWBIT_ISA", isa_name(isa), 1);
    EXPECT_EQ(select_isa(), isa);
  }
  if (saved.empty()) {
    ::unsetenv("LOWBIT_ISA");
  } else {
    ::setenv("LOWBIT_ISA", saved.c_str(), 1);
  }
}

// The worked example of docs/runtime.md, on every ISA.
TEST(Model, DocumentedWorkedExample) {
  Model m;
  m.in_channels = 3;
  m.input = {0.05f, 10, 0, 255};
  Op fc = make_linear(0, 3, 1);
  set_weight_values(fc.weight, 4, quant::Grid::Integer, {3, -8, 2});
  set_requantization(fc, 0.05f, {0.1f}, {0.3f}, ActQParams{0.2f, 0, 0, 255});
  EXPECT_EQ(fc.bias_q[0], 60);
  EXPECT_EQ(fc.multipliers[0].multiplier, 1717986944);  // from the float32 scales
  EXPECT_EQ(fc.multipliers[0].shift, 36);
  const int32_t v = m.add(fc);
  Op out = make_linear(v, 1, 1);  // identity output layer exposes y - z_y
  set_weight_values(out.weight, 8, quant::Grid::Integer, {1});
  set_output_layer(out, 0.2f, {1.0f}, {0.0f});
  m.add(out);
  const float x[3] = {0.1f, 0.0f, 1.0f};  // codes 12, 10, 30
  std::vector<std::string> isas = optimized_isas();
  isas.push_back("ref");
  for (const std::string& isa : isas) {
    Session s(m, {1, isa});
    EXPECT_EQ(s.run(x, 1).int_logits[0], 3) << isa;
  }
  // As an output layer: integer logit 106, float logit 106 * 0.005.
  Model m2 = m;
  m2.ops.resize(1);
  set_output_layer(m2.ops[0], 0.05f, {0.1f}, {0.3f});
  Session s2(m2, {1, "ref"});
  const RunResult r = s2.run(x, 1);
  EXPECT_EQ(r.int_logits[0], 106);
  EXPECT_FLOAT_EQ(r.logits[0], 106 * (0.05f * 0.1f));
}
