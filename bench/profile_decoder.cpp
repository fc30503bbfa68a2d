// Where a decoder prefill spends its time: the forward pass of DecoderSession written out op by
// op with a clock around each op family (the projections split into per-token quantization, the
// token GEMM and the float epilogue), on a real .lbq, one thread or a pool of T.
//   profile_decoder MODEL.lbq [tokens=64] [threads=1] [iterations=50] [min_parallel_macs=2^23] [session|bench]
// "bench": runtime::benchmark_decoder as `lowbit bench` runs it (prompt and decode = tokens), JSON.
// LOWBIT_ISA picks the level as everywhere. Prints the median ms per family over the iterations
// and the median of the sums, next to the DecoderSession's own prefill time (same process).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "quant/per_token.h"
#include "runtime/decoder_model_file.h"
#include "runtime/decoder_session.h"
#include "runtime/kernels/decoder_float_kernels.h"
#include "runtime/kernels/token_gemm.h"
#include "runtime/ops/attention_op.h"
#include "runtime/ops/dynamic_quant_linear_op.h"
#include "runtime/ops/embedding_op.h"
#include "runtime/text_generation.h"
#include "runtime/thread_pool.h"

using namespace lowbit;
using namespace lowbit::runtime;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: profile_decoder MODEL.lbq [tokens] [threads] [iterations]\n");
    return 2;
  }
  const std::string path = argv[1];
  const int64_t T = argc > 2 ? std::atoll(argv[2]) : 64;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 1;
  const int iterations = argc > 4 ? std::atoi(argv[4]) : 50;
  const bool session_only = argc > 6 && std::string(argv[6]) == "session";  // only DecoderSession::prefill
  const int64_t mp = argc > 5 ? std::atoll(argv[5]) : (int64_t{1} << 23);  // min_parallel_macs (the session default)
  if (argc > 6 && std::string(argv[6]) == "bench") {
    // What `lowbit bench MODEL --prompt-tokens T --decode-tokens T --iterations N --threads` prints
    // as JSON (runtime::benchmark_decoder), without the CLI's LibTorch start-up.
    DecoderOptions o;
    o.threads = threads;
    if (argc > 5) o.min_parallel_macs = std::atoll(argv[5]);
    DecoderSession s = DecoderSession::load(path, o);
    const DecoderBenchmark b = benchmark_decoder(s, T, T, iterations);
    std::printf("{\"decode_tokens_per_s\":%f,\"isa\":\"%s\",\"prefill_tokens_per_s\":%f,\"threads\":%d}\n",
                b.decode_tokens_per_s, b.isa.c_str(), b.prefill_tokens_per_s, b.threads);
    return 0;
  }
  const auto prepared = PreparedDecoder::load(path);
  const DecoderModel& m = prepared->model();
  const Isa isa = prepared->isa();
  const TokenGemmConfig& kernel = token_gemm_config(isa);
  const DecoderFloatKernels& fk = decoder_float_kernels(isa);
  std::printf("model %s: %zu layers, width %d, hidden %d, heads %d; prefill %lld tokens, %d thread(s), isa %s, %s\n",
              path.c_str(), m.layers.size(), m.width, m.hidden, m.heads, static_cast<long long>(T), threads,
              isa_name(isa), kernel.name);

  struct Layer {
    ops::DynamicQuantLinear qkv, o, gate_up, down;
  };
  std::vector<Layer> layers;
  for (const DecoderLayer& L : m.layers)
    layers.push_back({ops::DynamicQuantLinear({&L.q, &L.k, &L.v}, kernel), ops::DynamicQuantLinear(L.o, kernel),
                      ops::DynamicQuantLinear({&L.gate, &L.up}, kernel), ops::DynamicQuantLinear(L.down, kernel)});
  const ops::FloatHead head(m.head, m.width, m.vocab, fk);
  const ops::RopeTable rope(m.context, m.head_size(), m.rope_base);
  ops::KvCache cache(static_cast<int32_t>(m.layers.size()), m.context, m.width);
  std::unique_ptr<ThreadPool> pool;
  if (threads > 1) pool = std::make_unique<ThreadPool>(threads);
  const int32_t d = m.width, hd = m.head_size();
  std::vector<float> x(T * d), h(T * d), q(T * d), k(T * d), v(T * d), a(T * d), g(T * m.hidden), u(T * m.hidden),
      s(T * m.hidden), logits(T * m.vocab), scores(m.context * threads), qkv(T * 3 * d), gu(T * 2 * m.hidden);
  ops::LinearScratch scratch;
  std::mt19937 rng(1);
  std::vector<int32_t> tokens(static_cast<size_t>(T));
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % 256);

  std::map<std::string, std::vector<double>> times;
  std::vector<double> totals, session_ms;
  DecoderOptions so;
  so.threads = threads;
  so.min_parallel_macs = mp;
  DecoderSession session(prepared, so);
  for (int it = 0; it < iterations + 1; ++it) {
    std::map<std::string, double> t;
    auto t0 = Clock::now();
    auto lap = [&](const char* name) {
      const auto now = Clock::now();
      t[name] += std::chrono::duration<double, std::milli>(now - t0).count();
      t0 = now;
    };
    double total = 0;
    if (!session_only) {
    const auto start = Clock::now();
    ops::embedding_lookup(m, tokens.data(), T, x.data());
    lap("embedding");
    for (size_t l = 0; l < m.layers.size(); ++l) {
      const DecoderLayer& L = m.layers[l];
      const Layer& P = layers[l];
      fk.rmsnorm.fn(x.data(), T, d, L.norm1.data(), m.norm_eps, h.data());
      lap("rmsnorm");
      P.qkv.run(h.data(), T, qkv.data(), scratch, pool.get(), mp);
      lap("projections (qkv, o, mlp)");
      for (int64_t r = 0; r < T; ++r)
        for (int j = 0; j < 3; ++j) std::copy(&qkv[r * 3 * d + j * d], &qkv[r * 3 * d + j * d + d], (j == 0 ? q : j == 1 ? k : v).data() + r * d);
      lap("column copies of fused outputs");
      fk.rope.fn(q.data(), T, 0, m.heads, hd, rope.cos.data(), rope.sin.data(), rope.half);
      fk.rope.fn(k.data(), T, 0, m.heads, hd, rope.cos.data(), rope.sin.data(), rope.half);
      lap("rope");
      ops::causal_attention(q.data(), k.data(), v.data(), T, 0, m.heads, hd, cache.k_layer(static_cast<int32_t>(l)),
                            cache.v_layer(static_cast<int32_t>(l)), cache.kt_layer(static_cast<int32_t>(l)), m.context,
                            scores.data(), a.data(), fk, pool.get(), mp);
      lap("attention (scores, softmax, weighted sum)");
      P.o.run(a.data(), T, h.data(), scratch, pool.get(), mp);
      lap("projections (qkv, o, mlp)");
      for (int64_t i = 0; i < T * d; ++i) x[i] += h[i];
      lap("residual adds");
      fk.rmsnorm.fn(x.data(), T, d, L.norm2.data(), m.norm_eps, h.data());
      lap("rmsnorm");
      P.gate_up.run(h.data(), T, gu.data(), scratch, pool.get(), mp);
      lap("projections (qkv, o, mlp)");
      for (int64_t r = 0; r < T; ++r) {
        std::copy(&gu[r * 2 * m.hidden], &gu[r * 2 * m.hidden + m.hidden], g.data() + r * m.hidden);
        std::copy(&gu[r * 2 * m.hidden + m.hidden], &gu[(r + 1) * 2 * m.hidden], u.data() + r * m.hidden);
      }
      lap("column copies of fused outputs");
      fk.swiglu.fn(g.data(), u.data(), T * m.hidden, s.data());
      lap("swiglu");
      P.down.run(s.data(), T, h.data(), scratch, pool.get(), mp);
      lap("projections (qkv, o, mlp)");
      for (int64_t i = 0; i < T * d; ++i) x[i] += h[i];
      lap("residual adds");
    }
    fk.rmsnorm.fn(x.data(), T, d, m.norm_f.data(), m.norm_eps, h.data());
    lap("rmsnorm");
    if (!m.head_quantized) {
      head.run(h.data(), T, logits.data(), pool.get(), mp);
      lap("head (float)");
    }
    total = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    }
    const auto s0 = Clock::now();
    session.prefill(tokens);
    const double sess = std::chrono::duration<double, std::milli>(Clock::now() - s0).count();
    if (it == 0) continue;
    for (auto& [name, ms] : t) times[name].push_back(ms);
    totals.push_back(total);
    session_ms.push_back(sess);
  }
  // Split of one projection call into its parts, measured separately on layer 0's gate (T rows).
  {
    const DecoderLayer& L = m.layers[0];
    const ops::DynamicQuantLinear& op = layers[0].gate_up;
    std::vector<double> tq, tg, te;
    for (int it = 0; it < iterations; ++it) {
      ops::LinearTimes lt;
      op.run(h.data(), T, gu.data(), scratch, nullptr, 1 << 30, &lt);
      tq.push_back(lt.quantize_ms);
      tg.push_back(lt.gemm_ms);
      te.push_back(lt.epilogue_ms);
    }
    std::printf("one projection (layer 0 gate+up, %dx%d, %lld rows, 1 thread): quantize %.4f ms, gemm %.4f ms, epilogue %.4f ms\n",
                2 * L.gate.out_features, L.gate.in_features, static_cast<long long>(T), median(tq), median(tg), median(te));
  }
  std::printf("%-45s %10s\n", "op family", "median ms");
  for (auto& [name, v] : times) std::printf("%-45s %10.4f\n", name.c_str(), median(v));
  std::printf("%-45s %10.4f  (%.0f tokens/s)\n", "sum (this driver)", median(totals), T / median(totals) * 1e3);
  std::printf("%-45s %10.4f  (%.0f tokens/s)\n", "DecoderSession::prefill", median(session_ms), T / median(session_ms) * 1e3);
  return 0;
}
