#!/usr/bin/env bash
# The BPF programs include no glibc header: a -target bpf build that reads
# <sys/socket.h> and friends asks for the 32-bit glibc stubs and fails on a
# machine without libc6-dev-i386. Every header a BPF object depends on must be
# weft's own, libbpf's, clang's or the kernel's UAPI (linux-libc-dev).
# usage: bpf_headers.sh CLANG SOURCE_DIR ARCH_TRIPLET
set -euo pipefail
clang=$1 src=$2 triplet=$3
status=0
for prog in "$src"/bpf/*.bpf.c; do
  deps=$("$clang" -M -target bpf -I"$src" -I"$src/bpf" -I"/usr/include/$triplet" "$prog" |
    tr ' \\' '\n\n' | sed '/^$/d;/:$/d')
  bad=$(printf '%s\n' "$deps" | grep '^/usr/include/' |
    grep -v -E "^/usr/include/(linux|asm-generic|bpf|$triplet/asm)/" || true)
  if [ -n "$bad" ]; then
    echo "FAIL $(basename "$prog") includes headers outside the kernel UAPI and libbpf:"
    printf '    %s\n' $bad
    status=1
  else
    echo "ok   $(basename "$prog"): $(printf '%s\n' "$deps" | wc -l) headers, none from glibc"
  fi
done
exit $status
