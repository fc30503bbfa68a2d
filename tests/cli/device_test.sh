#!/usr/bin/env bash
# --device for train and qat (docs/distributed.md, "Training on a GPU"), on small random data:
# on a machine without CUDA (this LibTorch build or no GPU), --device cuda / cuda:N exits 1 before
# any work with a message saying what to do, and writes nothing into --out; an unknown device name
# is an error naming the flag; --device cpu gives the same weights and results as no flag, is
# recorded in config.json, and --resume may name the device. Where CUDA is present, the cuda run
# must succeed instead and its checkpoint must load on the CPU (lowbit eval).
# Usage: bash tests/cli/device_test.sh path/to/lowbit
set -euo pipefail

LOWBIT="$1"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TMP="${LOWBIT_TEST_TMP:-/tmp}/device_test.$$"
rm -rf "$TMP"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
# fail, expect_exit
source "$HERE/test_lib.sh"

PYTHONPATH="$HERE" python3 - "$TMP" <<'PY' || fail "making the test data"
import sys
from test_arrays import write_brightness_npz
tmp = sys.argv[1]
write_brightness_npz(tmp + "/small.npz", seed=5)
open(tmp + "/text.txt", "w").write("the quick brown fox jumps over the lazy dog. " * 80)
PY

D="$TMP/small.npz"
QUICK=(--epochs 1 --val-size 16 --batch-size 16 --seed 3 --threads 1)
LM=(--model gpt-tiny --text "$TMP/text.txt" --steps 2 --layers 1 --width 32 --heads 2 --context 16 --batch-size 4
    --eval-windows 4 --threads 1)

# The reference run on the CPU, without --device.
"$LOWBIT" train --model mlp --data "$D" "${QUICK[@]}" --out "$TMP/plain" >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; fail "train"; }

# Nothing may appear in --out when the command fails.
expect_nothing_written() { [[ ! -e "$1" ]] || [[ -z "$(ls -A "$1")" ]] || fail "$2 wrote into --out: $(ls -A "$1")"; }

cuda_present=0
"$LOWBIT" train --model mlp --data "$D" "${QUICK[@]}" --device cuda --out "$TMP/cuda" >"$TMP/out" 2>"$TMP/err" \
  || cuda_present=$?
if [[ "$cuda_present" == 0 ]]; then
  # A GPU machine with a CUDA build: the checkpoint (CPU tensors) evaluates on the CPU.
  "$LOWBIT" eval --checkpoint "$TMP/cuda" --data "$D" --json >"$TMP/out" 2>"$TMP/err" || { cat "$TMP/err" >&2; fail "eval of a cuda run"; }
  grep -q '"accuracy"' "$TMP/out" || fail "eval of a cuda run printed: $(cat "$TMP/out")"
  echo "CUDA present: --device cuda trained and its checkpoint evaluated on the CPU"
else
  [[ "$cuda_present" == 1 ]] || fail "--device cuda without CUDA exited $cuda_present, expected 1"
  grep -q -- "--device cuda: this LibTorch build has no CUDA (or no GPU is visible); use --device cpu" "$TMP/err" \
    || fail "--device cuda message: $(cat "$TMP/err")"
  expect_nothing_written "$TMP/cuda" "train --device cuda"
  expect_exit 1 "$LOWBIT" train --model mlp --data "$D" "${QUICK[@]}" --device cuda:1 --out "$TMP/cuda1"
  grep -q -- "--device cuda:1: this LibTorch build has no CUDA" "$TMP/err" || fail "cuda:1 message: $(cat "$TMP/err")"
  expect_nothing_written "$TMP/cuda1" "train --device cuda:1"
  expect_exit 1 "$LOWBIT" train "${LM[@]}" --device cuda --out "$TMP/lm_cuda"
  grep -q -- "this LibTorch build has no CUDA" "$TMP/err" || fail "gpt-tiny --device cuda: $(cat "$TMP/err")"
  expect_nothing_written "$TMP/lm_cuda" "train gpt-tiny --device cuda"
  expect_exit 1 "$LOWBIT" qat --from "$TMP/plain" --data "$D" "${QUICK[@]}" --wbits 4 --abits 8 --device cuda --out "$TMP/qat_cuda"
  grep -q -- "this LibTorch build has no CUDA" "$TMP/err" || fail "qat --device cuda: $(cat "$TMP/err")"
  expect_nothing_written "$TMP/qat_cuda" "qat --device cuda"
  # --resume --device cuda on a CPU run fails the same way and leaves the run as it was.
  cp "$TMP/plain/checkpoint.pt" "$TMP/plain.ckpt"
  expect_exit 1 "$LOWBIT" train --out "$TMP/plain" --resume --epochs 2 --device cuda
  grep -q -- "this LibTorch build has no CUDA" "$TMP/err" || fail "resume --device cuda: $(cat "$TMP/err")"
  cmp -s "$TMP/plain/checkpoint.pt" "$TMP/plain.ckpt" || fail "a failed --resume --device cuda changed the checkpoint"
