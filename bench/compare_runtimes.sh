#!/usr/bin/env bash
# Inference speed of one model in four runtimes, same machine, same session, same inputs
# (Fashion-MNIST test images), 2 threads, batch 1 and 256:
#   lowbit integer runtime (.lbq)              lowbit bench --json, once per ISA level the CPU has
#   lowbit's LibTorch FP32 evaluation          lowbit bench --checkpoint FP32_RUN --json
#   ONNX Runtime 1.30, float32 and QDQ .onnx   tests/export/ort_run.js --bench (Node binding, intra-op threads 2)
#   PyTorch 1.13 FP32 and int8 (fbgemm qconfig; kernels: the build's default engine, onednn in Debian's)
#                                              bench/pytorch_anchor.py infer (reference CNN only)
# Prints a Markdown table: median latency, throughput, ratio to the fastest anchor (ONNX Runtime
# or PyTorch) at that batch size, model file size. Timing only: run it on an otherwise idle
# machine (not while compiling), and compare ratios, not absolute figures, across machines.
#
# Usage: bench/compare_runtimes.sh [BUILD_DIR] [QAT_RUN] [FP32_RUN]
#   defaults: build runs/export_agreement/cnn-w8a8 runs/export_agreement/cnn-fp32
#   ITERATIONS=50 (batch 1 uses 4x as many)
#   DOCS=docs/BENCHMARKS.md also writes the table (with command, date and CPU) into that file,
#   between the lines "<!-- compare_runtimes:begin -->" and "<!-- compare_runtimes:end -->"
#   (appended if they are missing), atomically. MARKER=name uses "<!-- name:begin -->" etc. instead,
#   so that tables of several machines or models can stand in one file.
set -euo pipefail
build=${1:-build}
qat=${2:-runs/export_agreement/cnn-w8a8}
fp32=${3:-runs/export_agreement/cnn-fp32}
iterations=${ITERATIONS:-50}
marker=${MARKER:-compare_runtimes}
lowbit="$build/lowbit"
here=$(cd "$(dirname "$0")/.." && pwd)
data=${LOWBIT_DATA:-/usr/share/datasets/fashion-mnist}
images="$data/t10k-images-idx3-ubyte.gz"
[[ -x "$lowbit" ]] || { echo "compare_runtimes: $lowbit not found; run 'make build' first" >&2; exit 1; }
[[ -f "$qat/checkpoint.pt" && -f "$fp32/checkpoint.pt" ]] \
  || { echo "compare_runtimes: needs checkpoints $qat and $fp32 (bench/export_agreement.sh makes them)" >&2; exit 1; }
