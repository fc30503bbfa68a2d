#!/usr/bin/env bash
# The main job: FP32 training -> quantization-aware training at W4A4 -> conversion to the
# integer runtime -> evaluation on the runtime (checked bit for bit against the QAT model's
# integer simulation) -> size and speed -> an HTML report (runs/report.html).
# Usage: scripts/demo.sh BUILD_DIR
# Environment: DEMO_EPOCHS (FP32 epochs, default 2), DEMO_QAT_EPOCHS (default 1).
set -euo pipefail

BUILD="${1:-build}"
LOWBIT="$BUILD/lowbit"
[[ -x "$LOWBIT" ]] || { echo "demo: $LOWBIT not found; build first (make build)" >&2; exit 1; }
EPOCHS="${DEMO_EPOCHS:-2}"
QAT_EPOCHS="${DEMO_QAT_EPOCHS:-1}"
FP="runs/cnn-fp32"
QAT="runs/cnn-w4a4"
MODEL="runs/cnn-w4a4.lbq"

echo "== 1. FP32 cnn, $EPOCHS epochs -> $FP"
"$LOWBIT" train --model cnn --epochs "$EPOCHS" --threads 2 --out "$FP" --overwrite
echo
echo "== 2. QAT W4A4 (LSQ weights, per-channel), $QAT_EPOCHS epoch(s) -> $QAT"
"$LOWBIT" qat --from "$FP" --wbits 4 --abits 4 --quantizer lsq --epochs "$QAT_EPOCHS" --threads 2 --out "$QAT" --overwrite
echo
echo "== 3. Convert to the integer runtime -> $MODEL"
"$LOWBIT" convert --from "$QAT" --out "$MODEL"
echo
echo "== 4. Evaluate on the integer runtime, compared with the QAT checkpoint"
"$LOWBIT" eval --model "$MODEL" --checkpoint "$QAT"
echo
echo "== 5. Speed of the integer model (2 threads)"
"$LOWBIT" bench "$MODEL" --batch 1,256 --threads 2 --iterations 30
echo
fp=$("$LOWBIT" eval --checkpoint "$FP" --json)
qat=$("$LOWBIT" eval --checkpoint "$QAT" --json)
rt=$("$LOWBIT" eval --model "$MODEL" --json)
acc() { grep -o '"accuracy":[0-9.e-]*' <<<"$1" | cut -d: -f2; }
fp_bytes=$(grep -o 'FP32 size [0-9]*' < <("$LOWBIT" inspect "$MODEL") | awk '{print $3}')
lbq_bytes=$(stat -c %s "$MODEL")
echo "== Summary (Fashion-MNIST test set, 10,000 images)"
printf "%-34s %10s %14s\n" "model" "accuracy" "weights bytes"
printf "%-34s %9.2f%% %14s\n" "cnn FP32 (LibTorch)" "$(awk "BEGIN{print 100*$(acc "$fp")}")" "$fp_bytes"
printf "%-34s %9.2f%% %14s\n" "cnn W4A4 QAT (fake quant, LibTorch)" "$(awk "BEGIN{print 100*$(acc "$qat")}")" "-"
printf "%-34s %9.2f%% %14s\n" "cnn W4A4 integer runtime (.lbq)" "$(awk "BEGIN{print 100*$(acc "$rt")}")" "$lbq_bytes"
echo
echo "== 6. Report: curves, run summary and model size in one HTML page (no network, no script)"
"$LOWBIT" report "$FP" "$QAT" --out runs/report.html
echo "open $(cd runs && pwd)/report.html in a browser"
