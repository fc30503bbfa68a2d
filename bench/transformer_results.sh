#!/usr/bin/env bash
# The transformer figures of docs/RESULTS.md ("Transformers"): vit-tiny FP32 vs W8A8 / W4A4 QAT
# test accuracy, and gpt-tiny PTQ (RTN, GPTQ, groups of 32) vs FP32 validation bits/byte.
# Usage: bash bench/transformer_results.sh vit|gpt [OUT]   (LOWBIT: the binary, default build/lowbit)
# Short budgets for a shared 2-core CPU: VIT_EPOCHS (2) FP32 epochs then 1 QAT epoch, each epoch
# cut to VIT_STEPS (0: whole epochs) steps of 128 images, VAL_SIZE (5000) validation images;
# GPT_STEPS (300) FP32 steps of a small gpt-tiny; THREADS (1) torch threads per run.
set -euo pipefail
LOWBIT="${LOWBIT:-build/lowbit}"
WHAT="$1"
OUT="${2:-runs/transformers}"
THREADS="${THREADS:-1}"
mkdir -p "$OUT"
if [[ "$WHAT" == vit ]]; then
  CUT=(--max-steps-per-epoch "${VIT_STEPS:-0}" --val-size "${VAL_SIZE:-5000}" --threads "$THREADS")
  "$LOWBIT" train --model vit-tiny --epochs "${VIT_EPOCHS:-2}" "${CUT[@]}" --out "$OUT/vit-fp32" 2>"$OUT/vit-fp32.log"
  "$LOWBIT" eval --checkpoint "$OUT/vit-fp32" --json --threads "$THREADS" >"$OUT/vit-fp32.json"
  for b in 8 4; do
    "$LOWBIT" qat --from "$OUT/vit-fp32" --wbits "$b" --abits "$b" --epochs 1 "${CUT[@]}" \
      --out "$OUT/vit-w${b}a${b}" 2>"$OUT/vit-w${b}a${b}.log"
    "$LOWBIT" eval --checkpoint "$OUT/vit-w${b}a${b}" --json --threads "$THREADS" >"$OUT/vit-w${b}a${b}.json"
  done
elif [[ "$WHAT" == gpt ]]; then
  "$LOWBIT" train --model gpt-tiny --layers 2 --width 64 --heads 4 --context 64 --steps "${GPT_STEPS:-300}" \
    --eval-windows 256 --threads "$THREADS" --out "$OUT/gpt-fp32" 2>"$OUT/gpt-fp32.log"
  "$LOWBIT" eval --checkpoint "$OUT/gpt-fp32" --json --threads "$THREADS" >"$OUT/gpt-fp32.json"
  for b in 4 2; do
    for m in rtn gptq; do
      "$LOWBIT" ptq --from "$OUT/gpt-fp32" --method "$m" --wbits "$b" --group-size 32 --calib-batches 8 \
        --calib-batch-size 32 --threads "$THREADS" --out "$OUT/gpt-$m-w${b}g32" >"$OUT/gpt-$m-w${b}g32.out" \
        2>"$OUT/gpt-$m-w${b}g32.log"
      "$LOWBIT" eval --checkpoint "$OUT/gpt-$m-w${b}g32" --json --threads "$THREADS" >"$OUT/gpt-$m-w${b}g32.json"
    done
  done
else
  echo "usage: $0 vit|gpt [OUT]" >&2
  exit 2
fi
