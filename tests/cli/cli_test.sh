#!/usr/bin/env bash
# End-to-end checks of the `lowbit` command: usage errors, exit codes, a short real run.
# Usage: bash tests/cli/cli_test.sh path/to/lowbit
set -euo pipefail

LOWBIT="$1"
TMP="${LOWBIT_TEST_TMP:-/tmp}/cli_test.$$"
rm -rf "$TMP"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT

# fail, expect_exit
source "$(dirname "${BASH_SOURCE[0]}")/test_lib.sh"

# Help works for the program and each command.
"$LOWBIT" --help | grep -q "train" || fail "--help does not list 'train'"
"$LOWBIT" train --help | grep -q -- "--max-steps-per-epoch" || fail "train --help lacks --max-steps-per-epoch"
"$LOWBIT" eval --help | grep -q -- "--checkpoint" || fail "eval --help lacks --checkpoint"

# Usage errors: one line on stderr, exit code 2.
expect_exit 2 "$LOWBIT" train --no-such-flag
[[ $(wc -l <"$TMP/err") -eq 1 ]] || fail "usage error is not one line: $(cat "$TMP/err")"
grep -q -- "--no-such-flag" "$TMP/err" || fail "usage error does not name the flag"
expect_exit 2 "$LOWBIT" train --epochs notanumber
expect_exit 2 "$LOWBIT" eval
grep -q -- "--checkpoint" "$TMP/err" || fail "missing --checkpoint is not named"
expect_exit 2 "$LOWBIT"
expect_exit 2 "$LOWBIT" frobnicate

# A bad model name fails with a message naming the known models.
expect_exit 2 "$LOWBIT" train --model vgg16 --out "$TMP/bad"
grep -q "vgg16" "$TMP/err" && grep -q "resnet8" "$TMP/err" || fail "bad model message: $(cat "$TMP/err")"

# A lowbit::Error: message, exit 1, no stack trace.
echo "not a checkpoint" >"$TMP/foreign.pt"
expect_exit 1 "$LOWBIT" eval --checkpoint "$TMP/foreign.pt"
grep -q "is not a lowbit checkpoint" "$TMP/err" || fail "foreign checkpoint message: $(cat "$TMP/err")"
grep -q "Exception raised from" "$TMP/err" && fail "stack trace printed"
expect_exit 1 "$LOWBIT" train --out "$TMP/nodata" --data "$TMP/empty-dir"
grep -q "LOWBIT_DATA" "$TMP/err" || fail "missing data message: $(cat "$TMP/err")"
expect_exit 1 "$LOWBIT" train --out "$TMP/nothing" --resume
grep -q "no checkpoint to resume" "$TMP/err" || fail "resume without checkpoint: $(cat "$TMP/err")"

# PTQ, study and analysis commands: usage errors (exit 2) and the toy (no data needed).
expect_exit 2 "$LOWBIT" ptq --out "$TMP/p"
grep -q -- "--from" "$TMP/err" || fail "ptq without --from: $(cat "$TMP/err")"
expect_exit 2 "$LOWBIT" ptq --from "$TMP/x" --out "$TMP/p" --method adaround
expect_exit 2 "$LOWBIT" ptq --from "$TMP/x" --out "$TMP/p" --wbits 1
expect_exit 1 "$LOWBIT" ptq --from "$TMP/foreign.pt" --out "$TMP/p" --data "$TMP/empty-dir"
expect_exit 2 "$LOWBIT" study
expect_exit 2 "$LOWBIT" analyze basin --wbits 2
"$LOWBIT" analyze toy --steps 8 | grep -q "OUTSIDE the basin" || fail "analyze toy output"

# gpt-tiny on a small generated text: train (--steps), eval --json, resume, QAT with groups.
for i in $(seq 1 200); do echo "line $i: the quick brown fox jumps over the lazy dog."; done >"$TMP/text.txt"
LM=(--model gpt-tiny --text "$TMP/text.txt" --layers 2 --width 32 --heads 4 --context 32 --batch-size 8)
"$LOWBIT" train "${LM[@]}" --steps 20 --eval-interval 10 --eval-windows 16 --out "$TMP/lm" 2>"$TMP/lm.log" \
  || { cat "$TMP/lm.log" >&2; fail "gpt-tiny train failed"; }
