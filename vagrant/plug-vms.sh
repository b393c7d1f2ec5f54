#!/usr/bin/env bash
# The lab's "VMs" on one node: a network namespace per Nova port of the
# document bound to this node, plugged the way Nova plugs a VM (DESIGN.md
# §3.1): a veth whose host end is tap + the first 11 characters of the port
# id, whose VM end is eth0 with the port's MAC, IPv4 addresses and the
# network's MTU. A real VM has no `weft lab`; this is its stand-in.
#
#   plug-vms.sh [options] up        make this node's VMs (idempotent: fixes what differs)
#   plug-vms.sh [options] down      remove them
#   plug-vms.sh [options] status    one line per VM of this node: present or missing
#   plug-vms.sh [options] list      every VM of the document, any node (tab-separated:
#                                   name node network_id network project port_id device mac mtu addresses)
#   plug-vms.sh [options] counters  "name InEchos" for this node's VMs (check.sh's probe)
#   plug-vms.sh [options] ping COUNT WAIT FROM:ADDRESS...
#                                   pings in parallel from this node's VMs; "FROM ADDRESS rc" lines
# options:
#   --doc FILE         the Neutron document (default: lab.json beside this script)
#   --node NAME        this node (default: the host name, as weft's --node)
#   --prefix P         VM namespace names are P<vm> (default: $WEFT_VM_PREFIX or vm-)
#   --node-netns NS    put the tap ends into namespace NS rather than this one
#                      (for tests on one machine; a real node keeps them here)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
doc="$here/lab.json"
node="$(hostname)"
prefix="${WEFT_VM_PREFIX:-vm-}"
node_netns=""

die() {
  echo "plug-vms: $*" >&2
  exit 1
}

# ip in the node's namespace (where the taps live).
node_ip() {
  if [ -n "$node_netns" ]; then
    ip -n "$node_netns" "$@"
  else
    ip "$@"
  fi
}

# Every Nova port of the document as one tab-separated line; the VM's name is
# the port's name (or the start of its id). Addresses carry their subnet's
# prefix length; IPv6 fixed IPs are left out (the VMs run IPv4 only).
list_vms() {
  [ -r "$doc" ] || die "no document $doc"
  python3 - "$doc" <<'EOF'
import ipaddress, json, sys
doc = json.load(open(sys.argv[1]))
networks = {n["id"]: n for n in doc.get("networks", [])}
subnets = {s["id"]: s for s in doc.get("subnets", [])}
for p in doc.get("ports", []):
    if not str(p.get("device_owner") or "").startswith("compute:") or not p.get("binding:host_id"):
        continue
    net = networks.get(p["network_id"], {})
    addresses = []
    for f in p.get("fixed_ips", []):
        ip = ipaddress.ip_address(f["ip_address"])
        if ip.version != 4:
            continue
        cidr = subnets.get(f.get("subnet_id"), {}).get("cidr", f"{ip}/32")
        addresses.append(f"{ip}/{ipaddress.ip_network(cidr, strict=False).prefixlen}")
    print("\t".join([p.get("name") or p["id"][:8], p["binding:host_id"], p["network_id"],
                     net.get("name", ""), p.get("project_id", ""), p["id"], "tap" + p["id"][:11],
                     p["mac_address"].lower(), str(net.get("mtu") or 1500),
                     ",".join(addresses) or "-"]))
EOF
}

# This node's VMs, same columns as list_vms.
node_vms() {
  local vms
  vms="$(list_vms)" # a failed parse stops here, not silently in the loop below
  awk -F'\t' -v node="$node" '$2 == node' <<<"$vms"
}

netns_exists() {
  [ -e "/run/netns/$1" ]
}

# A fresh namespace with lo up and IPv6 off, as weft lab makes a VM: no DAD,
# MLD or router solicitations muddle what the fabric is shown.
make_namespace() {
  local ns="$1"
  ip netns add "$ns"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up
}

# The MAC of a device in the node's namespace ("" if there is none).
node_device_mac() {
  node_ip -o link show dev "$1" 2>/dev/null | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'
}

# One VM: its namespace, the veth, then eth0's MAC, MTU and addresses set to
# the document's. Each piece is made only when missing and corrected when
# it differs, so a second run changes nothing.
plug_vm() {
  local name="$1" device="$2" mac="$3" mtu="$4" addresses="$5"
  local ns="$prefix$name"
  netns_exists "$ns" || make_namespace "$ns"

  # A tap without its eth0 in the VM (the namespace was remade) is a stale pair.
  if node_ip link show dev "$device" >/dev/null 2>&1 && ! ip -n "$ns" link show dev eth0 >/dev/null 2>&1; then
    node_ip link delete "$device"
  fi
  if ! node_ip link show dev "$device" >/dev/null 2>&1; then
    ip -n "$ns" link delete eth0 2>/dev/null || true
    node_ip link add "$device" mtu "$mtu" type veth peer name eth0 netns "$ns"
  fi

  ip -n "$ns" link set eth0 address "$mac" mtu "$mtu"
  node_ip link set "$device" mtu "$mtu" up

  # Exactly the document's IPv4 addresses on eth0: add what is missing,
  # remove what is no longer there.
  local want=() have a
  [ "$addresses" = "-" ] || IFS=, read -r -a want <<<"$addresses"
  for a in "${want[@]}"; do
    ip -n "$ns" addr replace "$a" dev eth0
  done
  for have in $(ip -n "$ns" -4 -o addr show dev eth0 | awk '{print $4}'); do
    local keep=0
    for a in "${want[@]}"; do [ "$a" = "$have" ] && keep=1; done
    [ "$keep" = 1 ] || ip -n "$ns" addr del "$have" dev eth0
  done
  ip -n "$ns" link set eth0 up
  echo "plug-vms: $name: $device ($node) <-> eth0 ($ns) $mac mtu $mtu ${addresses//,/ }"
}

