// Google Benchmark of the runtime's GEMM kernels at the reference CNN's shapes and of the whole
// reference-CNN-shaped model. Counters: GMAC/s ("MAC" counter, shown with SI prefix); for the GEMMs
// also "peak": the fraction of one core's peak for the kernel's ISA level, itself measured in this
// binary: avx512vnni kernels against BM_VpdpbusdPeak (24 independent zmm vpdpbusd chains, 64 MAC
// each), avx2 kernels against the vpmaddwd + vpaddd mix of BM_Avx2Peak (the exact int8 step; the
// other AVX2 mixes, vpmaddubsw ones and FP32 FMA, are reported by BM_Avx2Peak too).
//   build/bench_runtime_gemm --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

#include "runtime/cpu_features.h"
#include "runtime/kernels/gemm_config.h"
#include "runtime/kernels/peak_probe.h"
#include "runtime/reference_cnn.h"
#include "runtime/session.h"

using namespace lowbit::runtime;

namespace {

// Best of 5 timings of the vpdpbusd probe, in MAC/s on one core (0 without AVX-512 VNNI).
double vpdpbusd_peak() {
  static const double peak = [] {
    if (!cpu_supports(Isa::Avx512Vnni)) return 0.0;
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      const int64_t macs = vpdpbusd_probe(1 << 20);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, macs / s);
    }
    return best;
  }();
  return peak;
}

// Best of 200 short timings of an AVX2 probe, in MAC/s on one core (0 without AVX2).
double avx2_peak(Avx2Probe p) {
  static double peaks[kAvx2ProbeCount] = {};
  double& peak = peaks[static_cast<int>(p)];
  if (peak == 0 && cpu_supports(Isa::Avx2)) {
    for (int rep = 0; rep < 200; ++rep) {  // short runs: most of them are not preempted
      const auto t0 = std::chrono::steady_clock::now();
      const int64_t macs = avx2_probe(p, 1 << 14);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      peak = std::max(peak, macs / s);
    }
  }
  return peak;
}

// arg: Avx2Probe
void BM_Avx2Peak(benchmark::State& state) {
  if (!cpu_supports(Isa::Avx2)) {
    state.SkipWithError("CPU lacks AVX2");
    return;
  }
  const auto p = static_cast<Avx2Probe>(state.range(0));
  state.SetLabel(avx2_probe_name(p));
  int64_t macs = 0;
  for (auto _ : state) macs += avx2_probe(p, 1 << 16);
  state.counters["MAC"] = benchmark::Counter(double(macs), benchmark::Counter::kIsRate);
  state.counters["best_MAC"] = avx2_peak(p);  // best of 200 short runs
}

void BM_VpdpbusdPeak(benchmark::State& state) {
  if (!cpu_supports(Isa::Avx512Vnni)) {
    state.SkipWithError("CPU lacks AVX-512 VNNI");
    return;
  }
  int64_t macs = 0;
  for (auto _ : state) macs += vpdpbusd_probe(1 << 16);
  state.counters["MAC"] = benchmark::Counter(double(macs), benchmark::Counter::kIsRate);
}

// args: M, N, K, bits, isa (1 avx2, 2 avx512vnni)
void BM_Gemm(benchmark::State& state) {
  const int64_t M = state.range(0);
  const int32_t N = static_cast<int32_t>(state.range(1)), K = static_cast<int32_t>(state.range(2));
  const int32_t bits = static_cast<int32_t>(state.range(3));
  const Isa isa = static_cast<Isa>(state.range(4));
  if (!cpu_supports(isa)) {
    state.SkipWithError("CPU lacks this ISA");
    return;
  }
  const GemmConfig* cfg = find_gemm_config(isa, bits, bits == 1 ? lowbit::quant::Grid::Odd : lowbit::quant::Grid::Integer);
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
  double best = 1e30;  // fastest single call: on a shared machine most short calls run undisturbed
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    cfg->gemm(M, N, K, A, Kp, packed.data(), out);
    benchmark::DoNotOptimize(y.data());
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  state.counters["MAC"] = benchmark::Counter(double(M) * N * K, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["best_MAC"] = double(M) * N * K / best;  // MAC/s of the fastest call
  // MAC/s over the one-core peak of the kernel's level (MAC / peak / time)
  const double peak = cfg->isa == Isa::Avx512Vnni ? vpdpbusd_peak() : avx2_peak(Avx2Probe::VpmaddwdAdd);
  if (peak > 0) {
    state.counters["peak"] = benchmark::Counter(double(M) * N * K / peak, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["best_peak"] = double(M) * N * K / best / peak;
  }
}

// args: batch, threads, bits, isa (1 avx2, 2 avx512vnni)
void BM_ReferenceCnn(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  const Isa isa = static_cast<Isa>(state.range(3));
  if (!cpu_supports(isa)) {
    state.SkipWithError("CPU lacks this ISA");
    return;
  }
  const Model m = random_reference_cnn(1, static_cast<int32_t>(state.range(2)));
  Session s(m, {threads, isa_name(isa)});
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

// Every shape on both ISA levels, alternated (same run: compare ratios, the machine is shared).
// conv1 as GEMM: M = 12 images * 28 * 28 (one L2 slice), K = 9, N = 32; conv2: M = batch * 14 * 14,
// K = 32 * 9 = 288, N = 64; fc1: K = 3136, N = 128.
void gemm_shapes(benchmark::internal::Benchmark* b) {
  const std::vector<std::vector<int64_t>> shapes = {
      {9408, 32, 9, 8},      {196, 64, 288, 8},     {196 * 16, 64, 288, 8}, {196 * 16, 64, 288, 4},
      {196 * 16, 64, 288, 2}, {196 * 16, 64, 288, 1}, {1, 128, 3136, 8},     {12, 128, 3136, 8},
      {256, 128, 3136, 8},   {256, 128, 3136, 4},   {256, 128, 3136, 2},   {256, 128, 3136, 1}};
  for (const auto& s : shapes)
    for (int64_t isa : {1, 2}) b->Args({s[0], s[1], s[2], s[3], isa});
}
BENCHMARK(BM_VpdpbusdPeak);
BENCHMARK(BM_Avx2Peak)->DenseRange(0, kAvx2ProbeCount - 1)->ArgName("probe");
BENCHMARK(BM_Gemm)->ArgNames({"M", "N", "K", "bits", "isa"})->Apply(gemm_shapes)->UseRealTime();
void cnn_cases(benchmark::internal::Benchmark* b) {
  for (const auto& c : std::vector<std::vector<int64_t>>{{1, 1, 8}, {1, 2, 8}, {256, 2, 8}, {256, 2, 4}, {256, 1, 8}})
    for (int64_t isa : {1, 2}) b->Args({c[0], c[1], c[2], isa});
}
BENCHMARK(BM_ReferenceCnn)->ArgNames({"batch", "threads", "bits", "isa"})->Apply(cnn_cases)
    ->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
