#!/usr/bin/env bash
# `lowbit-report` (no LibTorch) and `lowbit report` write byte-identical pages, and both fail
# with exit 1 and no file on a folder with nothing to report.
# Usage: report_tool_test.sh LOWBIT LOWBIT_REPORT WORK_DIR
set -euo pipefail
LOWBIT="$1"
TOOL="$2"
W="$3"
rm -rf "$W"
mkdir -p "$W/runs/cnn-fp32" "$W/empty"
echo '{"model": "cnn", "epochs": 2, "batch_size": 128, "optimizer": "adamw", "lr": 0.001}' > "$W/runs/cnn-fp32/config.json"
cat > "$W/runs/cnn-fp32/metrics.jsonl" <<'JSON'
{"epoch":1,"step":430,"train_loss":0.52,"train_acc":0.81,"val_loss":0.36,"val_acc":0.87,"seconds":22.0}
{"epoch":2,"step":860,"train_loss":0.31,"train_acc":0.89,"val_loss":0.29,"val_acc":0.895,"seconds":22.1}
JSON
"$LOWBIT" report "$W/runs/cnn-fp32" --out "$W/a.html"
"$TOOL" "$W/runs/cnn-fp32" --out "$W/b.html"
cmp "$W/a.html" "$W/b.html"
grep -q "cnn-fp32" "$W/b.html"
rc=0
"$TOOL" "$W/empty" --out "$W/c.html" 2> "$W/err.txt" || rc=$?
[[ $rc -eq 1 ]] || { echo "FAIL: lowbit-report on an empty folder exited $rc, not 1"; exit 1; }
[[ ! -e "$W/c.html" ]] || { echo "FAIL: a page was written for an empty folder"; exit 1; }
grep -q "empty" "$W/err.txt" || { echo "FAIL: the error does not name the folder:"; cat "$W/err.txt"; exit 1; }
echo "PASS: lowbit-report and lowbit report write the same page; errors are clean"
