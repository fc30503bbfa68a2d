#!/usr/bin/env bash
# qat --distill / --teacher (train/distillation.h), on small random data: the run records its
# teacher (absolute path) in config.json; distillation changes the trained weights, while
# --distill-weight 0 (labels only) reproduces plain QAT bit for bit, so the teacher's forward
# leaves the run's state alone; --resume re-reads the teacher from config.json and says so when it
# is gone; bad values and unsupported models are refused before anything is written.
# Usage: bash tests/cli/distill_test.sh path/to/lowbit
set -euo pipefail

LOWBIT="$1"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TMP="${LOWBIT_TEST_TMP:-/tmp}/distill_test.$$"
rm -rf "$TMP"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
# fail, expect_exit
source "$HERE/test_lib.sh"

PYTHONPATH="$HERE" python3 - "$TMP" <<'PY' || fail "making the test data"
import sys
from test_arrays import write_brightness_npz
tmp = sys.argv[1]
write_brightness_npz(tmp + "/small.npz", seed=7)
open(tmp + "/text.txt", "w").write("the quick brown fox jumps over the lazy dog. " * 80)
PY

D="$TMP/small.npz"
QUICK=(--data "$D" --epochs 1 --val-size 16 --batch-size 16 --seed 3 --threads 1)
QAT=(--wbits 2 --abits 4 "${QUICK[@]}")
crc() {
  "$LOWBIT" eval --checkpoint "$1" --data "$D" --json --threads 1 | grep -o '"weights_crc32":"[0-9a-f]\{8\}"' \
    || fail "eval --json of $1 has no weights_crc32"
}
expect_nothing_written() { [[ ! -e "$1" ]] || [[ -z "$(ls -A "$1")" ]] || fail "$2 wrote into --out: $(ls -A "$1")"; }

"$LOWBIT" train --model cnn "${QUICK[@]}" --out "$TMP/fp32" >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; fail "train"; }
"$LOWBIT" qat --from "$TMP/fp32" "${QAT[@]}" --out "$TMP/plain" >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; fail "plain qat"; }
"$LOWBIT" qat --from "$TMP/fp32" "${QAT[@]}" --distill --distill-temperature 2 --out "$TMP/kd" >"$TMP/log" 2>&1 \
  || { cat "$TMP/log" >&2; fail "qat --distill"; }
"$LOWBIT" qat --from "$TMP/fp32" "${QAT[@]}" --distill-weight 0 --out "$TMP/kd0" >"$TMP/log" 2>&1 \
  || { cat "$TMP/log" >&2; fail "qat --distill-weight 0"; }

python3 - "$TMP" <<'PY' || fail "config.json's distill section"
import json, os, sys
tmp = sys.argv[1]
c = json.load(open(tmp + "/kd/config.json"))
d = c.get("distill")
assert d is not None, "no distill section in " + json.dumps(c)[:300]
assert os.path.isabs(d["teacher"]) and os.path.exists(d["teacher"]), d
assert os.path.realpath(d["teacher"]).startswith(os.path.realpath(tmp + "/fp32")), d
assert d["weight"] == 1.0 and d["temperature"] == 2.0, d
assert "distill" not in json.load(open(tmp + "/plain/config.json"))
assert json.load(open(tmp + "/kd0/config.json"))["distill"]["weight"] == 0.0
PY

plain="$(crc "$TMP/plain")"
[[ "$(crc "$TMP/kd0")" == "$plain" ]] || fail "--distill-weight 0 differs from plain QAT: $(crc "$TMP/kd0") vs $plain"
[[ "$(crc "$TMP/kd")" != "$plain" ]] || fail "--distill trained the same weights as plain QAT ($plain): the teacher had no effect"

# --resume reads the teacher from config.json: gone, it is an error naming it; back, the run resumes.
mv "$TMP/fp32" "$TMP/fp32.away"
expect_exit 1 "$LOWBIT" qat --resume --out "$TMP/kd" --data "$D"
grep -q "teacher '.*fp32.*' does not exist" "$TMP/err" || fail "resume without the teacher: $(cat "$TMP/err")"
mv "$TMP/fp32.away" "$TMP/fp32"
"$LOWBIT" qat --resume --out "$TMP/kd" --data "$D" >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; fail "qat --resume of a distilled run"; }

# Refusals: exit 2 for bad flag values, 1 for a missing teacher or a language model; nothing written.
expect_exit 2 "$LOWBIT" qat --from "$TMP/fp32" "${QAT[@]}" --distill-weight 1.5 --out "$TMP/bad1"
grep -q -- "--distill-weight must be in \[0, 1\]" "$TMP/err" || fail "weight 1.5: $(cat "$TMP/err")"
expect_exit 2 "$LOWBIT" qat --from "$TMP/fp32" "${QAT[@]}" --distill-temperature 0 --out "$TMP/bad2"
grep -q -- "--distill-temperature must be > 0" "$TMP/err" || fail "temperature 0: $(cat "$TMP/err")"
expect_exit 1 "$LOWBIT" qat --from "$TMP/fp32" "${QAT[@]}" --teacher "$TMP/nothing" --out "$TMP/bad3"
grep -q "teacher '.*nothing' does not exist" "$TMP/err" || fail "missing teacher: $(cat "$TMP/err")"
expect_nothing_written "$TMP/bad3" "qat with a missing teacher"
expect_exit 1 "$LOWBIT" qat --from "$TMP/fp32" "${QAT[@]}" --teacher "$TMP/plain" --out "$TMP/bad4"
grep -q "is a QAT checkpoint; give an FP32 one" "$TMP/err" || fail "QAT teacher: $(cat "$TMP/err")"
expect_nothing_written "$TMP/bad4" "qat with a QAT teacher"
expect_exit 2 "$LOWBIT" qat --resume --distill --out "$TMP/kd"
grep -q "drop --winq\*, --distill\*" "$TMP/err" || fail "resume with --distill: $(cat "$TMP/err")"
LM=(--model gpt-tiny --text "$TMP/text.txt" --steps 2 --layers 1 --width 32 --heads 2 --context 16 --batch-size 4
    --eval-windows 4 --threads 1)
"$LOWBIT" train "${LM[@]}" --out "$TMP/lm" >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; fail "train gpt-tiny"; }
expect_exit 1 "$LOWBIT" qat --from "$TMP/lm" --steps 2 --wbits 4 --distill --out "$TMP/lm_kd"
grep -q "distillation covers image models so far" "$TMP/err" || fail "gpt-tiny --distill: $(cat "$TMP/err")"
expect_nothing_written "$TMP/lm_kd" "gpt-tiny qat --distill"
echo "distill tests passed"
