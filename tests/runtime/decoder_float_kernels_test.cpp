// The decoder's float kernels (kernels/decoder_float_kernels.h): every level against the
// reference, bit for bit (the allowed deviation is none: lanes run across outputs and each does
// the reference's operations in its order), on sizes around the vector widths; and the session's
// kernel list names the level's real kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "runtime/decoder_session.h"
#include "runtime/kernels/decoder_float_kernels.h"
#include "runtime/kernels/token_gemm.h"
#include "test_models.h"
#include "transformer_test_models.h"

using namespace lowbit;
using namespace lowbit::runtime;

namespace {

std::vector<float> normal(std::mt19937& rng, size_t n, float sd = 1.0f) {
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

}  // namespace

TEST(DecoderFloatKernels, AttentionRowEqualsReferenceOnEveryLevel) {
  const DecoderFloatKernels& r = decoder_float_kernels(Isa::Ref);
  for (const std::string& name : rtest::optimized_isas()) {
    const DecoderFloatKernels& k = decoder_float_kernels(parse_isa(name));
    std::mt19937 rng(1);
    for (int32_t hd : {8, 16, 20, 32, 64})
      for (int32_t heads : {1, 3}) {
        const int32_t context = 41, d = hd * heads;
        const std::vector<float> kc = normal(rng, static_cast<size_t>(context) * d, 2.0f);
        const std::vector<float> vc = normal(rng, kc.size());
        std::vector<float> kt(kc.size());
        for (int32_t j = 0; j < context; ++j)
          for (int32_t i = 0; i < d; ++i) kt[static_cast<size_t>(i) * context + j] = kc[static_cast<size_t>(j) * d + i];
        const std::vector<float> q = normal(rng, static_cast<size_t>(d), 3.0f);
        const float inv_scale = std::sqrt(static_cast<float>(hd));
        for (int64_t p : {0, 1, 7, 8, 15, 16, 17, 31, 40})
          for (int32_t h = 0; h < heads; ++h) {
            std::vector<float> sa(context), sb(context), oa(hd), ob(hd);
            r.attention_row.fn(q.data() + h * hd, kc.data() + h * hd, kt.data() + static_cast<size_t>(h) * hd * context,
                               context, vc.data() + h * hd, d, p, hd, inv_scale, sa.data(), oa.data());
            k.attention_row.fn(q.data() + h * hd, kc.data() + h * hd, kt.data() + static_cast<size_t>(h) * hd * context,
                               context, vc.data() + h * hd, d, p, hd, inv_scale, sb.data(), ob.data());
            ASSERT_EQ(oa, ob) << k.attention_row.name << " hd " << hd << " p " << p << " head " << h;
          }
      }
  }
}

TEST(DecoderFloatKernels, HeadLinearEqualsReferenceOnEveryLevelAndSplit) {
  const DecoderFloatKernels& r = decoder_float_kernels(Isa::Ref);
  for (const std::string& name : rtest::optimized_isas()) {
    const DecoderFloatKernels& k = decoder_float_kernels(parse_isa(name));
    std::mt19937 rng(2);
    for (int32_t in : {1, 17, 128})
      for (int32_t out : {1, 15, 31, 33, 64, 100, 256})
        for (int64_t rows : {1, 3}) {
          const std::vector<float> x = normal(rng, static_cast<size_t>(rows * in));
          const std::vector<float> wt = normal(rng, static_cast<size_t>(in) * out, 0.2f);
          std::vector<float> a(static_cast<size_t>(rows * out)), b(a.size());
          r.linear.fn(x.data(), rows, wt.data(), in, out, 0, out, a.data());
          for (int32_t step : {out, k.linear_o_block}) {
            for (int32_t o0 = 0; o0 < out; o0 += step)
              k.linear.fn(x.data(), rows, wt.data(), in, out, o0, std::min(out, o0 + step), b.data());
            ASSERT_EQ(a, b) << k.linear.name << " in " << in << " out " << out << " step " << step;
          }
        }
  }
}

TEST(DecoderFloatKernels, TokenQuantizeEqualsReferenceIncludingNanAndZeroRows) {
  const TokenGemmConfig& r = token_gemm_config(Isa::Ref);
  for (const std::string& name : rtest::optimized_isas()) {
    const TokenGemmConfig& k = token_gemm_config(parse_isa(name));
    std::mt19937 rng(3);
    for (int32_t in : {1, 5, 16, 33, 128, 352})
      for (int32_t group : {in, 32, 20}) {
        const int32_t gs = std::min(group, in), groups = (in + gs - 1) / gs, kp = token_gemm_padded_group(gs);
        for (int variant = 0; variant < 5; ++variant) {
          std::vector<float> x = normal(rng, static_cast<size_t>(in), 4.0f);
          if (variant == 1) std::fill(x.begin(), x.end(), 0.0f);
          if (variant == 2) x[static_cast<size_t>(in / 2)] = NAN;
          if (variant == 3) x[0] = -x[in - 1] * 3.0f, x[in - 1] = 0.5f;  // ties near the extremes
          if (variant == 4) x[static_cast<size_t>(in / 3)] = -INFINITY;  // s_t = inf: codes 0
          std::vector<int8_t> qa(static_cast<size_t>(groups * kp), 99), qb(qa.size(), 77);
          const float sa = r.quantize(x.data(), in, gs, groups, kp, qa.data());
          const float sb = k.quantize(x.data(), in, gs, groups, kp, qb.data());
          ASSERT_EQ(sa, sb) << k.quantize_name << " in " << in;
          ASSERT_EQ(qa, qb) << k.quantize_name << " in " << in << " group " << gs << " variant " << variant;
        }
      }
  }
}

TEST(DecoderFloatKernels, SessionListsTheLevelsRealKernels) {
  for (const std::string& isa : [] {
         std::vector<std::string> v{"ref"};
         for (const std::string& n : rtest::optimized_isas()) v.push_back(n);
         return v;
       }()) {
    DecoderOptions o;
    o.isa = isa;
    DecoderSession s(rtest::random_decoder(2, rtest::kFormats[1], 32), o);
    const std::vector<std::string> names = s.kernel_names();
    const TokenGemmConfig& g = token_gemm_config(parse_isa(isa));
    const DecoderFloatKernels& f = decoder_float_kernels(parse_isa(isa));
    ASSERT_FALSE(names.empty());
    EXPECT_EQ(names[0], g.name);
    std::string all;
    for (const auto& n : names) all += n + "\n";
    for (const char* want : {g.epilogue_name, f.rmsnorm.name, f.attention_row.name, f.swiglu.name, f.linear.name})
      EXPECT_NE(all.find(want), std::string::npos) << want << " missing for " << isa << ":\n" << all;
    if (isa != "ref") {  // every optimized level has its own token kernels (none falls back to ref)
      EXPECT_EQ(g.isa, parse_isa(isa));
      EXPECT_NE(std::string(g.name).find("__" + isa), std::string::npos) << g.name;
      EXPECT_EQ(f.isa, parse_isa(isa));
      EXPECT_EQ(std::string(f.attention_row.name).find("ref::"), std::string::npos) << f.attention_row.name;
      EXPECT_EQ(std::string(f.linear.name).find("ref::"), std::string::npos) << f.linear.name;
    }
  }
}
