// The decoder runtime (decoder_model.h, decoder_session.h, runtime/ops/, kernels/token_gemm.h):
// every token-GEMM level bit-exact against the reference for every weight format and grouping,
// the dynamic-quant linear op against its formula, KV-cache decoding against full recompute,
// the version-2 file format (round trip, truncation, corruption) and text helpers. Tiny sizes.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>

#include "base/error.h"
#include "quant/per_token.h"
#include "runtime/decoder_model_file.h"
#include "runtime/decoder_session.h"
#include "runtime/kernels/token_gemm.h"
#include "runtime/model_file.h"
#include "runtime/ops/dynamic_quant_linear_op.h"
#include "runtime/text_generation.h"
#include "test_models.h"
#include "transformer_test_models.h"

using namespace lowbit;
using namespace lowbit::runtime;
using rtest::Format;
using rtest::kFormats;
using rtest::random_decoder;
using rtest::random_floats;
using rtest::random_quant_linear;
using rtest::tmp_file;

namespace {

// The op's formula written out without the kernels' padded layout.
std::vector<float> linear_formula(const QuantLinear& w, const std::vector<float>& x, int64_t rows) {
  const std::vector<int8_t> wv = w.values();
  const int32_t G = w.groups();
  std::vector<float> y(static_cast<size_t>(rows) * w.out_features);
  std::vector<int8_t> q(static_cast<size_t>(w.in_features));
  for (int64_t t = 0; t < rows; ++t) {
    const float s = quant::quantize_token_row(x.data() + t * w.in_features, w.in_features, q.data());
    for (int32_t o = 0; o < w.out_features; ++o) {
      float sum = 0.0f;
      for (int32_t g = 0; g < G; ++g) {
        int32_t acc = 0;
        for (int32_t k = g * w.group_size; k < std::min(w.in_features, (g + 1) * w.group_size); ++k)
          acc += int32_t{q[static_cast<size_t>(k)]} * wv[static_cast<size_t>(o) * w.in_features + k];
        sum += w.scales[static_cast<size_t>(o) * G + g] * static_cast<float>(acc);
      }
      y[static_cast<size_t>(t * w.out_features + o)] = s * sum;
    }
  }
  return y;
}

TEST(TokenGemm, EveryLevelBitExactWithTheFormulaForEveryFormatAndGrouping) {
  std::vector<Isa> levels{Isa::Ref};
  for (const std::string& name : rtest::optimized_isas()) levels.push_back(parse_isa(name));
  uint32_t seed = 1;
  ThreadPool pool1(1), pool3(3);
  for (const Format& f : kFormats)
    for (int32_t in : {5, 32, 33, 64, 100, 129})
      for (int32_t group : {0, 32, 64, 20})
        for (int32_t out : {1, 4, 7, 13}) {
          const int32_t gs = group == 0 || group > in ? in : group;
          std::mt19937 rng(seed++);
          const QuantLinear w = random_quant_linear(rng, in, out, gs, f);
          const int64_t rows = 1 + seed % 3;
          std::vector<float> x = random_floats(rng, static_cast<size_t>(rows * in));
          if (seed % 5 == 0) std::fill(x.begin(), x.begin() + in, 0.0f);  // an all-zero token (scale guard)
          const std::vector<float> want = linear_formula(w, x, rows);
          for (Isa isa : levels) {
            const ops::DynamicQuantLinear op(w, token_gemm_config(isa));
            for (ThreadPool* pool : {&pool1, &pool3}) {
              ops::LinearScratch s;
              std::vector<float> y(want.size());
              op.run(x.data(), rows, y.data(), s, pool, 0);
              ASSERT_EQ(y, want) << f.name << " in " << in << " group " << gs << " out " << out << " rows " << rows
                                 << " kernel " << op.kernel().name << " threads " << pool->threads();
            }
          }
        }
}

TEST(TokenGemm, ExtremeCodesDoNotSaturate) {
  // x codes +-127 and weights -128 (int8): the AVX2 pair sums and the plain NEON int16 pair sums
  // (SMULL + SMLAL2 of k and k + 8) reach 2 * 128 * 127 = 32512; the VNNI kernel's x + 128 reaches
  // 255.
  for (const std::string& name : rtest::optimized_isas()) {
    const TokenGemmConfig& cfg = token_gemm_config(parse_isa(name));
    const int32_t kp = 64, groups = 3, out = 5;
    std::vector<int8_t> x(static_cast<size_t>(groups * kp), 127), w(static_cast<size_t>(out * groups * kp), -128);
    std::vector<int8_t> packed(cfg.packed_bytes(out, groups, kp));
    cfg.pack(w.data(), out, groups, kp, packed.data());
    for (size_t i = 0; i < x.size(); i += 2) x[i] = -127;
    std::vector<int32_t> a(static_cast<size_t>(out * groups)), b(a.size());
    s8_w8_gemm_grpacc_1x1__ref(1, 0, out, out, groups, kp, x.data(), w.data(), a.data(), out * groups);
    cfg.gemm(1, 0, out, out, groups, kp, x.data(), packed.data(), b.data(), out * groups);
    EXPECT_EQ(a, b) << cfg.name;
    for (auto& v : x) v = 127;
    s8_w8_gemm_grpacc_1x1__ref(1, 0, out, out, groups, kp, x.data(), w.data(), a.data(), out * groups);
    cfg.gemm(1, 0, out, out, groups, kp, x.data(), packed.data(), b.data(), out * groups);
    EXPECT_EQ(a, b) << cfg.name;
    EXPECT_EQ(a[0], -127 * 128 * kp);
  }
}

// Every level's GEMM + epilogue against the reference on prefill-sized shapes: token counts
// around the 8-row tile, row counts around the 4-, 8-, 16- and 32-row blocks, splits at every block
// boundary (as the pool's tasks make them), extreme codes; results equal bit for bit.
TEST(TokenGemm, TilesAndSplitsMatchReference) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> code(-127, 127), wv(-128, 127);
  std::uniform_real_distribution<float> sc(0.001f, 0.05f);
  for (const std::string& name : rtest::optimized_isas()) {
    const TokenGemmConfig& cfg = token_gemm_config(parse_isa(name));
    for (int64_t tokens : {1, 2, 3, 7, 8, 9, 15, 64, 67})
      for (int32_t out : {1, 15, 16, 17, 31, 32, 33, 48, 100})
        for (int32_t kp : {32, 64}) {
          const int32_t groups = tokens % 2 == 0 ? 4 : 1;
          std::vector<int8_t> x(static_cast<size_t>(tokens * groups * kp)), w(static_cast<size_t>(out * groups * kp));
          for (auto& v : x) v = static_cast<int8_t>(code(rng));
          for (auto& v : w) v = static_cast<int8_t>(wv(rng));
          if (out == 33) std::fill(w.begin(), w.end(), int8_t{-128}), std::fill(x.begin(), x.end(), int8_t{-127});
          std::vector<float> scales(static_cast<size_t>(groups * out)), sx(static_cast<size_t>(tokens));
          for (auto& v : scales) v = sc(rng);
          for (auto& v : sx) v = sc(rng);
          const int64_t stride = int64_t{out} * groups;
          std::vector<int32_t> a(static_cast<size_t>(tokens * stride)), b(a.size(), 7);
          std::vector<float> ya(static_cast<size_t>(tokens * out)), yb(ya.size());
          s8_w8_gemm_grpacc_1x1__ref(tokens, 0, out, out, groups, kp, x.data(), w.data(), a.data(), stride);
          s32_f32_grpscale_1x__ref(tokens, 0, out, out, groups, a.data(), stride, scales.data(), sx.data(), ya.data());
          std::vector<int8_t> packed(cfg.packed_bytes(out, groups, kp));
          cfg.pack(w.data(), out, groups, kp, packed.data());
          for (int32_t step : {out, cfg.o_block, 2 * cfg.o_block}) {
            for (int32_t o0 = 0; o0 < out; o0 += step) {
              const int32_t o1 = std::min(out, o0 + step);
              cfg.gemm(tokens, o0, o1, out, groups, kp, x.data(), packed.data(), b.data(), stride);
              cfg.epilogue(tokens, o0, o1, out, groups, b.data(), stride, scales.data(), sx.data(), yb.data());
            }
            ASSERT_EQ(a, b) << cfg.name << " tokens " << tokens << " out " << out << " kp " << kp << " step " << step;
            ASSERT_EQ(ya, yb) << cfg.epilogue_name << " tokens " << tokens << " out " << out << " step " << step;
          }
        }
  }
}

