#!/usr/bin/env bash
# Data-parallel training on loopback (docs/distributed.md):
#  - equivalence: `lowbit launch --nproc 2 -- lowbit train|qat ...` reproduces the 1-process run
#    with the same global batch and seed: every parameter, scale and buffer within TOL_FP32 /
#    TOL_QAT (relative to the tensor's largest magnitude, at least 1), the same metrics.jsonl
#    lines, progress printed by rank 0 only;
#  - resume: a run resumed in 2 processes equals the same run resumed in 1;
#  - lm: gpt-tiny (FP32 train, then QAT W4 g16 with WinQ) in 2 processes equals 1 process, within
#    TOL_LM, metrics.jsonl lines too; a QAT+WinQ run of 1 process resumed in 2 equals it resumed in 1
#    (no Fashion-MNIST needed);
#  - syncbn: live batch norm (resnet8 train, and QAT before --bn-freeze-step) in 2 processes equals
#    1 process with SyncBN (the default), and does not with --no-sync-bn (per-shard statistics);
#  - faults:
#  - a rank killed with SIGKILL ends the job with an error naming it, within a bounded time;
#  - rank 0 alone (its peer never comes) fails after LOWBIT_DIST_TIMEOUT instead of hanging;
#  - a port in use and an unresolvable MASTER_ADDR give errors naming what to check.
# Usage: bash tests/cli/distributed_test.sh path/to/lowbit path/to/compare_checkpoints [equivalence|resume|lm|faults|syncbn]
set -euo pipefail

LOWBIT="$1"
COMPARE="$2"
MODE="${3:-equivalence}"  # equivalence | resume | lm | faults | syncbn
TOL_FP32=1e-6
TOL_QAT=1e-5
TMP="${LOWBIT_TEST_TMP:-/tmp}/distributed_test.$$"
rm -rf "$TMP"
mkdir -p "$TMP"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

unset RANK WORLD_SIZE LOCAL_RANK MASTER_ADDR MASTER_PORT LOWBIT_THREADS
export LOWBIT_DIST_TIMEOUT=20

