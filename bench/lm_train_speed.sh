#!/usr/bin/env bash
# gpt-tiny training speed (issue 12's targets): lowbit's FP32 step against PyTorch eager on the same
# model and batch (bench/pytorch_anchor.py gpt-fp32), and lowbit's QAT step (W4 groups of 32,
# per-token int8 activations; and W2) against lowbit's FP32 step. Interleaved rounds in one run,
# so that load on a shared machine hits every engine alike; prints the median step time of each
# engine, the range, and the ratios.
# Usage: bash bench/lm_train_speed.sh [ROUNDS] [STEPS] [THREADS] [BATCH]   (LOWBIT: the binary)
# Step times are steady state: lowbit's from the second of two validation intervals of STEPS steps
# (metrics.jsonl "seconds", validation excluded), PyTorch's the median over steps after 5 warm-up
# steps. Default model: gpt-tiny's defaults (4 layers, width 128, 4 heads, context 128).
set -euo pipefail
LOWBIT="${LOWBIT:-build/lowbit}"
ROUNDS="${1:-3}"
STEPS="${2:-20}"
THREADS="${3:-1}"
BATCH="${4:-32}"
PY="${PYTHON:-/usr/bin/python3}"
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# lowbit's steady-state ms per step of a run folder: the last interval's seconds / its steps.
step_ms() {
  "$PY" - "$1/metrics.jsonl" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
a, b = lines[-2], lines[-1]
print(round(1e3 * b["seconds"] / (b["step"] - a["step"]), 3))
EOF
}

COMMON=(--batch-size "$BATCH" --threads "$THREADS" --eval-interval "$STEPS" --eval-windows 8 --overwrite)
"$LOWBIT" train --model gpt-tiny --steps 2 "${COMMON[@]}" --out "$WORK/fp32-init" 2>/dev/null
echo "round engine step_ms" >"$WORK/times"
for r in $(seq 1 "$ROUNDS"); do
  "$PY" "$HERE/pytorch_anchor.py" gpt-fp32 --steps "$((2 * STEPS))" --batch-size "$BATCH" --threads "$THREADS" \
    >"$WORK/pt.json"
  echo "$r pytorch-fp32 $("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["median_step_ms"])' "$WORK/pt.json")" >>"$WORK/times"
  "$LOWBIT" train --model gpt-tiny --steps "$((2 * STEPS))" "${COMMON[@]}" --out "$WORK/fp32" 2>/dev/null
  echo "$r lowbit-fp32 $(step_ms "$WORK/fp32")" >>"$WORK/times"
  "$LOWBIT" qat --from "$WORK/fp32-init" --wbits 4 --group-size 32 --steps "$((2 * STEPS))" "${COMMON[@]}" \
    --out "$WORK/qat4" 2>/dev/null
  echo "$r lowbit-qat-w4g32 $(step_ms "$WORK/qat4")" >>"$WORK/times"
  "$LOWBIT" qat --from "$WORK/fp32-init" --weight-format ternary --group-size 32 --steps "$((2 * STEPS))" \
    "${COMMON[@]}" --out "$WORK/qat158" 2>/dev/null
  echo "$r lowbit-qat-ternary-g32 $(step_ms "$WORK/qat158")" >>"$WORK/times"
done
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs," \
  "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $ROUNDS rounds, batch $BATCH x 128 bytes, $THREADS thread(s), $(sed -n 1p "$WORK/pt.json" | \
  "$PY" -c 'import json,sys; print(json.load(sys.stdin)["parameters"])') parameters"
"$PY" - "$WORK/times" "$BATCH" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]).read().splitlines()[1:]]
tokens = int(sys.argv[2]) * 128
by = {}
for r, e, ms in rows:
    by.setdefault(e, {})[int(r)] = float(ms)
print("| engine | median ms/step | range | bytes/s at the median |")
print("| --- | --- | --- | --- |")
for e, t in by.items():
    v = list(t.values())
    m = statistics.median(v)
    print(f"| {e} | {m:.1f} | {min(v):.1f}-{max(v):.1f} | {round(tokens * 1e3 / m)} |")
def ratio(a, b):
    rs = [by[a][r] / by[b][r] for r in by[a] if r in by[b]]
    return f"{statistics.median(rs):.3f} (per-round {min(rs):.3f}-{max(rs):.3f})"
print()
print("lowbit FP32 / PyTorch FP32 step time:", ratio("lowbit-fp32", "pytorch-fp32"), "(target <= 1)")
print("lowbit QAT W4 g32 / lowbit FP32:", ratio("lowbit-qat-w4g32", "lowbit-fp32"), "(target <= 1.15)")
print("lowbit QAT ternary g32 / lowbit FP32:", ratio("lowbit-qat-ternary-g32", "lowbit-fp32"))
EOF
