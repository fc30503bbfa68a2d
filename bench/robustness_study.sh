#!/usr/bin/env bash
# Robustness under distribution shift of FP32, QAT and PTQ models at the same widths
# (docs/robustness.md, #14 item 4).
#
# One FP32 run (FP32_EPOCHS; reused if OUT/<model>-fp32 exists), then from it QAT (QAT_STEPS
# steps, the qat command's defaults) and PTQ (GPTQ, 8 calibration batches) at W8A8, W4A4 and
# W2A4, and `lowbit eval --shift all --severity 1-5` of every checkpoint on the first LIMIT test
# images (same corruption seed for all: every model sees the same corrupted bytes). Prints a
# markdown table: clean accuracy, mean corruption accuracy (mCA), the drop, clean ECE and mean
# corrupted ECE, and the accuracy per corruption at severity 3.
#
# Usage: bench/robustness_study.sh BUILD_DIR OUT_DIR [MODEL=cnn] [QAT_STEPS=300] [LIMIT=2000]
#        [FP32_EPOCHS=2] [THREADS=2]
set -euo pipefail
build=${1:-build}
out=${2:-runs/robustness}
model=${3:-cnn}
qat_steps=${4:-300}
limit=${5:-2000}
fp32_epochs=${6:-2}
threads=${7:-2}
lowbit="$build/lowbit"
[[ -x "$lowbit" ]] || { echo "robustness_study: $lowbit not found; run 'make build' first" >&2; exit 1; }
mkdir -p "$out"
fp="$out/$model-fp32"
[[ -f "$fp/checkpoint.pt" ]] || "$lowbit" train --model "$model" --epochs "$fp32_epochs" --threads "$threads" --out "$fp" 2>"$fp.log"

declare -a names=("FP32") dirs=("$fp")
for wa in "8 8" "4 4" "2 4"; do
  read -r w a <<<"$wa"
  q="$out/$model-qat-w${w}a${a}"
  [[ -f "$q/checkpoint.pt" ]] || "$lowbit" qat --from "$fp" --wbits "$w" --abits "$a" --epochs 1 \
    --max-steps-per-epoch "$qat_steps" --threads "$threads" --out "$q" 2>"$q.log"
  p="$out/$model-ptq-w${w}a${a}"
  [[ -f "$p/checkpoint.pt" ]] || "$lowbit" ptq --from "$fp" --wbits "$w" --abits "$a" --method gptq \
    --threads "$threads" --out "$p" >"$p.log" 2>&1
  names+=("QAT W${w}A${a}" "PTQ-GPTQ W${w}A${a}")
  dirs+=("$q" "$p")
done

table="$out/table.md"
{
  echo "| model | clean % | mCA % | drop | clean ECE | corrupted ECE | gauss. noise | shot | impulse | gauss. blur | motion blur | contrast | brightness | rotate | translate | elastic |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
} > "$table"
for i in "${!dirs[@]}"; do
  j="${dirs[$i]}.shift.json"
  [[ -f "$j" ]] || "$lowbit" eval --checkpoint "${dirs[$i]}" --shift all --severity 1-5 --limit "$limit" \
    --threads "$threads" --json > "$j"
  /usr/bin/python3 - "$j" "${names[$i]}" >> "$table" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); name = sys.argv[2]
clean = j["clean"]
order = ["gaussian_noise", "shot_noise", "impulse_noise", "gaussian_blur", "motion_blur", "contrast",
         "brightness", "rotate", "translate", "elastic"]
s3 = {s["corruption"]: s["accuracy"] for s in j["shifted"] if s["severity"] == 3}
cells = ["%.1f" % (100 * s3[c]) if c in s3 else "-" for c in order]
print("| %s | %.2f | %.2f | %.2f | %.3f | %.3f | %s |" % (
    name, 100 * clean["accuracy"], 100 * j["mean_corruption_accuracy"],
    100 * (clean["accuracy"] - j["mean_corruption_accuracy"]), clean["ece"], j["mean_corruption_ece"], " | ".join(cells)))
PY
done
cat "$table"