TEST(DecoderSession, KvCacheDecodeEqualsFullRecomputeOnEveryLevel) {
  std::vector<std::string> levels{"ref"};
  for (const std::string& name : rtest::optimized_isas()) levels.push_back(name);
  const std::vector<int32_t> text = bytes_to_tokens("Hello, lowbit runtime!");
  for (const std::string& isa : levels)
    for (int threads : {1, 2}) {
      DecoderOptions o;
      o.isa = isa;
      o.threads = threads;
      o.min_parallel_macs = 0;
      DecoderSession s(random_decoder(7, kFormats[1], 32, threads == 2), o);
      const std::vector<float> full = s.prefill(text);
      ASSERT_EQ(full.size(), text.size() * 256);
      // Prefill 5 tokens, then decode the rest one at a time: every position's logits are equal.
      const std::vector<float> first = s.prefill(std::vector<int32_t>(text.begin(), text.begin() + 5));
      EXPECT_TRUE(std::equal(first.begin(), first.end(), full.begin()));
      for (size_t t = 5; t < text.size(); ++t) {
        const std::vector<float> step = s.decode(text[t]);
        ASSERT_TRUE(std::equal(step.begin(), step.end(), full.begin() + static_cast<int64_t>(t * 256)))
            << "position " << t << " isa " << isa;
      }
      EXPECT_EQ(s.position(), static_cast<int64_t>(text.size()));
    }
}

