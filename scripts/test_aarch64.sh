#!/usr/bin/env bash
# Cross-builds the integer runtime for aarch64 and runs its tests under qemu user-mode emulation,
# once per kernel level (LOWBIT_ISA=ref, neon, neondot): `make test-aarch64`.
# Installs what is missing with apt-get: the cross compiler, qemu, and Debian's GoogleTest sources,
# which are built with the cross compiler inside the build tree (Debian ships no arm64 GoogleTest
# for cross builds).
# Usage: scripts/test_aarch64.sh [build-dir]        (default build-aarch64; JOBS=n for parallelism)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build-aarch64}"
jobs="${JOBS:-$(nproc)}"
start=$(date +%s)

packages=(cmake make ccache g++-aarch64-linux-gnu qemu-user-static googletest)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "test-aarch64: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

mkdir -p "$build"
cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" -DCMAKE_BUILD_TYPE=Release \
  -DLOWBIT_WITH_TORCH=OFF -DLOWBIT_BENCH=OFF -DLOWBIT_REPORT=OFF -DLOWBIT_GTEST_SOURCE=/usr/src/googletest \
  > "$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j"$jobs" --target lowbit_runtime test_quant test_runtime
built=$(date +%s)

# The ref pass runs every test. The neon and neondot passes leave out, by name, the tests that
# never touch a kernel level, which the ref pass has just run on the same binaries: the numerics
# of tests/quant, the model-file parser (its sessions force "ref") and the thread pool. Under
# emulation they take ~110 s of CPU per pass (every float rounded, 9000 model-file byte flips).
# The neon pass also leaves out Model.BatchPiecesAcrossThreadsMatchReference (~80 s emulated): the
# batch split into per-thread pieces is the same code on every level, and the neondot pass runs it.
level_independent='^tests/quant/|^tests/runtime/ModelFile\.|^tests/runtime/ThreadPool\.'
for isa in ref neon neondot; do
  echo "test-aarch64: LOWBIT_ISA=$isa (qemu-aarch64)"
  exclude=()
  if [[ "$isa" == neon ]]; then exclude=(-E "$level_independent|^tests/runtime/Model\.BatchPiecesAcrossThreads"); fi
  if [[ "$isa" == neondot ]]; then exclude=(-E "$level_independent"); fi
  (cd "$build" && LOWBIT_ISA="$isa" ctest --output-on-failure -j"$jobs" "${exclude[@]}")
done
end=$(date +%s)
echo "test-aarch64: build $((built - start)) s, tests $((end - built)) s (3 levels under qemu)"