grep -q "bits/byte" "$TMP/lm.log" || fail "gpt-tiny log lacks bits/byte: $(cat "$TMP/lm.log")"
[[ $(wc -l <"$TMP/lm/metrics.jsonl") -eq 2 ]] || fail "gpt-tiny metrics.jsonl: $(cat "$TMP/lm/metrics.jsonl")"
grep -q '"val_bits_per_byte"' "$TMP/lm/metrics.jsonl" || fail "metrics.jsonl lacks val_bits_per_byte"
# The run records its command line (shell-quoted) and machine in config.json.
python3 - "$TMP/lm/config.json" "$LOWBIT" <<'PY' || fail "gpt-tiny run provenance: $(cat "$TMP/lm/config.json")"
import json, shlex, sys
p = json.load(open(sys.argv[1]))["provenance"]
assert shlex.split(p["command"])[0] == sys.argv[2] and shlex.split(p["command"])[1] == "train", p
assert "--eval-interval" in p["argv"] and p["argv"][p["argv"].index("--eval-interval") + 1] == "10", p
assert p["logical_cores"] >= 1 and p["isa"] and p["os"] and p["host"] is not None, p
assert p["date_utc"].endswith("Z") and p["cpu"] is not None, p
PY
"$LOWBIT" eval --checkpoint "$TMP/lm" --json >"$TMP/lm_eval.json" || fail "gpt-tiny eval failed"
grep -q '"bits_per_byte":' "$TMP/lm_eval.json" && grep -q '"perplexity":' "$TMP/lm_eval.json" \
  && grep -q '"step":20' "$TMP/lm_eval.json" || fail "gpt-tiny eval --json: $(cat "$TMP/lm_eval.json")"
"$LOWBIT" eval --checkpoint "$TMP/lm" | grep -q "bits/byte" || fail "gpt-tiny eval summary"
"$LOWBIT" train --out "$TMP/lm" --resume --steps 30 2>"$TMP/lm_resume.log" || { cat "$TMP/lm_resume.log" >&2; fail "gpt-tiny resume"; }
"$LOWBIT" eval --checkpoint "$TMP/lm" --json | grep -q '"step":30' || fail "gpt-tiny resume did not reach step 30"
"$LOWBIT" qat --from "$TMP/lm" --wbits 4 --group-size 32 --steps 10 --out "$TMP/lmq" 2>"$TMP/lmq.log" \
  || { cat "$TMP/lmq.log" >&2; fail "gpt-tiny qat failed"; }
grep -q '"head"' "$TMP/lmq/config.json" || fail "gpt-tiny QAT config lacks the float head override"
grep -q '"weight_granularity": "group"' "$TMP/lmq/config.json" || fail "--group-size alone did not select group scales"
grep -q '"command": ".* qat --from .*--group-size 32' "$TMP/lmq/config.json" || fail "QAT run lacks its command line"
"$LOWBIT" eval --checkpoint "$TMP/lmq" --json | grep -q '"quantized":true' || fail "gpt-tiny QAT eval"
# WinQ study and Hessian on gpt-tiny: the LM trainer with WinQ's hooks, windows of the run's own text.
"$LOWBIT" study winq --model gpt-tiny --from "$TMP/lm" --bits 2 --seeds 1 --steps 4 --quick --hessian-probes 1 \
  --hessian-lanczos-steps 3 --hessian-batch-size 4 --val-images 8 --group-size 16 --out "$TMP/lmsw" >"$TMP/lmsw.out" 2>"$TMP/lmsw.log" \
  || { cat "$TMP/lmsw.log" >&2; fail "study winq on gpt-tiny failed"; }
grep -q "| 2 | winq |" "$TMP/lmsw.out" && grep -q "bits/byte" "$TMP/lmsw.out" && grep -q "winq end" "$TMP/lmsw.out" \
  || fail "study winq table of gpt-tiny: $(cat "$TMP/lmsw.out")"
python3 - "$TMP/lmsw/study.json" <<'PY' || fail "study winq gpt-tiny json: $(head -c 600 "$TMP/lmsw/study.json")"
import json, sys
s = json.load(open(sys.argv[1]))
runs = {r["variant"]: r for r in s["runs"]}
assert s["model"] == "gpt-tiny" and s["settings"]["group_size"] == 16, s["settings"]
assert len(runs["baseline"]["train_losses"]) == 4 and len(runs["winq"]["train_losses"]) == 4, runs
assert runs["winq"]["resets"] >= 1 and runs["baseline"]["resets"] == 0, runs
assert 0 < runs["baseline"]["val_loss"] < 6 and 0 <= runs["baseline"]["val_acc"] <= 1, runs["baseline"]
PY
grep -q '"weight_granularity": "group"' "$TMP/lmsw/runs/w2-winq-seed0/config.json" \
  && grep -q '"act_granularity": "token"' "$TMP/lmsw/runs/w2-winq-seed0/config.json" \
  || fail "study winq gpt-tiny runs lack the LM QAT defaults: $(cat "$TMP/lmsw/runs/w2-winq-seed0/config.json")"
