#!/usr/bin/env bash
# Mixed precision end to end: `lowbit analyze sensitivity` on a briefly trained cnn, `lowbit search
# mixed` under a bits, a bytes and a latency budget, the written config through `lowbit qat
# --config` and `lowbit convert`, and the converted model's per-layer widths against the choice.
# Usage: bash tests/cli/mixed_precision_test.sh path/to/lowbit   (exit 77: dataset not installed)
set -euo pipefail

LOWBIT="$1"
TMP="${LOWBIT_TEST_TMP:-/tmp}/mixed_precision_test.$$"
rm -rf "$TMP"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
# fail, expect_exit
source "$(dirname "${BASH_SOURCE[0]}")/test_lib.sh"

DATA="${LOWBIT_DATA:-/usr/share/datasets/fashion-mnist}"
[[ -f "$DATA/train-images-idx3-ubyte.gz" ]] || { echo "SKIP: Fashion-MNIST not in $DATA"; exit 77; }

"$LOWBIT" train --model cnn --epochs 1 --max-steps-per-epoch 40 --val-size 5000 --data "$DATA" --out "$TMP/fp" \
  2>"$TMP/train.log" || { cat "$TMP/train.log" >&2; fail "train failed"; }

# Bad input: a QAT checkpoint, a width the tool does not know, a missing table.
expect_exit 2 "$LOWBIT" analyze sensitivity --checkpoint "$TMP/fp" --out "$TMP/s" --method adaround
expect_exit 1 "$LOWBIT" analyze sensitivity --checkpoint "$TMP/fp" --out "$TMP/s" --bits 8,9
grep -q "weight width '9'" "$TMP/err" || fail "bad width message: $(cat "$TMP/err")"
expect_exit 1 "$LOWBIT" search mixed --from "$TMP/nothing" --out "$TMP/m" --budget-bits 4
grep -q "does not exist" "$TMP/err" || fail "missing --from message: $(cat "$TMP/err")"

"$LOWBIT" analyze sensitivity --checkpoint "$TMP/fp" --out "$TMP/sens" --bits 8,4,2 --abits 4 --eval-images 500 \
  --calib-batches 1 --hessian-probes 2 --hessian-batch-size 32 --data "$DATA" >"$TMP/sens.out" 2>"$TMP/sens.log" \
  || { cat "$TMP/sens.log" >&2; fail "analyze sensitivity failed"; }
[[ -f "$TMP/sens/sensitivity.json" && -f "$TMP/sens/sensitivity.csv" ]] || fail "sensitivity files missing: $(ls "$TMP/sens")"
grep -q "conv2" "$TMP/sens.out" || fail "table lacks conv2: $(cat "$TMP/sens.out")"
python3 - "$TMP/sens/sensitivity.json" <<'PY' || fail "sensitivity.json content"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["analysis"] == "sensitivity" and j["model"] == "cnn", j.keys()
names = [l["name"] for l in j["layers"]]
assert names == ["conv1", "conv2", "fc1", "fc2"], names
for l in j["layers"]:
    w = {e["bits"]: e for e in l["weights"]}
    assert set(w) == {8, 4, 2}, l["name"]
    assert l["hessian_trace"] is not None, l["name"]
    assert l["params"] > 0 and l["macs"] >= l["params"], l["name"]
    # Quantization error grows as the grid gets coarser, in the layer's own weights.
    assert w[2]["weight_error"] > w[4]["weight_error"] > w[8]["weight_error"] > 0, (l["name"], w)
    assert len(l["activations"]) == (0 if l["last"] else 1), l["name"]
# 2-bit weights move the loss much more than 8-bit ones (in either direction: on a model trained
# for 40 steps, rounding most of a layer's still-random weights to zero can even lower the loss).
d2 = sum(abs(e["delta_loss"]) for l in j["layers"] for e in l["weights"] if e["bits"] == 2)
d8 = sum(abs(e["delta_loss"]) for l in j["layers"] for e in l["weights"] if e["bits"] == 8)
assert d2 > 10 * d8 and d2 > 0.02, (d2, d8)
# cnn's conv2 is 64 x 32 x 3 x 3 weights on 14 x 14 outputs.
c2 = j["layers"][1]
assert c2["params"] == 64 * 32 * 9 and c2["macs"] == 64 * 14 * 14 * 32 * 9, c2
PY

