#!/usr/bin/env bash
# The demo: install what is needed, build, and bring up the lab (one node, two
# tenants with overlapping addresses, four VMs in network namespaces), then
# print the connectivity matrix measured with real traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "weft demo: run as root (it installs packages, loads BPF and makes namespaces)" >&2
  exit 1
fi
bash scripts/build.sh
./build/weft lab up
echo
echo "The lab is up. Look around:"
echo "  ./build/weft --netns weftlab-node1 --node lab-node1 port list"
echo "  ./build/weft --netns weftlab-node1 --node lab-node1 stats"
echo "  ip netns exec weftlab-a1 ping 10.0.0.12"
echo "Tear it down with: ./build/weft lab down"