"$LOWBIT" analyze hessian --checkpoint "$TMP/lmq" --batches 1 --batch-size 4 --probes 1 --lanczos-steps 3 \
  --power-iterations 2 --out "$TMP/lmh" >"$TMP/lmh.out" 2>"$TMP/lmh.log" || { cat "$TMP/lmh.log" >&2; fail "analyze hessian gpt-tiny"; }
grep -q "gpt-tiny Hessian" "$TMP/lmh.out" && [[ -s "$TMP/lmh/density.csv" && -s "$TMP/lmh/report.html" ]] || fail "gpt-tiny Hessian: $(cat "$TMP/lmh.out")"
# gpt-tiny on the integer runtime: convert -> inspect -> generate -> bench, and clear errors.
"$LOWBIT" convert --checkpoint "$TMP/lmq" --out "$TMP/lm.lbq" >"$TMP/lmc.log" || fail "gpt-tiny convert failed"
grep -q "checked: 32 positions" "$TMP/lmc.log" || fail "gpt-tiny convert did not check: $(cat "$TMP/lmc.log")"
"$LOWBIT" inspect "$TMP/lm.lbq" >"$TMP/lmi.log" || fail "inspect of a decoder model failed"
grep -q "attention" "$TMP/lmi.log" && grep -q "integer" "$TMP/lmi.log" && grep -q "s8_w8_gemm_grpacc" "$TMP/lmi.log" \
  && grep -q "int4 group32" "$TMP/lmi.log" || fail "inspect does not name float / integer ops and kernels: $(cat "$TMP/lmi.log")"
# Deployment metrics of the decoder (docs/metrics.md, "Transformers"): the rows sum to the totals,
# which equal what plain `inspect` counts; the QAT checkpoint's equal its file's; an FP32
# checkpoint's attention follows --context-tokens.
"$LOWBIT" inspect "$TMP/lm.lbq" --metrics >"$TMP/lmm.log" || fail "inspect --metrics of a decoder model failed"
grep -q "one generated token at position 31" "$TMP/lmm.log" && grep -q "float in the runtime" "$TMP/lmm.log" \
  || fail "decoder metrics table: $(cat "$TMP/lmm.log")"
"$LOWBIT" inspect "$TMP/lm.lbq" --metrics --json >"$TMP/lmm.json" || fail "inspect --metrics --json of a decoder model"
"$LOWBIT" inspect --checkpoint "$TMP/lmq" --metrics --json >"$TMP/lmmq.json" || fail "inspect --checkpoint (gpt-tiny QAT)"
"$LOWBIT" inspect --checkpoint "$TMP/lm" --metrics --json --context-tokens 8 >"$TMP/lmmf.json" \
  || fail "inspect --checkpoint (gpt-tiny FP32)"
python3 "$(dirname "${BASH_SOURCE[0]}")/check_transformer_metrics.py" "$TMP/lmm.json" "$TMP/lmi.log" "$TMP/lm.lbq" \
  "$TMP/lmmq.json" "$TMP/lmmf.json" || fail "decoder metrics"
expect_exit 1 "$LOWBIT" inspect "$TMP/lm.lbq" --metrics --context-tokens 33
grep -q "outside \[1, 32\]" "$TMP/err" || fail "--context-tokens beyond the context: $(cat "$TMP/err")"
"$LOWBIT" generate "$TMP/lm.lbq" --prompt "the " --tokens 40 >"$TMP/gen1.txt" || fail "generate failed"
[[ $(head -c 4 "$TMP/gen1.txt") == "the " && $(wc -c <"$TMP/gen1.txt") -ge 45 ]] || fail "generate output: $(cat "$TMP/gen1.txt")"
"$LOWBIT" generate "$TMP/lm.lbq" --prompt "the " --tokens 40 --isa ref >"$TMP/gen2.txt"
cmp -s "$TMP/gen1.txt" "$TMP/gen2.txt" || fail "greedy text differs between kernel levels"
"$LOWBIT" generate "$TMP/lm.lbq" --prompt "the " --tokens 30 --temperature 0.8 --top-k 5 --seed 3 --threads 2 >"$TMP/gen3.txt"
"$LOWBIT" generate "$TMP/lm.lbq" --prompt "the " --tokens 30 --temperature 0.8 --top-k 5 --seed 3 >"$TMP/gen4.txt"
cmp -s "$TMP/gen3.txt" "$TMP/gen4.txt" || fail "sampling with a seed is not reproducible"
"$LOWBIT" bench "$TMP/lm.lbq" --iterations 2 | grep -q "decode .* tokens/s" || fail "bench of a decoder model"
"$LOWBIT" bench --checkpoint "$TMP/lm" --iterations 1 --prompt-tokens 8 --decode-tokens 4 | grep -q "libtorch" \
  || fail "bench --checkpoint of gpt-tiny"
