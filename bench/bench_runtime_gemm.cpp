// Google Benchmark of the runtime's GEMM kernels at the reference CNN's shapes and of the whole
// reference-CNN-shaped model. Counters: GMAC/s ("MAC" counter, shown with SI prefix).
//   build/bench_runtime_gemm --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "runtime/cpu_features.h"
#include "runtime/kernels/gemm_config.h"
#include "runtime/reference_cnn.h"
#include "runtime/session.h"

using namespace lowbit::runtime;

namespace {

// args: M, N, K, bits
void BM_Gemm(benchmark::State& state) {
  const int64_t M = state.range(0);
  const int32_t N = static_cast<int32_t>(state.range(1)), K = static_cast<int32_t>(state.range(2));
  const int32_t bits = static_cast<int32_t>(state.range(3));
  if (!cpu_supports(Isa::Avx2)) {
    state.SkipWithError("CPU lacks AVX2");
    return;
  }
  const GemmConfig* cfg = find_gemm_config(Isa::Avx2, bits, bits == 1 ? lowbit::quant::Grid::Odd : lowbit::quant::Grid::Integer);
  state.SetLabel(cfg->name);
  std::mt19937 rng(1);
  const int32_t Kp = (K + cfg->k_align - 1) / cfg->k_align * cfg->k_align;
  std::vector<int16_t> A16(static_cast<size_t>(M * Kp));
  std::vector<uint8_t> A8(static_cast<size_t>(M * Kp));
  for (auto& a : A16) a = static_cast<int16_t>(std::uniform_int_distribution<int>(-128, 127)(rng));
  for (auto& a : A8) a = static_cast<uint8_t>(std::uniform_int_distribution<int>(0, 255)(rng));
  const void* A = cfg->input == GemmInput::S16 ? static_cast<const void*>(A16.data()) : A8.data();
  std::vector<int32_t> w(static_cast<size_t>(N) * K);
  for (auto& v : w) v = bits == 1 ? 2 * std::uniform_int_distribution<int>(-1, 0)(rng) + 1 : std::uniform_int_distribution<int>(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)(rng);
  const auto packed = cfg->pack(w.data(), N, K);
  std::vector<int32_t> bias(N, 0), mult(N, 1 << 30), shift(N, 40);
  std::vector<uint8_t> y(static_cast<size_t>(M * N));
  GemmOutput out;
  out.bias = bias.data();
  out.multiplier = mult.data();
  out.shift = shift.data();
  out.y_u8 = y.data();
  out.ldy = N;
  for (auto _ : state) {
    cfg->gemm(M, N, K, A, Kp, packed.data(), out);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["MAC"] = benchmark::Counter(double(M) * N * K, benchmark::Counter::kIsIterationInvariantRate);
}

// args: batch, threads, bits
void BM_ReferenceCnn(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  const Model m = random_reference_cnn(1, static_cast<int32_t>(state.range(2)));
  Session s(m, {threads, ""});
  state.SetLabel(isa_name(s.isa()));
  std::vector<float> x(static_cast<size_t>(batch * 28 * 28));
  std::mt19937 rng(2);
  for (auto& v : x) v = std::uniform_real_distribution<float>(0.0f, 1.0f)(rng);
  for (auto _ : state) benchmark::DoNotOptimize(s.run(x.data(), batch));
  const double macs = double(28 * 28 * 32 * 9 + 14 * 14 * 64 * 288 + 3136 * 128 + 128 * 10) * batch;
  state.counters["MAC"] = benchmark::Counter(macs, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["items"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

// conv2 as GEMM: M = batch * 14 * 14 rows, K = 32 * 9 = 288, N = 64; fc1: K = 3136, N = 128.
BENCHMARK(BM_Gemm)->ArgNames({"M", "N", "K", "bits"})
    ->Args({196, 64, 288, 8})->Args({196 * 16, 64, 288, 8})->Args({196 * 16, 64, 288, 4})
    ->Args({1, 128, 3136, 8})->Args({256, 128, 3136, 8})->Args({256, 128, 3136, 4})->Args({256, 128, 3136, 2})
    ->Args({256, 128, 3136, 1})->UseRealTime();
BENCHMARK(BM_ReferenceCnn)->ArgNames({"batch", "threads", "bits"})
    ->Args({1, 1, 8})->Args({1, 2, 8})->Args({256, 2, 8})->Args({256, 2, 4})->Args({256, 1, 8})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
