#!/usr/bin/env bash
# The transformer figures of docs/RESULTS.md ("Transformers"): vit-tiny FP32 vs W8A8 / W4A4 QAT
# test accuracy, and gpt-tiny PTQ (RTN, GPTQ, groups of 32) vs FP32 validation bits/byte.
# Usage: bash bench/transformer_results.sh vit|vit-equal|gpt|gpt-qat [OUT]   (LOWBIT: the binary, default build/lowbit)
# gpt-qat: from an FP32 gpt-tiny run (GPT_FROM, default OUT/gpt-fp32), QAT at every weight width
# with equal budgets (QAT_STEPS, default 600; SEEDS, default "0 1") and PTQ RTN / GPTQ at the
# integer widths, all with groups of 32 and per-token int8 activations; then a table of
# validation bits/byte (bench/transformer_table.py).
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
elif [[ "$WHAT" == vit-equal ]]; then
  # Equal budgets: FP32 for VIT_BASE epochs then 1 QAT epoch (W8A8, W4A4), against FP32 trained
  # VIT_BASE + 1 epochs from scratch (same seed, same number of optimizer steps). Each QAT run is
  # also converted and evaluated on the integer runtime. Whole epochs unless VIT_STEPS is set.
  BASE="${VIT_BASE:-3}"
  CUT=(--max-steps-per-epoch "${VIT_STEPS:-0}" --val-size "${VAL_SIZE:-5000}" --threads "$THREADS")
  ( "$LOWBIT" train --model vit-tiny --epochs "$((BASE + 1))" "${CUT[@]}" --overwrite --out "$OUT/vit-fp32-e$((BASE + 1))" \
      2>"$OUT/vit-fp32-e$((BASE + 1)).log"
    "$LOWBIT" eval --checkpoint "$OUT/vit-fp32-e$((BASE + 1))" --json --threads "$THREADS" >"$OUT/vit-fp32-e$((BASE + 1)).json" ) &
  "$LOWBIT" train --model vit-tiny --epochs "$BASE" "${CUT[@]}" --overwrite --out "$OUT/vit-fp32-e$BASE" 2>"$OUT/vit-fp32-e$BASE.log"
  "$LOWBIT" eval --checkpoint "$OUT/vit-fp32-e$BASE" --json --threads "$THREADS" >"$OUT/vit-fp32-e$BASE.json"
  for b in 8 4; do
    run="$OUT/vit-w${b}a${b}-e$BASE+1"
    "$LOWBIT" qat --from "$OUT/vit-fp32-e$BASE" --wbits "$b" --abits "$b" --epochs 1 "${CUT[@]}" --overwrite \
      --out "$run" 2>"$run.log"
    "$LOWBIT" eval --checkpoint "$run" --json --threads "$THREADS" >"$run.json"
    "$LOWBIT" convert --from "$run" --out "$run/model.lbq" >"$run.convert.out"
    "$LOWBIT" eval --model "$run/model.lbq" --checkpoint "$run" --json --threads "$THREADS" >"$run.runtime.json"
  done
  wait
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
elif [[ "$WHAT" == gpt-qat ]]; then
  FROM="${GPT_FROM:-$OUT/gpt-fp32}"
  "$LOWBIT" eval --checkpoint "$FROM" --json --threads "$THREADS" >"$OUT/fp32.json"
  # name:flags of each QAT width (2-bit ParetoQ SEQ, ternary = 1.58 bits, binary = 1 bit)
  for spec in "w4g32:--wbits 4" "w3g32:--wbits 3" "w2g32:--wbits 2" "seq2g32:--weight-format seq2" \
              "ternaryg32:--weight-format ternary" "binaryg32:--weight-format binary"; do
    name="${spec%%:*}"
    read -r -a flags <<<"${spec#*:}"
    for seed in ${SEEDS:-0 1}; do
      "$LOWBIT" qat --from "$FROM" "${flags[@]}" --group-size 32 --steps "${QAT_STEPS:-600}" --seed "$seed" \
        --threads "$THREADS" --overwrite --out "$OUT/qat-$name-s$seed" 2>"$OUT/qat-$name-s$seed.log"
      "$LOWBIT" eval --checkpoint "$OUT/qat-$name-s$seed" --json --threads "$THREADS" >"$OUT/qat-$name-s$seed.json"
    done
  done
  for b in 4 3 2; do
    for m in rtn gptq; do
      "$LOWBIT" ptq --from "$FROM" --method "$m" --wbits "$b" --group-size 32 --calib-batches 8 --calib-batch-size 32 \
        --threads "$THREADS" --overwrite --out "$OUT/ptq-$m-w${b}g32" >"$OUT/ptq-$m-w${b}g32.out" 2>"$OUT/ptq-$m-w${b}g32.log"
      "$LOWBIT" eval --checkpoint "$OUT/ptq-$m-w${b}g32" --json --threads "$THREADS" >"$OUT/ptq-$m-w${b}g32.json"
    done
  done
  python3 "$(dirname "$0")/transformer_table.py" "$OUT"
else
  echo "usage: $0 vit|gpt|gpt-qat [OUT]" >&2
  exit 2
fi
