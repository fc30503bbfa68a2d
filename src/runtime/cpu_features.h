// Run-time instruction-set detection and selection (never assumes the build machine's CPU).
#pragma once
#include <string>
#include <vector>

namespace lowbit::runtime {

// Kernel levels. x86-64 builds contain avx2 and avx512vnni kernels, aarch64 builds neon and
// neondot ones; ref (the scalar reference kernels) is in every build.
enum class Isa { Ref = 0, Avx2 = 1, Avx512Vnni = 2, Neon = 3, NeonDot = 4 };

const char* isa_name(Isa isa);
// Parses "ref", "avx2", "avx512vnni", "neon" or "neondot" (any build); throws lowbit::Error for
// anything else. Whether the level can run here is require_isa's question.
Isa parse_isa(const std::string& name);
// Whether this build contains the kernels of `isa` (x86-64 or aarch64 ones, chosen at configure time).
bool build_has_isa(Isa isa);
// Whether `isa` can run here: this build has its kernels and the CPU (and OS, via XGETBV on x86 or
// the auxiliary vector's HWCAP on aarch64) supports its instructions.
bool cpu_supports(Isa isa);
// Every level that can run here, best first; always ends with Isa::Ref.
std::vector<Isa> supported_isas();
// Best supported ISA, unless the environment variable LOWBIT_ISA forces one; a forced ISA that
// cannot run here, or an unknown name, is a lowbit::Error.
Isa select_isa();
// Checks that `isa` can run here; throws lowbit::Error saying whether the build or the CPU lacks it.
void require_isa(Isa isa);

}  // namespace lowbit::runtime
