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

using namespace lowbit;
using namespace lowbit::runtime;

namespace {

struct Format {
  const char* name;
  int32_t bits;
  quant::Grid grid;
  int32_t lo, hi;  // value range (Odd grid: odd values only)
};
const Format kFormats[] = {{"int8", 8, quant::Grid::Integer, -128, 127}, {"int4", 4, quant::Grid::Integer, -8, 7},
                           {"ternary", 2, quant::Grid::Integer, -1, 1},  {"int2", 2, quant::Grid::Integer, -2, 1},
                           {"binary", 1, quant::Grid::Odd, -1, 1},       {"seq2", 2, quant::Grid::Odd, -3, 3}};

QuantLinear random_linear(std::mt19937& rng, int32_t in, int32_t out, int32_t group, const Format& f) {
  std::vector<int32_t> values(static_cast<size_t>(in) * out);
  std::uniform_int_distribution<int> d(f.lo, f.hi);
  for (auto& v : values) {
    v = d(rng);
    if (f.grid == quant::Grid::Odd && v % 2 == 0) v = v >= 0 ? v + 1 : v - 1;
    if (v > f.hi) v = f.hi;
  }
  const int32_t groups = (in + group - 1) / group;
  std::vector<float> scales(static_cast<size_t>(out) * groups);
  std::uniform_real_distribution<float> s(0.001f, 0.05f);
  for (auto& v : scales) v = s(rng);
  QuantLinear w;
  set_quant_linear(w, in, out, group, f.bits, f.grid, values, scales);
  return w;
}

std::vector<float> random_floats(std::mt19937& rng, size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

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
          const QuantLinear w = random_linear(rng, in, out, gs, f);
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
  // x codes +-127 and weights -128 (int8): the AVX2 pair sums reach 2 * 128 * 127 = 32512.
  for (const std::string& name : rtest::optimized_isas()) {
    const TokenGemmConfig& cfg = token_gemm_config(parse_isa(name));
    const int32_t kp = 64, groups = 3, out = 5;
    std::vector<int8_t> x(static_cast<size_t>(groups * kp), 127), w(static_cast<size_t>(out * groups * kp), -128);
    for (size_t i = 0; i < x.size(); i += 2) x[i] = -127;
    std::vector<int32_t> a(static_cast<size_t>(out * groups)), b(a.size());
    s8_w8_gemm_grpacc_1x1__ref(1, 0, out, groups, kp, x.data(), w.data(), a.data(), out * groups);
    cfg.gemm(1, 0, out, groups, kp, x.data(), w.data(), b.data(), out * groups);
    EXPECT_EQ(a, b) << cfg.name;
    for (auto& v : x) v = 127;
    s8_w8_gemm_grpacc_1x1__ref(1, 0, out, groups, kp, x.data(), w.data(), a.data(), out * groups);
    cfg.gemm(1, 0, out, groups, kp, x.data(), w.data(), b.data(), out * groups);
    EXPECT_EQ(a, b) << cfg.name;
    EXPECT_EQ(a[0], -127 * 128 * kp);
  }
}

DecoderModel random_decoder(uint32_t seed, const Format& f, int32_t group, bool quantized_head = false) {
  std::mt19937 rng(seed);
  DecoderModel m;
  m.name = "test decoder";
  m.width = 32;
  m.heads = 4;
  m.hidden = 64;
  m.context = 24;
  m.embedding = random_floats(rng, static_cast<size_t>(256 * m.width));
  for (int l = 0; l < 2; ++l) {
    DecoderLayer L;
    L.norm1 = random_floats(rng, static_cast<size_t>(m.width), 0.3f);
    L.norm2 = random_floats(rng, static_cast<size_t>(m.width), 0.3f);
    for (auto& v : L.norm1) v += 1.0f;
    for (auto& v : L.norm2) v += 1.0f;
    const int32_t gw = std::min(group, m.width), gh = std::min(group, m.hidden);
    for (QuantLinear* w : {&L.q, &L.k, &L.v, &L.o}) *w = random_linear(rng, m.width, m.width, gw, f);
    L.gate = random_linear(rng, m.width, m.hidden, gw, f);
    L.up = random_linear(rng, m.width, m.hidden, gw, f);
    L.down = random_linear(rng, m.hidden, m.width, gh, f);
    m.layers.push_back(std::move(L));
  }
  m.norm_f = std::vector<float>(static_cast<size_t>(m.width), 1.0f);
  if (quantized_head) {
    m.head_quantized = true;
    m.head_q = random_linear(rng, m.width, 256, std::min(group, m.width), f);
  } else {
    m.head = random_floats(rng, static_cast<size_t>(256 * m.width), 0.2f);
  }
  return m;
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

std::string tmp_file(const std::string& name) {
  const char* dir = std::getenv("LOWBIT_TEST_TMP");
  return std::string(dir ? dir : "/tmp") + "/" + name;
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
  for (size_t n = 0; n < bytes.size(); n += std::max<size_t>(1, bytes.size() / 97)) {
    try {
      parse_decoder_model(bytes.substr(0, n), "cut.lbq");
      FAIL() << "a file cut to " << n << " bytes loaded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cut.lbq"), std::string::npos) << e.what();
    }
  }
  // Flipped bytes: the checksums catch them.
  std::mt19937 rng(3);
  for (int i = 0; i < 50; ++i) {
    std::string b = bytes;
    b[rng() % b.size()] ^= static_cast<char>(1 + rng() % 255);
    EXPECT_THROW(parse_decoder_model(b, "flip.lbq"), Error);
  }
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
