// Throughput probes for benchmarks: the instruction-level peak the GEMM kernels are measured against.
#pragma once
#include <cstdint>

namespace lowbit::runtime {

// Runs `iterations` x 24 independent zmm vpdpbusd (64 u8 x s8 MAC each) and returns the number of
// MACs done; the caller times it. Needs AVX-512 VNNI (check cpu_supports first).
int64_t vpdpbusd_probe(int64_t iterations);

}  // namespace lowbit::runtime
