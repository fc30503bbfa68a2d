// Run-time instruction-set detection and selection (never assumes the build machine's CPU).
#pragma once
#include <string>

namespace lowbit::runtime {

enum class Isa { Ref = 0, Avx2 = 1, Avx512Vnni = 2 };

const char* isa_name(Isa isa);
// Parses "ref", "avx2" or "avx512vnni"; throws lowbit::Error for anything else.
Isa parse_isa(const std::string& name);
// What this CPU (and OS, via XGETBV) supports.
bool cpu_supports(Isa isa);
// Best supported ISA, unless the environment variable LOWBIT_ISA forces one; a forced ISA the CPU
// lacks, or an unknown name, is a lowbit::Error.
Isa select_isa();
// Checks that `isa` can run here; throws lowbit::Error saying what the CPU lacks.
void require_isa(Isa isa);

}  // namespace lowbit::runtime
