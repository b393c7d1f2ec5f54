#!/usr/bin/env bash
# Tests plug-vms.sh and check.sh on one machine, without VMs and without
# weft's cross-node datapath: the three nodes are network namespaces
# (wvag-node1..3) holding the taps, and a stand-in fabric of Linux bridges
# (one per network, joined through a wvag-wire namespace) does what weft
# will do: the same network is one segment across nodes, networks are apart.
# Then the stand-in is broken on purpose, and check.sh must say so.
#
# Root only. Every namespace it makes is named wvag-*, and all of them are
# removed at the end, also on failure. The root namespace is not touched.
#   vagrant/test-local.sh [WEFT_BINARY]   with a weft binary, also the whole lab
#                                         on weft's datapath, provisioned by
#                                         provision.sh's own steps
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
weft_bin="${1:-}"
nodes=(node1 node2 node3)
vm_prefix="wvag-v-"
node_prefix="wvag-"
wire="wvag-wire"
tmp=""
failures=0

say() {
  echo "test-local: $*"
}

fail() {
  echo "test-local: FAIL: $*" >&2
  failures=$((failures + 1))
}

# Every wvag-* namespace, whoever of this test made it; then the scratch
# weft node, if one was installed.
cleanup() {
  local i
  for i in 1 2 3; do
    if [ -n "$weft_bin" ] && [ -e "/run/netns/${node_prefix}vagtest$i" ]; then
      weft_uninstall "$i" 2>/dev/null || true
    fi
  done
  remove_namespaces
  [ -z "$tmp" ] || rm -rf "$tmp"
}

remove_namespaces() {
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep '^wvag-' || true); do
    ip netns delete "$ns" 2>/dev/null || true
  done
}

plug() {
  bash "$here/plug-vms.sh" --prefix "$vm_prefix" --node "$1" --node-netns "$node_prefix$1" "${@:2}"
}

check() {
  bash "$here/check.sh" --local --prefix "$vm_prefix" --node-netns-prefix "$node_prefix" --count 1 --wait 1
}

# The stand-in fabric: in each node a bridge per network holding its taps,
# each joined by a veth to that network's bridge in the wire namespace.
build_fabric() {
  ip netns add "$wire"
  local net node device n
  for net in $(bash "$here/plug-vms.sh" list | cut -f4 | sort -u); do
    ip -n "$wire" link add "br-$net" type bridge
    ip -n "$wire" link set "br-$net" up
    for n in "${nodes[@]}"; do
      ip -n "$node_prefix$n" link add "br-$net" type bridge
      ip -n "$node_prefix$n" link set "br-$net" up
      ip -n "$node_prefix$n" link add "up-$net" type veth peer name "$n-$net" netns "$wire"
      ip -n "$node_prefix$n" link set "up-$net" master "br-$net" up
      ip -n "$wire" link set "$n-$net" master "br-$net" up
    done
  done
  while IFS=$'\t' read -r node net device; do
    ip -n "$node_prefix$node" link set "$device" master "br-$net"
  done < <(bash "$here/plug-vms.sh" list | cut -f2,4,7)
}

# The tap's ifindex and eth0's MAC and addresses of every VM: what a second
# plug must leave as it was.
snapshot() {
  local name node _rest
  while IFS=$'\t' read -r name node _rest; do
    ip -n "$node_prefix$node" -o link show | grep -o '^[0-9]*: tap[^@:]*'
    ip -n "$vm_prefix$name" -o addr show dev eth0 | awk '{print $2, $3, $4}'
    ip -n "$vm_prefix$name" -o link show dev eth0 | grep -o 'link/ether [0-9a-f:]*'
  done < <(bash "$here/plug-vms.sh" list) | sort
}

