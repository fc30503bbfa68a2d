#!/usr/bin/env python3
"""Checks `lowbit inspect --metrics --json` of a transformer .lbq (gpt-tiny decoder or vit-tiny
encoder) for cli_test.sh: the rows sum to the totals, the totals equal plain `inspect`'s parameter
count and stored bytes and the file's size, attention's MACs follow the context, a QAT
checkpoint's metrics equal its converted file's, an FP32 checkpoint's describe the same model.

Usage: check_transformer_metrics.py FILE.json INSPECT.log FILE.lbq QAT_CHECKPOINT.json FP32_CHECKPOINT.json
"""
import json
import os
import re
import sys

f, log, lbq, qat, fp32 = sys.argv[1:6]
m = json.load(open(f))
text = open(log).read()
ops = m["ops"]

for key in ("params", "weight_bytes", "macs", "bops", "float_ops"):
    assert m[key] == sum(o[key] for o in ops), (key, m[key])
assert m["float_macs"] == sum(o["macs"] for o in ops if o["math"] == "float"), m["float_macs"]
for key in ("energy_nj", "fp32_energy_nj"):
    assert abs(m[key] - sum(o[key] for o in ops)) <= 1e-9 * m[key], key
assert m["params"] == int(re.search(r"parameters (\d+)", text).group(1)), (m["params"], text)
assert m["weight_bytes"] == int(re.search(r"stored bytes (\d+)", text).group(1)), (m["weight_bytes"], text)
assert m["file_bytes"] == os.path.getsize(lbq), (m["file_bytes"], os.path.getsize(lbq))
assert 0 < m["energy_nj"] < m["fp32_energy_nj"], m

for o in ops:
    if o["math"] == "integer" and o["weight_bits"] > 0:
        assert o["bops"] == o["macs"] * o["weight_bits"] * o["act_bits"], o
    elif o["macs"] > 0:
        assert o["math"] == "float" and o["bops"] == o["macs"] * 32 * 32, o

width = int(re.search(r"width (\d+)", text).group(1))
attention = [o for o in ops if o["op"].endswith("_attn")]
assert attention, [o["op"] for o in ops]
decoder = "context_tokens" in m
if decoder:  # one token attending to T positions: 2 T d MACs per layer
    per_layer = 2 * m["context_tokens"] * width
else:  # one image of N tokens: 2 N^2 d
    n = int(re.search(r"\((\d+) tokens\)", m["inference"]).group(1))
    per_layer = 2 * n * n * width
assert all(o["macs"] == per_layer and o["math"] == "float" for o in attention), (per_layer, attention)

c = json.load(open(qat))
assert c["fp32_checkpoint"] is False, c["fp32_checkpoint"]
for key in ("params", "weight_bytes", "file_bytes", "macs", "bops", "float_ops", "energy_nj", "fp32_energy_nj"):
    assert c[key] == m[key], (key, c[key], m[key])

p = json.load(open(fp32))
assert p["fp32_checkpoint"] is True and p["params"] == m["params"] and p["fp32_bytes"] == m["fp32_bytes"], p
if decoder:
    t = p["context_tokens"]
    assert t == 8 and all(o["macs"] == 2 * t * width for o in p["ops"] if o["op"].endswith("_attn")), p["ops"]
    assert p["macs"] == m["macs"] - len(attention) * 2 * (m["context_tokens"] - t) * width, (p["macs"], m["macs"])
else:
    assert p["macs"] == m["macs"] and p["fp32_energy_nj"] == m["fp32_energy_nj"], (p["macs"], m["macs"])
print("ok", f)
