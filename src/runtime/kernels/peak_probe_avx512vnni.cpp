#include <immintrin.h>

#include "runtime/kernels/peak_probe.h"

namespace lowbit::runtime {

int64_t vpdpbusd_probe(int64_t iterations) {
  // One asm loop on fixed registers: 24 independent accumulator chains (as many as the 12x32 GEMM
  // tile) hide the vpdpbusd latency, and nothing but the loop counter competes with them.
  if (iterations <= 0) return 0;
  int64_t n = iterations;
  asm volatile(
      "vpternlogd $0xff, %%zmm24, %%zmm24, %%zmm24\n\t"
      "vpternlogd $0xff, %%zmm25, %%zmm25, %%zmm25\n\t"
      "1:\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm0\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm1\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm2\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm3\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm4\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm5\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm6\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm7\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm8\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm9\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm10\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm11\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm12\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm13\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm14\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm15\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm16\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm17\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm18\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm19\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm20\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm21\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm22\n\t"
      "vpdpbusd %%zmm25, %%zmm24, %%zmm23\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(n)
      :
      : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10", "zmm11", "zmm12", "zmm13", "zmm14", "zmm15", "zmm16", "zmm17", "zmm18", "zmm19", "zmm20", "zmm21", "zmm22", "zmm23", "zmm24", "zmm25", "cc");
  return iterations * 24 * 64;
}

}  // namespace lowbit::runtime