test_plug() {
  local n
  for n in "${nodes[@]}"; do
    ip netns add "$node_prefix$n"
    plug "$n" up >/dev/null
  done
  snapshot >"$tmp/first"
  for n in "${nodes[@]}"; do
    plug "$n" up >/dev/null
  done
  snapshot >"$tmp/second"
  cmp -s "$tmp/first" "$tmp/second" || fail "a second plug changed something: $(diff "$tmp/first" "$tmp/second")"

  # What differs from the document is put back: a changed MAC, an extra
  # address, a missing address, a VM whose namespace went away.
  ip -n "${vm_prefix}a1" link set eth0 address 02:00:00:00:00:01
  ip -n "${vm_prefix}a2" addr add 10.9.9.9/24 dev eth0
  ip -n "${vm_prefix}b2" addr flush dev eth0
  ip netns delete "${vm_prefix}c3"
  plug node1 status >/dev/null && fail "status did not see a1's wrong MAC"
  plug node3 status >/dev/null && fail "status did not see c3 missing"
  for n in "${nodes[@]}"; do
    plug "$n" up >/dev/null
  done
  snapshot | grep -v '^[0-9]*: tap' >"$tmp/third"
  grep -v '^[0-9]*: tap' "$tmp/first" >"$tmp/first.noidx"
  cmp -s "$tmp/first.noidx" "$tmp/third" || fail "plug did not restore the VMs: $(diff "$tmp/first.noidx" "$tmp/third")"
  for n in "${nodes[@]}"; do
    plug "$n" status >/dev/null || fail "status of $n after plug: $(plug "$n" status)"
  done

  local taps
  taps="$(ip -n "${node_prefix}node1" -o link show | grep -c ': tap' || true)"
  [ "$taps" = 3 ] || fail "node1 has $taps taps, not 3 (a1, b1, c1)"
  ip -n "${vm_prefix}a1" -o link show dev eth0 | grep -q 'mtu 1450' || fail "a1's eth0 is not at blue's MTU 1450"
  say "plug: idempotent, and puts back what differs"
}

test_check() {
  build_fabric
  check >"$tmp/check.ok" 2>&1 || fail "check failed on a sound fabric: $(cat "$tmp/check.ok")"
  grep -q 'MISMATCH' "$tmp/check.ok" && fail "mismatches on a sound fabric"
  # Cross-node pairs of one network, and the overlaps, are in the matrix.
  grep -Eq '^a1 +node1 +blue +a3 +node3 +blue +10.0.0.13 +reachable +reachable +ok' "$tmp/check.ok" ||
    fail "no a1 -> a3 reachable row: $(cat "$tmp/check.ok")"
  grep -Eq '^a1 +node1 +blue +b3 +node3 +red +10.0.0.12 +isolated +isolated +ok' "$tmp/check.ok" ||
    fail "no a1 -> b3 isolated row"
  grep -Eq '^c3 +node3 +green +c1 +node1 +green +10.0.0.31 +reachable +reachable +ok' "$tmp/check.ok" ||
    fail "no c3 -> c1 reachable row"
  grep -Eq '^a1 .* b1 .* self-address +skipped' "$tmp/check.ok" || fail "a1 -> b1 (its own address) not skipped"
  say "check on a sound fabric: $(tail -1 "$tmp/check.ok")"

  # A leak: b3 (red, 10.0.0.12 like a2) plugged into blue on node3.
  ip -n "${node_prefix}node3" link set tape2b4f6a8-b3 master br-blue
  if check >"$tmp/check.leak" 2>&1; then
    fail "check passed with b3 leaked into blue"
  fi
  # Which blue VM reaches b3 rather than a2 (its address) depends on whose
  # ARP answer came first, but every mismatch is one of b3's or a2's.
  grep -Eq '^b3 .* isolated +reachable +MISMATCH' "$tmp/check.leak" ||
    fail "b3 reaching blue is not reported: $(cat "$tmp/check.leak")"
  if grep 'MISMATCH' "$tmp/check.leak" | grep -Ev '^(a2|b3) | (a2|b3) '; then
    fail "mismatches of other VMs than a2 and b3 with b3 leaked"
  fi
  say "check with a leak: $(tail -1 "$tmp/check.leak")"
  ip -n "${node_prefix}node3" link set tape2b4f6a8-b3 master br-red

  # A cut: node3 loses blue.
  ip -n "${node_prefix}node3" link set up-blue down
  if check >"$tmp/check.cut" 2>&1; then
    fail "check passed with node3 cut off blue"
  fi
  grep -Eq '^a1 +node1 +blue +a3 +node3 +blue +10.0.0.13 +reachable +isolated +MISMATCH' "$tmp/check.cut" ||
    fail "the cut a1 -> a3 is not reported: $(cat "$tmp/check.cut")"
  say "check with a cut: $(tail -1 "$tmp/check.cut")"
  ip -n "${node_prefix}node3" link set up-blue up

  # A VM missing: check refuses to measure (exit 2), naming it.
  ip netns delete "${vm_prefix}a2"
  local rc=0
  check >"$tmp/check.down" 2>&1 || rc=$?
  [ "$rc" = 2 ] || fail "check with a2 unplugged exited $rc, not 2"
  grep -q 'a2' "$tmp/check.down" || fail "check with a2 unplugged does not name it"
  say "check with a VM missing: exit $rc"
}