if [[ "$MODE" == lm ]]; then
  # OpenBLAS's pool at two threads, as before lowbit sized it to --threads (train/compute_threads.h):
  # with a one-thread OpenBLAS the 1- and 2-process W4 g16 WinQ runs below end up to 0.02 apart in
  # one weight after 4 steps (2026-12-03; with two threads within 1e-6). The cause is not isolated;
  # the suspect is the batch sum's rounding in the weight-gradient GEMMs, which AdamW's normalisation
  # and quantizer code flips amplify. Open in issue 15.
  export OPENBLAS_NUM_THREADS=2
  # gpt-tiny on a small generated text (the sizes of tests/cli/cli_test.sh), global batch 8 =
  # 2 x 4 windows. Every rank draws the same 8 windows and keeps its 4 rows; the summed weighted
  # gradients are the 8-window mean's. Only float summation order differs, and AdamW (the
  # default optimizer) normalises each gradient element, so its relative noise becomes an
  # absolute one of about lr x that noise per step: TOL_LM (see docs/distributed.md for the
  # measured differences).
  TOL_LM=1e-5
  for i in $(seq 1 200); do echo "line $i: the quick brown fox jumps over the lazy dog."; done >"$TMP/text.txt"
  LM=(--model gpt-tiny --text "$TMP/text.txt" --layers 2 --width 32 --heads 4 --context 32 --batch-size 8 --seed 5
      --eval-windows 16)
  # metrics.jsonl: the same lines, every number within $3 (relative, at least 1) except timings.
  # FP32 runs: TOL_LM. QAT: the validation loss of the fake-quantized model moves by a whole
  # quantization step of any weight that float noise puts on the other side of a rounding
  # boundary, so TOL_LM_QAT_METRICS (measured in docs/distributed.md).
  TOL_LM_QAT_METRICS=5e-4
  same_metrics() {
    python3 - "$1/metrics.jsonl" "$2/metrics.jsonl" "$3" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
tol = float(sys.argv[3])
assert len(a) == len(b), f"{len(a)} vs {len(b)} lines"
skip = {"seconds", "bytes_per_s", "cpu_seconds", "allreduce_bytes_per_step"}
worst, where = 0.0, ""
for x, y in zip(a, b):
    assert set(x) - skip == set(y) - skip, (sorted(x), sorted(y))
    for k in set(x) - skip:
        d = abs(x[k] - y[k]) / max(1.0, abs(x[k]))
        assert d <= tol, f"step {x['step']} {k}: {x[k]} vs {y[k]}"
        if d > worst: worst, where = d, f"step {x['step']} {k}"
print(f"metrics.jsonl: {len(a)} lines, largest relative difference {worst:.3g} ({where})")
PY
  }
  pair() {  # pair NAME METRICS_TOL ARGS...: 1 process and 2 at the same time, into NAME1 and NAME2
    local name=$1 mtol=$2
    shift 2
    "$LOWBIT" "$@" --threads 1 --out "$TMP/${name}1" 2>"$TMP/${name}1.log" &
    local p1=$!
    timeout 120 "$LOWBIT" launch --nproc 2 --threads 1 -- lowbit "$@" --out "$TMP/${name}2" 2>"$TMP/${name}2.log" \
      || { cat "$TMP/${name}2.log" >&2; fail "2-process $name"; }
    wait "$p1" || { cat "$TMP/${name}1.log" >&2; fail "1-process $name"; }
    "$COMPARE" "$TMP/${name}1" "$TMP/${name}2" "$TOL_LM" || fail "$name: 2 processes differ from 1 by more than $TOL_LM"
    same_metrics "$TMP/${name}1" "$TMP/${name}2" "$mtol" || fail "$name: metrics.jsonl differ"
  }
  pair lf "$TOL_LM" train "${LM[@]}" --steps 6 --eval-interval 3
  [[ $(grep -c "step 6/6: train loss" "$TMP/lf2.log") == 1 ]] || fail "summary not printed once (rank 0 only): $(cat "$TMP/lf2.log")"
  grep -q '"allreduce_bytes_per_step":[1-9]' "$TMP/lf2/metrics.jsonl" || fail "no allreduce_bytes_per_step: $(cat "$TMP/lf2/metrics.jsonl")"
  ! grep -q allreduce_bytes_per_step "$TMP/lf1/metrics.jsonl" || fail "a 1-process run reports all-reduce traffic"
  # QAT W4 with groups of 16 (per-token dynamic activations: nothing observed) and WinQ: resets
  # after steps 2 and 4, weight noise seeded from (seed, step, layer) alike on every rank.
  QAT=(qat --from "$TMP/lf1" --wbits 4 --group-size 16 --winq --winq-period 2 --seed 5 --eval-windows 16)
  pair lq "$TOL_LM_QAT_METRICS" "${QAT[@]}" --steps 4 --eval-interval 2
  grep -q '"winq"' "$TMP/lq2/config.json" || fail "WinQ not in the config: $(cat "$TMP/lq2/config.json")"
  # The comparison sees a rank whose noise differs: rank 1 with twice the sigma (same seeds) must
  # not match the 1-process run (measured: 2e-2 apart; the parameters of the ranks still agree,
  # the all-reduce makes them take the same step, so only this comparison can tell).
  PORT=$((20000 + RANDOM % 20000))
  RANKS=()
  for r in 0 1; do
    noise=0.001; [[ $r == 1 ]] && noise=0.002
    WORLD_SIZE=2 RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$PORT LOWBIT_THREADS=1 "$LOWBIT" "${QAT[@]}" --winq-noise $noise \
      --steps 4 --eval-interval 2 --out "$TMP/ln" >/dev/null 2>"$TMP/ln$r.log" &
    RANKS+=("$!")
    PIDS+=("$!")
  done
  for p in "${RANKS[@]}"; do wait "$p" || fail "ranks with different noise: $(cat "$TMP/ln0.log" "$TMP/ln1.log")"; done
  ! "$COMPARE" "$TMP/lq1" "$TMP/ln" "$TOL_LM" >/dev/null 2>&1 || fail "a rank with other WinQ noise went unnoticed"
  # Resume with another world size: the 1-process QAT run continued to step 6 in 2 processes and in 1.
  cp -r "$TMP/lq1" "$TMP/lr1"
  cp -r "$TMP/lq1" "$TMP/lr2"
  "$LOWBIT" qat --out "$TMP/lr1" --resume --steps 6 --threads 1 2>"$TMP/lr1.log" &
  P1=$!
  timeout 120 "$LOWBIT" launch --nproc 2 --threads 1 -- lowbit qat --out "$TMP/lr2" --resume --steps 6 2>"$TMP/lr2.log" \
    || { cat "$TMP/lr2.log" >&2; fail "2-process resume"; }
  wait "$P1" || { cat "$TMP/lr1.log" >&2; fail "1-process resume"; }
  "$COMPARE" "$TMP/lr1" "$TMP/lr2" "$TOL_LM" || fail "resumed in 2 processes differs from resumed in 1 by more than $TOL_LM"
  same_metrics "$TMP/lr1" "$TMP/lr2" "$TOL_LM_QAT_METRICS" || fail "resume: metrics.jsonl differ"
  [[ $(wc -l <"$TMP/lr2/metrics.jsonl") == 3 ]] || fail "resumed metrics.jsonl: $(cat "$TMP/lr2/metrics.jsonl")"
  echo "distributed_test lm: OK"
  exit 0
