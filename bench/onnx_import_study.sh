#!/usr/bin/env bash
# The user's path (README, "Your own model") on the example models of bench/onnx_examples.py:
# PyTorch-trained small ResNet, MobileNetV2-style, MobileNetV3-style and DenseNet/Inception-style
# (concat, dilated conv) nets exported to ONNX, then
#   lowbit eval --checkpoint model.onnx          FP32 accuracy as lowbit imports it
#   lowbit ptq  --from model.onnx  (W8A8)         -> convert -> runtime accuracy
#   lowbit qat  --from model.onnx  (W4A4)         -> convert -> runtime accuracy
# and speed, same script run, 2 threads: lowbit's integer runtime (W8A8 and W4A4 .lbq), ONNX Runtime
# on the original FP32 file, PyTorch FP32 and int8 (FX static quantization; fbgemm, else onednn).
# Prints a Markdown table per part; timing figures are for comparing within this run only.
#
# Usage: bench/onnx_import_study.sh [BUILD_DIR=build] [OUT=runs/onnx_examples]
#   EPOCHS=2 (PyTorch training)  QAT_EPOCHS=1  QAT_STEPS=0 (steps per QAT epoch, 0 = all)
#   MODELS="small-resnet mobilenetv2 mobilenetv3 dense-inception" (a subset; missing .onnx files are trained)
#   ITERATIONS=30  needs python3-torch (scripts/setup.sh --bench) and onnxruntime-node
#   SPEED_ONLY=1 re-times an earlier run's files (on an idle machine) without retraining
set -euo pipefail
build=${1:-build}
out=${2:-runs/onnx_examples}
lowbit="$build/lowbit"
here=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
data=${LOWBIT_DATA:-/usr/share/datasets/fashion-mnist}
iterations=${ITERATIONS:-30}
qat_epochs=${QAT_EPOCHS:-1}
qat_steps=${QAT_STEPS:-0}
[[ -x "$lowbit" ]] || { echo "onnx_import_study: $lowbit not found; run 'make build' first" >&2; exit 1; }
$py -c "import torch" 2>/dev/null || { echo "onnx_import_study: python3-torch missing (scripts/setup.sh --bench)" >&2; exit 1; }
mkdir -p "$out"
models=${MODELS:-small-resnet mobilenetv2 mobilenetv3 dense-inception}
missing=()
for m in $models; do [[ -f "$out/$m.onnx" ]] || missing+=("$m"); done
if (( ${#missing[@]} )); then
  $py "$here/bench/onnx_examples.py" train --out "$out" --epochs "${EPOCHS:-2}" --models "$(IFS=,; echo "${missing[*]}")"
fi
$py "$here/bench/onnx_examples.py" bench --out "$out" --iterations "$iterations" --models "$(echo $models | tr ' ' ,)" >/dev/null

acc() { $py -c "import json,sys; print(json.load(open(sys.argv[1]))['accuracy'])" "$1"; }
results="$out/study.jsonl"
: >"$results"
for m in $models; do
  echo "== $m" >&2
  if [[ "${SPEED_ONLY:-0}" != 1 ]]; then
    "$lowbit" eval --checkpoint "$out/$m.onnx" --data "$data" --json >"$out/$m.fp32.json"
    "$lowbit" ptq --from "$out/$m.onnx" --out "$out/$m-w8a8" --wbits 8 --abits 8 --calib-batches 8 --data "$data" --overwrite >/dev/null
    "$lowbit" qat --from "$out/$m.onnx" --out "$out/$m-w4a4" --wbits 4 --abits 4 --epochs "$qat_epochs" \
      --max-steps-per-epoch "$qat_steps" --data "$data" --overwrite >/dev/null
  fi
  for q in w8a8 w4a4; do
    if [[ "${SPEED_ONLY:-0}" != 1 ]]; then
      "$lowbit" eval --checkpoint "$out/$m-$q" --data "$data" --json >"$out/$m-$q.sim.json"
      "$lowbit" convert --from "$out/$m-$q" --out "$out/$m-$q.lbq" --check 1000 --data "$data" >/dev/null
      "$lowbit" eval --model "$out/$m-$q.lbq" --data "$data" --json >"$out/$m-$q.runtime.json"
    fi
    for b in 1 256; do
      its=$iterations; [[ $b == 1 ]] && its=$((4 * iterations))
      "$lowbit" bench "$out/$m-$q.lbq" --batch $b --threads 2 --iterations $its --json \
        | $py -c "import json,sys; r=json.load(sys.stdin); [print(json.dumps({'model':'$m','runtime':'lowbit $q','batch':e['batch'],'ms':e['ms_median']})) for e in r['results']]" >>"$results"
    done
  done
  for b in 1 256; do
    its=$iterations; [[ $b == 1 ]] && its=$((4 * iterations))
    node "$here/tests/export/ort_run.js" "$out/$m.onnx" "$data/t10k-images-idx3-ubyte.gz" --threads 2 --bench $b --iterations $its \
      | $py -c "import json,sys; r=json.load(sys.stdin); [print(json.dumps({'model':'$m','runtime':'onnxruntime fp32 (original file)','batch':e['batch'],'ms':e['ms_median']})) for e in r['results']]" >>"$results"
  done
  echo "{\"model\":\"$m\",\"fp32\":$(acc "$out/$m.fp32.json"),\"w8a8_sim\":$(acc "$out/$m-w8a8.sim.json"),\"w8a8_runtime\":$(acc "$out/$m-w8a8.runtime.json"),\"w4a4_sim\":$(acc "$out/$m-w4a4.sim.json"),\"w4a4_runtime\":$(acc "$out/$m-w4a4.runtime.json")}" >>"$results"
done

$py - "$results" "$out/pytorch.json" "$out/pytorch_bench.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
torch_train = json.load(open(sys.argv[2]))["models"]
torch_bench_all = json.load(open(sys.argv[3]))
torch_bench, engine = torch_bench_all["models"], torch_bench_all["engine"]
print(f"| model | PyTorch FP32 | lowbit FP32 (imported) | PTQ W8A8 (sim / runtime) | QAT W4A4 (sim / runtime) | PyTorch int8 ({engine}) |")
print("|---|---|---|---|---|---|")
for r in rows:
    if "fp32" not in r:
        continue
    m = r["model"]
    pct = lambda v: f"{100 * v:.2f}"
    print(f"| {m} | {pct(torch_train[m]['test_accuracy'])} | {pct(r['fp32'])} | {pct(r['w8a8_sim'])} / {pct(r['w8a8_runtime'])} "
          f"| {pct(r['w4a4_sim'])} / {pct(r['w4a4_runtime'])} | {pct(torch_bench[m]['int8_accuracy'])} |")
print()
print("| model | batch | runtime | median ms | vs ONNX Runtime FP32 |")
print("|---|---|---|---|---|")
for m in torch_bench:
    for b in (1, 256):
        timed = [(r["runtime"], r["ms"]) for r in rows if r.get("model") == m and r.get("batch") == b]
        timed += [("pytorch fp32", torch_bench[m][f"fp32_ms_b{b}"]), (f"pytorch int8 ({engine})", torch_bench[m][f"int8_ms_b{b}"])]
        ort = dict(timed).get("onnxruntime fp32 (original file)")
        for name, ms in timed:
            print(f"| {m} | {b} | {name} | {ms:.3f} | {ort / ms:.2f}x |" if ort else f"| {m} | {b} | {name} | {ms:.3f} | |")
PY
