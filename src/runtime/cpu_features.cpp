#include "runtime/cpu_features.h"

#include <cstdint>
#include <cstdlib>

#include "base/error.h"

// The build's architecture comes from CMake (LOWBIT_ARCH_X86_64 / LOWBIT_ARCH_AARCH64), the same
// switch that decides which *_avx2 / *_neon kernel files are compiled, so that a level is never
// reported for a build that lacks its kernels.
#if defined(LOWBIT_ARCH_X86_64)
#include <cpuid.h>
#elif defined(LOWBIT_ARCH_AARCH64)
#include <sys/auxv.h>
#endif

namespace lowbit::runtime {
namespace {

struct Features {
  // x86-64
  bool avx2 = false, fma = false, bmi2 = false, avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false,
       avx512vnni = false;
  // aarch64
  bool asimd = false, asimddp = false;
};

#if defined(LOWBIT_ARCH_X86_64)
constexpr const char* kBuildArch = "x86-64";

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
#elif defined(LOWBIT_ARCH_AARCH64)
constexpr const char* kBuildArch = "aarch64";

// Linux reports the CPU's (and kernel's) features in the auxiliary vector; the bits are those of
// <asm/hwcap.h>, spelled out so that the build does not depend on the kernel headers' version.
constexpr unsigned long kHwcapAsimd = 1ul << 1;     // HWCAP_ASIMD: Advanced SIMD (NEON)
constexpr unsigned long kHwcapAsimdDp = 1ul << 20;  // HWCAP_ASIMDDP: SDOT / UDOT (Armv8.2 dot product)

Features detect() {
  Features f;
  const unsigned long hwcap = getauxval(AT_HWCAP);
  f.asimd = (hwcap & kHwcapAsimd) != 0;
  f.asimddp = f.asimd && (hwcap & kHwcapAsimdDp) != 0;
  return f;
}
#else
constexpr const char* kBuildArch = "this architecture";

Features detect() { return {}; }
#endif

const Features& features() {
  static const Features f = detect();
  return f;
}

[[maybe_unused]] bool is_x86_level(Isa isa) { return isa == Isa::Avx2 || isa == Isa::Avx512Vnni; }
[[maybe_unused]] bool is_arm_level(Isa isa) { return isa == Isa::Neon || isa == Isa::NeonDot; }

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Ref: return "ref";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512Vnni: return "avx512vnni";
    case Isa::Neon: return "neon";
    case Isa::NeonDot: return "neondot";
  }
  return "unknown";
}

Isa parse_isa(const std::string& name) {
  for (Isa isa : {Isa::Ref, Isa::Avx2, Isa::Avx512Vnni, Isa::Neon, Isa::NeonDot})
    if (name == isa_name(isa)) return isa;
  throw Error("unknown instruction set '" + name +
              "' (LOWBIT_ISA / isa option): use ref, avx2 or avx512vnni (x86-64), neon or neondot (aarch64)");
}

bool build_has_isa(Isa isa) {
#if defined(LOWBIT_ARCH_X86_64)
  if (is_x86_level(isa)) return true;
#elif defined(LOWBIT_ARCH_AARCH64)
  if (is_arm_level(isa)) return true;
#endif
  return isa == Isa::Ref;
}

bool cpu_supports(Isa isa) {
  if (!build_has_isa(isa)) return false;
  const Features& f = features();
  switch (isa) {
    case Isa::Ref: return true;
    case Isa::Avx2: return f.avx2 && f.fma && f.bmi2;
    case Isa::Avx512Vnni:
      return f.avx2 && f.fma && f.bmi2 && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.avx512vnni;
    case Isa::Neon: return f.asimd;
    case Isa::NeonDot: return f.asimd && f.asimddp;
  }
  return false;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> v;
  for (Isa isa : {Isa::Avx512Vnni, Isa::Avx2, Isa::NeonDot, Isa::Neon})
    if (cpu_supports(isa)) v.push_back(isa);
  v.push_back(Isa::Ref);
  return v;
}

void require_isa(Isa isa) {
  const std::string name = isa_name(isa);
  const std::string what_to_do = "; choose another with LOWBIT_ISA or the isa option (ref always works)";
  if (!build_has_isa(isa)) {
    const char* arch = is_x86_level(isa) ? "x86-64" : "aarch64";
    throw Error("instruction set '" + name + "' is not in this build: its kernels exist only in " + arch +
                " builds and this is a " + kBuildArch + " build" + what_to_do);
  }
  LOWBIT_CHECK(cpu_supports(isa), "instruction set '" + name + "' is not supported by this CPU" + what_to_do);
}

Isa select_isa() {
  if (const char* env = std::getenv("LOWBIT_ISA"); env != nullptr && *env != '\0') {
    const Isa isa = parse_isa(env);
    require_isa(isa);
    return isa;
  }
  return supported_isas().front();
}

}  // namespace lowbit::runtime