[[ -f "$here/third_party/node/node_modules/onnxruntime-node/package.json" ]] \
  || { echo "compare_runtimes: onnxruntime-node missing; run scripts/setup.sh" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$lowbit" convert --from "$qat" --out "$tmp/model.lbq" --check 0 >/dev/null
"$lowbit" export --from "$qat" --format onnx --out "$tmp/qdq.onnx" >/dev/null
"$lowbit" export --from "$fp32" --format onnx-fp32 --out "$tmp/fp32.onnx" >/dev/null

results="$tmp/results.jsonl"
isas=(avx2)
grep -qw avx512_vnni /proc/cpuinfo && isas+=(avx512vnni)
for isa in "${isas[@]}"; do
  LOWBIT_ISA=$isa "$lowbit" bench "$tmp/model.lbq" --batch 1 --threads 2 --iterations $((4 * iterations)) --json >>"$results"
  LOWBIT_ISA=$isa "$lowbit" bench "$tmp/model.lbq" --batch 256 --threads 2 --iterations "$iterations" --json >>"$results"
done
"$lowbit" bench --checkpoint "$fp32" --batch 1 --threads 2 --iterations $((4 * iterations)) --json \
  | sed 's/^{/{"runtime":"lowbit-libtorch-fp32",/' >>"$results"
"$lowbit" bench --checkpoint "$fp32" --batch 256 --threads 2 --iterations "$iterations" --json \
  | sed 's/^{/{"runtime":"lowbit-libtorch-fp32",/' >>"$results"
for kind in fp32 qdq; do
  node "$here/tests/export/ort_run.js" "$tmp/$kind.onnx" "$images" --threads 2 --bench 1 --iterations $((4 * iterations)) >>"$results"
  node "$here/tests/export/ort_run.js" "$tmp/$kind.onnx" "$images" --threads 2 --bench 256 --iterations "$iterations" >>"$results"
done
torch_note=""
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  if [[ "$(basename "$qat")" == cnn-* ]]; then
    /usr/bin/python3 "$here/bench/pytorch_anchor.py" infer --threads 2 --data "$data" >>"$results"
  else
    torch_note="PyTorch anchor skipped: bench/pytorch_anchor.py builds the reference CNN only"
  fi
else
  torch_note="PyTorch anchor skipped: python3-torch missing (scripts/setup.sh --bench)"
fi

table="$tmp/table.md"
/usr/bin/python3 - "$results" "$tmp" "$(basename "$qat")" >"$table" <<'PY'
import json, os, sys
results, tmp, name = sys.argv[1], sys.argv[2], sys.argv[3]
size = {"lowbit": os.path.getsize(f"{tmp}/model.lbq"), "onnxruntime-qdq": os.path.getsize(f"{tmp}/qdq.onnx"),
        "onnxruntime-fp32": os.path.getsize(f"{tmp}/fp32.onnx")}
rows = []
for line in open(results):
    r = json.loads(line)
    if r.get("mode") == "infer":  # pytorch_anchor.py
        for e in r["results"]:
            rows.append((e["runtime"], e["batch"], e["ms_median"], e["items_per_s"]))
        continue
    model = r["model"]
    runtime = r.get("runtime") or ("lowbit" if model.endswith(".lbq") else
                                   "onnxruntime-qdq" if model.endswith("qdq.onnx") else "onnxruntime-fp32")
    for e in r["results"]:
        name_isa = f"{runtime} ({e['isa']})" if runtime == "lowbit" else runtime
        rows.append((name_isa, e["batch"], e["ms_median"], e["items_per_s"]))
anchors = ("onnxruntime-fp32", "onnxruntime-qdq", "pytorch-fp32", "pytorch-int8")
print(f"model {name}; 2 threads; median latency")
print("| runtime | batch | median ms | items/s | ratio to fastest anchor | model size |")
print("| --- | --- | --- | --- | --- | --- |")
for batch in sorted({r[1] for r in rows}):
    at = [r for r in rows if r[1] == batch]
    fastest = min(r[2] for r in at if r[0] in anchors)
    for runtime, b, ms, ips in sorted(at, key=lambda r: r[2]):
        s = size.get(runtime.split(" ")[0])
        print(f"| {runtime} | {b} | {ms:.3f} | {ips:,.0f} | {ms / fastest:.2f} | {f'{s:,} B' if s else '-'} |")
print("ratio = median ms / median ms of the fastest anchor (ONNX Runtime or PyTorch) at that batch; < 1 is faster")
PY
[[ -z "$torch_note" ]] || echo "$torch_note" >>"$table"
cat "$table"

if [[ -n "${DOCS:-}" ]]; then
  cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
  flags=$(grep -o -w -E 'avx2|avx512f|avx512_vnni' /proc/cpuinfo | sort -u | tr '\n' ' ')
  section="$tmp/section.md"
  {
    echo "<!-- $marker:begin -->"
    echo "Written by \`DOCS=$DOCS${MARKER:+ MARKER=$MARKER} bench/compare_runtimes.sh $build $qat $fp32\` on $(date -u '+%Y-%m-%d %H:%M UTC'),"
    echo "CPU: $cpu, $(nproc) cores, flags: ${flags% }; ITERATIONS=$iterations."
    echo
    cat "$table"
    echo "<!-- $marker:end -->"
  } >"$section"
  /usr/bin/python3 - "$DOCS" "$section" "$marker" <<'PY'
import os, sys
path, section, marker = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
text = open(path).read() if os.path.exists(path) else ""
begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
if begin in text and end in text:
    text = text[:text.index(begin)] + section.rstrip("\n") + text[text.index(end) + len(end):]
else:
    text = text.rstrip("\n") + "\n\n" + section
tmp = path + ".tmp"
with open(tmp, "w") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
os.replace(tmp, path)
PY
  echo "compare_runtimes: table written to $DOCS"
fi
