#!/usr/bin/env bash
# Runs the runtime and end-to-end tests once per kernel level this CPU has, with LOWBIT_ISA
# forced, so that every level is tested on any machine that has it (not only the level the
# runtime would pick by default). Levels the CPU lacks are listed as not run, never silently.
#   scripts/test_isa_levels.sh [BUILD_DIR]
# Which tests depend on which level: docs/testing.md.
set -euo pipefail
build=${1:-build}
[[ -f "$build/CTestTestfile.cmake" ]] || { echo "test_isa_levels: no tests in $build; run 'make build' first" >&2; exit 1; }

# The runtime's own tests, the LibTorch-side tests that run the runtime (conversion agreement),
# and the CLI's end-to-end script (train -> qat -> convert -> eval / run / bench on the runtime).
tests='^tests/runtime/|^tests/qat/Convert\.|^cli$'

levels=(ref)
case "$(uname -m)" in
  x86_64)
    flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
    if has avx2 fma bmi2; then levels+=(avx2); else echo "test_isa_levels: avx2 not run (CPU lacks it)"; fi
    if has avx2 fma bmi2 avx512f avx512bw avx512dq avx512vl avx512_vnni; then
      levels+=(avx512vnni)
    else
      echo "test_isa_levels: avx512vnni not run (CPU lacks it); its kernel tests report themselves as skipped"
    fi
    ;;
  aarch64)
    levels+=(neon)
    grep -qw asimddp /proc/cpuinfo && levels+=(neondot) || echo "test_isa_levels: neondot not run (CPU lacks dotprod)"
    ;;
esac

failed=()
for isa in "${levels[@]}"; do
  echo "== LOWBIT_ISA=$isa"
  if ! (cd "$build" && LOWBIT_ISA=$isa ctest --output-on-failure -j"$(nproc)" -R "$tests"); then
    failed+=("$isa")
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "test_isa_levels: failures with LOWBIT_ISA=${failed[*]}" >&2
  exit 1
fi
echo "test_isa_levels: passed at every level this CPU has: ${levels[*]}"