// Conversations on 8 threads, each with its own session over one shared prepared decoder (run
// under ThreadSanitizer by `make sanitize`): every logit equals the single-threaded session's.
TEST(SharedDecoder, EightSessionsOnOneModelMatchOneThread) {
  const auto prepared = PreparedDecoder::create(random_decoder(13, kFormats[1], 32, true));
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::vector<float>> want;
  DecoderSession one(prepared);
  for (int t = 0; t < 8; ++t) {
    prompts.push_back(bytes_to_tokens("prompt " + std::to_string(t * 37)));
    std::vector<float> logits = one.prefill(prompts.back());
    for (int32_t token : {65, 66, 67}) {
      const std::vector<float> step = one.decode(token);
      logits.insert(logits.end(), step.begin(), step.end());
    }
    want.push_back(std::move(logits));
  }
  std::atomic<int> mismatches{0}, failures{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 8; ++t)
    workers.emplace_back([&, t] {
      try {
        DecoderOptions o;
        o.threads = 1 + t % 2;
        o.min_parallel_macs = 0;
        DecoderSession s(prepared, o);
        for (int round = 0; round < 2; ++round) {
          std::vector<float> logits = s.prefill(prompts[t]);
          for (int32_t token : {65, 66, 67}) {
            const std::vector<float> step = s.decode(token);
            logits.insert(logits.end(), step.begin(), step.end());
          }
          if (logits != want[t]) ++mismatches;
        }
      } catch (const std::exception&) {
        ++failures;
      }
    });
  for (auto& th : workers) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(&DecoderSession(prepared).model(), &prepared->model());  // one copy of the weights
}

TEST(DecoderSession, LevelsAgreeBitForBit) {
  const std::vector<int32_t> text = bytes_to_tokens("abcdefghij");
  DecoderOptions ro;
  ro.isa = "ref";
  for (const Format& f : kFormats) {
    DecoderSession ref(random_decoder(3, f, 32), ro);
    const std::vector<float> want = ref.prefill(text);
    for (const std::string& name : rtest::optimized_isas()) {
      DecoderOptions o;
      o.isa = name;
      DecoderSession s(random_decoder(3, f, 32), o);
      EXPECT_EQ(s.prefill(text), want) << f.name << " " << name;
    }
  }
}

TEST(DecoderSession, ClearErrors) {
  DecoderSession s(random_decoder(1, kFormats[0], 64));
  EXPECT_THROW(s.decode(1), Error);  // nothing prefilled
  EXPECT_THROW(s.prefill(std::vector<int32_t>(25, 1)), Error);  // longer than the context (24)
  EXPECT_THROW(s.prefill({}), Error);
  EXPECT_THROW(s.prefill({300}), Error);  // not a byte
  s.prefill(std::vector<int32_t>(24, 1));
  EXPECT_THROW(s.decode(1), Error);  // cache full
  EXPECT_THROW(generate(s, std::vector<int32_t>(30, 65), 4, {}), Error);
  EXPECT_THROW(generate(s, {65}, 0, {}), Error);
}