"$LOWBIT" convert --checkpoint "$TMP/lm" --out "$TMP/lm_rtn.lbq" --weight-format ternary --group-size 0 >/dev/null \
  || fail "round-to-nearest conversion of an FP32 gpt-tiny"
"$LOWBIT" inspect "$TMP/lm_rtn.lbq" | grep -q "ternary per-channel" || fail "RTN ternary model"
# ONNX export of the decoder model (docs/transformers.md): MatMulNBits needs int4 weights.
"$LOWBIT" export --from "$TMP/lm.lbq" --format matmulnbits --out "$TMP/lm.onnx" >"$TMP/lmx.log" \
  || fail "export of a decoder model failed: $(cat "$TMP/lmx.log")"
[[ -s "$TMP/lm.onnx" ]] && grep -q "MatMulNBits" "$TMP/lm.onnx" || fail "MatMulNBits export has no MatMulNBits node"
"$LOWBIT" export --from "$TMP/lm_rtn.lbq" --format onnx --out "$TMP/lm_rtn.onnx" >/dev/null || fail "QDQ export of a ternary LM"
expect_exit 1 "$LOWBIT" export --from "$TMP/lm_rtn.lbq" --format matmulnbits --out "$TMP/x.onnx"
grep -q "block0_attn_q" "$TMP/err" || fail "matmulnbits refusal does not name the projection: $(cat "$TMP/err")"
[[ ! -e "$TMP/x.onnx" ]] || fail "a refused export left a file behind"
expect_exit 1 "$LOWBIT" generate "$TMP/lm.lbq" --prompt "$(printf 'x%.0s' {1..40})" --tokens 2
grep -q "context of 32" "$TMP/err" || fail "long prompt message: $(cat "$TMP/err")"
expect_exit 1 "$LOWBIT" generate "$TMP/lm.lbq" --prompt "a" --tokens 0
grep -q -- "--tokens 0" "$TMP/err" || fail "--tokens 0 message: $(cat "$TMP/err")"
echo "abc" >"$TMP/short.txt"
expect_exit 1 "$LOWBIT" generate "$TMP/short.txt" --prompt "a" --tokens 2
grep -q "not a decoder language model" "$TMP/err" || fail "non-decoder model message: $(cat "$TMP/err")"
head -c 3000 "$TMP/lm.lbq" >"$TMP/lm_cut.lbq"
expect_exit 1 "$LOWBIT" generate "$TMP/lm_cut.lbq" --prompt "a" --tokens 2
grep -q "lm_cut.lbq" "$TMP/err" || fail "truncated model message: $(cat "$TMP/err")"
# PTQ of gpt-tiny: GPTQ with groups, calibrated on random windows of its text; eval reads it.
"$LOWBIT" ptq --from "$TMP/lm" --method gptq --wbits 4 --group-size 16 --calib-batches 2 --calib-batch-size 4 \
  --out "$TMP/lmp" >"$TMP/lmp.out" 2>"$TMP/lmp.log" || { cat "$TMP/lmp.log" >&2; fail "gpt-tiny ptq failed"; }
grep -q "validation bits/byte: FP32" "$TMP/lmp.out" || fail "gpt-tiny ptq output: $(cat "$TMP/lmp.out")"
grep -q '"calib_seed"' "$TMP/lmp/ptq.json" && grep -q '"ptq_val_bits_per_byte"' "$TMP/lmp/ptq.json" || fail "gpt-tiny ptq.json"
grep -q '"command": ".* ptq --from .*--method gptq' "$TMP/lmp/config.json" || fail "PTQ run lacks its command line"
"$LOWBIT" eval --checkpoint "$TMP/lmp" --json | grep -q '"quantized":true' || fail "gpt-tiny PTQ eval"
expect_exit 1 "$LOWBIT" train --model gpt-tiny --patch 4 --steps 2 --out "$TMP/lm_patch"
grep -q "vit-tiny flag" "$TMP/err" || fail "--patch for gpt-tiny: $(cat "$TMP/err")"
expect_exit 1 "$LOWBIT" train --model vit-tiny --text "$TMP/text.txt" --out "$TMP/vit_text"
grep -q "gpt-tiny flag" "$TMP/err" || fail "--text for vit-tiny: $(cat "$TMP/err")"
expect_exit 1 "$LOWBIT" train --model vit-tiny --heads 3 --out "$TMP/vit_heads"
grep -q -- "--heads" "$TMP/err" || fail "bad --heads for vit-tiny: $(cat "$TMP/err")"
echo "abc" >"$TMP/short.txt"
expect_exit 1 "$LOWBIT" train --model gpt-tiny --text "$TMP/short.txt" --steps 2 --out "$TMP/lm_short"
grep -q "short.txt" "$TMP/err" && grep -q "at least 258 bytes" "$TMP/err" || fail "short text message: $(cat "$TMP/err")"
expect_exit 1 "$LOWBIT" train --model gpt-tiny --text "$TMP/none.txt" --steps 2 --out "$TMP/lm_none"
grep -q "none.txt" "$TMP/err" || fail "missing text message: $(cat "$TMP/err")"

