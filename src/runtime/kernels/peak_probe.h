// Throughput probes for benchmarks: the instruction-level peak the GEMM kernels are measured against.
#pragma once
#include <cstdint>

namespace lowbit::runtime {

// Runs `iterations` x 24 independent zmm vpdpbusd (64 u8 x s8 MAC each) and returns the number of
// MACs done; the caller times it. Needs AVX-512 VNNI (check cpu_supports first).
int64_t vpdpbusd_probe(int64_t iterations);

// AVX2 integer (and FP32) instruction mixes, each one asm loop over fixed ymm registers with 12
// independent chains per iteration (enough to hide every latency involved on Zen 3 / Skylake):
enum class Avx2Probe {
  Vpmaddwd,          // vpmaddwd alone: 16 int16 MAC per instruction (the multiply pipes' peak)
  VpmaddwdAdd,       // vpmaddwd + vpaddd: the s16 GEMM's inner step (16 MAC, exact int32 sums)
  Vpmaddubsw,        // vpmaddubsw alone: 32 u8 x s8 MAC per instruction (saturating int16 pairs)
  VpmaddubswAdd16,   // vpmaddubsw + vpaddw: int16 accumulation (low-bit weights, widened every G steps)
  VpmaddubswWiden,   // vpmaddubsw + vpmaddwd(., 1) + vpaddd: 32 MAC widened to int32 at every step
  Vfmadd231ps,       // FP32 FMA: 8 MAC per instruction (what an FP32 runtime such as ONNX Runtime has)
};
constexpr int kAvx2ProbeCount = 6;
const char* avx2_probe_name(Avx2Probe p);

// Runs `iterations` loop trips of the probe and returns the number of MACs done (the caller times
// it). Needs AVX2 + FMA (check cpu_supports(Isa::Avx2) first).
int64_t avx2_probe(Avx2Probe p, int64_t iterations);

}  // namespace lowbit::runtime
