#!/usr/bin/env bash
# Speed of lowbit's integer runtime on a user's ONNX model against ONNX Runtime on the original
# FP32 file, same machine, same script run, alternating the runtimes so that a noisy neighbour
# slows both. The .lbq files come from `lowbit ptq` (W8A8 and W4A4, round to nearest): latency
# does not depend on the weights' values, so the file's accuracy is irrelevant here and the model
# need not be trained (docs/BENCHMARKS.md uses PyTorch's random initialisation).
#
# Usage: bench/imported_model_speed.sh [BUILD_DIR=build] MODEL.onnx [MODEL.onnx ...]
#   THREADS=2 ITERATIONS=30 (batch 1 uses 4x as many) ROUNDS=3 (median of the rounds' medians)
#   OUT=/tmp/lowbit_imported_speed (the .lbq files)
# Prints a Markdown table: median ms per runtime and batch, and ONNX Runtime's time / lowbit's
# (> 1: lowbit is faster).
set -euo pipefail
build=${1:?usage: bench/imported_model_speed.sh BUILD_DIR MODEL.onnx [...]}
shift
[[ $# -ge 1 ]] || { echo "imported_model_speed: name at least one .onnx file" >&2; exit 2; }
lowbit="$build/lowbit"
here=$(cd "$(dirname "$0")/.." && pwd)
data=${LOWBIT_DATA:-/usr/share/datasets/fashion-mnist}
threads=${THREADS:-2}
iterations=${ITERATIONS:-30}
rounds=${ROUNDS:-3}
out=${OUT:-/tmp/lowbit_imported_speed}
[[ -x "$lowbit" ]] || { echo "imported_model_speed: $lowbit not found; run 'make build' first" >&2; exit 1; }
[[ -f "$here/third_party/node/node_modules/onnxruntime-node/package.json" ]] \
  || { echo "imported_model_speed: onnxruntime-node missing (scripts/setup.sh installs it)" >&2; exit 1; }
mkdir -p "$out"
rows="$out/rows.jsonl"
: >"$rows"
median_of() { python3 -c "import json,sys; print(json.load(sys.stdin)['results'][0]['ms_median'])"; }
for model in "$@"; do
  [[ -f "$model" ]] || { echo "imported_model_speed: no such file: $model" >&2; exit 1; }
  name=$(basename "$model" .onnx)
  for q in 8 4; do
    "$lowbit" ptq --from "$model" --out "$out/$name-w${q}a${q}" --wbits $q --abits $q --calib-batches 2 \
      --data "$data" --overwrite >/dev/null
    "$lowbit" convert --from "$out/$name-w${q}a${q}" --out "$out/$name-w${q}a${q}.lbq" --data "$data" >/dev/null
  done
  for round in $(seq "$rounds"); do
    for b in 1 256; do
      its=$iterations; [[ $b == 1 ]] && its=$((4 * iterations))
      ms=$(node "$here/tests/export/ort_run.js" "$model" "$data/t10k-images-idx3-ubyte.gz" --threads "$threads" \
             --bench $b --iterations $its | median_of)
      echo "{\"model\":\"$name\",\"runtime\":\"onnxruntime\",\"batch\":$b,\"ms\":$ms}" >>"$rows"
      for q in 8 4; do
        ms=$("$lowbit" bench "$out/$name-w${q}a${q}.lbq" --batch $b --threads "$threads" --iterations $its --json | median_of)
        echo "{\"model\":\"$name\",\"runtime\":\"w${q}a${q}\",\"batch\":$b,\"ms\":$ms}" >>"$rows"
      done
    done
  done
done
python3 - "$rows" <<'PY'
import json, statistics, sys
from collections import defaultdict
ms = defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    ms[(r["model"], r["batch"], r["runtime"])].append(r["ms"])
med = {k: statistics.median(v) for k, v in ms.items()}
print("| model | batch | ONNX Runtime FP32 ms | lowbit W8A8 ms (ORT / lowbit) | lowbit W4A4 ms (ORT / lowbit) |")
print("|---|---|---|---|---|")
for model, batch in sorted({(m, b) for m, b, _ in med}):
    ort = med[(model, batch, "onnxruntime")]
    cell = lambda q: f"{med[(model, batch, q)]:.3f} ({ort / med[(model, batch, q)]:.2f}x)"
    print(f"| {model} | {batch} | {ort:.3f} | {cell('w8a8')} | {cell('w4a4')} |")
PY