# A short real run, if the dataset is installed.
DATA="${LOWBIT_DATA:-/usr/share/datasets/fashion-mnist}"
if [[ -f "$DATA/train-images-idx3-ubyte.gz" ]]; then
  "$LOWBIT" train --model cnn --epochs 1 --max-steps-per-epoch 20 --val-size 1000 --data "$DATA" \
    --out "$TMP/run" 2>"$TMP/train.log" || { cat "$TMP/train.log" >&2; fail "train run failed"; }
  [[ -f "$TMP/run/checkpoint.pt" && -f "$TMP/run/metrics.jsonl" && -f "$TMP/run/config.json" ]] \
    || fail "run folder incomplete: $(ls "$TMP/run")"
  grep -q '"val_acc"' "$TMP/run/metrics.jsonl" || fail "metrics.jsonl lacks val_acc"
  # A second fresh run into the same folder must not replace the checkpoint silently.
  expect_exit 1 "$LOWBIT" train --model cnn --epochs 1 --out "$TMP/run" --data "$DATA"
  grep -q -- "--overwrite" "$TMP/err" || fail "overwrite refusal: $(cat "$TMP/err")"
  "$LOWBIT" eval --checkpoint "$TMP/run" --json --data "$DATA" >"$TMP/eval.json"
  [[ $(wc -l <"$TMP/eval.json") -eq 1 ]] || fail "eval --json printed more than one line"
  grep -q '"accuracy":' "$TMP/eval.json" || fail "eval --json lacks accuracy: $(cat "$TMP/eval.json")"
  grep -q '"count":10000' "$TMP/eval.json" || fail "eval --json count: $(cat "$TMP/eval.json")"
  "$LOWBIT" eval --checkpoint "$TMP/run/checkpoint.pt" --data "$DATA" | grep -q "accuracy" || fail "eval summary"

  # vit-tiny, tiny sizes: train, QAT W4A4, PTQ GPTQ with groups; eval reads every checkpoint.
  VIT=(--layers 1 --width 16 --heads 2 --patch 7)
  "$LOWBIT" train --model vit-tiny "${VIT[@]}" --epochs 1 --max-steps-per-epoch 5 --val-size 500 --data "$DATA" \
    --out "$TMP/vit" 2>"$TMP/vit.log" || { cat "$TMP/vit.log" >&2; fail "vit-tiny train failed"; }
  grep -q '"vit"' "$TMP/vit/config.json" || fail "vit-tiny sizes not in config.json"
  "$LOWBIT" qat --from "$TMP/vit" --wbits 4 --abits 4 --epochs 1 --max-steps-per-epoch 3 --val-size 500 --data "$DATA" \
    --out "$TMP/vitq" 2>"$TMP/vitq.log" || { cat "$TMP/vitq.log" >&2; fail "vit-tiny qat failed"; }
  "$LOWBIT" eval --checkpoint "$TMP/vitq" --json --data "$DATA" | grep -q '"model":"vit-tiny"' || fail "vit-tiny QAT eval"
  "$LOWBIT" ptq --from "$TMP/vit" --method gptq --group-size 16 --calib-batches 1 --calib-batch-size 32 --data "$DATA" \
    --out "$TMP/vitp" >"$TMP/vitp.out" 2>"$TMP/vitp.log" || { cat "$TMP/vitp.log" >&2; fail "vit-tiny ptq failed"; }
  grep -q "test accuracy: FP32" "$TMP/vitp.out" && grep -q "block0_attn_q" "$TMP/vitp.out" || fail "vit-tiny ptq: $(cat "$TMP/vitp.out")"
  "$LOWBIT" eval --checkpoint "$TMP/vitp" --json --data "$DATA" | grep -q '"accuracy":' || fail "vit-tiny PTQ eval"
  # vit-tiny exports: float from the FP32 run, QDQ from the converted QAT model; the QAT
  # checkpoint itself is refused with the two commands to run instead.
  "$LOWBIT" export --from "$TMP/vit" --format onnx-fp32 --out "$TMP/vit_fp32.onnx" | grep -q "float32 ONNX" \
    || fail "vit-tiny onnx-fp32 export"
  [[ -s "$TMP/vit_fp32.onnx" ]] || fail "vit-tiny onnx-fp32 export wrote no file"
  "$LOWBIT" convert --from "$TMP/vitq" --data "$DATA" --check 100 --out "$TMP/vitq.lbq" >"$TMP/vitc.out" \
    || fail "vit-tiny convert: $(cat "$TMP/vitc.out")"
  # Deployment metrics of the encoder: as for the decoder, one image of 16 tokens.
  "$LOWBIT" inspect "$TMP/vitq.lbq" >"$TMP/viti.log" || fail "inspect of an encoder model"
  "$LOWBIT" inspect "$TMP/vitq.lbq" --metrics | grep -q "one image (16 tokens)" || fail "encoder metrics table"
  "$LOWBIT" inspect "$TMP/vitq.lbq" --metrics --json >"$TMP/vitm.json" || fail "inspect --metrics --json of an encoder model"
  "$LOWBIT" inspect --checkpoint "$TMP/vitq" --metrics --json >"$TMP/vitmq.json" || fail "inspect --checkpoint (vit-tiny QAT)"
  "$LOWBIT" inspect --checkpoint "$TMP/vit" --metrics --json >"$TMP/vitmf.json" || fail "inspect --checkpoint (vit-tiny FP32)"
  python3 "$(dirname "${BASH_SOURCE[0]}")/check_transformer_metrics.py" "$TMP/vitm.json" "$TMP/viti.log" "$TMP/vitq.lbq" \
    "$TMP/vitmq.json" "$TMP/vitmf.json" || fail "encoder metrics"
  "$LOWBIT" export --from "$TMP/vitq.lbq" --format onnx --out "$TMP/vitq.onnx" | grep -q "encoder image model, QDQ ONNX" \
    || fail "vit-tiny QDQ export from its .lbq"
  [[ -s "$TMP/vitq.onnx" ]] || fail "vit-tiny QDQ export wrote no file"
  expect_exit 1 "$LOWBIT" export --from "$TMP/vitq" --format onnx --out "$TMP/vitq_bad.onnx"
  grep -q "lowbit convert" "$TMP/err" && [[ ! -e "$TMP/vitq_bad.onnx" ]] || fail "vit-tiny checkpoint QDQ refusal: $(cat "$TMP/err")"
  expect_exit 1 "$LOWBIT" export --from "$TMP/vitq.lbq" --format matmulnbits --out "$TMP/vitq_bad.onnx"
  [[ ! -e "$TMP/vitq_bad.onnx" ]] || fail "a refused vit-tiny export left a file"

  # QAT -> convert -> runtime, briefly.
  expect_exit 2 "$LOWBIT" qat --out "$TMP/q"
  grep -q -- "--from" "$TMP/err" || fail "qat without --from: $(cat "$TMP/err")"
  expect_exit 1 "$LOWBIT" qat --from "$TMP/run" --out "$TMP/q" --weight-format ternary --config /nonexistent.json
  grep -q "nonexistent.json" "$TMP/err" || fail "missing QAT config file not named: $(cat "$TMP/err")"
  "$LOWBIT" qat --from "$TMP/run" --wbits 4 --abits 4 --epochs 1 --max-steps-per-epoch 10 --val-size 1000 \
    --data "$DATA" --out "$TMP/q" 2>"$TMP/qat.log" || { cat "$TMP/qat.log" >&2; fail "qat run failed"; }
  grep -q '"qat"' "$TMP/q/config.json" || fail "QAT config not stored in the run"
  # WinQ: flags recorded in config.json, clear usage errors, resume keeps the settings.
  expect_exit 2 "$LOWBIT" qat --from "$TMP/run" --out "$TMP/w" --winq-keep 1.5
  grep -q -- "--winq-keep" "$TMP/err" || fail "bad --winq-keep not named: $(cat "$TMP/err")"
  expect_exit 2 "$LOWBIT" qat --from "$TMP/run" --out "$TMP/w" --winq-noise-mode loud
  grep -q -- "--winq-noise-mode" "$TMP/err" || fail "bad --winq-noise-mode not named: $(cat "$TMP/err")"
  "$LOWBIT" qat --from "$TMP/run" --weight-format ternary --winq-period 3 --winq-noise 2e-3 --epochs 2 \
    --max-steps-per-epoch 4 --val-size 500 --data "$DATA" --out "$TMP/w" 2>"$TMP/winq.log" \
    || { cat "$TMP/winq.log" >&2; fail "qat --winq run failed"; }
  python3 - "$TMP/w/config.json" <<'PY' || fail "WinQ settings not in config.json: $(cat "$TMP/w/config.json")"
