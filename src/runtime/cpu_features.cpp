#include "runtime/cpu_features.h"

#include <cpuid.h>

#include <cstdint>
#include <cstdlib>

#include "base/error.h"

namespace lowbit::runtime {
namespace {

struct Features {
  bool avx2 = false, fma = false, bmi2 = false, avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false,
       avx512vnni = false;
};

uint64_t xgetbv0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t{hi} << 32) | lo;
}

Features detect() {
  Features f;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1, fma = (c >> 12) & 1;
  if (!osxsave) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool ymm_os = (xcr0 & 0x6) == 0x6, zmm_os = (xcr0 & 0xE6) == 0xE6;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.fma = fma && ymm_os;
  f.avx2 = ((b >> 5) & 1) && ymm_os;
  f.bmi2 = (b >> 8) & 1;
  f.avx512f = ((b >> 16) & 1) && zmm_os;
  f.avx512dq = ((b >> 17) & 1) && zmm_os;
  f.avx512bw = ((b >> 30) & 1) && zmm_os;
  f.avx512vl = ((b >> 31) & 1) && zmm_os;
  f.avx512vnni = ((c >> 11) & 1) && zmm_os;
  return f;
}

const Features& features() {
  static const Features f = detect();
  return f;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Ref: return "ref";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512Vnni: return "avx512vnni";
  }
  return "unknown";
}

Isa parse_isa(const std::string& name) {
  if (name == "ref") return Isa::Ref;
  if (name == "avx2") return Isa::Avx2;
  if (name == "avx512vnni") return Isa::Avx512Vnni;
  throw Error("unknown instruction set '" + name + "' (LOWBIT_ISA / isa option): use ref, avx2 or avx512vnni");
}

bool cpu_supports(Isa isa) {
  const Features& f = features();
  switch (isa) {
    case Isa::Ref: return true;
    case Isa::Avx2: return f.avx2 && f.fma && f.bmi2;
    case Isa::Avx512Vnni:
      return f.avx2 && f.fma && f.bmi2 && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.avx512vnni;
  }
  return false;
}

void require_isa(Isa isa) {
  LOWBIT_CHECK(cpu_supports(isa), std::string("instruction set '") + isa_name(isa) +
                                      "' is not supported by this CPU; choose another with LOWBIT_ISA or the isa option "
                                      "(ref always works)");
}

Isa select_isa() {
  if (const char* env = std::getenv("LOWBIT_ISA"); env != nullptr && *env != '\0') {
    const Isa isa = parse_isa(env);
    require_isa(isa);
    return isa;
  }
  if (cpu_supports(Isa::Avx512Vnni)) return Isa::Avx512Vnni;
  if (cpu_supports(Isa::Avx2)) return Isa::Avx2;
  return Isa::Ref;
}

}  // namespace lowbit::runtime
