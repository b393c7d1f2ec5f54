#!/usr/bin/env bash
# Installs the dependencies (Debian 12) and builds everything into build/
# (RelWithDebInfo; WEFT_BUILD_TYPE=Release builds -O3 without debug info).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "weft: building (cmake, clang -target bpf, bpftool gen skeleton, g++)"
cmake -S . -B build -DCMAKE_BUILD_TYPE="${WEFT_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build build -j"$(nproc)"
echo "weft: built build/weft"
