#!/usr/bin/env bash
# Input normalisation (--mean / --std) end to end on small random data (no data set needed):
# stored in the run's config, kept by --resume and qat, refused when contradicted or malformed;
# convert --check (runtime == integer simulation on the normalising model) and eval's
# comparison; `lowbit run` on .npy arrays (NCHW uint8, NHWC float32), a .npz and the old IDX way,
# with a 3-channel normalising model (tests/cli/data/colour_normalised.lbq) and shape errors.
# The fixture (1728 bytes, format version 2) was written once with the runtime's builder API:
# input [3, 6, 5], scale 5/255, zero point 112, mean 0.485,0.456,0.406, std 0.229,0.224,0.225;
# conv 3x3 3->4 pad 1 and linear 120->5 output layer filled by rtest::fill_layer (tests/runtime/
# test_models.h) from std::mt19937(5), int8 weights; `lowbit inspect` describes it.
# Usage: bash tests/cli/normalisation_test.sh path/to/lowbit
set -euo pipefail

LOWBIT="$1"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TMP="${LOWBIT_TEST_TMP:-/tmp}/normalisation_test.$$"
rm -rf "$TMP"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
# fail, expect_exit
source "$HERE/test_lib.sh"

PYTHONPATH="$HERE" python3 - "$TMP" <<'PY' || fail "making the test data"
import struct, sys
from test_arrays import npy, write_brightness_npz
tmp = sys.argv[1]
# Gray 28x28 images whose mean brightness encodes the label (learnable in a few steps).
rng, xte, yte = write_brightness_npz(tmp + "/small.npz", seed=3)
open(tmp + "/test_x.npy", "wb").write(npy("|u1", (32, 28, 28), xte))
# The same test images as an IDX file (uncompressed), for the old `lowbit run --idx`.
open(tmp + "/test-images-idx3-ubyte", "wb").write(struct.pack(">IIII", 0x803, 32, 28, 28) + xte)
# 3-channel 6x5 images for the colour model: NCHW uint8, the same as NHWC float32 pixel / 255.
N, C, H, W = 4, 3, 6, 5
px = [rng.randrange(256) for _ in range(N * C * H * W)]
open(tmp + "/rgb_nchw.npy", "wb").write(npy("|u1", (N, C, H, W), bytes(px)))
nhwc = [px[((n * C + c) * H + h) * W + w] / 255.0 for n in range(N) for h in range(H) for w in range(W) for c in range(C)]
open(tmp + "/rgb_nhwc.npy", "wb").write(npy("<f4", (N, H, W, C), struct.pack("<%df" % len(nhwc), *nhwc)))
open(tmp + "/gray_6x5.npy", "wb").write(npy("|u1", (N, H, W), bytes(px[:N * H * W])))
PY

D="$TMP/small.npz"
QUICK=(--epochs 1 --val-size 16 --batch-size 16)

# Malformed or misfitting flags: exit 1, a message naming the flag and what to do.
expect_exit 1 "$LOWBIT" train --model mlp --data "$D" "${QUICK[@]}" --mean 0.3,0.3,0.3 --std 0.3,0.3,0.3 --out "$TMP/bad"
grep -q -- "--mean has 3 values but the input has 1 channel; give one value per channel or one for all" "$TMP/err" \
  || fail "wrong --mean count: $(cat "$TMP/err")"
expect_exit 1 "$LOWBIT" train --model mlp --data "$D" "${QUICK[@]}" --mean 0.3 --std 0 --out "$TMP/bad"
grep -q -- "--std value 1 is 0.0; standard deviations must be > 0" "$TMP/err" || fail "--std 0: $(cat "$TMP/err")"
expect_exit 1 "$LOWBIT" train --model mlp --data "$D" "${QUICK[@]}" --mean 0.3,x --std 0.3 --out "$TMP/bad"
grep -q -- "--mean '0.3,x': 'x' is not a number" "$TMP/err" || fail "--mean 0.3,x: $(cat "$TMP/err")"
expect_exit 1 "$LOWBIT" train --model mlp --data "$D" "${QUICK[@]}" --mean 0.3 --out "$TMP/bad"
grep -q -- "--mean needs --std" "$TMP/err" || fail "--mean alone: $(cat "$TMP/err")"

# FP32 with normalisation: the run's config keeps it; --resume may repeat it, not change it.
"$LOWBIT" train --model mlp --data "$D" "${QUICK[@]}" --mean 0.35 --std 0.3 --out "$TMP/fp" >"$TMP/train.out" 2>"$TMP/train.log" \
  || { cat "$TMP/train.log" >&2; fail "train --mean --std failed"; }
python3 - "$TMP/fp/config.json" <<'PY' || fail "config.json lacks the normalisation: $(cat "$TMP/fp/config.json")"
import json, sys
d = json.load(open(sys.argv[1]))["data"]
assert abs(d["mean"][0] - 0.35) < 1e-6 and abs(d["std"][0] - 0.3) < 1e-6, d
PY
expect_exit 1 "$LOWBIT" train --out "$TMP/fp" --resume --mean 0.5 --std 0.3
grep -q -- "--resume continues with the run's input normalisation" "$TMP/err" || fail "resume with another --mean: $(cat "$TMP/err")"

