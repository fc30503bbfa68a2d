#!/usr/bin/env bash
# `make sanitize`: the numerics library's and the integer runtime's test suites under
#   1. AddressSanitizer + UndefinedBehaviorSanitizer (every test of tests/quant and tests/runtime,
#      every kernel level this CPU has: the suites force each level themselves), and
#   2. ThreadSanitizer (the thread pool, multi-threaded sessions, and concurrent use of one model).
# Any finding fails the run (halt_on_error, -fno-sanitize-recover). The LibTorch side is not
# included: Debian's libtorch is not instrumented, so ASan would report its allocator and OpenMP
# internals rather than lowbit's code; docs/reliability.md says what covers that side instead.
#
# Usage: scripts/sanitize.sh [ASAN_BUILD=build-asan] [TSAN_BUILD=build-tsan]
set -euo pipefail

ASAN_BUILD="${1:-build-asan}"
TSAN_BUILD="${2:-build-tsan}"
JOBS="${JOBS:-$(nproc)}"

configure() {
  local dir="$1" flags="$2"
  mkdir -p "$dir"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="$flags" \
    -DLOWBIT_WITH_TORCH=OFF -DLOWBIT_BENCH=OFF > "$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; exit 1; }
  cmake --build "$dir" -j"$JOBS"
}

echo "== AddressSanitizer + UndefinedBehaviorSanitizer: $ASAN_BUILD"
configure "$ASAN_BUILD" "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
(cd "$ASAN_BUILD" && ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --output-on-failure -j"$JOBS")

echo "== ThreadSanitizer: $TSAN_BUILD"
configure "$TSAN_BUILD" "-fsanitize=thread -fno-omit-frame-pointer"
# The tests that start threads: the pool, sessions with several threads, the C API, shared models.
(cd "$TSAN_BUILD" && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  ctest --output-on-failure -j"$JOBS" -R 'ThreadPool|Thread|Concurren|Shared|CApi|C_Api|Parallel')
echo "sanitize: no findings"