TEST(Generate, GreedySlidingWindowMatchesRecomputingTheWindow) {
  DecoderSession s(random_decoder(11, kFormats[1], 32));
  const std::vector<int32_t> prompt = bytes_to_tokens("The cat");
  const GenerationResult r = generate(s, prompt, 40, {});
  ASSERT_EQ(r.tokens.size(), 40u);
  EXPECT_GT(r.window_prefills, 0);
  // Reference: every step runs the last `context` tokens from scratch.
  std::vector<int32_t> text = prompt;
  DecoderSession ref(random_decoder(11, kFormats[1], 32));
  for (int i = 0; i < 40; ++i) {
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(text.size()), 24);
    const std::vector<float> l = ref.prefill(std::vector<int32_t>(text.end() - n, text.end()));
    const float* last = l.data() + (n - 1) * 256;
    const int32_t next = static_cast<int32_t>(std::max_element(last, last + 256) - last);
    ASSERT_EQ(r.tokens[static_cast<size_t>(i)], next) << "step " << i;
    text.push_back(next);
  }
  // Sampling is deterministic for a seed and stays within the top k.
  SamplingOptions so;
  so.temperature = 0.8f;
  so.top_k = 5;
  so.seed = 42;
  EXPECT_EQ(generate(s, prompt, 10, so).tokens, generate(s, prompt, 10, so).tokens);
}

TEST(Generate, PrintableText) {
  EXPECT_EQ(tokens_to_printable(bytes_to_tokens("h\xC3\xA9llo\n")), "h\xC3\xA9llo\n");
  EXPECT_EQ(tokens_to_printable({0xC3, 0x41, 0xFF, 0x01}), "\\xC3A\\xFF\\x01");
}

TEST(DecoderFile, RoundTripGivesIdenticalLogits) {
  for (bool qhead : {false, true}) {
    const DecoderModel m = random_decoder(5, kFormats[4], 20, qhead);
    const std::string path = tmp_file(qhead ? "decoder_qhead.lbq" : "decoder.lbq");
    save_decoder_model(m, path);
    EXPECT_TRUE(is_decoder_model_file(path));
    const DecoderModel back = load_decoder_model(path);
    EXPECT_EQ(serialize_decoder_model(back), serialize_decoder_model(m));
    const std::vector<int32_t> text = bytes_to_tokens("round trip");
    EXPECT_EQ(DecoderSession(back).prefill(text), DecoderSession(m).prefill(text));
    // load() prepares for the level asked for (every level, including ref when the CPU has better).
    for (const std::string& isa : {std::string("ref"), std::string("")}) {
      DecoderOptions o;
      o.isa = isa;
      const DecoderSession loaded = DecoderSession::load(path, o);
      EXPECT_EQ(loaded.isa(), isa.empty() ? select_isa() : Isa::Ref);
    }
    // The op-graph loader names what the file is.
    try {
      load_model(path);
      FAIL() << "load_model accepted a decoder file";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("decoder language model"), std::string::npos) << e.what();
    }
  }
}

TEST(DecoderFile, TruncationAndCorruptionAreCleanErrorsNamingFileAndField) {
  const std::string bytes = serialize_decoder_model(random_decoder(9, kFormats[2], 32));
  // Cut at ~97 lengths and 50 flipped bytes (the checksums catch them): clean errors naming the file.
  EXPECT_EQ(rtest::damage_problems(bytes, parse_decoder_model), std::vector<std::string>{});
  // Behind resealed checksums, the structural checks: a scale of 0 and an impossible group size.
  DecoderModel m = random_decoder(9, kFormats[2], 32);
  std::string b = serialize_decoder_model(m);
  const size_t at = b.find("test decoder") + 12;  // the vocab field follows the name
  b[at] = 7;
  reseal_model_bytes(b);
  try {
    parse_decoder_model(b, "bad.lbq");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vocabulary"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad.lbq"), std::string::npos) << e.what();
  }
  m.layers[1].up.scales[3] = 0.0f;
  EXPECT_THROW(serialize_decoder_model(m), Error);
  m.layers[1].up.scales[3] = 1.0f;
  m.layers[0].q.group_size = 0;
  EXPECT_THROW(serialize_decoder_model(m), Error);
}

TEST(DecoderModel, DescribeNamesFloatAndIntegerOps) {
  const DecoderModel m = random_decoder(2, kFormats[1], 32);
  const std::string d = describe_decoder_model(m, {"s8_w8_gemm_grpacc_1x4__avx2"});
  EXPECT_NE(d.find("attention"), std::string::npos);
  EXPECT_NE(d.find("int4 group32"), std::string::npos);
  EXPECT_NE(d.find("integer"), std::string::npos);
  EXPECT_NE(d.find("float"), std::string::npos);
  EXPECT_NE(d.find("s8_w8_gemm_grpacc_1x4__avx2"), std::string::npos);
}

}  // namespace