test_down() {
  local n
  for n in "${nodes[@]}"; do
    plug "$n" down >/dev/null
  done
  local left
  left="$(ip netns list | grep -c "^$vm_prefix" || true)"
  [ "$left" = 0 ] || fail "plug down left $left VM namespaces"
  left="$(ip -n "${node_prefix}node1" -o link show | grep -c ': tap' || true)"
  [ "$left" = 0 ] || fail "plug down left $left taps on node1"
  say "plug down: nothing left"
}

# The whole lab on weft's own datapath, nodes as namespaces: an underlay and
# two physnet bridges in the wire namespace, each node's three NICs veths
# with the Vagrantfile's MACs, and provision.sh's own steps (less the build)
# on every node: devices by MAC, node install with the uplink, tunnel IP and
# physnet mappings, plug, apply. Then check.sh across the three nodes, and
# the steps once more, which must change nothing.
weft_nodes=(vagtest1 vagtest2 vagtest3)

provision_env() {
  local i="$1"
  echo WEFT_NODE="vagtest$i" WEFT_TUNNEL_IP="172.31.0.1$i" WEFT_UPLINK_MAC="02:77:65:01:00:0$i" \
    WEFT_PHYSNET1_MAC="02:77:65:02:00:0$i" WEFT_PHYSNET2_MAC="02:77:65:03:00:0$i" \
    WEFT_SRC="$tmp/src" WEFT_DOC="$tmp/lab.json" WEFT_VM_PREFIX=wvag-v-
}

# provision.sh's steps on node $1: the device steps see the node's own /sys
# (ip netns exec); weft and plug-vms keep the host's bpffs (nsenter).
provision_node() {
  local i="$1" ns="${node_prefix}vagtest$1" env
  read -r -a env <<<"$(provision_env "$i")"
  # shellcheck disable=SC2016 # expanded by the inner bash
  ip netns exec "$ns" env "${env[@]}" bash -c 'source "$1"; find_devices >&2; configure_underlay
    configure_physnet "$physnet1"; configure_physnet "$physnet2"; declare -p uplink physnet1 physnet2' \
    _ "$here/provision.sh" >"$tmp/devices$i"
  # shellcheck disable=SC2016
  nsenter --net="/run/netns/$ns" env "${env[@]}" bash -c 'source "$1"; source "$2"; install_node; plug_and_apply' \
    _ "$here/provision.sh" "$tmp/devices$i"
}

test_weft_lab() {
  [ -n "$weft_bin" ] || return 0
  remove_namespaces # the stand-in fabric's
  # provision.sh runs $WEFT_SRC/build/weft and $WEFT_SRC/vagrant/plug-vms.sh.
  mkdir -p "$tmp/src/build"
  ln -s "$(realpath "$weft_bin")" "$tmp/src/build/weft"
  ln -s "$here" "$tmp/src/vagrant"
  sed 's/"node\([123]\)"/"vagtest\1"/g' "$here/lab.json" >"$tmp/lab.json"
  ip netns add "$wire"
  local br i ns n
  for br in under phys1 phys2; do
    ip -n "$wire" link add "br-$br" type bridge
    ip -n "$wire" link set "br-$br" up
  done
  for i in 1 2 3; do
    ns="${node_prefix}vagtest$i"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    n=1
    for br in under phys1 phys2; do
      ip -n "$ns" link add "$br" address "02:77:65:0$n:00:0$i" type veth peer name "m$i-$br" netns "$wire"
      ip -n "$wire" link set "m$i-$br" master "br-$br" up
      n=$((n + 1))
    done
    provision_node "$i" >"$tmp/provision$i" 2>&1 || fail "provisioning vagtest$i: $(cat "$tmp/provision$i")"
    grep -q 'installed' "$tmp/provision$i" || fail "vagtest$i: not installed: $(cat "$tmp/provision$i")"
  done
  if bash "$here/check.sh" --local --nodes "${weft_nodes[*]}" --doc "$tmp/lab.json" --prefix wvag-v- \
    --node-netns-prefix "$node_prefix" --count 2 --wait 1 >"$tmp/check.weft" 2>&1; then
    say "check on weft's datapath, three nodes: $(tail -1 "$tmp/check.weft")"
  else
    fail "check on weft's datapath: $(cat "$tmp/check.weft")"
  fi
  for i in 1 2 3; do
    provision_node "$i" >"$tmp/again$i" 2>&1 || fail "provisioning vagtest$i again: $(cat "$tmp/again$i")"
    grep -q 'already installed, nothing changed' "$tmp/again$i" || fail "vagtest$i: install again: $(cat "$tmp/again$i")"
    grep -q '^applied: 0 entries added, 0 changed, 0 removed; 0 ports attached, 0 detached' "$tmp/again$i" ||
      fail "vagtest$i: apply again changed something: $(cat "$tmp/again$i")"
  done
  say "provision again on the three nodes: nothing changed"
  for i in 1 2 3; do
    weft_uninstall "$i"
  done
}