cmd_up() {
  [ -z "$node_netns" ] || netns_exists "$node_netns" || die "no namespace $node_netns"
  local name _node _net _netname _project _port device mac mtu addresses count=0
  while IFS=$'\t' read -r name _node _net _netname _project _port device mac mtu addresses; do
    plug_vm "$name" "$device" "$mac" "$mtu" "$addresses"
    count=$((count + 1))
  done < <(node_vms)
  echo "plug-vms: node $node: $count VMs plugged"
}

# Deleting a VM's namespace deletes its eth0 and so the tap; a tap left
# without a namespace is removed on its own.
cmd_down() {
  local name _node _net _netname _project _port device _rest
  while IFS=$'\t' read -r name _node _net _netname _project _port device _rest; do
    if netns_exists "$prefix$name"; then
      ip netns delete "$prefix$name"
    fi
    # The kernel removes the pair of a deleted namespace's veth a moment later:
    # a tap may vanish between looking and deleting.
    node_ip link delete "$device" 2>/dev/null || true
    ! node_ip link show dev "$device" >/dev/null 2>&1 || die "cannot remove $device"
    echo "plug-vms: $name: removed"
  done < <(node_vms)
}

cmd_status() {
  local name _node _net netname _project _port device mac _mtu addresses state bad=0
  while IFS=$'\t' read -r name _node _net netname _project _port device mac _mtu addresses; do
    state=present
    if ! netns_exists "$prefix$name"; then
      state="missing: no namespace $prefix$name"
    elif [ "$(node_device_mac "$device")" = "" ]; then
      state="missing: no device $device"
    elif ! ip -n "$prefix$name" -o link show dev eth0 2>/dev/null | grep -q "link/ether $mac "; then
      state="wrong: eth0 is not $mac"
    fi
    [ "$state" = present ] || bad=1
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$netname" "$device" "$mac" "$addresses" "$state"
  done < <(node_vms)
  return "$bad"
}

# The echo requests a VM's kernel has answered: /proc/net/snmp's Icmp
# InEchos, read inside the VM's namespace.
vm_in_echos() {
  ip netns exec "$prefix$1" cat /proc/net/snmp | awk '
    $1 == "Icmp:" && !seen { for (i = 2; i <= NF; i++) col[$i] = i; seen = 1; next }
    $1 == "Icmp:" && seen { print $col["InEchos"]; exit }'
}

cmd_counters() {
  local name _rest
  while IFS=$'\t' read -r name _rest; do
    netns_exists "$prefix$name" || die "no namespace $prefix$name (run: plug-vms.sh up)"
    echo "$name $(vm_in_echos "$name")"
  done < <(node_vms)
}

# Pings from this node's VMs, all at once; each prints "FROM ADDRESS rc".
# The neighbour cache is emptied first, so every probe resolves its address
# through the fabric (its ARP responder) rather than from an old answer.
cmd_ping() {
  [ $# -ge 2 ] || die "ping COUNT WAIT FROM:ADDRESS..."
  local count="$1" wait="$2" probe from address
  shift 2
  local -A flushed=()
  local out
  out="$(mktemp -d)"
  for probe in "$@"; do
    from="${probe%%:*}"
    address="${probe#*:}"
    netns_exists "$prefix$from" || die "no namespace $prefix$from (run: plug-vms.sh up)"
    if [ -z "${flushed[$from]:-}" ]; then
      ip -n "$prefix$from" neigh flush all
      flushed[$from]=1
    fi
    (
      rc=0
      ip netns exec "$prefix$from" ping -n -q -c "$count" -i 0.2 -W "$wait" "$address" >/dev/null 2>&1 || rc=$?
      echo "$from $address $rc" >"$out/$from-$address"
    ) &
  done
  wait
  cat "$out"/* 2>/dev/null || true
  rm -rf "$out"
}

main() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --doc) doc="$2"; shift 2 ;;
      --node) node="$2"; shift 2 ;;
      --prefix) prefix="$2"; shift 2 ;;
      --node-netns) node_netns="$2"; shift 2 ;;
      -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      -*) die "unknown option $1" ;;
      *) break ;;
    esac
  done
  [ $# -ge 1 ] || die "which command? up|down|status|list|counters|ping (--help)"
  local command="$1"
  shift
  case "$command" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    list) list_vms ;;
    counters) cmd_counters ;;
    ping) cmd_ping "$@" ;;
    *) die "unknown command $command (up|down|status|list|counters|ping)" ;;
  esac
}

main "$@"