# A bits budget: the choice respects it and beats uniform 2-bit in predicted loss.
"$LOWBIT" search mixed --from "$TMP/sens" --out "$TMP/m3" --budget-bits 3 >"$TMP/m3.out" 2>"$TMP/m3.log" \
  || { cat "$TMP/m3.log" >&2; fail "search mixed --budget-bits failed"; }
python3 - "$TMP/m3/mixed_search.json" "$TMP/m3/qat_config.json" <<'PY' || fail "mixed_search.json content"
import json, sys
j = json.load(open(sys.argv[1])); c = json.load(open(sys.argv[2]))
ch = j["choice"]
assert j["analysis"] == "mixed-precision" and j["budget"] == {"kind": "bits", "value": 3.0}, j["budget"]
assert ch["bits_per_param"] <= 3.0 + 1e-9, ch
u2 = [u for u in j["uniform"] if u["label"] == "W2A8"][0]
assert ch["predicted_delta_loss"] <= u2["predicted_delta_loss"], (ch, u2)
# The config holds one override per layer with the chosen widths.
ov = {o["pattern"]: o for o in c["overrides"]}
for l in ch["layers"]:
    assert ov[l["name"]]["weight_bits"] == l["weight_bits"], l
PY

# The written config trains and converts; the integer model has the chosen width per layer.
"$LOWBIT" qat --from "$TMP/fp" --config "$TMP/m3/qat_config.json" --epochs 1 --max-steps-per-epoch 5 --val-size 1000 \
  --data "$DATA" --out "$TMP/q3" 2>"$TMP/q3.log" || { cat "$TMP/q3.log" >&2; fail "qat --config failed"; }
"$LOWBIT" convert --checkpoint "$TMP/q3" --out "$TMP/q3.lbq" >"$TMP/conv.out" 2>&1 || { cat "$TMP/conv.out" >&2; fail "convert failed"; }
"$LOWBIT" inspect "$TMP/q3.lbq" --metrics --json >"$TMP/metrics.json" || fail "inspect --metrics failed"
python3 - "$TMP/m3/mixed_search.json" "$TMP/metrics.json" <<'PY' || fail "converted widths differ from the choice"
import json, sys
ch = json.load(open(sys.argv[1]))["choice"]["layers"]
ops = [o for o in json.load(open(sys.argv[2]))["ops"] if o["weight_bits"] > 0]
container = lambda b: 1 if b <= 1 else 2 if b <= 2 else 4 if b <= 4 else 8
assert [o["weight_bits"] for o in ops] == [container(l["weight_bits"]) for l in ch], (ops, ch)
PY

# Metrics of checkpoints: a QAT checkpoint's equal its converted file's; an FP32 checkpoint's
# FP32 figures describe the same graph.
"$LOWBIT" inspect --checkpoint "$TMP/q3" --metrics --json >"$TMP/ckpt_metrics.json" || fail "inspect --checkpoint (QAT) failed"
"$LOWBIT" inspect --checkpoint "$TMP/fp" --metrics --json >"$TMP/fp_metrics.json" || fail "inspect --checkpoint (FP32) failed"
python3 - "$TMP/metrics.json" "$TMP/ckpt_metrics.json" "$TMP/fp_metrics.json" <<'PY' || fail "checkpoint metrics"
import json, sys
f, c, fp = (json.load(open(p)) for p in sys.argv[1:4])
for k in ("params", "weight_bytes", "file_bytes", "macs", "bops", "energy_nj", "fp32_energy_nj"):
    assert f[k] == c[k], (k, f[k], c[k])
assert c["fp32_checkpoint"] is False and fp["fp32_checkpoint"] is True
assert fp["params"] == f["params"] and fp["macs"] == f["macs"] and fp["fp32_bytes"] == f["fp32_bytes"], (fp, f)
PY
expect_exit 2 "$LOWBIT" inspect
expect_exit 1 "$LOWBIT" inspect --checkpoint "$TMP/fp"

# A bytes budget equal to uniform 4-bit's bytes admits at least that point's predicted loss.
B4=$(python3 -c "import json,sys; print([u for u in json.load(open(sys.argv[1]))['uniform'] if u['label']=='W4A8'][0]['bytes'])" "$TMP/m3/mixed_search.json")
"$LOWBIT" search mixed --from "$TMP/sens/sensitivity.json" --out "$TMP/mb" --budget-bytes "$B4" --pin conv1 >/dev/null 2>"$TMP/mb.log" \
  || { cat "$TMP/mb.log" >&2; fail "search mixed --budget-bytes failed"; }
