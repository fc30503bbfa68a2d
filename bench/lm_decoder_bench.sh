#!/usr/bin/env bash
# gpt-tiny, batch 1: prefill and decode tokens/s of the integer runtime (int4 group 32, per-token
# int8 activations) against LibTorch's FP32 forward of the same model, same prompt lengths.
# Speed does not depend on how well the model is trained: a 2-step FP32 run is converted with
# round-to-nearest weights (a QAT run of the same size runs the same kernels).
# Usage: bench/lm_decoder_bench.sh path/to/lowbit [threads] [prompt] [decode]
set -euo pipefail
LOWBIT="$1"
THREADS="${2:-1}"
PROMPT="${3:-64}"
DECODE="${4:-64}"
TMP="${TMPDIR:-/tmp}/lm_decoder_bench.$$"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
"$LOWBIT" train --model gpt-tiny --steps 2 --eval-interval 2 --eval-windows 2 --out "$TMP/fp32" >/dev/null 2>&1
"$LOWBIT" convert --checkpoint "$TMP/fp32" --out "$TMP/w4g32.lbq" --wbits 4 --group-size 32 >"$TMP/convert.log"
head -1 "$TMP/convert.log"
"$LOWBIT" inspect "$TMP/w4g32.lbq" | tail -2
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); cpu: $(lscpu | sed -n 's/^Model name: *//p'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$LOWBIT" bench "$TMP/w4g32.lbq" --threads "$THREADS" --prompt-tokens "$PROMPT" --decode-tokens "$DECODE" --iterations 5
LOWBIT_ISA=ref "$LOWBIT" bench "$TMP/w4g32.lbq" --threads "$THREADS" --prompt-tokens "$PROMPT" --decode-tokens "$DECODE" --iterations 5
"$LOWBIT" bench --checkpoint "$TMP/fp32" --threads "$THREADS" --prompt-tokens "$PROMPT" --decode-tokens "$DECODE" --iterations 5