fi

DATA="${LOWBIT_DATA:-/usr/share/datasets/fashion-mnist}"
if [[ ! -f "$DATA/train-images-idx3-ubyte.gz" && ! -f "$DATA/train-images-idx3-ubyte" ]]; then
  echo "distributed_test: $DATA not found, skipping"
  exit 0
fi

QAT_OPTS=(--wbits 4 --abits 4 --batch-size 32 --val-size 0 --seed 2 --optimizer sgd --lr 0.05 --data "$DATA")
SHORT=(--epochs 2 --max-steps-per-epoch 4)

if [[ "$MODE" == equivalence ]]; then
  # FP32 mlp, 1 process and 2 (at the same time), same global batch 32 and seed: only float
  # summation order differs, so the parameters agree to TOL_FP32.
  TRAIN=(train --model mlp --batch-size 32 --val-size 0 --seed 3 --optimizer sgd --lr 0.05 "${SHORT[@]}" --data "$DATA")
  "$LOWBIT" "${TRAIN[@]}" --threads 1 --out "$TMP/f1" 2>"$TMP/f1.log" &
  P1=$!
  timeout 120 "$LOWBIT" launch --nproc 2 --threads 1 -- lowbit "${TRAIN[@]}" --out "$TMP/f2" 2>"$TMP/f2.log" \
    || { cat "$TMP/f2.log" >&2; fail "2-process train"; }
  wait "$P1" || { cat "$TMP/f1.log" >&2; fail "1-process train"; }
  "$COMPARE" "$TMP/f1" "$TMP/f2" "$TOL_FP32" || fail "train: 2 processes differ from 1 process by more than $TOL_FP32"
  [[ $(grep -c "epoch 1/2 done" "$TMP/f2.log") == 1 ]] || fail "epoch summary not printed once (rank 0 only): $(cat "$TMP/f2.log")"
  [[ $(wc -l <"$TMP/f1/metrics.jsonl") == $(wc -l <"$TMP/f2/metrics.jsonl") ]] || fail "metrics.jsonl line counts differ"
  # The epoch's training loss covers both shards, so it is the 1-process figure.
  l1=$(grep -o '"train_loss":[^,]*' "$TMP/f1/metrics.jsonl" | head -1 | cut -d: -f2)
  l2=$(grep -o '"train_loss":[^,]*' "$TMP/f2/metrics.jsonl" | head -1 | cut -d: -f2)
  awk -v a="$l1" -v b="$l2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 1e-6) }' || fail "train_loss $l1 vs $l2"
  # All-reduce traffic per step is the parameter count: mlp has 235,146 float32 parameters in 6
  # tensors, so 4 x 235,146 bytes of gradients plus a 6-float presence mask = 940,608 bytes.
  b2=$(grep -o '"allreduce_bytes_per_step":[0-9]*' "$TMP/f2/metrics.jsonl" | head -1 | cut -d: -f2)
  [[ "$b2" == 940608 ]] || fail "allreduce_bytes_per_step '$b2', expected 940608: $(head -1 "$TMP/f2/metrics.jsonl")"
  ! grep -q allreduce_bytes_per_step "$TMP/f1/metrics.jsonl" || fail "a 1-process run reports all-reduce traffic"

  # QAT W4A4 (learned LSQ weight scales, observed activation ranges) from that checkpoint.
  # Two steps (one per epoch): fake quantization rounds, so a value within float noise of a
  # rounding boundary lands one quantization step apart, and over more steps such flips grow the
  # difference (docs/distributed.md: about 2e-3 after 8 steps); two steps stay within TOL_QAT.
  QSHORT=(--epochs 2 --max-steps-per-epoch 1)
  "$LOWBIT" qat --from "$TMP/f1" "${QAT_OPTS[@]}" "${QSHORT[@]}" --threads 1 --out "$TMP/q1" 2>"$TMP/q1.log" &
  P1=$!
  timeout 120 "$LOWBIT" launch --nproc 2 --threads 1 -- lowbit qat --from "$TMP/f1" "${QAT_OPTS[@]}" "${QSHORT[@]}" \
    --out "$TMP/q2" 2>"$TMP/q2.log" || { cat "$TMP/q2.log" >&2; fail "2-process qat"; }
  wait "$P1" || { cat "$TMP/q1.log" >&2; fail "1-process qat"; }
  "$COMPARE" "$TMP/q1" "$TMP/q2" "$TOL_QAT" || fail "qat: 2 processes differ from 1 process by more than $TOL_QAT"
  # The converted integer models agree: the same class on at least 998 of the first 1000 test
  # images (a weight within float noise of a rounding boundary may take the neighbouring code).
  for q in q1 q2; do
    "$LOWBIT" convert --checkpoint "$TMP/$q" --out "$TMP/$q.lbq" >/dev/null 2>"$TMP/$q.conv.log" \
      || { cat "$TMP/$q.conv.log" >&2; fail "convert $q"; }
    IDX="$DATA/t10k-images-idx3-ubyte.gz"; [[ -f "$IDX" ]] || IDX="$DATA/t10k-images-idx3-ubyte"
    "$LOWBIT" run "$TMP/$q.lbq" --idx "$IDX" --count 1000 | sed -n 's/^image [0-9]*: class \([0-9]*\).*/\1/p' >"$TMP/$q.classes"
  done
  [[ $(wc -l <"$TMP/q1.classes") == 1000 ]] || fail "lowbit run printed $(wc -l <"$TMP/q1.classes") classes, expected 1000"
  same=$(paste -d' ' "$TMP/q1.classes" "$TMP/q2.classes" | awk '$1 == $2' | wc -l)
  (( same >= 998 )) || fail "converted 1- and 2-process models agree on $same of 1000 images (expected >= 998)"
  echo "converted integer models: same class on $same of 1000 test images"
  echo "distributed_test equivalence: OK"
  exit 0
