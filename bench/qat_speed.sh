#!/usr/bin/env bash
# QAT step time / FP32 step time on the reference CNN (batch 128, 2 threads), lowbit and PyTorch
# (Debian's python3-torch, eager torch.ao QAT with the fbgemm qconfig), alternated in the same
# run so that all four see the same machine load. Runs STEPS training steps of each, REPEATS
# times, and prints the medians and the ratios.
# Usage: bench/qat_speed.sh BUILD_DIR [STEPS=200] [REPEATS=2]
set -euo pipefail
build=${1:-build}
steps=${2:-200}
repeats=${3:-2}
lowbit="$build/lowbit"
here=$(cd "$(dirname "$0")" && pwd)
[[ -x "$lowbit" ]] || { echo "qat_speed: $lowbit not found; run 'make build' first" >&2; exit 1; }
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "qat_speed: needs python3-torch (scripts/setup.sh --bench)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rows="$work/rows"
: > "$rows"

ips_of_run() { grep -o '"images_per_s":[0-9.e+]*' "$1/metrics.jsonl" | tail -1 | cut -d: -f2; }
ips_of_json() { grep -o '"images_per_s": [0-9.]*' <<<"$1" | cut -d' ' -f2; }
common=(--epochs 1 --batch-size 128 --threads 2 --val-size 1000 --max-steps-per-epoch "$steps")

# The QAT runs start from a short FP32 run (speed does not depend on the weights).
"$lowbit" train --model cnn "${common[@]}" --out "$work/start" > /dev/null 2>&1
for r in $(seq 1 "$repeats"); do
  "$lowbit" train --model cnn "${common[@]}" --out "$work/fp32-$r" > /dev/null 2>&1
  echo "lowbit-fp32 $(ips_of_run "$work/fp32-$r")" >> "$rows"
  for bits in 8 4; do
    "$lowbit" qat --from "$work/start" --wbits "$bits" --abits "$bits" "${common[@]}" --out "$work/w$bits-$r" > /dev/null 2>&1
    echo "lowbit-qat-w${bits}a${bits} $(ips_of_run "$work/w$bits-$r")" >> "$rows"
  done
  # With batch-statistics BN (approximate folding, as PyTorch's QAT) instead of the default
  # frozen statistics: BN's batch mean/variance cost the same as in the FP32 step.
  "$lowbit" qat --from "$work/start" --wbits 8 --abits 8 --bn-freeze-step -1 "${common[@]}" --out "$work/bn-$r" > /dev/null 2>&1
  echo "lowbit-qat-w8a8-batch-stat-bn $(ips_of_run "$work/bn-$r")" >> "$rows"
  echo "pytorch-fp32 $(ips_of_json "$("$here/pytorch_anchor.py" fp32-epoch --threads 2 --steps "$steps")")" >> "$rows"
  echo "pytorch-qat-w8a8 $(ips_of_json "$("$here/pytorch_anchor.py" qat-epoch --threads 2 --steps "$steps")")" >> "$rows"
  echo "repeat $r done"
done
/usr/bin/python3 - "$rows" <<'PY'
import collections, statistics, sys
ips = collections.OrderedDict()
for line in open(sys.argv[1]):
    name, v = line.split()
    ips.setdefault(name, []).append(float(v))
med = {k: statistics.median(v) for k, v in ips.items()}
print("| run | images/s (median) | seconds per 60k-image epoch | step time / own FP32 step |")
print("| --- | --- | --- | --- |")
for k, v in med.items():
    own = med["pytorch-fp32" if k.startswith("pytorch") else "lowbit-fp32"]
    print(f"| {k} | {v:.0f} | {60000 / v:.1f} | {own / v:.2f} |")
print(f"\nlowbit QAT W8A8 epoch / PyTorch QAT W8A8 epoch: {med['pytorch-qat-w8a8'] / med['lowbit-qat-w8a8']:.2f}")
PY