python3 - "$TMP/mb/mixed_search.json" <<'PY' || fail "bytes search"
import json, sys
j = json.load(open(sys.argv[1])); ch = j["choice"]
assert ch["bytes"] <= j["budget"]["value"] * (1 + 1e-9), ch
assert ch["layers"][0]["weight_bits"] == 8 and ch["layers"][0]["act_bits"] == 8, ch["layers"][0]  # --pin conv1
PY

# No assignment fits: exit 1, the cheapest cost named, the result still written.
expect_exit 1 "$LOWBIT" search mixed --from "$TMP/sens" --out "$TMP/mnone" --budget-bits 1
grep -q "no width assignment fits" "$TMP/err" || fail "unfit budget message: $(cat "$TMP/err")"
expect_exit 1 "$LOWBIT" search mixed --from "$TMP/sens" --out "$TMP/mtwo" --budget-bits 3 --budget-bytes 1000
grep -q "exactly one budget" "$TMP/err" || fail "two budgets message: $(cat "$TMP/err")"

# A latency budget: per-layer times measured by the runtime at 8, 4, 2 and 1-bit weights.
"$LOWBIT" search mixed --from "$TMP/sens" --out "$TMP/ml" --budget-latency-ms 1000 --latency-iterations 3 --data "$DATA" \
  >/dev/null 2>"$TMP/ml.log" || { cat "$TMP/ml.log" >&2; fail "search mixed --budget-latency-ms failed"; }
python3 - "$TMP/ml/latency.json" "$TMP/ml/mixed_search.json" <<'PY' || fail "latency table"
import json, sys
t = json.load(open(sys.argv[1])); j = json.load(open(sys.argv[2]))
assert sorted(t["layer_ms"]) == ["conv1", "conv2", "fc1", "fc2"], t["layer_ms"].keys()
for name, per in t["layer_ms"].items():
    assert sorted(per, key=int) == ["1", "2", "4", "8"], (name, per)
    assert all(v >= 0 for v in per.values()), (name, per)
assert j["choice"]["latency_ms"] <= 1000
PY

# The same table given back (--latency-table) gives the same choice without measuring again.
"$LOWBIT" search mixed --from "$TMP/sens" --out "$TMP/ml2" --budget-latency-ms 1000 --latency-table "$TMP/ml/latency.json" \
  >/dev/null 2>"$TMP/ml2.log" || { cat "$TMP/ml2.log" >&2; fail "search mixed --latency-table failed"; }
! grep -q "layer latency:" "$TMP/ml2.log" || fail "--latency-table measured again: $(cat "$TMP/ml2.log")"
python3 - "$TMP/ml/mixed_search.json" "$TMP/ml2/mixed_search.json" <<'PY' || fail "--latency-table choice differs"
import json, sys
a, b = (json.load(open(p))["choice"] for p in sys.argv[1:3])
assert a == b, (a, b)
PY
echo '{"batch": 1}' >"$TMP/bad_latency.json"
expect_exit 1 "$LOWBIT" search mixed --from "$TMP/sens" --out "$TMP/ml3" --budget-latency-ms 1 --latency-table "$TMP/bad_latency.json"
grep -q "bad_latency.json" "$TMP/err" || fail "bad latency table message: $(cat "$TMP/err")"

# bench --profile: one entry per op, the times add up to the total.
"$LOWBIT" bench "$TMP/q3.lbq" --profile --json --batch 1,8 --iterations 3 >"$TMP/profile.json" || fail "bench --profile failed"
python3 - "$TMP/profile.json" <<'PY' || fail "profile JSON"
import json, sys
j = json.load(open(sys.argv[1]))
assert [p["batch"] for p in j["profile"]] == [1, 8]
for p in j["profile"]:
    assert len(p["ops"]) >= 4 and all(o["ms"] >= 0 and o["kernel"] for o in p["ops"]), p
    assert abs(sum(o["ms"] for o in p["ops"]) + p["io_ms"] - p["total_ms"]) < 1e-6, p
PY
expect_exit 1 "$LOWBIT" bench --checkpoint "$TMP/fp" --profile
echo "mixed precision CLI: all checks passed"
