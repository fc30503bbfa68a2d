#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer harnesses in fuzz/ with clang (AddressSanitizer +
# UndefinedBehaviorSanitizer) and runs each for FUZZ_SECONDS (default 60) on one core, starting
# from a seed corpus the project's own tools write. A crash stops the run with the reproducer's
# path; turn it into a regression test (tests/runtime/model_file_test.cpp holds the .lbq ones).
# Prints executions and crashes per harness (docs/reliability.md quotes them).
#
# Usage: scripts/fuzz.sh [BUILD_DIR=build-fuzz]    FUZZ_SECONDS=N   FUZZ_JOBS=1
set -euo pipefail

BUILD="${1:-build-fuzz}"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
CXX_FUZZ="${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++ || true)}"
[[ -n "$CXX_FUZZ" ]] || { echo "fuzz: clang++ not found (scripts/setup.sh --fuzz installs clang-14 and libclang-rt-14-dev)" >&2; exit 1; }
[[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || { echo "fuzz: FUZZ_SECONDS must be a whole number, not '$SECONDS_EACH'" >&2; exit 2; }

flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
mkdir -p "$BUILD"
cmake -S . -B "$BUILD" -DCMAKE_CXX_COMPILER="$CXX_FUZZ" -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="$flags" \
  -DLOWBIT_WITH_TORCH=OFF -DLOWBIT_TESTS=OFF -DLOWBIT_BENCH=OFF -DLOWBIT_FUZZ=ON > "$BUILD/configure.log" 2>&1 \
  || { cat "$BUILD/configure.log"; exit 1; }
cmake --build "$BUILD" -j"${JOBS:-$(nproc)}"

# Seed corpora, written by lowbit itself.
corpus="$BUILD/corpus"
mkdir -p "$corpus/lbq_model_fuzz" "$corpus/idx_file_fuzz" "$corpus/text_corpus_fuzz" "$corpus/npy_fuzz" "$corpus/onnx_import_fuzz"
"$BUILD/make_fuzz_seeds" "$corpus"

status=0
printf '%-20s %12s %8s %s\n' harness executions crashes seconds > "$BUILD/fuzz_summary.txt"
for harness in "$BUILD"/*_fuzz; do
  name=$(basename "$harness")
  mkdir -p "$corpus/$name" "$BUILD/crashes/$name"
  echo "== $name: $SECONDS_EACH s"
  log="$BUILD/$name.log"
  rc=0
  "$harness" -max_total_time="$SECONDS_EACH" -max_len=400000 -rss_limit_mb=2048 -timeout=20 \
    -artifact_prefix="$BUILD/crashes/$name/" -print_final_stats=1 "$corpus/$name" > "$log" 2>&1 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  crashes=$(find "$BUILD/crashes/$name" -type f | wc -l)
  printf '%-20s %12s %8s %s\n' "$name" "$execs" "$crashes" "$SECONDS_EACH" >> "$BUILD/fuzz_summary.txt"
  if [[ $rc -ne 0 || $crashes -ne 0 ]]; then
    echo "fuzz: $name FAILED (exit $rc); reproducer(s) in $BUILD/crashes/$name:" >&2
    tail -n 40 "$log" >&2
    status=1
  fi
done
cat "$BUILD/fuzz_summary.txt"
exit $status
