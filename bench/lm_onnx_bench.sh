#!/usr/bin/env bash
# gpt-tiny, batch 1: lowbit's integer runtime against ONNX Runtime (Node.js binding,
# third_party/node, tests/export/ort_generate.js --bench) on exports of the same model, like for
# like: every engine decodes with a KV cache, one token per run.
#   lowbit        `lowbit bench` of the .lbq (round-to-nearest int4 group-32 weights): prefill of a
#                 P-token prompt, D decode steps (KV cache)
#   ORT fp32-kv   lowbit export --format onnx-fp32 --kv-cache of the FP32 checkpoint the .lbq was
#                 converted from: float weights and activations (issue #12's prefill reference,
#                 "prefill tokens/s >= ONNX Runtime FP32")
#   ORT nbits-kv  lowbit export --format matmulnbits --kv-cache of the .lbq (com.microsoft
#                 MatMulNBits int4, per-token int8 activations as ops)
#   ORT qdq-kv    lowbit export --format onnx --kv-cache of the .lbq (DequantizeLinear int4 weights,
#                 float MatMul, per-token int8 activations as ops)
# ORT: prefill once with empty past tensors, then one token per run with present_* fed back as
# past_*; intraOpNumThreads = threads, sequential, optimization level "all".
# Each configuration runs REPEATS times, interleaved (rep 1 of every engine and thread count, then
# rep 2, ...), each run the median of --iterations 5 after a warm-up; the table gives the median
# of the repeats and their range [min-max]. Speed does not depend on how well the model is
# trained: a 2-step FP32 run (default gpt-tiny: 4 layers, width 128, 4 heads, context 128) is
# converted with round-to-nearest weights (a QAT run runs the same kernels).
# Usage: bench/lm_onnx_bench.sh [path/to/lowbit] [prompt] [decode] [repeats] [threads...]
#   defaults: build/lowbit 64 64 3, threads 1 2
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
LOWBIT="${1:-$HERE/build/lowbit}"
PROMPT="${2:-64}"
DECODE="${3:-64}"
REPEATS="${4:-3}"
shift $(( $# < 4 ? $# : 4 ))
if [ $# -gt 0 ]; then THREADS=("$@"); else THREADS=(1 2); fi
TMP="${TMPDIR:-/tmp}/lm_onnx_bench.$$"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
echo "command: $0 $LOWBIT $PROMPT $DECODE $REPEATS ${THREADS[*]}"
"$LOWBIT" train --model gpt-tiny --steps 2 --eval-interval 2 --eval-windows 2 --out "$TMP/fp32" >/dev/null 2>&1
"$LOWBIT" convert --checkpoint "$TMP/fp32" --out "$TMP/w4g32.lbq" --wbits 4 --group-size 32 >"$TMP/convert.log"
head -1 "$TMP/convert.log"
"$LOWBIT" export --from "$TMP/fp32" --format onnx-fp32 --kv-cache --out "$TMP/fp32_kv.onnx" >/dev/null
"$LOWBIT" export --from "$TMP/w4g32.lbq" --format matmulnbits --kv-cache --out "$TMP/nbits_kv.onnx" >/dev/null
"$LOWBIT" export --from "$TMP/w4g32.lbq" --format onnx --kv-cache --out "$TMP/qdq_kv.onnx" >/dev/null
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
echo "uptime before: $(uptime)"
echo "prompt $PROMPT tokens, decode $DECODE tokens, batch 1, $REPEATS repeats interleaved"
RESULTS="$TMP/results.tsv"
for rep in $(seq 1 "$REPEATS"); do
  for t in "${THREADS[@]}"; do
    "$LOWBIT" bench "$TMP/w4g32.lbq" --json --threads "$t" --prompt-tokens "$PROMPT" --decode-tokens "$DECODE" --iterations 5 |
      python3 -c 'import json,sys; j=json.loads(sys.stdin.read().strip().splitlines()[-1]); print("lowbit runtime, int4 g32 (KV cache)\t%s\t%f\t%f" % (sys.argv[1], j["prefill_tokens_per_s"], j["decode_tokens_per_s"]))' "$t" >>"$RESULTS"
    for m in fp32_kv nbits_kv qdq_kv; do
      case "$m" in
        fp32_kv) name="ORT FP32 + KV cache (onnx-fp32)" ;;
        nbits_kv) name="ORT MatMulNBits int4 + KV cache" ;;
        qdq_kv) name="ORT QDQ int4 + KV cache" ;;
      esac
      node "$HERE/tests/export/ort_generate.js" "$TMP/$m.onnx" --bench "$PROMPT,$DECODE" --threads "$t" --iterations 5 |
        python3 -c 'import json,sys; j=json.loads(sys.stdin.read()); print("%s\t%s\t%f\t%f" % (sys.argv[1], sys.argv[2], j["prefill_tokens_per_s"], j["decode_tokens_per_s"]))' "$name" "$t" >>"$RESULTS"
    done
  done
done
echo "uptime after: $(uptime)"
python3 - "$RESULTS" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    name, t, p, d = line.rstrip("\n").split("\t")
    rows.setdefault((name, int(t)), []).append((float(p), float(d)))
def fmt(v):
    return "%.0f [%.0f-%.0f]" % (statistics.median(v), min(v), max(v))
print("| engine | threads | prefill tok/s, median [range] | decode tok/s, median [range] |")
print("| --- | --- | --- | --- |")
for (name, t), v in sorted(rows.items(), key=lambda kv: kv[0][1]):
    print("| %s | %d | %s | %s |" % (name, t, fmt([x[0] for x in v]), fmt([x[1] for x in v])))
med = lambda k, i: statistics.median(x[i] for x in rows[k])
for t in sorted({t for _, t in rows}):
    key = lambda prefix: [k for k in rows if k[1] == t and k[0].startswith(prefix)][0]
    lb, fp, nb = key("lowbit"), key("ORT FP32"), key("ORT MatMulNBits")
    print("threads %d: prefill lowbit / ORT FP32 = %.2fx (target >= 1x); decode lowbit / ORT MatMulNBits = %.2fx (target >= 1.5x)"
          % (t, med(lb, 0) / med(fp, 0), med(lb, 1) / med(nb, 1)))
PY
