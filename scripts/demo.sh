#!/usr/bin/env bash
# The demo: trains the reference CNN in FP32 on Fashion-MNIST and prints its test accuracy.
# Usage: scripts/demo.sh BUILD_DIR      (about 90% test accuracy after 2 epochs is normal)
set -euo pipefail

BUILD="${1:-build}"
LOWBIT="$BUILD/lowbit"
[[ -x "$LOWBIT" ]] || { echo "demo: $LOWBIT not found; build first (make build)" >&2; exit 1; }
RUN="runs/cnn-fp32"
EPOCHS="${DEMO_EPOCHS:-2}"

echo "== FP32 cnn, $EPOCHS epochs, into $RUN"
"$LOWBIT" train --model cnn --epochs "$EPOCHS" --threads 2 --out "$RUN" --overwrite
"$LOWBIT" eval --checkpoint "$RUN"
