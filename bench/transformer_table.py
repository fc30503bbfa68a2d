#!/usr/bin/env python3
"""Table of bench/transformer_results.sh gpt-qat: validation bits/byte per weight width and method
(QAT: mean and range over seeds), and the difference to FP32. Usage: transformer_table.py OUT"""
import glob
import json
import os
import re
import sys

out = sys.argv[1]


def bpb(path):
    with open(path) as f:
        return json.loads(f.readline())["bits_per_byte"]


fp32 = bpb(os.path.join(out, "fp32.json"))
rows = {}
for path in sorted(glob.glob(os.path.join(out, "qat-*-s*.json"))):
    m = re.match(r"qat-(.+)-s(\d+)\.json", os.path.basename(path))
    rows.setdefault(("QAT", m.group(1)), []).append(bpb(path))
for path in sorted(glob.glob(os.path.join(out, "ptq-*.json"))):
    m = re.match(r"ptq-(rtn|gptq)-(.+)\.json", os.path.basename(path))
    rows.setdefault((m.group(1).upper(), m.group(2)), []).append(bpb(path))

order = ["w4g32", "w3g32", "w2g32", "seq2g32", "ternaryg32", "binaryg32"]
print(f"FP32: {fp32:.4f} bits/byte (validation)\n")
print("| weights (groups of 32) | method | runs | val bits/byte (min-max) | minus FP32 |")
print("|---|---|---|---|---|")
for width in order:
    for method in ["RTN", "GPTQ", "QAT"]:
        v = rows.get((method, width))
        if not v:
            continue
        mean = sum(v) / len(v)
        spread = f" ({min(v):.4f}-{max(v):.4f})" if len(v) > 1 else ""
        print(f"| {width} | {method} | {len(v)} | {mean:.4f}{spread} | {mean - fp32:+.4f} |")
