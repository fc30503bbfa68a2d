#!/usr/bin/env bash
# Installs the Debian packages lowbit needs, only those that are missing (idempotent).
# Usage: scripts/setup.sh [--bench] [--fuzz] [--browser]
#   --bench  also python3-torch for the anchor runs
#   --browser  also chromium, for the headless render check of `lowbit report` (make test)
#   --fuzz   also clang-14 and its runtime libraries (libFuzzer, sanitizers) for make fuzz / sanitize
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache
  libtorch-dev libopenblas0-pthread
  libgloo-dev  # Gloo headers, which c10d's ProcessGroupGloo.hpp includes (data-parallel QAT, docs/distributed.md)
  dataset-fashion-mnist
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev zlib1g-dev
  libpng-dev libjpeg-dev  # --data image folders (src/data/image_folder.cpp)
  libonnx-dev libprotobuf-dev  # ONNX's generated protobuf classes and checker, for `--from model.onnx` (docs/onnx_import.md)
  fortunes  # plain English text for gpt-tiny's default corpus (docs/transformers.md)
)
for arg in "$@"; do
  case "$arg" in
    --bench) packages+=(python3-torch) ;;
    --fuzz) packages+=(clang-14 libclang-rt-14-dev) ;;
    --browser) packages+=(chromium) ;;
    *) echo "setup: unknown option '$arg' (use --bench, --fuzz and/or --browser)" >&2; exit 2 ;;
  esac
done

# ONNX Runtime for Node.js, which the ONNX export tests and bench/export_agreement.sh run exported
# models in: installed into third_party/node (project-local, git-ignored), skipped if present.
install_onnxruntime_node() {
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/third_party/node"
  if [[ -f "$dir/node_modules/onnxruntime-node/package.json" ]]; then
    echo "setup: onnxruntime-node present"
    return 0
  fi
  # The ONNX export tests need it: a failure here stops setup (no silent skip). LOWBIT_NO_ORT=1
  # skips the install on purpose; the export tests then report themselves as skipped.
  if [[ "${LOWBIT_NO_ORT:-0}" == "1" ]]; then
    echo "setup: LOWBIT_NO_ORT=1: not installing onnxruntime-node; the ONNX Runtime tests will be skipped"
    return 0
  fi
  if ! command -v npm > /dev/null 2>&1 || ! command -v node > /dev/null 2>&1; then
    echo "setup: node/npm not found; installing Debian's nodejs and npm"
    $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends nodejs npm
  fi
  echo "setup: installing onnxruntime-node 1.30.0 into $dir"
  mkdir -p "$dir"
  (cd "$dir" && npm install --ignore-scripts --no-audit --no-fund onnxruntime-node@1.30.0 > npm-install.log 2>&1) || {
    echo "setup: npm install of onnxruntime-node failed (see $dir/npm-install.log):" >&2
    tail -n 20 "$dir/npm-install.log" >&2
    echo "setup: the ONNX export tests need it; fix the error above, or set LOWBIT_NO_ORT=1 to skip them" >&2
    exit 1
  }
  node -e "require('$dir/node_modules/onnxruntime-node')" || {
    echo "setup: onnxruntime-node was installed into $dir but does not load in node ($(node --version))" >&2
    exit 1
  }
  echo "setup: onnxruntime-node loads"
}

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

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
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
install_onnxruntime_node
