#!/usr/bin/env bash
# All the tests: unit (no root), prog (BPF_PROG_TEST_RUN) and e2e (namespaces
# with real traffic). prog and e2e need root and the real kernel: without them
# they fail; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "weft tests: must run as root (BPF programs and network namespaces)" >&2
  exit 1
fi
bash scripts/install-deps.sh --tests
bash scripts/build.sh
if ! grep -qs " /sys/fs/bpf bpf " /proc/mounts; then
  mount -t bpf bpf /sys/fs/bpf
fi
cd build
ctest --output-on-failure --timeout 900 "$@"
