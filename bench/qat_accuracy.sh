#!/usr/bin/env bash
# QAT accuracy at equal training budget on the reference CNN (Fashion-MNIST test set, 10,000 images).
#
# Per seed: FP32 for FP32_EPOCHS (the QAT starting point), FP32 for FP32_EPOCHS + QAT_EPOCHS (the
# equal-budget reference), then QAT_EPOCHS of QAT from the starting point at W8A8, W4A4, W2A4
# (every layer, and with the first conv and last linear at 8-bit weights), SEQ2, ternary and
# binary weights with 4-bit activations (weights per channel with the default estimator: STE at 8 bits, LSQ below; uint activations,
# BN statistics frozen from the start: the qat command's defaults; W8A8 also with LSQ), and the PyTorch anchor (eager W8A8 QAT, fbgemm, then convert to int8) on the same budget.
# Prints one line per run and a markdown table of mean +- std over seeds.
#
# Usage: bench/qat_accuracy.sh BUILD_DIR [SEEDS="0 1 2"] [FP32_EPOCHS=2] [QAT_EPOCHS=1] [THREADS=2]
set -euo pipefail
build=${1:-build}
seeds=${2:-"0 1 2"}
fp32_epochs=${3:-2}
qat_epochs=${4:-1}
threads=${5:-2}
lowbit="$build/lowbit"
here=$(cd "$(dirname "$0")" && pwd)
[[ -x "$lowbit" ]] || { echo "qat_accuracy: $lowbit not found; run 'make build' first" >&2; exit 1; }
have_torch=1
/usr/bin/python3 -c "import torch" 2>/dev/null || { have_torch=0; echo "qat_accuracy: no python3-torch, skipping the PyTorch anchor (scripts/setup.sh --bench)" >&2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results="$work/results.txt"
: > "$results"

accuracy_of() {  # checkpoint folder -> test accuracy in percent
  "$lowbit" eval --checkpoint "$1" --json | /usr/bin/python3 -c 'import json,sys; print("%.2f" % (100 * json.load(sys.stdin)["accuracy"]))'
}

record() {  # name seed accuracy
  echo "$1 $2 $3" >> "$results"
  echo "seed $2  $1  $3%"
}

common=(--threads "$threads" --val-size 0)
# 2-bit weights with the first conv and the last linear at 8 bits, the usual practice.
cat > "$work/first_last_w8.json" <<'EOF'
{"weight_bits": 2, "act_bits": 4,
 "overrides": [{"pattern": "conv1", "weight_bits": 8}, {"pattern": "fc2", "weight_bits": 8}]}
EOF
for seed in $seeds; do
  "$lowbit" train --model cnn --epochs "$fp32_epochs" --seed "$seed" "${common[@]}" --out "$work/fp32-$seed" > "$work/log" 2>&1
  record "fp32-${fp32_epochs}ep" "$seed" "$(accuracy_of "$work/fp32-$seed")"
  "$lowbit" train --model cnn --epochs $((fp32_epochs + qat_epochs)) --seed "$seed" "${common[@]}" \
    --out "$work/fp32-long-$seed" > "$work/log" 2>&1
  record "fp32-$((fp32_epochs + qat_epochs))ep" "$seed" "$(accuracy_of "$work/fp32-long-$seed")"
  while read -r name flags; do
    flags=${flags/FIRST_LAST_W8/$work/first_last_w8.json}
    # shellcheck disable=SC2086
    "$lowbit" qat --from "$work/fp32-$seed" $flags --epochs "$qat_epochs" --seed "$seed" "${common[@]}" \
      --out "$work/$name-$seed" > "$work/log" 2>&1
    record "$name" "$seed" "$(accuracy_of "$work/$name-$seed")"
  done <<'EOF'
w8a8 --wbits 8 --abits 8
w8a8-lsq --wbits 8 --abits 8 --quantizer lsq
w4a4 --wbits 4 --abits 4
w2a4 --wbits 2 --abits 4
w2a4-first-last-w8 --config FIRST_LAST_W8
seq2-a4 --weight-format seq2 --abits 4
ternary-a4 --weight-format ternary --abits 4
binary-a4 --weight-format binary --abits 4
EOF
  if [[ $have_torch == 1 ]]; then
    out=$("$here/pytorch_anchor.py" qat-accuracy --seed "$seed" --fp32-epochs "$fp32_epochs" \
      --qat-epochs "$qat_epochs" --threads "$threads")
    for key in fp32_accuracy qat_fake_accuracy int8_accuracy; do
      record "pytorch-$key" "$seed" "$(echo "$out" | /usr/bin/python3 -c "import json,sys; print('%.2f' % (100 * json.load(sys.stdin)['$key']))")"
    done
  fi
done

/usr/bin/python3 - "$results" "fp32-$((fp32_epochs + qat_epochs))ep" <<'PY'
import collections, statistics, sys
runs = collections.OrderedDict()
for line in open(sys.argv[1]):
    name, seed, acc = line.split()
    runs.setdefault(name, []).append(float(acc))
ref = statistics.mean(runs[sys.argv[2]])
print(f"\n| run | test accuracy % (mean ± std, n) | vs {sys.argv[2]} |")
print("| --- | --- | --- |")
for name, accs in runs.items():
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    m = statistics.mean(accs)
    print(f"| {name} | {m:.2f} ± {sd:.2f} ({len(accs)}) | {m - ref:+.2f} |")
PY
