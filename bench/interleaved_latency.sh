#!/usr/bin/env bash
# Batch-1 latency of several .lbq models, measured round-robin (docs/mixed_precision.md, #14).
#
# On a shared machine the load drifts over minutes, so models timed one after another are timed
# under different loads. Here each round runs `lowbit bench` once per model (ITERATIONS timed runs,
# their median), in a rotated order, and the figure per model is the median over ROUNDS rounds,
# with the 25th and 75th percentiles and the ratio to the first model measured in the same round.
#
# Usage: bench/interleaved_latency.sh LOWBIT OUT.json MODEL.lbq... [env ROUNDS=15 ITERATIONS=100 BATCH=1 THREADS=1]
set -euo pipefail
lowbit=${1:?usage: bench/interleaved_latency.sh LOWBIT OUT.json MODEL.lbq...}
out=${2:?usage: bench/interleaved_latency.sh LOWBIT OUT.json MODEL.lbq...}
shift 2
(( $# >= 1 )) || { echo "interleaved_latency: give at least one .lbq model" >&2; exit 1; }
for m in "$@"; do [[ -f "$m" ]] || { echo "interleaved_latency: model '$m' not found" >&2; exit 1; }; done
rounds=${ROUNDS:-15}
iterations=${ITERATIONS:-100}
batch=${BATCH:-1}
threads=${THREADS:-1}
models=("$@")
n=${#models[@]}
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
echo "load before: $(uptime)" >&2
for ((r = 0; r < rounds; ++r)); do
  for ((k = 0; k < n; ++k)); do
    m=${models[$(((k + r) % n))]}  # rotate so no model always runs right after the same one
    ms=$("$lowbit" bench "$m" --batch "$batch" --threads "$threads" --iterations "$iterations" --json |
      /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["ms_median"])')
    echo "$r $m $ms" >> "$raw"
  done
done
load_after=$(uptime)
echo "load after: $load_after" >&2
/usr/bin/python3 - "$raw" "$out" "$rounds" "$iterations" "$batch" "$threads" "$load_after" "${models[@]}" <<'EOF'
import json, os, statistics, sys
raw, out, rounds, iters, batch, threads, load = sys.argv[1:8]
models = sys.argv[8:]
per = {m: {} for m in models}
for line in open(raw):
    r, m, ms = line.split()
    per[m][int(r)] = float(ms)
def q(v, p):
    v = sorted(v); i = p * (len(v) - 1); lo = int(i); hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (i - lo)
first = models[0]
rows = []
for m in models:
    v = list(per[m].values())
    ratio = [per[m][r] / per[first][r] for r in per[m]]
    rows.append({"model": m, "ms_median": statistics.median(v), "ms_p25": q(v, .25), "ms_p75": q(v, .75),
                 "ratio_to_first_median": statistics.median(ratio), "rounds": per[m]})
res = {"batch": int(batch), "threads": int(threads), "rounds": int(rounds), "iterations": int(iters),
       "load_after": load.strip(), "results": rows}
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(res, f, indent=1)
    f.flush(); os.fsync(f.fileno())
os.replace(tmp, out)
print("| model | batch-%s ms (median of %s rounds) | p25-p75 | ratio to %s |" % (batch, rounds, os.path.basename(first)))
print("|---|---|---|---|")
for x in rows:
    print("| %s | %.4f | %.4f-%.4f | %.3f |" % (os.path.basename(x["model"]), x["ms_median"], x["ms_p25"], x["ms_p75"],
                                              x["ratio_to_first_median"]))
EOF
