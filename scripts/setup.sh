#!/usr/bin/env bash
# Installs the Debian packages lowbit needs, only those that are missing (idempotent).
# Usage: scripts/setup.sh [--bench]   (--bench also installs python3-torch for the anchor runs)
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache
  libtorch-dev libopenblas0-pthread
  dataset-fashion-mnist
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev zlib1g-dev
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(python3-torch)
fi

# ONNX Runtime for Node.js, which the ONNX export tests and bench/export_agreement.sh run exported
# models in: installed into third_party/node (project-local, git-ignored), skipped if present.
install_onnxruntime_node() {
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/third_party/node"
  if [[ -f "$dir/node_modules/onnxruntime-node/package.json" ]]; then
    echo "setup: onnxruntime-node present"
    return 0
  fi
  if ! command -v npm > /dev/null 2>&1; then
    echo "setup: npm not found; the ONNX Runtime export tests will be skipped (apt-get install nodejs npm)"
    return 0
  fi
  echo "setup: installing onnxruntime-node 1.30.0 into $dir"
  mkdir -p "$dir"
  (cd "$dir" && npm install --ignore-scripts --no-audit --no-fund onnxruntime-node@1.30.0 > npm-install.log 2>&1) || {
    echo "setup: npm install failed (see $dir/npm-install.log); the ONNX Runtime export tests will be skipped"
    return 0
  }
  node -e "require('$dir/node_modules/onnxruntime-node')" && echo "setup: onnxruntime-node loads"
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all packages present"
  install_onnxruntime_node
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
install_onnxruntime_node
