#!/usr/bin/env bash
# What each layer of the loader may include (CMakeLists.txt names the
# libraries). The linker already refuses libbpf and libnl to the model, the
# fabric and the decoder (their unit tests link without them); this check
# adds what a linker cannot see: only loader/system/ includes libbpf, libnl,
# the kernel's BPF UAPI or a skeleton, so the datapath layer above it and the
# CLI go through its wrappers, and no layer includes one above it.
# usage: layers.sh SOURCE_DIR
set -euo pipefail
src=$1
status=0
raw='^#include [<"](bpf/|netlink/|linux/bpf\.h|linux/pkt_cls\.h|[a-z_]+\.skel\.h)'

# check FOLDER-OR-FILES ALLOWED-LOADER-FOLDERS RAW-ALLOWED(0/1)
check() {
  local what=$1 allowed=$2 raw_ok=$3 files before=$status
  files=$(cd "$src" && ls -d $what)
  for f in $files; do
    [ -f "$src/$f" ] || continue
    while IFS= read -r line; do
      inc=$(printf '%s' "$line" | sed -n 's/^#include "\(loader\/[a-z_]*\)\/.*/\1/p')
      if [ -n "$inc" ] && ! printf ' %s ' "$allowed" | grep -q " ${inc#loader/} "; then
        echo "FAIL $f: $line (may include only loader/{${allowed// /,}})"
        status=$((status + 1))
      fi
      if [ "$raw_ok" = 0 ] && printf '%s' "$line" | grep -qE "$raw"; then
        echo "FAIL $f: $line (only loader/system/ talks to libbpf, libnl and the BPF UAPI)"
        status=$((status + 1))
      fi
    done < <(grep -E '^#include' "$src/$f")
  done
  [ "$status" = "$before" ] && echo "ok   $what"
  return 0
}

check "loader/model/*" "model" 0
check "loader/fabric/*" "model fabric" 0
check "loader/inspect/decode.*" "model fabric inspect" 0
check "loader/system/*" "model fabric system" 1
check "loader/datapath/*" "model fabric system datapath" 0
check "loader/inspect/inspect.*" "model fabric system datapath inspect" 0
check "loader/agent/*" "model fabric system datapath inspect agent" 0
check "agent/*.cpp" "model fabric system datapath inspect agent" 0
check "loader/lab/topology.*" "model lab" 0
check "loader/lab/lab.* loader/lab/process.hpp" "model fabric system datapath inspect lab" 0
check "cli/*.?pp cli/objects/*.cpp" "model fabric system datapath inspect lab agent" 0
[ "$status" = 0 ]
