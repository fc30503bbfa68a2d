#!/usr/bin/env bash
# gpt-tiny, batch 1: lowbit's integer runtime against ONNX Runtime (Node.js binding,
# third_party/node, tests/export/ort_generate.js --bench) on exports of the same int4 group-32
# weights, like for like: both decode with a KV cache, one token per run.
#   lowbit        `lowbit bench` of the .lbq: prefill of a P-token prompt, D decode steps (KV cache)
#   ORT nbits-kv  lowbit export --format matmulnbits --kv-cache (com.microsoft MatMulNBits int4,
#                 per-token int8 activations as ops): prefill once, then one token per run with
#                 present_* fed back as past_*
#   ORT float     the prefill reference of issue #12 ("prefill tokens/s >= ONNX Runtime FP32"):
#                 lowbit export --format onnx-fp32 of the FP32 checkpoint when it takes gpt-tiny;
#                 it does not (it exports the image-model layers only), so the QDQ export of the
#                 same weights (--format onnx --kv-cache: DequantizeLinear to float, float MatMul)
#                 stands in, the closest float-arithmetic graph there is; the script says which.
# Each configuration runs REPEATS times, interleaved (rep 1 of every configuration, then rep 2, ...),
# each run the median of --iterations 5 after a warm-up; the summary gives the median of the
# repeats and their spread (min-max). Speed does not depend on how well the model is trained: a
# 2-step FP32 run is converted with round-to-nearest weights (a QAT run runs the same kernels).
# Usage: bench/lm_onnx_bench.sh path/to/lowbit [prompt] [decode] [repeats] [threads...]
set -euo pipefail
LOWBIT="$1"
PROMPT="${2:-64}"
DECODE="${3:-64}"
REPEATS="${4:-3}"
shift $(( $# < 4 ? $# : 4 ))
if [ $# -gt 0 ]; then THREADS=("$@"); else THREADS=(1 2); fi
HERE="$(cd "$(dirname "$0")/.." && pwd)"
TMP="${TMPDIR:-/tmp}/lm_onnx_bench.$$"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
"$LOWBIT" train --model gpt-tiny --steps 2 --eval-interval 2 --eval-windows 2 --out "$TMP/fp32" >/dev/null 2>&1
"$LOWBIT" convert --checkpoint "$TMP/fp32" --out "$TMP/w4g32.lbq" --wbits 4 --group-size 32 >"$TMP/convert.log"
head -1 "$TMP/convert.log"
"$LOWBIT" export --from "$TMP/w4g32.lbq" --format matmulnbits --kv-cache --out "$TMP/nbits_kv.onnx" >/dev/null
if "$LOWBIT" export --from "$TMP/fp32" --format onnx-fp32 --out "$TMP/float.onnx" >"$TMP/fp32_export.log" 2>&1; then
  FLOAT_NAME="ORT fp32 (onnx-fp32, full recompute; prefill only)"
else
  echo "onnx-fp32 export of the gpt-tiny checkpoint: $(tail -1 "$TMP/fp32_export.log")"
  "$LOWBIT" export --from "$TMP/w4g32.lbq" --format onnx --kv-cache --out "$TMP/float.onnx" >/dev/null
  FLOAT_NAME="ORT QDQ-kv (float MatMul on dequantized int4; FP32 stand-in)"
fi
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "prompt $PROMPT tokens, decode $DECODE tokens, batch 1, $REPEATS repeats interleaved"
RESULTS="$TMP/results.tsv"
for rep in $(seq 1 "$REPEATS"); do
  for t in "${THREADS[@]}"; do
    "$LOWBIT" bench "$TMP/w4g32.lbq" --json --threads "$t" --prompt-tokens "$PROMPT" --decode-tokens "$DECODE" --iterations 5 |
      python3 -c 'import json,sys; j=json.loads(sys.stdin.read().strip().splitlines()[-1]); print("lowbit int4 (KV cache)\t%s\t%f\t%f" % (sys.argv[1], j["prefill_tokens_per_s"], j["decode_tokens_per_s"]))' "$t" >>"$RESULTS"
    for m in nbits_kv float; do
      name="ORT MatMulNBits-kv"
      [ "$m" = float ] && name="$FLOAT_NAME"
      node "$HERE/tests/export/ort_generate.js" "$TMP/$m.onnx" --bench "$PROMPT,$DECODE" --threads "$t" --iterations 5 |
        python3 -c 'import json,sys; j=json.loads(sys.stdin.read()); print("%s\t%s\t%f\t%f" % (sys.argv[1], sys.argv[2], j["prefill_tokens_per_s"], j["decode_tokens_per_s"]))' "$name" "$t" >>"$RESULTS"
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$RESULTS" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    name, t, p, d = line.rstrip("\n").split("\t")
    rows.setdefault((name, int(t)), []).append((float(p), float(d)))
def fmt(v):
    return "%.0f [%.0f-%.0f]" % (statistics.median(v), min(v), max(v))
print("%-62s %7s  %-24s %-24s" % ("engine", "threads", "prefill tok/s med [range]", "decode tok/s med [range]"))
for (name, t), v in rows.items():
    print("%-62s %7d  %-24s %-24s" % (name, t, fmt([x[0] for x in v]), fmt([x[1] for x in v])))
for t in sorted({t for _, t in rows}):
    lb = [k for k in rows if k[1] == t and k[0].startswith("lowbit")][0]
    nb = [k for k in rows if k[1] == t and k[0].startswith("ORT MatMulNBits")][0]
    fl = [k for k in rows if k[1] == t and k[0] not in (lb[0], nb[0])][0]
    med = lambda k, i: statistics.median(x[i] for x in rows[k])
    print("threads %d: decode lowbit / ORT MatMulNBits-kv = %.2fx (target >= 1.5x); prefill lowbit / %s = %.2fx (target >= 1x)"
          % (t, med(lb, 1) / med(nb, 1), fl[0].split(" (")[0], med(lb, 0) / med(fl, 0)))
PY
