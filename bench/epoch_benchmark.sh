#!/usr/bin/env bash
# One FP32 training epoch of the reference CNN (batch 128, Adam, 2 threads): lowbit vs PyTorch
# (Debian's python3-torch), alternated in the same run so both see the same machine load.
# Usage: bench/epoch_benchmark.sh BUILD_DIR [REPEATS]
# Prints a table and the ratio lowbit_seconds_per_image / pytorch_seconds_per_image (<= 1 is the target).
set -euo pipefail
build=${1:-build}
repeats=${2:-2}
lowbit="$build/lowbit"
here=$(cd "$(dirname "$0")" && pwd)
[[ -x "$lowbit" ]] || { echo "epoch_benchmark: $lowbit not found; run 'make build' first" >&2; exit 1; }
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "epoch_benchmark: needs python3-torch (scripts/setup.sh --bench)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

lowbit_ips=(); torch_ips=()
for r in $(seq 1 "$repeats"); do
  "$lowbit" train --model cnn --epochs 1 --optimizer adamw --weight-decay 0 --lr 1e-3 --batch-size 128 \
    --threads 2 --val-size 0 --out "$tmp/run$r" > "$tmp/lowbit$r.log" 2>&1
  ips=$(grep -o '"images_per_s":[0-9.e+]*' "$tmp/run$r/metrics.jsonl" | tail -1 | cut -d: -f2)
  lowbit_ips+=("$ips")
  t=$("$here/pytorch_anchor.py" fp32-epoch --threads 2)
  torch_ips+=("$(echo "$t" | grep -o '"images_per_s": [0-9.]*' | cut -d' ' -f2)")
  echo "repeat $r: lowbit ${lowbit_ips[-1]} img/s, pytorch ${torch_ips[-1]} img/s"
done
/usr/bin/python3 - "${lowbit_ips[*]}" "${torch_ips[*]}" <<'PY'
import statistics, sys
lo = [float(v) for v in sys.argv[1].split()]
to = [float(v) for v in sys.argv[2].split()]
ml, mt = statistics.median(lo), statistics.median(to)
print(f"lowbit  median {ml:.0f} img/s  ({60000/ml:.1f} s per 60k-image epoch)")
print(f"pytorch median {mt:.0f} img/s  ({60000/mt:.1f} s per 60k-image epoch)")
print(f"ratio lowbit/pytorch epoch time: {mt/ml:.2f}")
PY
