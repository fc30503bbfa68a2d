#!/usr/bin/env bash
# kill -9 at random points of `lowbit train` and `lowbit qat`, then `--resume`: the final weights
# (eval --json's weights_crc32, a CRC-32 over every parameter and buffer) and metrics.jsonl
# (without its timing fields) must equal those of an uninterrupted run, bit for bit.
# gpt-tiny on a generated text, tiny sizes, a checkpoint every 2 steps, 1 torch thread (the
# documented deterministic setting).
# Usage: bash tests/cli/kill_resume_test.sh path/to/lowbit [KILLS=3]
set -euo pipefail

LOWBIT="$1"
KILLS="${2:-3}"
TMP="${LOWBIT_TEST_TMP:-/tmp}/kill_resume_test.$$"
rm -rf "$TMP"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for i in $(seq 1 300); do echo "line $i: pack my box with five dozen liquor jugs; $((i * 7919 % 1000))."; done >"$TMP/text.txt"
LM=(--model gpt-tiny --text "$TMP/text.txt" --layers 2 --width 32 --heads 4 --context 32 --batch-size 8
    --eval-windows 8 --threads 1 --seed 5)

# Weights and metrics of a finished run, without wall-clock fields.
fingerprint() {
  "$LOWBIT" eval --checkpoint "$1" --json --threads 1 | grep -o '"weights_crc32":"[0-9a-f]\{8\}"' \
    || fail "eval --json of $1 has no weights_crc32"
  sed -E 's/"(seconds|bytes_per_s|cpu_seconds)":[^,}]*,?//g' "$1/metrics.jsonl"
}

stamp() { stat -c %y "$1/checkpoint.pt" 2>/dev/null || echo none; }

# run_with_kills OUT START_CMD... -- RESUME_CMD...: starts the run, kills it with SIGKILL at a random
# moment after it wrote a new checkpoint (so the kill lands mid-training, not during start-up),
# continues it with the resume command, KILLS times; then lets the last resume finish. Prints how
# many kills hit a running process.
run_with_kills() {
  local out="$1"; shift
  local start=() resume=()
  while [[ "$1" != "--" ]]; do start+=("$1"); shift; done
  shift
  resume=("$@")
  local hits=0 k
  for ((k = 0; k < KILLS; ++k)); do
    local before
    before=$(stamp "$out")
    if [[ "$before" == none ]]; then
      "$LOWBIT" "${start[@]}" --out "$out" --overwrite >"$TMP/kill.log" 2>&1 &
    else
      "$LOWBIT" "${resume[@]}" --out "$out" --resume >"$TMP/kill.log" 2>&1 &
    fi
    local pid=$! waited=0
    while kill -0 "$pid" 2>/dev/null && [[ "$(stamp "$out")" == "$before" ]] && ((waited < 1200)); do
      sleep 0.05; waited=$((waited + 1))
    done
    sleep "0.$((RANDOM % 30))"
    if kill -9 "$pid" 2>/dev/null; then hits=$((hits + 1)); fi
    wait "$pid" 2>/dev/null || true
  done
  if [[ "$(stamp "$out")" == none ]]; then
    "$LOWBIT" "${start[@]}" --out "$out" --overwrite >"$TMP/final.log" 2>&1 || { cat "$TMP/final.log" >&2; fail "run after kill -9"; }
  else
    "$LOWBIT" "${resume[@]}" --out "$out" --resume >"$TMP/final.log" 2>&1 || { cat "$TMP/final.log" >&2; fail "resume after kill -9"; }
  fi
  echo "$hits"
}

# train: uninterrupted reference, then killed and resumed.
"$LOWBIT" train "${LM[@]}" --steps 24 --eval-interval 2 --out "$TMP/ref" >/dev/null 2>&1 || fail "reference train"
hits=$(run_with_kills "$TMP/killed" train "${LM[@]}" --steps 24 --eval-interval 2 -- train --threads 1)
[[ "$(fingerprint "$TMP/ref")" == "$(fingerprint "$TMP/killed")" ]] \
  || fail "train: resumed after kill -9 differs from the uninterrupted run:
$(diff <(fingerprint "$TMP/ref") <(fingerprint "$TMP/killed"))"
echo "train: identical after $hits kill(s) of a running process"

# qat from the reference run: the same promise.
QAT=(--from "$TMP/ref" --wbits 2 --group-size 32 --steps 12 --eval-interval 2 --eval-windows 8 --threads 1 --seed 3)
"$LOWBIT" qat "${QAT[@]}" --out "$TMP/qref" >/dev/null 2>&1 || fail "reference qat"
hits=$(run_with_kills "$TMP/qkilled" qat "${QAT[@]}" -- qat)
[[ "$(fingerprint "$TMP/qref")" == "$(fingerprint "$TMP/qkilled")" ]] \
  || fail "qat: resumed after kill -9 differs from the uninterrupted run:
$(diff <(fingerprint "$TMP/qref") <(fingerprint "$TMP/qkilled"))"
echo "qat: identical after $hits kill(s) of a running process"
echo "kill_resume_test: OK"