fi

if [[ "$MODE" == syncbn ]]; then
  # resnet8 (7 batch norms, live in FP32 training), global batch 16 = 2 x 8, 3 SGD steps. With
  # SyncBN every rank normalises with the 16-image statistics, so forward, gradients and running
  # averages are the 1-process run's up to float summation order (the sums of the statistics are
  # float64 on both sides; measured in docs/distributed.md): TOL_SYNCBN. Per-shard statistics
  # (--no-sync-bn) normalise with 8 images and must be much further away than that.
  TOL_SYNCBN=1e-5
  TRAIN=(train --model resnet8 --batch-size 16 --val-size 0 --seed 4 --optimizer sgd --lr 0.05 --epochs 1
         --max-steps-per-epoch 3 --data "$DATA")
  run_pair() {  # run_pair NAME ARGS...: 1 process into NAME1, 2 processes into NAME2
    local name=$1
    shift
    "$LOWBIT" "$@" --threads 1 --out "$TMP/${name}1" 2>"$TMP/${name}1.log" &
    local p1=$!
    timeout 120 "$LOWBIT" launch --nproc 2 --threads 1 -- lowbit "$@" --out "$TMP/${name}2" 2>"$TMP/${name}2.log" \
      || { cat "$TMP/${name}2.log" >&2; fail "2-process $name"; }
    wait "$p1" || { cat "$TMP/${name}1.log" >&2; fail "1-process $name"; }
  }
  run_pair s "${TRAIN[@]}"
  "$COMPARE" "$TMP/s1" "$TMP/s2" "$TOL_SYNCBN" || fail "train with SyncBN: 2 processes differ from 1 by more than $TOL_SYNCBN"
  grep -q '"sync_bn": true' "$TMP/s2/config.json" || fail "sync_bn not recorded: $(cat "$TMP/s2/config.json")"
  # The gradient sum after backward (LOWBIT_GRAD_ALLREDUCE=after) instead of overlapped with it:
  # with two ranks every element is the same a + b, so the runs are equal bit for bit.
  LOWBIT_GRAD_ALLREDUCE=after timeout 120 "$LOWBIT" launch --nproc 2 --threads 1 -- lowbit "${TRAIN[@]}" --out "$TMP/a2" \
    2>"$TMP/a2.log" || { cat "$TMP/a2.log" >&2; fail "2-process, all-reduce after backward"; }
  "$COMPARE" "$TMP/s2" "$TMP/a2" 0 || fail "overlapped and after-backward all-reduce differ"
  timeout 120 "$LOWBIT" launch --nproc 2 --threads 1 -- lowbit "${TRAIN[@]}" --no-sync-bn --out "$TMP/n2" 2>"$TMP/n2.log" \
    || { cat "$TMP/n2.log" >&2; fail "2-process --no-sync-bn"; }
  grep -q '"sync_bn": false' "$TMP/n2/config.json" || fail "--no-sync-bn not recorded: $(cat "$TMP/n2/config.json")"
  echo "per-shard batch norm against 1 process (must exceed $TOL_SYNCBN):"
  ! "$COMPARE" "$TMP/s1" "$TMP/n2" "$TOL_SYNCBN" || fail "per-shard batch norm matched 1 process: the comparison cannot tell"
  # QAT with live batch norm (--bn-freeze-step -1: never frozen): the approximate folding's batch
  # statistics are the global batch's too. Two steps, as in the equivalence mode (TOL_QAT).
  QAT=(qat --from "$TMP/s1" --wbits 4 --abits 4 --batch-size 16 --val-size 0 --seed 2 --optimizer sgd --lr 0.05
       --bn-freeze-step -1 --epochs 1 --max-steps-per-epoch 2 --data "$DATA")
  run_pair q "${QAT[@]}"
  "$COMPARE" "$TMP/q1" "$TMP/q2" "$TOL_QAT" || fail "qat with live SyncBN: 2 processes differ from 1 by more than $TOL_QAT"
  timeout 120 "$LOWBIT" launch --nproc 2 --threads 1 -- lowbit "${QAT[@]}" --no-sync-bn --out "$TMP/qn2" 2>"$TMP/qn2.log" \
    || { cat "$TMP/qn2.log" >&2; fail "2-process qat --no-sync-bn"; }
  echo "qat, per-shard batch norm against 1 process (must exceed $TOL_QAT):"
  ! "$COMPARE" "$TMP/q1" "$TMP/qn2" "$TOL_QAT" || fail "qat per-shard batch norm matched 1 process"
  echo "distributed_test syncbn: OK"
  exit 0