fi

# Unknown device names: exit 1 naming the flag, the value and what is allowed; nothing written.
for bad in gpu cuda:x cuda: CPU "cuda:-1"; do
  expect_exit 1 "$LOWBIT" train --model mlp --data "$D" "${QUICK[@]}" --device "$bad" --out "$TMP/bad"
  grep -q -- "--device '$bad' is not a training device; use cpu, cuda or cuda:N" "$TMP/err" \
    || fail "--device $bad: $(cat "$TMP/err")"
  expect_nothing_written "$TMP/bad" "train --device $bad"
done
expect_exit 1 "$LOWBIT" qat --from "$TMP/plain" --data "$D" "${QUICK[@]}" --device mps --out "$TMP/bad"
grep -q -- "--device 'mps' is not a training device" "$TMP/err" || fail "qat --device mps: $(cat "$TMP/err")"
expect_nothing_written "$TMP/bad" "qat --device mps"

# --device cpu is the default: the same weights and results, and "device": "cpu" in config.json.
# Each pair runs in its own folder with the same relative --out, so that their configs are equal.
in_dir() { local d="$1"; shift; mkdir -p "$d"; (cd "$d" && "$@") >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; fail "$*"; }; }
# The checkpoint files themselves differ between any two runs (LibTorch keys optimizer state by
# tensor address), so the runs are compared by `lowbit eval --json`: weights' CRC-32, loss, accuracy.
same_checkpoint() {
  local k
  for k in "$1" "$2"; do
    (cd "$TMP/$k" && "$LOWBIT" eval --checkpoint run --data "$D" --json) >"$TMP/$k.json" 2>"$TMP/err" \
      || { cat "$TMP/err" >&2; fail "eval of $k"; }
  done
  grep -q '"weights_crc32"' "$TMP/$1.json" || fail "eval --json printed: $(cat "$TMP/$1.json")"
  cmp -s "$TMP/$1.json" "$TMP/$2.json" || fail "$3 gave another checkpoint than no flag: $(cat "$TMP/$1.json" "$TMP/$2.json")"
}
in_dir "$TMP/a" "$LOWBIT" train --model mlp --data "$D" "${QUICK[@]}" --out run
in_dir "$TMP/b" "$LOWBIT" train --model mlp --data "$D" "${QUICK[@]}" --device cpu --out run
same_checkpoint a b "train --device cpu"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["device"] == "cpu"' "$TMP/b/run/config.json" \
  || fail "config.json: $(cat "$TMP/b/run/config.json")"
# --resume with --device cpu continues as without it.
in_dir "$TMP/a" "$LOWBIT" train --out run --resume --epochs 2
in_dir "$TMP/b" "$LOWBIT" train --out run --resume --epochs 2 --device cpu
same_checkpoint a b "train --resume --device cpu"

# The same for qat and for the language model.
QAT=(--data "$D" "${QUICK[@]}" --wbits 4 --abits 8 --max-steps-per-epoch 3)
in_dir "$TMP/qa" "$LOWBIT" qat --from "$TMP/plain" "${QAT[@]}" --out run
in_dir "$TMP/qb" "$LOWBIT" qat --from "$TMP/plain" "${QAT[@]}" --device cpu --out run
same_checkpoint qa qb "qat --device cpu"
in_dir "$TMP/la" "$LOWBIT" train "${LM[@]}" --out run
in_dir "$TMP/lb" "$LOWBIT" train "${LM[@]}" --device cpu --out run
same_checkpoint la lb "gpt-tiny --device cpu"
echo "device_test: ok"
