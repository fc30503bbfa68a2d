#!/usr/bin/env bash
# --data end to end: a .npz (numpy's layout: deflated zip64 members, Keras array names) and a PNG
# image folder, both cut from Fashion-MNIST by Python's standard library (no numpy needed), through
# `lowbit train`, `eval`, `ptq --calib-samples` and `qat --augment-*`; and bad inputs, which must
# fail with exit code 1 and a message naming the file and the problem.
# Usage: bash tests/cli/datasets_test.sh path/to/lowbit   (exit 77: dataset not installed)
set -euo pipefail

LOWBIT="$1"
TMP="${LOWBIT_TEST_TMP:-/tmp}/datasets_test.$$"
rm -rf "$TMP"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
# fail, expect_exit
source "$(dirname "${BASH_SOURCE[0]}")/test_lib.sh"

DATA="${LOWBIT_DATA:-/usr/share/datasets/fashion-mnist}"
[[ -f "$DATA/train-images-idx3-ubyte.gz" ]] || { echo "SKIP: Fashion-MNIST not in $DATA"; exit 77; }

PYTHONPATH="$(dirname "${BASH_SOURCE[0]}")" python3 - "$DATA" "$TMP" <<'PY' || fail "making the test data sets"
import gzip, os, struct, sys, zipfile, zlib
from test_arrays import npy

data, tmp = sys.argv[1], sys.argv[2]
def idx(name, header, count, item):
    with gzip.open(os.path.join(data, name)) as f:
        f.read(header)
        return f.read(count * item)
def npz(path, arrays):
    # As numpy.savez_compressed writes: deflated members opened with force_zip64.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, blob in arrays.items():
            with z.open(name + ".npy", "w", force_zip64=True) as f:
                f.write(blob)

ntrain, ntest = 256, 128
xtr = idx("train-images-idx3-ubyte.gz", 16, ntrain, 784)
ytr = idx("train-labels-idx1-ubyte.gz", 8, ntrain, 1)
xte = idx("t10k-images-idx3-ubyte.gz", 16, ntest, 784)
yte = idx("t10k-labels-idx1-ubyte.gz", 8, ntest, 1)
npz(os.path.join(tmp, "fm.npz"), {
    "x_train": npy("|u1", (ntrain, 28, 28), xtr), "y_train": npy("|u1", (ntrain,), ytr),
    "x_test": npy("|u1", (ntest, 28, 28), xte),
    "y_test": npy("<i8", (ntest,), b"".join(struct.pack("<q", b) for b in yte))})