fi

if [[ "$MODE" == resume ]]; then
  # --resume with another world size: 1 epoch in 1 process, then the second epoch resumed in 2
  # processes, against the same resume in 1 process (the data order depends only on seed and step).
  TRAIN=(--model mlp --batch-size 32 --val-size 0 --seed 3 --optimizer sgd --lr 0.05 --max-steps-per-epoch 4 --threads 1 --data "$DATA")
  "$LOWBIT" train "${TRAIN[@]}" --epochs 1 --out "$TMP/r1" 2>"$TMP/r1.log" || { cat "$TMP/r1.log" >&2; fail "train"; }
  cp -r "$TMP/r1" "$TMP/r2"
  "$LOWBIT" train --out "$TMP/r1" --resume --epochs 2 2>"$TMP/r1.log" &
  P1=$!
  timeout 120 "$LOWBIT" launch --nproc 2 --threads 1 -- lowbit train --out "$TMP/r2" --resume --epochs 2 2>"$TMP/r2.log" \
    || { cat "$TMP/r2.log" >&2; fail "2-process resume"; }
  wait "$P1" || { cat "$TMP/r1.log" >&2; fail "1-process resume"; }
  "$COMPARE" "$TMP/r1" "$TMP/r2" "$TOL_FP32" || fail "resumed in 2 processes differs from resumed in 1 by more than $TOL_FP32"
  [[ $(wc -l <"$TMP/r1/metrics.jsonl") == $(wc -l <"$TMP/r2/metrics.jsonl") ]] || fail "metrics.jsonl line counts differ"
  echo "distributed_test resume: OK"
  exit 0
fi

