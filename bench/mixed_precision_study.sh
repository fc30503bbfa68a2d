#!/usr/bin/env bash
# Mixed precision against uniform precision at equal budgets (docs/mixed_precision.md, #14).
#
# Per model: an FP32 run (FP32_EPOCHS epochs; reused if OUT/<model>-fp32 exists), the per-layer
# sensitivity table (RTN, weights 8/4/3/2/ternary/binary, activations 4, 16 Hutchinson probes),
# then searches under four budgets:
#   bits3     average weight bits <= 3       (candidates 8, 4, 3, 2)
#   bits2.5   average weight bits <= 2.5     (candidates 8, 4, 3, 2)
#   bytesW2   weight bytes <= those of uniform 2-bit weights (candidates 8, 4, 3, 2, ternary, binary)
#   latW4     runtime latency (batch 1, 1 thread, this machine) <= that of uniform 4-bit weights
# and QAT of every mixed config and of uniform W4A8, W3A8, W2A8 with the same steps and seed (all
# from the same FP32 checkpoint, the qat command's defaults otherwise). Each QAT run is converted
# and its batch-1 latency measured by `lowbit bench`. Prints a markdown table.
#
# Usage: bench/mixed_precision_study.sh BUILD_DIR OUT_DIR [MODELS="resnet8 mobilenet-tiny"] [QAT_STEPS=300]
#        [SEED=0] [FP32_EPOCHS=2] [THREADS=2]
set -euo pipefail
build=${1:-build}
out=${2:-runs/mixed}
models=${3:-"resnet8 mobilenet-tiny"}
qat_steps=${4:-300}
seed=${5:-0}
fp32_epochs=${6:-2}
threads=${7:-2}
lowbit="$build/lowbit"
[[ -x "$lowbit" ]] || { echo "mixed_precision_study: $lowbit not found; run 'make build' first" >&2; exit 1; }
mkdir -p "$out"
table="$out/table.md"
echo "| model | config | avg weight bits | weight bytes | predicted loss increase | test accuracy % | batch-1 ms (runtime) |" > "$table"
echo "|---|---|---|---|---|---|---|" >> "$table"

json_get() { /usr/bin/python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {'j': j}))" "$@"; }

for model in $models; do
  fp="$out/$model-fp32"
  if [[ ! -f "$fp/checkpoint.pt" ]]; then
    echo "== $model: FP32, $fp32_epochs epochs"
    "$lowbit" train --model "$model" --epochs "$fp32_epochs" --seed "$seed" --threads "$threads" --out "$fp" 2>"$fp.log"
  fi
  sens="$out/$model-sens"
  if [[ ! -f "$sens/sensitivity.json" ]]; then
    echo "== $model: sensitivity"
    /usr/bin/time -f "sensitivity wall %e s" "$lowbit" analyze sensitivity --checkpoint "$fp" --out "$sens" \
      --bits 8,4,3,2,ternary,binary --abits 4 --hessian-probes 16 --threads "$threads" 2>"$sens.log" | tee "$sens.txt"
    tail -1 "$sens.log"
  fi
  search() {  # name flags...
    local name=$1; shift
    "$lowbit" search mixed --from "$sens" --out "$out/$model-$name" --threads "$threads" "$@" > "$out/$model-$name.txt" 2>"$out/$model-$name.log"
    cat "$out/$model-$name.txt"
  }
  search bits3 --budget-bits 3 --wbits 8,4,3,2
  search bits2.5 --budget-bits 2.5 --wbits 8,4,3,2
  w2_bytes=$(json_get "$out/$model-bits3/mixed_search.json" "[u for u in j['uniform'] if u['label']=='W2A8'][0]['bytes']")
  search bytesW2 --budget-bytes "$w2_bytes" --wbits 8,4,3,2,ternary,binary
  # The latency of uniform W4 from the measured table: search once with an unlimited budget.
  search latprobe --budget-latency-ms 1e9 --wbits 8,4,2 --latency-iterations 200
  w4_ms=$(json_get "$out/$model-latprobe/mixed_search.json" "[u for u in j['uniform'] if u['label']=='W4A8'][0]['latency_ms']")
  search latW4 --budget-latency-ms "$w4_ms" --wbits 8,4,2 --latency-table "$out/$model-latprobe/latency.json"

  run_qat() {  # name qat-flags...
    local name=$1; shift
    local dir="$out/$model-qat-$name"
    if [[ ! -f "$dir/checkpoint.pt" ]]; then
      "$lowbit" qat --from "$fp" --out "$dir" --epochs 1 --max-steps-per-epoch "$qat_steps" --seed "$seed" \
        --threads "$threads" "$@" 2>"$dir.log"
    fi
    local acc
    acc=$("$lowbit" eval --checkpoint "$dir" --json | /usr/bin/python3 -c 'import json,sys; print("%.2f" % (100 * json.load(sys.stdin)["accuracy"]))')
    [[ -f "$dir.lbq" ]] || "$lowbit" convert --checkpoint "$dir" --out "$dir.lbq" >/dev/null
    local ms
    ms=$("$lowbit" bench "$dir.lbq" --batch 1 --threads 1 --iterations 300 --json | /usr/bin/python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["results"][0]["ms_median"])')
    echo "$acc $ms"
  }
  row() {  # label search-json point-expr accuracy ms
    local bits bytes pred
    bits=$(json_get "$2" "'%.3f' % $3['bits_per_param']")
    bytes=$(json_get "$2" "'%d' % $3['bytes']")
    pred=$(json_get "$2" "'%.4f' % $3['predicted_delta_loss']")
    echo "| $model | $1 | $bits | $bytes | $pred | $4 | $5 |" | tee -a "$table"
  }
  ref="$out/$model-bytesW2/mixed_search.json"  # its uniform points cover 8, 4, 3, 2, ternary, binary
  for w in 4 3 2; do
    read -r acc ms < <(run_qat "uniform-w$w" --wbits "$w")
    row "uniform W${w}A8" "$ref" "[u for u in j['uniform'] if u['label']=='W${w}A8'][0]" "$acc" "$ms"
  done
  for name in bits3 bits2.5 bytesW2 latW4; do
    read -r acc ms < <(run_qat "mixed-$name" --config "$out/$model-$name/qat_config.json")
    row "mixed $name" "$out/$model-$name/mixed_search.json" "j['choice']" "$acc" "$ms"
  done
done
echo
cat "$table"
