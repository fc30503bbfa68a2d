#!/usr/bin/env bash
# Data-parallel step rate, 2 processes x 1 thread on one host (docs/distributed.md): the gradient
# all-reduce overlapped with backward (LOWBIT_GRAD_ALLREDUCE=overlap, the default; 1 MB buckets,
# and 256 KB buckets) against after backward (=after), for cnn, resnet8 and gpt-tiny; and SyncBN's
# cost on resnet8 (--no-sync-bn against the default). Interleaved rounds in one run, so load on a
# shared machine hits every variant alike; prints each variant's steps/s per round, the median,
# and the ratios to the after-backward run of the same model, with `uptime` before every round.
# Usage: bash bench/distributed_scaling.sh [ROUNDS] [STEPS]   (LOWBIT: the binary; LOWBIT_DATA)
# Steady state: the second of two epochs (image models, STEPS steps each, no validation) or of two
# evaluation intervals (gpt-tiny, STEPS steps each); `seconds` of metrics.jsonl, which covers the
# training steps only for the image models and includes 8 validation windows for gpt-tiny.
set -euo pipefail
LOWBIT="${LOWBIT:-build/lowbit}"
ROUNDS="${1:-3}"
STEPS="${2:-20}"
DATA="${LOWBIT_DATA:-/usr/share/datasets/fashion-mnist}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

steps_per_s() {  # the last metrics.jsonl line's steps / seconds (steps since the line before it)
  python3 - "$1/metrics.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip() and "test_acc" not in l]
a, b = lines[-2], lines[-1]
print(round((b["step"] - a["step"]) / b["seconds"], 3))
PY
}

IMG=(--epochs 2 --max-steps-per-epoch "$STEPS" --batch-size 128 --val-size 0 --seed 1 --data "$DATA" --overwrite)
LM=(--model gpt-tiny --steps "$((2 * STEPS))" --eval-interval "$STEPS" --eval-windows 8 --seed 1 --overwrite)
# variant: name, environment, extra flags
run_variant() {  # run_variant MODEL VARIANT ROUND
  local model=$1 variant=$2 round=$3 env=() extra=()
  case "$variant" in
    after) env=(LOWBIT_GRAD_ALLREDUCE=after) ;;
    overlap) env=(LOWBIT_GRAD_ALLREDUCE=overlap) ;;
    overlap256k) env=(LOWBIT_GRAD_ALLREDUCE=overlap LOWBIT_GRAD_BUCKET_KB=256) ;;
    no-sync-bn) env=(LOWBIT_GRAD_ALLREDUCE=overlap) extra=(--no-sync-bn) ;;
  esac
  local args
  if [[ "$model" == gpt-tiny ]]; then args=("${LM[@]}"); else args=(--model "$model" "${IMG[@]}"); fi
  env "${env[@]}" nice -n 10 "$LOWBIT" launch --nproc 2 --threads 1 -- lowbit train "${args[@]}" "${extra[@]}" \
    --out "$WORK/$model-$variant" >/dev/null 2>"$WORK/log" || { cat "$WORK/log" >&2; exit 1; }
  echo "$round $model $variant $(steps_per_s "$WORK/$model-$variant")" >>"$WORK/rates"
}

echo "# $(date -u '+%F %T UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
: >"$WORK/rates"
for r in $(seq 1 "$ROUNDS"); do
  echo "# round $r: $(uptime | sed 's/.*load/load/')"
  for model in cnn resnet8 gpt-tiny; do
    for variant in after overlap overlap256k; do run_variant "$model" "$variant" "$r"; done
    [[ "$model" == resnet8 ]] && run_variant resnet8 no-sync-bn "$r"
  done
done
echo "# end: $(uptime | sed 's/.*load/load/')"
python3 - "$WORK/rates" <<'PY'
import collections, statistics, sys
rates = collections.defaultdict(list)
per_round = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    r, model, variant, v = line.split()
    rates[(model, variant)].append(float(v))
    per_round[(model, r)][variant] = float(v)
print("model variant steps/s(rounds) median ratio_to_after(per-round median)")
for (model, variant), vs in rates.items():
    ratios = [d[variant] / d["after"] for (m, _), d in per_round.items() if m == model and "after" in d]
    print(model, variant, ",".join(f"{v:.3f}" for v in vs), f"{statistics.median(vs):.3f}",
          f"{statistics.median(ratios):.3f}")
PY
