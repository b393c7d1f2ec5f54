#!/usr/bin/env bash
# The demo: install what is needed, build, and bring up the lab (three nodes
# joined by an underlay and a provider switch, two tenants with overlapping
# addresses, VMs of a VXLAN, a VLAN and a flat network spread over the nodes,
# a physical host, all network namespaces), print the connectivity matrix
# measured with real traffic, then show traffic crossing nodes and what the
# fabric knows of the other nodes.
#   --with-neutron [--keep]  instead, the agent path end to end: a real
#       neutron-server (Debian's, with weft's ML2 driver) and etcd drive
#       three nodes run by weftd, through Neutron's REST API
#       (scripts/neutron-demo.py); it removes everything at the end, or
#       with --keep on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "weft demo: run as root (it installs packages, loads BPF and makes namespaces)" >&2
  exit 1
fi
case "${1:-}" in
"") ;;
--with-neutron)
  bash scripts/install-deps.sh --neutron
  bash scripts/build.sh
  shift
  exec /usr/bin/python3 scripts/neutron-demo.py "$@"
  ;;
*)
  echo "weft demo: unknown option $1 (--with-neutron [--keep])" >&2
  exit 2
  ;;
esac
bash scripts/build.sh
./build/weft lab up
echo
echo "== Across nodes: a1 (lab-node1) to a3 (lab-node2) in VXLAN 1001, b1 (lab-node1) to"
echo "== b2 (lab-node3) tagged VLAN 101 on physnet1, c1 (lab-node2) to the physical host ph1"
ip netns exec weftlab-a1 ping -n -c 3 -i 0.2 10.0.0.13 | tail -2
ip netns exec weftlab-b1 ping -n -c 3 -i 0.2 10.0.0.22 | tail -2
ip netns exec weftlab-c1 ping -n -c 3 -i 0.2 10.20.0.100 | tail -2
echo
echo "== lab-node1's view of the other nodes (weft vtep list):"
./build/weft --netns weftlab-node1 --node lab-node1 vtep list
echo
echo "The lab is up. Look around:"
echo "  ./build/weft --netns weftlab-node1 --node lab-node1 port list"
echo "  ./build/weft --netns weftlab-node1 --node lab-node1 stats"
echo "  ./build/weft --netns weftlab-node1 --node lab-node1 net show blue"
echo "  ./build/weft --netns weftlab-node1 --node lab-node1 fdb list"
echo "  ip netns exec weftlab-a1 ping 10.0.0.12"
echo "Tear it down with: ./build/weft lab down"
