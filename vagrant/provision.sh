#!/usr/bin/env bash
# Provisions one lab node (run as root inside the VM by the Vagrantfile, on
# every boot): finds the lab NICs by their MACs, addresses the underlay,
# builds weft from the synced tree, installs it on the node, plugs the
# node's VMs and applies the lab's document. Every step is idempotent: a
# second run changes nothing, and after a reboot (bpffs and /run/netns are
# empty again) it brings the node back.
#
# Set by the Vagrantfile (or by hand, to re-run inside a VM):
#   WEFT_NODE                node name, as in the document's nodes[] and binding:host_id
#   WEFT_TUNNEL_IP           this node's VTEP address (nodes[].tunnel_ip, Neutron's local_ip)
#   WEFT_UNDERLAY_PREFIXLEN  its prefix length (default 24)
#   WEFT_UPLINK_MAC          the underlay NIC
#   WEFT_PHYSNET1_MAC        the NIC of physnet1 (VLAN networks)
#   WEFT_PHYSNET2_MAC        the NIC of physnet2 (the flat network); optional
#   WEFT_SRC                 the repository inside the VM (default /weft)
#   WEFT_DOC                 the document (default $WEFT_SRC/vagrant/lab.json)
#   WEFT_BUILD_ALL=1         build everything with scripts/build.sh (tests too),
#                            not only the weft command
set -euo pipefail

: "${WEFT_NODE:?which node is this (WEFT_NODE)}"
: "${WEFT_TUNNEL_IP:?the underlay address of this node (WEFT_TUNNEL_IP)}"
: "${WEFT_UPLINK_MAC:?the MAC of the underlay NIC (WEFT_UPLINK_MAC)}"
: "${WEFT_PHYSNET1_MAC:?the MAC of the physnet1 NIC (WEFT_PHYSNET1_MAC)}"
src="${WEFT_SRC:-/weft}"
doc="${WEFT_DOC:-$src/vagrant/lab.json}"
prefixlen="${WEFT_UNDERLAY_PREFIXLEN:-24}"
weft=("$src/build/weft" --node "$WEFT_NODE")

log() {
  echo "provision $WEFT_NODE: $*"
}

die() {
  echo "provision $WEFT_NODE: $*" >&2
  exit 1
}

# The device with MAC $1. VirtualBox and libvirt name and order the NICs
# differently (enp0s8 or eth1, ens6…), the MAC is the one thing the
# Vagrantfile fixes on both.
device_by_mac() {
  local want="${1,,}" dev
  for dev in /sys/class/net/*; do
    if [ "$(cat "$dev/address" 2>/dev/null)" = "$want" ]; then
      basename "$dev"
      return 0
    fi
  done
  return 1
}

# The device holding IPv4 address $1 (nothing if none does).
device_by_address() {
  ip -4 -o addr show | awk -v want="$1" '{ split($4, a, "/"); if (a[1] == want) { print $2; exit } }'
}

find_devices() {
  uplink="$(device_by_mac "$WEFT_UPLINK_MAC")" ||
    uplink="$(device_by_address "$WEFT_TUNNEL_IP")"
  [ -n "$uplink" ] || die "no NIC has the underlay's MAC $WEFT_UPLINK_MAC or address $WEFT_TUNNEL_IP"
  physnet1="$(device_by_mac "$WEFT_PHYSNET1_MAC")" || die "no NIC has physnet1's MAC $WEFT_PHYSNET1_MAC"
  physnet2=""
  if [ -n "${WEFT_PHYSNET2_MAC:-}" ]; then
    physnet2="$(device_by_mac "$WEFT_PHYSNET2_MAC")" || die "no NIC has physnet2's MAC $WEFT_PHYSNET2_MAC"
  fi
  log "uplink $uplink ($WEFT_UPLINK_MAC), physnet1 $physnet1${physnet2:+, physnet2 $physnet2}"
}

# The underlay address is the operator's (DESIGN.md §3.4): put it on the
# uplink, and refuse to go on if another device already holds it (the
# guest configured the wrong NIC), rather than run VXLAN over that one.
configure_underlay() {
  local holder
  holder="$(device_by_address "$WEFT_TUNNEL_IP")"
  if [ -n "$holder" ] && [ "$holder" != "$uplink" ]; then
    die "$WEFT_TUNNEL_IP is on $holder, not on the uplink $uplink"
  fi
  ip link set dev "$uplink" up
  ip addr replace "$WEFT_TUNNEL_IP/$prefixlen" dev "$uplink"
}

# A physnet interface carries tenant frames only: up, no address, no IPv6
# chatter of the node's own, and promiscuous, since its frames are addressed
# to the VMs' MACs rather than the NIC's.
configure_physnet() {
  local dev="$1"
  ip link set dev "$dev" up promisc on
  sysctl -qw "net.ipv6.conf.${dev//./\/}.disable_ipv6=1"
}

# weft mounts bpffs itself when it is not mounted; mounting it here too keeps
# a hand-run `bpftool` or `weft` in another mount namespace from differing.
mount_bpffs() {
  if [ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" != "bpf_fs" ]; then
    mount -t bpf bpf /sys/fs/bpf
  fi
}

# The project's own dependency list, then the weft command only (the tests
# and benchmarks are not needed on a lab node, and take long on two CPUs).
build() {
  bash "$src/scripts/install-deps.sh"
  if [ "${WEFT_BUILD_ALL:-}" = 1 ]; then
    bash "$src/scripts/build.sh"
    return
  fi
  log "building weft in $src/build"
  cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE="${WEFT_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
  cmake --build "$src/build" --target weft -j"$(nproc)"
}

install_node() {
  local mappings="physnet1:$physnet1"
  [ -z "$physnet2" ] || mappings+=",physnet2:$physnet2"
  "${weft[@]}" node install --uplink "$uplink" --tunnel-ip "$WEFT_TUNNEL_IP" \
    --physical-interface-mappings "$mappings"
}

# The VMs first, so that apply finds every local port's device and attaches
# it (a port without its device yet would wait for the next apply).
plug_and_apply() {
  bash "$src/vagrant/plug-vms.sh" --node "$WEFT_NODE" --doc "$doc" up
  "${weft[@]}" apply -f "$doc"
}

main() {
  [ "$(id -u)" -eq 0 ] || die "run as root"
  [ -r "$doc" ] || die "no document $doc (is the repository synced to $src?)"
  find_devices
  configure_underlay
  configure_physnet "$physnet1"
  [ -z "$physnet2" ] || configure_physnet "$physnet2"
  mount_bpffs
  build
  install_node
  plug_and_apply
  "${weft[@]}" port list
  log "ready; check the lab from the host with vagrant/check.sh"
}

# Sourced (by test-local.sh, to try the device steps in a namespace), it defines only.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