# QAT inherits it; convert checks the runtime against the integer simulation on it.
"$LOWBIT" qat --from "$TMP/fp" --wbits 8 --abits 8 --data "$D" "${QUICK[@]}" --out "$TMP/q" >"$TMP/qat.out" 2>"$TMP/qat.log" \
  || { cat "$TMP/qat.log" >&2; fail "qat failed"; }
python3 -c "import json,sys; d=json.load(open(sys.argv[1]))['data']; assert abs(d['mean'][0]-0.35)<1e-6, d" "$TMP/q/config.json" \
  || fail "the QAT run did not keep the normalisation"
expect_exit 1 "$LOWBIT" qat --from "$TMP/fp" --wbits 8 --abits 8 --data "$D" "${QUICK[@]}" --mean 0.1 --std 0.3 --out "$TMP/q2"
grep -q "contradict" "$TMP/err" || fail "qat with another --mean: $(cat "$TMP/err")"
"$LOWBIT" convert --from "$TMP/q" --out "$TMP/m.lbq" --data "$D" --check 32 >"$TMP/convert.out" 2>"$TMP/convert.log" \
  || { cat "$TMP/convert.log" >&2; fail "convert --check failed"; }
grep -q "checked: runtime integer logits equal the integer simulation on 32/32" "$TMP/convert.out" \
  || fail "convert --check: $(cat "$TMP/convert.out")"
expect_exit 1 "$LOWBIT" convert --from "$TMP/q" --out "$TMP/m2.lbq" --mean 0.2 --std 0.3
grep -q "contradict" "$TMP/err" || fail "convert with another --mean: $(cat "$TMP/err")"
"$LOWBIT" eval --model "$TMP/m.lbq" --checkpoint "$TMP/q" --data "$D" --mean 0.35 --std 0.3 --json >"$TMP/eval.json" \
  2>"$TMP/eval.log" || { cat "$TMP/eval.log" >&2; fail "eval of the .lbq failed"; }
python3 - "$TMP/eval.json" <<'PY' || fail "eval: $(cat "$TMP/eval.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["count"] == 32 and j["simulation_int_logits_equal"] == 32, j
PY
expect_exit 1 "$LOWBIT" eval --model "$TMP/m.lbq" --data "$D" --mean 0.5 --std 0.3
grep -q "contradict the input normalisation stored in" "$TMP/err" || fail "eval .lbq with another --mean: $(cat "$TMP/err")"

# lowbit run: the old IDX way, a .npy of images alone and a .npz give the same logits.
"$LOWBIT" run "$TMP/m.lbq" --idx "$TMP/test-images-idx3-ubyte" --index 3 --count 2 >"$TMP/run_idx.out" || fail "run --idx"
"$LOWBIT" run "$TMP/m.lbq" --data "$TMP/test_x.npy" --index 3 --count 2 >"$TMP/run_npy.out" || fail "run --data .npy"
"$LOWBIT" run "$TMP/m.lbq" --data "$D" --index 3 --count 2 >"$TMP/run_npz.out" || fail "run --data .npz"
grep -q "integer logits" "$TMP/run_idx.out" || fail "run --idx printed: $(cat "$TMP/run_idx.out")"
cmp -s "$TMP/run_idx.out" "$TMP/run_npy.out" || fail "run --idx and --data .npy differ"
cmp -s "$TMP/run_idx.out" "$TMP/run_npz.out" || fail "run --idx and --data .npz differ"

# A 3-channel normalising model: NCHW uint8 and NHWC float32 arrays of the same pixels agree.
RGB="$HERE/data/colour_normalised.lbq"
"$LOWBIT" run "$RGB" --data "$TMP/rgb_nchw.npy" --count 4 >"$TMP/rgb1.out" || fail "run on NCHW uint8"
"$LOWBIT" run "$RGB" --data "$TMP/rgb_nhwc.npy" --count 4 >"$TMP/rgb2.out" || fail "run on NHWC float32"
[[ $(grep -c "integer logits" "$TMP/rgb1.out") == 4 ]] || fail "run on 4 colour images printed: $(cat "$TMP/rgb1.out")"
cmp -s "$TMP/rgb1.out" "$TMP/rgb2.out" || fail "NCHW uint8 and NHWC float32 give different results"
expect_exit 1 "$LOWBIT" run "$RGB" --data "$TMP/gray_6x5.npy"
grep -q "gray_6x5.npy' holds images of shape \[4, 1, 6, 5\] (N, C, H, W); the model '.*' expects \[N, 3, 6, 5\]" "$TMP/err" \
  || fail "gray images for a colour model: $(cat "$TMP/err")"
expect_exit 1 "$LOWBIT" run "$RGB" --data "$TMP/rgb_nchw.npy" --idx "$TMP/test-images-idx3-ubyte"
grep -q "one of the two" "$TMP/err" || fail "--idx and --data together: $(cat "$TMP/err")"
echo "normalisation_test: OK"