weft_uninstall() {
  "$weft_bin" --node "vagtest$1" --netns "${node_prefix}vagtest$1" node uninstall >/dev/null
}

# provision.sh's device steps in a scratch namespace standing for a VM: three
# veths with the Vagrantfile's MACs of node2, under names no provider uses.
test_provision_devices() {
  local ns="${node_prefix}prov" dev mac
  ip netns add "$ns"
  for dev in w0:02:77:65:01:00:02 w1:02:77:65:02:00:02 w2:02:77:65:03:00:02; do
    mac="${dev#*:}"
    dev="${dev%%:*}"
    ip -n "$ns" link add "x$dev" address "$mac" type veth peer name "p$dev"
  done
  # shellcheck disable=SC2016 # expanded by the inner bash
  local steps='source "$1"; find_devices; configure_underlay; configure_physnet "$physnet1"; configure_physnet "$physnet2"
    echo "$uplink $physnet1 $physnet2"'
  local env=(WEFT_NODE=node2 WEFT_TUNNEL_IP=172.31.0.12 WEFT_UPLINK_MAC=02:77:65:01:00:02
    WEFT_PHYSNET1_MAC=02:77:65:02:00:02 WEFT_PHYSNET2_MAC=02:77:65:03:00:02)
  local found
  found="$(ip netns exec "$ns" env "${env[@]}" bash -c "$steps" _ "$here/provision.sh" 2>&1)" ||
    fail "provision's device steps: $found"
  [ "$(tail -1 <<<"$found")" = "xw0 xw1 xw2" ] || fail "provision found $found, not xw0 xw1 xw2"
  ip -n "$ns" -4 -o addr show dev xw0 | grep -q ' 172.31.0.12/24 ' || fail "the underlay address is not on xw0"
  ip -n "$ns" -o link show dev xw1 | grep -q 'PROMISC' || fail "physnet1 is not promiscuous"
  ip -n "$ns" -4 -o addr show dev xw1 | grep -q . && fail "physnet1 has an address"
  # Again: nothing changes, nothing fails.
  ip netns exec "$ns" env "${env[@]}" bash -c "$steps" _ "$here/provision.sh" >/dev/null 2>&1 ||
    fail "provision's device steps are not re-run safe"
  [ "$(ip -n "$ns" -4 -o addr show | grep -c 172.31.0.12)" = 1 ] || fail "a second run doubled the underlay address"
  # The tunnel IP on another NIC (a guest that configured the wrong one): refused.
  ip -n "$ns" addr del 172.31.0.12/24 dev xw0
  ip -n "$ns" addr add 172.31.0.12/24 dev xw2
  if found="$(ip netns exec "$ns" env "${env[@]}" bash -c "$steps" _ "$here/provision.sh" 2>&1)"; then
    fail "provision went on with the tunnel IP on physnet2's NIC"
  fi
  grep -q 'is on xw2, not on the uplink xw0' <<<"$found" || fail "provision's refusal does not say why: $found"
  ip netns delete "$ns"
  say "provision: finds the NICs by MAC, addresses the underlay, re-run safe, refuses a misplaced tunnel IP"
}

main() {
  [ "$(id -u)" -eq 0 ] || { echo "test-local: needs root (network namespaces)" >&2; exit 1; }
  if ip netns list | grep -q '^wvag-'; then
    echo "test-local: wvag-* namespaces exist already; another run? ($(ip netns list | grep '^wvag-' | tr '\n' ' '))" >&2
    exit 1
  fi
  tmp="$(mktemp -d)"
  trap cleanup EXIT
  test_provision_devices
  test_plug
  test_check
  test_down
  test_weft_lab
  if [ "$failures" -gt 0 ]; then
    echo "test-local: $failures failures"
    exit 1
  fi
  echo "test-local: all passed"
}

main "$@"