# Faults. A source checkpoint for QAT runs.
"$LOWBIT" train --model mlp --epochs 1 --max-steps-per-epoch 2 --batch-size 32 --val-size 0 --threads 1 \
  --data "$DATA" --out "$TMP/fp32" >/dev/null 2>"$TMP/fp32.log" || { cat "$TMP/fp32.log" >&2; fail "fp32 train"; }
QAT=(qat --from "$TMP/fp32" "${QAT_OPTS[@]}")

# A rank killed with SIGKILL mid-training: the launcher reports it and stops the job.
"$LOWBIT" launch --nproc 2 --threads 1 -- lowbit "${QAT[@]}" --epochs 50 --out "$TMP/qk" \
  >/dev/null 2>"$TMP/qk.log" &
LAUNCHER=$!
PIDS+=("$LAUNCHER")
victim=""
for _ in $(seq 1 600); do  # up to 60 s for rank 1 to reach training (its first all-reduce)
  for c in $(pgrep -P "$LAUNCHER" || true); do
    if tr '\0' '\n' <"/proc/$c/environ" 2>/dev/null | grep -qx "RANK=1"; then victim=$c; fi
  done
  [[ -n "$victim" ]] && grep -q "epoch 1/1" "$TMP/qk.log" 2>/dev/null && break
  [[ -n "$victim" && -d "$TMP/qk" ]] && break
  sleep 0.1
done
[[ -n "$victim" ]] || { cat "$TMP/qk.log" >&2; fail "no rank 1 process found"; }
sleep 2
kill -9 "$victim"
rc=0
timeout 60 tail --pid="$LAUNCHER" -f /dev/null || fail "the job did not end within 60 s after rank 1 was killed"
wait "$LAUNCHER" || rc=$?
[[ $rc != 0 ]] || fail "the job exited 0 after a rank was killed"
grep -q "rank 1 was killed by signal 9" "$TMP/qk.log" || fail "launcher message does not name rank 1: $(cat "$TMP/qk.log")"
[[ ! -e "$TMP/qk/checkpoint.pt.tmp" ]] || fail "a partial checkpoint was left behind"
echo "killed rank: job ended with exit $rc"

# Rank 0 whose peer never comes: an error after the timeout, not a hang.
PORT=$((20000 + RANDOM % 20000))
rc=0
WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$PORT LOWBIT_DIST_TIMEOUT=3 timeout 60 \
  "$LOWBIT" "${QAT[@]}" "${SHORT[@]}" --out "$TMP/alone" >/dev/null 2>"$TMP/alone.log" || rc=$?
[[ $rc == 1 ]] || fail "rank 0 alone exited $rc (124: it hung): $(cat "$TMP/alone.log")"
grep -q "LOWBIT_DIST_TIMEOUT" "$TMP/alone.log" || fail "timeout message: $(cat "$TMP/alone.log")"

# A port in use: a waiting rank 0 holds it, a second rank 0 on it must say so.
WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$PORT LOWBIT_DIST_TIMEOUT=30 \
  "$LOWBIT" "${QAT[@]}" "${SHORT[@]}" --out "$TMP/holder" >/dev/null 2>&1 &
PIDS+=("$!")
sleep 2
rc=0
WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$PORT LOWBIT_DIST_TIMEOUT=3 timeout 60 \
  "$LOWBIT" "${QAT[@]}" "${SHORT[@]}" --out "$TMP/second" >/dev/null 2>"$TMP/inuse.log" || rc=$?
[[ $rc == 1 ]] || fail "second rank 0 on a used port exited $rc: $(cat "$TMP/inuse.log")"
grep -q "MASTER_PORT" "$TMP/inuse.log" || fail "port-in-use message: $(cat "$TMP/inuse.log")"

# An address that does not resolve.
rc=0
WORLD_SIZE=2 RANK=1 MASTER_ADDR=no-such-host.invalid MASTER_PORT=$PORT LOWBIT_DIST_TIMEOUT=3 timeout 60 \
  "$LOWBIT" "${QAT[@]}" "${SHORT[@]}" --out "$TMP/badaddr" >/dev/null 2>"$TMP/badaddr.log" || rc=$?
[[ $rc == 1 ]] || fail "bad MASTER_ADDR exited $rc: $(cat "$TMP/badaddr.log")"
grep -q "MASTER_ADDR" "$TMP/badaddr.log" || fail "bad address message: $(cat "$TMP/badaddr.log")"
echo "distributed_test: OK"
