#!/usr/bin/env bash
# `make bench`: runs the benchmarks that exist and keeps their output.
#
#   BENCH_SET=quick (default)  the compiled programs, short: the runtime's GEMM kernels against
#                              this CPU's measured peak, the per-op profile of the reference-CNN-shaped
#                              model, WinQ / Hessian cost against a plain QAT step, and the QAT / FP32
#                              step-time ratio (lowbit and PyTorch in the same run). About 10 minutes.
#   BENCH_SET=full             also the scripts that train: one FP32 epoch vs PyTorch, runtime vs
#                              ONNX Runtime / PyTorch inference, and ONNX agreement (hours on 2 cores).
#
# Every benchmark reports ratios against an anchor measured in the same run (the machines are
# shared and noisy); see docs/BENCHMARKS.md for how to read each. Output: one file per benchmark
# in bench/results/<date>-<host>/ plus cpu.txt (lscpu) and the command lines, so figures can be
# quoted with their command, date and CPU. Do not run it while compiling.
#
# Usage: bench/run_all.sh [BUILD_DIR]
set -uo pipefail

BUILD="${1:-build}"
SET="${BENCH_SET:-quick}"
[[ -x "$BUILD/lowbit" ]] || { echo "bench: $BUILD/lowbit not found; build first (make build)" >&2; exit 1; }
case "$SET" in quick|full) ;; *) echo "bench: BENCH_SET must be quick or full, not '$SET'" >&2; exit 2 ;; esac
OUT="bench/results/$(date -u +%Y-%m-%dT%H%M)-$(hostname -s)"
mkdir -p "$OUT"
lscpu > "$OUT/cpu.txt" 2>&1 || true
echo "bench: results in $OUT (set: $SET)"

failed=()
# run NAME COMMAND...: runs one benchmark, tees its output to $OUT/NAME.txt, records failures.
run() {
  local name="$1"
  shift
  echo
  echo "== $name: $*"
  echo "\$ $*" >> "$OUT/commands.txt"
  if ! "$@" 2>&1 | tee "$OUT/$name.txt"; then
    failed+=("$name")
  fi
}
# Runs a compiled benchmark only if this build has it (Google Benchmark or an ISA may be missing).
run_if_built() {
  local name="$1"
  shift
  if [[ -x "$BUILD/$name" ]]; then
    run "$name" "$BUILD/$name" "$@"
  else
    echo "== $name: not built in $BUILD (needs Google Benchmark / an x86-64 build), skipped"
  fi
}

run_if_built bench_runtime_gemm --benchmark_counters_tabular=true --benchmark_min_time=0.2
run_if_built profile_reference_cnn 1 1 8 200
run_if_built profile_reference_cnn 256 2 8 5
run_if_built winq_hessian_cost_torch 3 8 ternary 2 128
run qat_speed bash bench/qat_speed.sh "$BUILD" 50 1

if [[ "$SET" == full ]]; then
  run epoch_benchmark bash bench/epoch_benchmark.sh "$BUILD" 1
  run export_agreement bash bench/export_agreement.sh "$BUILD"
  if [[ -d runs/export_agreement ]]; then
    run compare_runtimes bash bench/compare_runtimes.sh "$BUILD"
  fi
fi

echo
if ((${#failed[@]})); then
  echo "bench: FAILED: ${failed[*]} (see $OUT)" >&2
  exit 1
fi
echo "bench: all done; results in $OUT"