import json, sys
w = json.load(open(sys.argv[1]))["qat"]["winq"]
assert w == {"enabled": True, "period": 3, "keep": 0.2, "noise": 0.002, "noise_mode": "abs"}, w
PY
  expect_exit 2 "$LOWBIT" qat --out "$TMP/w" --resume --winq
  # Hessian analysis of the WinQ run, tiny settings.
  "$LOWBIT" analyze hessian --checkpoint "$TMP/w" --layers 'fc*' --batches 1 --batch-size 16 --probes 2 \
    --lanczos-steps 4 --power-iterations 3 --data "$DATA" --out "$TMP/h" >"$TMP/h.out" 2>"$TMP/h.log" \
    || { cat "$TMP/h.log" >&2; fail "analyze hessian failed"; }
  [[ -s "$TMP/h/density.csv" && -s "$TMP/h/summary.json" && -s "$TMP/h/density.svg" ]] || fail "hessian files: $(ls "$TMP/h")"
  grep -q '"near_zero_fraction"' "$TMP/h/summary.json" || fail "hessian summary lacks near_zero_fraction"
  grep -q 'id="fig-hessian-0"' "$TMP/h/report.html" || fail "analyze hessian wrote no report with its density"
  expect_exit 1 "$LOWBIT" analyze hessian --checkpoint "$TMP/w" --layers 'nope*' --data "$DATA" --out "$TMP/h2"
  grep -q "nope" "$TMP/err" && grep -q "fc1" "$TMP/err" || fail "bad --layers message: $(cat "$TMP/err")"
  # The WinQ study, test-sized.
  "$LOWBIT" study winq --model cnn --from "$TMP/run" --bits 1 --seeds 1 --steps 4 --quick --hessian-probes 1 \
    --hessian-lanczos-steps 3 --val-images 50 --data "$DATA" --out "$TMP/sw" >"$TMP/sw.out" 2>"$TMP/sw.log" \
    || { cat "$TMP/sw.log" >&2; fail "study winq failed"; }
  [[ -s "$TMP/sw/study.json" && -s "$TMP/sw/study.csv" && -s "$TMP/sw/loss_w1.svg" ]] || fail "study winq files: $(ls "$TMP/sw")"
  grep -q "| 1 | winq |" "$TMP/sw.out" || fail "study winq table: $(cat "$TMP/sw.out")"
  grep -q 'id="fig-winq-w1-0"' "$TMP/sw/report.html" || fail "study winq wrote no report with its loss curves"
  expect_exit 2 "$LOWBIT" study winq --from "$TMP/run" --bits 3

  "$LOWBIT" convert --from "$TMP/q" --out "$TMP/q.lbq" --check 100 --data "$DATA" >"$TMP/convert.out" \
    || fail "convert failed"
  grep -q "100/100" "$TMP/convert.out" || fail "convert check: $(cat "$TMP/convert.out")"
  "$LOWBIT" inspect "$TMP/q.lbq" | grep -q "bits/parameter" || fail "inspect lacks bits/parameter"
  "$LOWBIT" run "$TMP/q.lbq" --idx "$DATA/t10k-images-idx3-ubyte.gz" --index 3 | grep -q "image 3: class" \
    || fail "run output"
  "$LOWBIT" bench "$TMP/q.lbq" --batch 1,4 --iterations 3 --json >"$TMP/bench.json"
  grep -q '"ms_median"' "$TMP/bench.json" && grep -q '"items_per_s"' "$TMP/bench.json" || fail "bench --json"
  "$LOWBIT" bench --checkpoint "$TMP/run" --batch 2 --iterations 2 --json >"$TMP/bench_ckpt.json" || fail "bench --checkpoint"
  grep -q '"isa":"libtorch"' "$TMP/bench_ckpt.json" || fail "bench --checkpoint --json names the engine"
  expect_exit 2 "$LOWBIT" bench --batch 1
  "$LOWBIT" eval --model "$TMP/q.lbq" --checkpoint "$TMP/q" --json --data "$DATA" >"$TMP/rt.json"
  grep -q '"simulation_int_logits_equal":10000' "$TMP/rt.json" || fail "runtime != integer simulation: $(cat "$TMP/rt.json")"
  # ONNX export: QDQ from the QAT run, float from the FP32 run; clear one-line refusals.
  "$LOWBIT" export --from "$TMP/q" --format onnx --out "$TMP/q.onnx" | grep -q "QDQ ONNX, opset 21" || fail "export onnx"
  [[ -s "$TMP/q.onnx" ]] || fail "export wrote no file"
  "$LOWBIT" export --from "$TMP/run" --format onnx-fp32 --out "$TMP/fp32.onnx" >/dev/null || fail "export onnx-fp32"
  expect_exit 1 "$LOWBIT" export --from "$TMP/run" --format onnx --out "$TMP/bad.onnx"
  [[ $(wc -l <"$TMP/err") -eq 1 ]] && grep -q "FP32 checkpoint" "$TMP/err" || fail "export of FP32 as QDQ: $(cat "$TMP/err")"
  expect_exit 1 "$LOWBIT" export --from "$TMP/q" --opset 19 --out "$TMP/bad.onnx"
  [[ $(wc -l <"$TMP/err") -eq 1 ]] && grep -q "conv1" "$TMP/err" && grep -q "opset 21" "$TMP/err" \
    || fail "int4 below opset 21: $(cat "$TMP/err")"
  [[ ! -e "$TMP/bad.onnx" ]] || fail "a failed export left a file"
  expect_exit 2 "$LOWBIT" export --from "$TMP/q" --format tflite --out "$TMP/bad.onnx"
  # ONNX Runtime (Node) predicts what the runtime predicts, when scripts/setup.sh installed it.
  SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  if [[ -f "$SRC/third_party/node/node_modules/onnxruntime-node/package.json" ]] && command -v node >/dev/null; then
    node "$SRC/tests/export/ort_run.js" "$TMP/q.onnx" "$DATA/t10k-images-idx3-ubyte.gz" --count 50 \
      --predictions "$TMP/ort.txt" >/dev/null || fail "ort_run.js failed"
    "$LOWBIT" run "$TMP/q.lbq" --idx "$DATA/t10k-images-idx3-ubyte.gz" --count 50 \
      | sed -n 's/^image [0-9]*: class \([0-9]*\).*/\1/p' >"$TMP/lowbit.txt"
    cmp -s "$TMP/ort.txt" "$TMP/lowbit.txt" || fail "ONNX Runtime and lowbit predictions differ on the first 50 images"
  fi
  # Robustness of the integer model, written for the report; --out goes with --shift only.
  "$LOWBIT" eval --model "$TMP/q.lbq" --shift gaussian_noise,rotate --severity 1,3 --limit 100 --data "$DATA" \
    --out "$TMP/robust.json" >"$TMP/robust.out" || fail "eval --shift --out failed"
  grep -q '"analysis": "robustness"' "$TMP/robust.json" && grep -q '"mean_corruption_ece"' "$TMP/robust.json" \
    || fail "eval --shift --out: $(cat "$TMP/robust.json")"
  grep -q "gaussian_noise" "$TMP/robust.out" || fail "eval --shift --out no longer prints the table"
  expect_exit 1 "$LOWBIT" eval --model "$TMP/q.lbq" --data "$DATA" --out "$TMP/plain.json"
  grep -q -- "--shift" "$TMP/err" || fail "eval --out without --shift: $(cat "$TMP/err")"
  # The report of the runs above (run folders, the .lbq, the WinQ study, robustness): one page, each figure.
  "$LOWBIT" report "$TMP/run" "$TMP/q" "$TMP/q.lbq" "$TMP/sw" "$TMP/robust.json" --out "$TMP/report.html" >/dev/null \
    || fail "report failed"
  grep -q "Command and machine" "$TMP/report.html" || fail "report lacks the runs' command and machine"
  for id in fig-loss fig-accuracy deployment fig-winq-w1-0 fig-robustness-mean fig-robustness-rotate; do
    grep -q "id=\"$id\"" "$TMP/report.html" || fail "report lacks $id"
  done
  expect_exit 1 "$LOWBIT" report "$TMP/no-such-run" --out "$TMP/r2.html"
  grep -q "no-such-run' does not exist" "$TMP/err" || fail "report error message: $(cat "$TMP/err")"
  [[ ! -e "$TMP/r2.html" ]] || fail "report wrote a file despite the error"
  # A damaged model file is rejected with a message naming it, exit 1.
  head -c 5000 "$TMP/q.lbq" >"$TMP/cut.lbq"
  expect_exit 1 "$LOWBIT" inspect "$TMP/cut.lbq"
  grep -q "cut.lbq" "$TMP/err" || fail "truncated model message: $(cat "$TMP/err")"
else
  echo "cli_test: $DATA not found, skipping the training run"
fi
echo "cli_test: all checks passed"
