#!/usr/bin/env bash
# A user's FP32 ONNX model through lowbit: a briefly trained cnn exported with `lowbit export
# --format onnx-fp32` stands in for a model exported from PyTorch. `eval` of the .onnx equals eval
# of the run it came from; `ptq --from model.onnx` and `qat --from model.onnx` quantize it;
# `convert` runs it on the integer runtime, which must equal the integer simulation; bad files
# give a clear error and exit 1.
# Usage: bash tests/cli/onnx_import_test.sh path/to/lowbit   (exit 77: dataset not installed)
set -euo pipefail

LOWBIT="$1"
TMP="${LOWBIT_TEST_TMP:-/tmp}/onnx_import_test.$$"
rm -rf "$TMP"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
# fail, expect_exit
source "$(dirname "${BASH_SOURCE[0]}")/test_lib.sh"

DATA="${LOWBIT_DATA:-/usr/share/datasets/fashion-mnist}"
[[ -f "$DATA/train-images-idx3-ubyte.gz" ]] || { echo "SKIP: Fashion-MNIST not in $DATA"; exit 77; }

json_value() {  # json_value FILE KEY
  python3 -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"
}

"$LOWBIT" train --model cnn --epochs 1 --max-steps-per-epoch 60 --val-size 5000 --data "$DATA" --out "$TMP/fp" \
  2>"$TMP/train.log" || { cat "$TMP/train.log" >&2; fail "train failed"; }
"$LOWBIT" export --from "$TMP/fp" --format onnx-fp32 --opset 17 --out "$TMP/model.onnx" >/dev/null 2>"$TMP/export.log" \
  || { cat "$TMP/export.log" >&2; fail "export failed"; }

# The imported model predicts what the run predicts.
"$LOWBIT" eval --checkpoint "$TMP/fp" --data "$DATA" --json >"$TMP/fp.json" 2>"$TMP/e1.log" || { cat "$TMP/e1.log" >&2; fail "eval fp"; }
"$LOWBIT" eval --checkpoint "$TMP/model.onnx" --data "$DATA" --json >"$TMP/onnx.json" 2>"$TMP/e2.log" || { cat "$TMP/e2.log" >&2; fail "eval onnx"; }
acc_fp=$(json_value "$TMP/fp.json" accuracy)
acc_onnx=$(json_value "$TMP/onnx.json" accuracy)
[[ "$acc_fp" == "$acc_onnx" ]] || fail "imported accuracy $acc_onnx differs from the run's $acc_fp"
python3 -c "import sys; assert float(sys.argv[1]) > 0.5, sys.argv[1]" "$acc_fp" || fail "the trained cnn has accuracy $acc_fp"

# PTQ W8A8 from the .onnx, then the integer runtime (convert checks it against the simulation).
"$LOWBIT" ptq --from "$TMP/model.onnx" --out "$TMP/ptq" --wbits 8 --abits 8 --calib-batches 2 --data "$DATA" \
  >"$TMP/ptq.out" 2>"$TMP/ptq.log" || { cat "$TMP/ptq.log" >&2; fail "ptq --from model.onnx failed"; }
grep -q '"model": "onnx"' "$TMP/ptq/config.json" || fail "ptq run config does not name model onnx"
grep -q '"onnx"' "$TMP/ptq/config.json" || fail "ptq run config lacks the imported structure"
"$LOWBIT" convert --from "$TMP/ptq" --out "$TMP/ptq.lbq" --check 200 --data "$DATA" >"$TMP/convert.out" 2>"$TMP/convert.log" \
  || { cat "$TMP/convert.log" >&2; fail "convert of the PTQ run failed"; }
grep -q "equal the integer simulation on 200/200" "$TMP/convert.out" || fail "convert check: $(cat "$TMP/convert.out")"
"$LOWBIT" eval --checkpoint "$TMP/ptq" --data "$DATA" --json >"$TMP/ptq.json" 2>"$TMP/e3.log" || { cat "$TMP/e3.log" >&2; fail "eval ptq"; }
python3 - "$acc_fp" "$(json_value "$TMP/ptq.json" accuracy)" <<'PY' || fail "W8A8 PTQ of the imported model lost too much accuracy"
import sys
fp, q = float(sys.argv[1]), float(sys.argv[2])
assert abs(fp - q) <= 0.02, (fp, q)
PY

# QAT W4A4 from the .onnx, a few steps; its checkpoint rebuilds without the .onnx file.
"$LOWBIT" qat --from "$TMP/model.onnx" --out "$TMP/qat" --wbits 4 --abits 4 --epochs 1 --max-steps-per-epoch 20 \
  --val-size 5000 --data "$DATA" >"$TMP/qat.out" 2>"$TMP/qat.log" || { cat "$TMP/qat.log" >&2; fail "qat --from model.onnx failed"; }
mv "$TMP/model.onnx" "$TMP/moved.onnx"
"$LOWBIT" convert --from "$TMP/qat" --out "$TMP/qat.lbq" --check 100 --data "$DATA" >"$TMP/convert2.out" 2>"$TMP/convert2.log" \
  || { cat "$TMP/convert2.log" >&2; fail "convert of the QAT run failed"; }
grep -q "equal the integer simulation on 100/100" "$TMP/convert2.out" || fail "convert check: $(cat "$TMP/convert2.out")"

# Bad files: truncated, not ONNX, missing. Each names the file and exits 1.
head -c 300 "$TMP/moved.onnx" >"$TMP/cut.onnx"
expect_exit 1 "$LOWBIT" ptq --from "$TMP/cut.onnx" --out "$TMP/bad" --data "$DATA"
grep -q "cut.onnx" "$TMP/err" || fail "truncated model message: $(cat "$TMP/err")"
echo "not a model" >"$TMP/text.onnx"
expect_exit 1 "$LOWBIT" eval --checkpoint "$TMP/text.onnx" --data "$DATA"
grep -q "text.onnx is not an ONNX model" "$TMP/err" || fail "text file message: $(cat "$TMP/err")"
expect_exit 1 "$LOWBIT" qat --from "$TMP/nothing.onnx" --out "$TMP/bad2" --data "$DATA"
grep -q "cannot open the ONNX model" "$TMP/err" || fail "missing file message: $(cat "$TMP/err")"
[[ ! -e "$TMP/bad" && ! -e "$TMP/bad2/checkpoint.pt" ]] || fail "a failed import left a run behind"
echo "onnx import CLI test passed"
