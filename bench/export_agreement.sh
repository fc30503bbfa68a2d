#!/usr/bin/env bash
# ONNX export agreement: for each model, train FP32 for one epoch (lowbit train), fine-tune with QAT
# for one epoch at W8A8 and W4A8 (lowbit qat), convert to the integer runtime (lowbit convert) and
# export to QDQ ONNX (lowbit export), then classify all 10,000 Fashion-MNIST test images with the
# integer runtime (lowbit run) and with ONNX Runtime (tests/export/ort_run.js, Node binding) and
# count the images on which the predictions agree. Prints a Markdown table.
#
# Usage: bench/export_agreement.sh [BUILD_DIR] [WORK_DIR]
#   MODELS="cnn resnet8 mobilenet-tiny"  models to run
#   PRECISIONS="8/8 4/8"                 weight bits / activation bits of the QAT runs
#   MAX_STEPS=0                          steps per epoch (0: whole epochs; e.g. 100 for a quick look)
# Runs already in WORK_DIR (default runs/export_agreement) are reused, so an interrupted run resumes.
set -euo pipefail
build=${1:-build}
work=${2:-runs/export_agreement}
models=${MODELS:-cnn resnet8 mobilenet-tiny}
precisions=${PRECISIONS:-8/8 4/8}
max_steps=${MAX_STEPS:-0}
lowbit="$build/lowbit"
here=$(cd "$(dirname "$0")/.." && pwd)
data=${LOWBIT_DATA:-/usr/share/datasets/fashion-mnist}
images="$data/t10k-images-idx3-ubyte.gz"
labels="$data/t10k-labels-idx1-ubyte.gz"

[[ -x "$lowbit" ]] || { echo "export_agreement: $lowbit not found; run 'make build' first" >&2; exit 1; }
[[ -f "$here/third_party/node/node_modules/onnxruntime-node/package.json" ]] \
  || { echo "export_agreement: onnxruntime-node missing; run scripts/setup.sh" >&2; exit 1; }
[[ -f "$images" ]] || { echo "export_agreement: $images not found (dataset-fashion-mnist)" >&2; exit 1; }
mkdir -p "$work"
log="$work/log.txt"

rows=()
for model in $models; do
  fp32="$work/$model-fp32"
  if [[ ! -f "$fp32/checkpoint.pt" ]]; then
    echo "training $model FP32 (1 epoch)" >&2
    "$lowbit" train --model "$model" --epochs 1 --max-steps-per-epoch "$max_steps" --threads 2 --out "$fp32" >>"$log" 2>&1
  fi
  for wa in $precisions; do
    w=${wa%/*}
    a=${wa#*/}
    name="$model-w${w}a${a}"
    run="$work/$name"
    if [[ ! -f "$run/checkpoint.pt" ]]; then
      echo "QAT $name (1 epoch)" >&2
      "$lowbit" qat --from "$fp32" --wbits "$w" --abits "$a" --epochs 1 --max-steps-per-epoch "$max_steps" \
        --threads 2 --out "$run" >>"$log" 2>&1
    fi
    "$lowbit" convert --from "$run" --out "$work/$name.lbq" --check 1000 >>"$log" 2>&1
    "$lowbit" export --from "$run" --format onnx --out "$work/$name.onnx" >>"$log" 2>&1
    "$lowbit" run "$work/$name.lbq" --idx "$images" --count 10000 --threads 2 \
      | sed -n 's/^image [0-9]*: class \([0-9]*\).*/\1/p' >"$work/$name.lowbit.txt"
    ort=$(node "$here/tests/export/ort_run.js" "$work/$name.onnx" "$images" --threads 2 --labels "$labels" \
      --predictions "$work/$name.ort.txt")
    agree=$(paste -d' ' "$work/$name.lowbit.txt" "$work/$name.ort.txt" | awk '$1 == $2' | wc -l)
    total=$(wc -l <"$work/$name.lowbit.txt")
    lowbit_acc=$(gzip -dc "$labels" | tail -c +9 | od -An -v -tu1 -w1 | tr -d ' ' | paste -d' ' - "$work/$name.lowbit.txt" \
      | awk '$1 == $2 {n++} END {printf "%.2f", 100 * n / NR}')
    ort_acc=$(echo "$ort" | sed -n 's/.*"accuracy":\([0-9.]*\).*/\1/p' | awk '{printf "%.2f", 100 * $1}')
    bytes=$(stat -c %s "$work/$name.onnx")
    rows+=("| $model | W${w}A${a} | $agree / $total | $lowbit_acc% | $ort_acc% | $bytes |")
    echo "${rows[-1]}" >&2
  done
done

echo "| model | weights/activations | predictions equal (lowbit runtime vs ONNX Runtime) | lowbit accuracy | ONNX Runtime accuracy | .onnx bytes |"
echo "| --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
