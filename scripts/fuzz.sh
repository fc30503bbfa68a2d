#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer harnesses in fuzz/ with clang (AddressSanitizer +
# UndefinedBehaviorSanitizer) and runs each for FUZZ_SECONDS (default 60) on one core, starting
# from a seed corpus the project's own tools write. A crash stops the run with the reproducer's
# path; turn it into a regression test (tests/runtime/model_file_test.cpp holds the .lbq ones).
# Prints executions and crashes per harness (docs/reliability.md quotes them).
# FUZZ_RUNS=N runs each harness for exactly N executions instead (the long runs of
# docs/reliability.md: FUZZ_RUNS=10000000); FUZZ_ONLY=name[,name] limits the run to those harnesses.
#
# Usage: scripts/fuzz.sh [BUILD_DIR=build-fuzz]    FUZZ_SECONDS=N | FUZZ_RUNS=N   FUZZ_ONLY=...
set -euo pipefail

BUILD="${1:-build-fuzz}"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
CXX_FUZZ="${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++ || true)}"
[[ -n "$CXX_FUZZ" ]] || { echo "fuzz: clang++ not found (scripts/setup.sh --fuzz installs clang-14 and libclang-rt-14-dev)" >&2; exit 1; }
[[ "$SECONDS_EACH" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: FUZZ_SECONDS must be a whole number >= 1, not '$SECONDS_EACH'" >&2; exit 2; }
RUNS="${FUZZ_RUNS:-}"
[[ -z "$RUNS" || "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: FUZZ_RUNS must be a whole number >= 1, not '$RUNS'" >&2; exit 2; }
ONLY=",${FUZZ_ONLY:-},"
if [[ -n "$RUNS" ]]; then limit=(-runs="$RUNS"); budget="$RUNS runs"; else limit=(-max_total_time="$SECONDS_EACH"); budget="$SECONDS_EACH s"; fi

flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
mkdir -p "$BUILD"
cmake -S . -B "$BUILD" -DCMAKE_CXX_COMPILER="$CXX_FUZZ" -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="$flags" \
  -DLOWBIT_WITH_TORCH=OFF -DLOWBIT_TESTS=OFF -DLOWBIT_BENCH=OFF -DLOWBIT_FUZZ=ON > "$BUILD/configure.log" 2>&1 \
  || { cat "$BUILD/configure.log"; exit 1; }
cmake --build "$BUILD" -j"${JOBS:-$(nproc)}"

# Seed corpora, written by lowbit itself.
corpus="$BUILD/corpus"
for harness in "$BUILD"/*_fuzz; do mkdir -p "$corpus/$(basename "$harness")"; done
"$BUILD/make_fuzz_seeds" "$corpus"

status=0
printf '%-22s %12s %8s %8s\n' harness executions crashes seconds > "$BUILD/fuzz_summary.txt"
for harness in "$BUILD"/*_fuzz; do
  name=$(basename "$harness")
  [[ "$ONLY" == ",," || "$ONLY" == *",$name,"* ]] || continue
  mkdir -p "$corpus/$name" "$BUILD/crashes/$name"
  echo "== $name: $budget"
  log="$BUILD/$name.log"
  rc=0
  dict=()  # tokens for the harnesses that read JSON
  case "$name" in qat_config_fuzz | checkpoint_fuzz) dict=(-dict=fuzz/json_config.dict) ;; esac
  start=$(date +%s)
  "$harness" "${limit[@]}" "${dict[@]}" -max_len=400000 -rss_limit_mb=2048 -timeout=20 \
    -artifact_prefix="$BUILD/crashes/$name/" -print_final_stats=1 "$corpus/$name" > "$log" 2>&1 || rc=$?
  took=$(( $(date +%s) - start ))
  rm -f /dev/shm/lowbit_*_fuzz.* /tmp/lowbit_*_fuzz.*  # the path-reading harnesses' scratch files
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  crashes=$(find "$BUILD/crashes/$name" -type f | wc -l)
  printf '%-22s %12s %8s %8s\n' "$name" "$execs" "$crashes" "$took" >> "$BUILD/fuzz_summary.txt"
  if [[ $rc -ne 0 || $crashes -ne 0 ]]; then
    echo "fuzz: $name FAILED (exit $rc); reproducer(s) in $BUILD/crashes/$name:" >&2
    tail -n 40 "$log" >&2
    status=1
  fi
done
cat "$BUILD/fuzz_summary.txt"
exit $status
