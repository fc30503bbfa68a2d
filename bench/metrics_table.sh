#!/usr/bin/env bash
# Deployment metrics of the reference image models at W8A8 and W4A4 (docs/metrics.md, #14).
#
# For each MODEL=FP32_RUN pair: round-to-nearest PTQ at W8A8 and W4A4 (the metrics depend on
# shapes and widths, not on accuracy), conversion to .lbq, then `lowbit inspect --metrics --json
# --latency` (batch 1 and 256, THREADS threads). Prints one markdown table.
#
# Usage: bench/metrics_table.sh LOWBIT OUT_DIR MODEL=FP32_RUN... [env THREADS=1]
set -euo pipefail
lowbit=${1:?usage: bench/metrics_table.sh LOWBIT OUT_DIR MODEL=FP32_RUN...}
out=${2:?usage: bench/metrics_table.sh LOWBIT OUT_DIR MODEL=FP32_RUN...}
shift 2
threads=${THREADS:-1}
mkdir -p "$out"
echo "load before: $(uptime)" >&2
for pair in "$@"; do
  model=${pair%%=*}
  fp=${pair#*=}
  [[ "$model" != "$pair" && -n "$fp" ]] || { echo "metrics_table: '$pair' is not MODEL=FP32_RUN" >&2; exit 1; }
  for wa in 8,8 4,4; do
    w=${wa%,*}; a=${wa#*,}
    name="$model-w${w}a${a}"
    if [[ ! -f "$out/$name/checkpoint.pt" ]]; then
      "$lowbit" ptq --from "$fp" --out "$out/$name" --wbits "$w" --abits "$a" --threads "$threads" > "$out/$name.ptq.txt" 2>&1
    fi
    [[ -f "$out/$name.lbq" ]] || "$lowbit" convert --checkpoint "$out/$name" --out "$out/$name.lbq" > /dev/null
    "$lowbit" inspect "$out/$name.lbq" --metrics --json --latency --threads "$threads" > "$out/$name.metrics.json"
  done
done
echo "load after: $(uptime)" >&2
/usr/bin/python3 - "$out" <<'EOF'
import glob, json, os, sys
out = sys.argv[1]
print("| model | params | file bytes | FP32 bytes | bits/param | MACs | BOPs | energy uJ | FP32 energy uJ | FP32/int | batch-1 ms | batch-256 ms |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for f in sorted(glob.glob(os.path.join(out, "*.metrics.json"))):
    j = json.load(open(f))
    lat = {l["batch"]: l["ms_median"] for l in j.get("latency", [])}
    print("| %s | {:,} | {:,} | {:,} | %.3f | {:,} | {:,} | %.2f | %.2f | %.1fx | %.4f | %.2f |".format(
        j["params"], j["file_bytes"], int(j["fp32_bytes"]), j["macs"], j["bops"]) % (
        os.path.basename(f)[:-len(".metrics.json")], j["bits_per_parameter"], j["energy_nj"] / 1e3,
        j["fp32_energy_nj"] / 1e3, j["fp32_energy_nj"] / j["energy_nj"], lat.get(1, float("nan")), lat.get(256, float("nan"))))
EOF