# An image folder: gray PNGs written with zlib, class folders named after Fashion-MNIST's classes
# (so their sorted order is not the label order).
names = ["t_shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
def png(path, pixels, w, h):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + pixels[r * w:(r + 1) * w] for r in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
for split, x, y, n in (("train", xtr, ytr, ntrain), ("test", xte, yte, ntest)):
    for c in names:
        os.makedirs(os.path.join(tmp, "images", split, c), exist_ok=True)
    for i in range(n):
        png(os.path.join(tmp, "images", split, names[y[i]], "%04d.png" % i), x[i * 784:(i + 1) * 784], 28, 28)

# Bad inputs: colour 32x32 images (the zoo models take [1, 28, 28]), a Fortran-ordered array.
npz(os.path.join(tmp, "rgb.npz"), {
    "x_train": npy("|u1", (8, 32, 32, 3), bytes(8 * 32 * 32 * 3)), "y_train": npy("|u1", (8,), bytes(8)),
    "x_test": npy("|u1", (4, 32, 32, 3), bytes(4 * 32 * 32 * 3)), "y_test": npy("|u1", (4,), bytes(4))})
os.makedirs(os.path.join(tmp, "fortran"))
for split, n in (("train", 8), ("test", 4)):
    x = npy("|u1", (n, 28, 28), bytes(n * 784)).replace(b"'fortran_order': False", b"'fortran_order': True ")
    open(os.path.join(tmp, "fortran", split + "_x.npy"), "wb").write(x)
    open(os.path.join(tmp, "fortran", split + "_y.npy"), "wb").write(npy("|u1", (n,), bytes(n)))
open(os.path.join(tmp, "notes.npz"), "w").write("not a zip archive\n")
PY

# .npz: train, evaluate (test split: 128 images), quantize with a calibration subset by count.
"$LOWBIT" train --model mlp --data "$TMP/fm.npz" --epochs 1 --batch-size 16 --val-size 32 --out "$TMP/npz" \
  2>"$TMP/train.log" || { cat "$TMP/train.log" >&2; fail "train on the .npz failed"; }
"$LOWBIT" eval --checkpoint "$TMP/npz" --data "$TMP/fm.npz" --json >"$TMP/eval.json" \
  || fail "eval on the .npz failed"
python3 - "$TMP/eval.json" <<'PY' || fail "eval on the .npz: $(cat "$TMP/eval.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["count"] == 128, j
assert j["accuracy"] > 0.15, j  # 1 epoch of 224 images: well above chance (0.10)
PY
"$LOWBIT" ptq --from "$TMP/npz" --out "$TMP/ptq" --data "$TMP/fm.npz" --calib-samples 100 --calib-batch-size 32 \
  >"$TMP/ptq.out" 2>"$TMP/ptq.log" || { cat "$TMP/ptq.log" >&2; fail "ptq on the .npz failed"; }
python3 - "$TMP/ptq/ptq.json" <<'PY' || fail "ptq.json: calibration subset"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["calib_samples"] == 100 and j["calib_batches"] == 4, (j["calib_samples"], j["calib_batches"])
PY
expect_exit 1 "$LOWBIT" ptq --from "$TMP/npz" --out "$TMP/ptq2" --data "$TMP/fm.npz" --calib-samples 1000
grep -q "has 256 images" "$TMP/err" || fail "too many calibration samples: $(cat "$TMP/err")"

# Image folder: classes in sorted folder-name order, written into the run's config; augmentation
# recorded there too (QAT from the .npz run).
"$LOWBIT" train --model mlp --data "$TMP/images" --epochs 1 --batch-size 16 --val-size 32 --out "$TMP/img" \
  --augment-crop 2 --augment-flip 2>"$TMP/train2.log" || { cat "$TMP/train2.log" >&2; fail "train on the image folder failed"; }
python3 - "$TMP/img/config.json" <<'PY' || fail "config.json of the image-folder run"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["data"]["classes"] == sorted(j["data"]["classes"]) and len(j["data"]["classes"]) == 10, j["data"]
assert j["data"]["classes"][0] == "ankle_boot", j["data"]
assert j["augment"] == {"crop_pad": 2, "flip": True}, j["augment"]
PY
"$LOWBIT" eval --checkpoint "$TMP/img" --data "$TMP/images" --json >"$TMP/eval2.json" || fail "eval on the image folder failed"
grep -q '"count":128' "$TMP/eval2.json" || fail "image-folder eval count: $(cat "$TMP/eval2.json")"
expect_exit 1 "$LOWBIT" train --model mlp --data "$TMP/images" --out "$TMP/img" --resume --augment-crop 4
grep -q "augmentation" "$TMP/err" || fail "resume with other augmentation: $(cat "$TMP/err")"
"$LOWBIT" qat --from "$TMP/npz" --out "$TMP/qat" --data "$TMP/fm.npz" --wbits 4 --abits 8 --epochs 1 --batch-size 32 \
  --val-size 32 --augment-flip 2>"$TMP/qat.log" || { cat "$TMP/qat.log" >&2; fail "qat with --augment-flip failed"; }
grep -q '"flip": true' "$TMP/qat/config.json" || fail "qat config lacks the augment section"
# --layout on the commands that read a run's data without training (convert, analyze, search,
# study): checked by CLI11 and passed on; without it they use the run's own layout.
"$LOWBIT" convert --from "$TMP/qat" --out "$TMP/qat.lbq" --data "$TMP/fm.npz" --layout nchw --check 64 \
  >"$TMP/convert.out" 2>"$TMP/convert.log" || { cat "$TMP/convert.log" >&2; fail "convert --data --layout failed"; }
grep -q "64/64" "$TMP/convert.out" || fail "convert check on the .npz: $(cat "$TMP/convert.out")"
for sub in "analyze sensitivity --checkpoint $TMP/npz" "analyze hessian --checkpoint $TMP/npz" "analyze basin" \
           "search mixed --from $TMP/npz" "study ptq-vs-qat" "study winq" "convert --from $TMP/qat"; do
  # shellcheck disable=SC2086
  expect_exit 2 "$LOWBIT" $sub --out "$TMP/x" --layout hwc
  grep -q -- "--layout: hwc not in" "$TMP/err" || fail "'$sub --layout hwc': $(cat "$TMP/err")"
done

# Bad inputs: exit code 1 and a message that names the file and the problem.
expect_exit 1 "$LOWBIT" train --model mlp --data "$TMP/rgb.npz" --epochs 1 --val-size 2 --out "$TMP/rgb"
grep -q "\[3, 32, 32\]" "$TMP/err" && grep -q "model 'mlp'" "$TMP/err" || fail "shape message: $(cat "$TMP/err")"
expect_exit 1 "$LOWBIT" eval --checkpoint "$TMP/npz" --data "$TMP/fortran"
grep -q "train_x.npy\|test_x.npy" "$TMP/err" && grep -q "Fortran order" "$TMP/err" || fail "Fortran message: $(cat "$TMP/err")"
expect_exit 1 "$LOWBIT" eval --checkpoint "$TMP/npz" --data "$TMP/notes.npz"
grep -q "notes.npz" "$TMP/err" && grep -q "not a readable .npz" "$TMP/err" || fail "bad .npz message: $(cat "$TMP/err")"
expect_exit 2 "$LOWBIT" train --model mlp --data "$TMP/fm.npz" --layout hwc --out "$TMP/x"

echo "datasets_test: OK"
