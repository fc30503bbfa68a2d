// AVX2 instruction-mix probes (peak_probe.h): one asm loop per mix on fixed ymm registers, so that
// the compiler neither drops nor reorders the work; 12 independent chains per loop trip.
#include <immintrin.h>

#include "runtime/kernels/peak_probe.h"

namespace lowbit::runtime {

const char* avx2_probe_name(Avx2Probe p) {
  switch (p) {
    case Avx2Probe::Vpmaddwd: return "vpmaddwd";
    case Avx2Probe::VpmaddwdAdd: return "vpmaddwd+vpaddd";
    case Avx2Probe::Vpmaddubsw: return "vpmaddubsw";
    case Avx2Probe::VpmaddubswAdd16: return "vpmaddubsw+vpaddw";
    case Avx2Probe::VpmaddubswWiden: return "vpmaddubsw+vpmaddwd+vpaddd";
    case Avx2Probe::Vfmadd231ps: return "vfmadd231ps";
  }
  return "?";
}

#define LB_CLOBBER                                                                                                 \
  "ymm0", "ymm1", "ymm2", "ymm3", "ymm4", "ymm5", "ymm6", "ymm7", "ymm8", "ymm9", "ymm10", "ymm11", "ymm12", "ymm13", \
      "ymm14", "ymm15", "cc"
// Accumulators start at zero (vzeroall); ymm14, ymm15: sources (bytes 1: small integers, no
// saturation); ymm13: int16 ones for the widening vpmaddwd. The FP32 probe sets the sources to 1.0f.
#define LB_SETUP                               \
  "vzeroall\n\t"                              \
  "vpcmpeqb %%ymm14, %%ymm14, %%ymm14\n\t"     \
  "vpabsb %%ymm14, %%ymm14\n\t"                \
  "vmovdqa %%ymm14, %%ymm15\n\t"               \
  "vpcmpeqw %%ymm13, %%ymm13, %%ymm13\n\t"     \
  "vpsrlw $15, %%ymm13, %%ymm13\n\t"

#define LB_X12(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11)
#define LB_STR(x) #x
#define LB_MADDWD(i) "vpmaddwd %%ymm15, %%ymm14, %%ymm" LB_STR(i) "\n\t"
#define LB_MADDUBSW(i) "vpmaddubsw %%ymm15, %%ymm14, %%ymm" LB_STR(i) "\n\t"
#define LB_FMA(i) "vfmadd231ps %%ymm15, %%ymm14, %%ymm" LB_STR(i) "\n\t"
// temps ymm6..ymm11 feed accumulators ymm0..ymm5 (two rounds per trip: 12 multiplies)
#define LB_MA(a, t) "vpmaddwd %%ymm15, %%ymm14, %%ymm" #t "\n\t" "vpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n\t"
#define LB_MB16(a, t) "vpmaddubsw %%ymm15, %%ymm14, %%ymm" #t "\n\t" "vpaddw %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n\t"
#define LB_MBW(a, t)                                 \
  "vpmaddubsw %%ymm15, %%ymm14, %%ymm" #t "\n\t"      \
  "vpmaddwd %%ymm13, %%ymm" #t ", %%ymm" #t "\n\t"    \
  "vpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n\t"
#define LB_PAIRS(m) m(0, 6) m(1, 7) m(2, 8) m(3, 9) m(4, 10) m(5, 11) m(0, 12) m(1, 6) m(2, 7) m(3, 8) m(4, 9) m(5, 10)

#define LB_FP_ONES                            \
  "vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n\t"    \
  "vpsrld $25, %%ymm14, %%ymm14\n\t"          \
  "vpslld $23, %%ymm14, %%ymm14\n\t"          \
  "vmovdqa %%ymm14, %%ymm15\n\t"

#define LB_LOOP(body) LB_LOOP_WITH("", body)
#define LB_LOOP_WITH(extra, body)                                                    \
  asm volatile(LB_SETUP extra "1:\n\t" body "dec %0\n\t" "jnz 1b\n\t" "vzeroupper\n\t" \
               : "+r"(n)                                                  \
               :                                                          \
               : LB_CLOBBER)

int64_t avx2_probe(Avx2Probe p, int64_t iterations) {
  if (iterations <= 0) return 0;
  int64_t n = iterations;
  int64_t macs_per_trip = 0;
  switch (p) {
    case Avx2Probe::Vpmaddwd:
      LB_LOOP(LB_X12(LB_MADDWD));
      macs_per_trip = 12 * 16;
      break;
    case Avx2Probe::VpmaddwdAdd:
      LB_LOOP(LB_PAIRS(LB_MA));
      macs_per_trip = 12 * 16;
      break;
    case Avx2Probe::Vpmaddubsw:
      LB_LOOP(LB_X12(LB_MADDUBSW));
      macs_per_trip = 12 * 32;
      break;
    case Avx2Probe::VpmaddubswAdd16:
      LB_LOOP(LB_PAIRS(LB_MB16));
      macs_per_trip = 12 * 32;
      break;
    case Avx2Probe::VpmaddubswWiden:
      LB_LOOP(LB_PAIRS(LB_MBW));
      macs_per_trip = 12 * 32;
      break;
    case Avx2Probe::Vfmadd231ps:
      LB_LOOP_WITH(LB_FP_ONES, LB_X12(LB_FMA));
      macs_per_trip = 12 * 8;
      break;
  }
  return iterations * macs_per_trip;
}

}  // namespace lowbit::runtime
