#!/usr/bin/env bash
# The lab's reachability matrix: every VM pings every other VM's address, and
# each pair is compared with what the document says: the same network (on
# any node) is reachable, another network or tenant is isolated. Prints one
# row per pair with each VM's node, and exits 1 on any mismatch (2 if the
# lab is not up).
#
# Two tenants use the same addresses, so a reply does not tell who answered:
# the receivers' ICMP counters (InEchos) do. Pings run in rounds in which no
# address is probed twice, and every node's counters are read between rounds.
#
#   ./check.sh                  from the host, in vagrant/ (reaches the VMs over
#                               `vagrant ssh-config`, one multiplexed ssh per node)
#   ./check.sh --local          every node's VMs are on this machine (tests)
# options:
#   --nodes "node1 node2 node3" the nodes to reach (default: these three)
#   --doc FILE                  the document (with ssh: its path on the nodes;
#                               default: each node's copy of vagrant/lab.json)
#   --prefix P                  VM namespace prefix, as plug-vms.sh's (default vm-)
#   --node-netns-prefix P       --local: node N's taps are in namespace P<N>
#   --count N --wait S          echo requests per probe, seconds to wait (2, 2)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode=ssh
nodes=(node1 node2 node3)
doc=""
prefix="vm-"
node_netns_prefix=""
count=2
wait_s=2
tmp=""

die() {
  echo "check: $*" >&2
  exit 2
}

cleanup() {
  if [ -n "$tmp" ] && [ -d "$tmp" ]; then
    # Close the ssh control connections this run opened.
    if [ "$mode" = ssh ] && [ -f "$tmp/ssh_config" ]; then
      local n
      for n in "${nodes[@]}"; do
        ssh -F "$tmp/ssh_config" -o ControlPath="$tmp/%h.ctl" -O exit "$n" >/dev/null 2>&1 || true
      done
    fi
    rm -rf "$tmp"
  fi
}

# plug-vms.sh ARGS on node $1, as root: over ssh on a VM, or here.
on() {
  local node="$1"
  shift
  local args=(--node "$node" --prefix "$prefix")
  [ -z "$doc" ] || args+=(--doc "$doc")
  if [ "$mode" = local ]; then
    [ -z "$node_netns_prefix" ] || args+=(--node-netns "$node_netns_prefix$node")
    bash "$here/plug-vms.sh" "${args[@]}" "$@"
  else
    # shellcheck disable=SC2029 # expanded here on purpose: the remote command line
    ssh -F "$tmp/ssh_config" -o ControlMaster=auto -o ControlPath="$tmp/%h.ctl" \
      -o ControlPersist=120 -o LogLevel=ERROR "$node" \
      sudo bash /weft/vagrant/plug-vms.sh "$(printf '%q ' "${args[@]}" "$@")"
  fi
}

connect() {
  [ "$mode" = ssh ] || return 0
  command -v vagrant >/dev/null || die "vagrant is not installed (or run inside with --local)"
  (cd "$here" && vagrant ssh-config "${nodes[@]}") >"$tmp/ssh_config" 2>"$tmp/ssh_config.err" ||
    die "vagrant ssh-config failed (are the VMs up? vagrant up): $(cat "$tmp/ssh_config.err")"
}

# Every VM of the document: name → node, network, address.
declare -A vm_node=() vm_net=() vm_netname=() vm_addr=()
vms=()
read_vms() {
  local list name node net netname _project _port _device _mac _mtu addresses
  list="$(on "${nodes[0]}" list)" || die "cannot read the document's VMs on ${nodes[0]}"
  while IFS=$'\t' read -r name node net netname _project _port _device _mac _mtu addresses; do
    [ -n "$name" ] || continue
    vms+=("$name")
    vm_node[$name]="$node"
    vm_net[$name]="$net"
    vm_netname[$name]="$netname"
    # The address a VM is pinged at: its first IPv4 address.
    vm_addr[$name]="${addresses%%,*}"
    vm_addr[$name]="${vm_addr[$name]%%/*}"
    [ "${vm_addr[$name]}" != "-" ] || vm_addr[$name]=""
    local known=0 n
    for n in "${nodes[@]}"; do [ "$n" = "$node" ] && known=1; done
    [ "$known" = 1 ] || die "VM $name is on $node, which is not among --nodes (${nodes[*]})"
  done <<<"$list"
  [ ${#vms[@]} -gt 0 ] || die "the document has no VMs"
}

# Each node says whether its VMs are plugged as the document says.
check_plugged() {
  local n bad=0
  for n in "${nodes[@]}"; do
    if ! on "$n" status >"$tmp/status.$n"; then
      bad=1
      sed "s/^/$n: /" "$tmp/status.$n" >&2
    fi
  done
  [ "$bad" = 0 ] || die "the lab is not up (run: vagrant provision)"
}

# Every node's counters, read in parallel, into the array named $1.
read_counters() {
  local -n into="$1" # the caller's array
  local n name value pids=()
  for n in "${nodes[@]}"; do
    on "$n" counters >"$tmp/counters.$n" &
    pids+=($!)
  done
  for n in "${pids[@]}"; do
    wait "$n" || die "cannot read the VMs' counters"
  done
  for n in "${nodes[@]}"; do
    while read -r name value; do
      # shellcheck disable=SC2034 # into is a name reference
      into["$name"]="$value"
    done <"$tmp/counters.$n"
  done
}

# The probes: one per (VM, another VM's address that is not its own).
declare -A replied=() reached=()
probes=()
plan_probes() {
  local from to address seen
  for from in "${vms[@]}"; do
    seen=" "
    [ -n "${vm_addr[$from]}" ] || continue
    for to in "${vms[@]}"; do
      address="${vm_addr[$to]}"
      if [ -z "$address" ] || [ "$address" = "${vm_addr[$from]}" ]; then continue; fi
      case "$seen" in *" $address "*) continue ;; esac
      seen+="$address "
      probes+=("$from:$address")
    done
  done
}

# Rounds in which no address is probed twice, so that a receiver's counter
# tells which probe reached it. Prints one round a line.
plan_rounds() {
  local -a rounds=()
  local probe address i placed
  for probe in "${probes[@]}"; do
    address="${probe#*:}"
    placed=0
    for i in "${!rounds[@]}"; do
      case " ${rounds[$i]} " in *":$address "*) continue ;; esac
      rounds[i]+=" $probe"
      placed=1
      break
    done
    [ "$placed" = 1 ] || rounds+=("$probe")
  done
  printf '%s\n' "${rounds[@]}"
}

# One round: each node pings from its own VMs, all nodes at once; then
# whoever holds the address and counted a new echo request was reached.
run_round() {
  local -a round
  read -r -a round <<<"$1"
  local -A before=() after=()
  read_counters before
  local n probe pids=()
  for n in "${nodes[@]}"; do
    local mine=()
    for probe in "${round[@]}"; do
      [ "${vm_node[${probe%%:*}]}" = "$n" ] && mine+=("$probe")
    done
    : >"$tmp/ping.$n"
    [ ${#mine[@]} -gt 0 ] || continue
    on "$n" ping "$count" "$wait_s" "${mine[@]}" >"$tmp/ping.$n" &
    pids+=($!)
  done
  for n in "${pids[@]}"; do
    wait "$n" || die "pinging failed"
  done
  read_counters after
  local from address rc vm
  for n in "${nodes[@]}"; do
    while read -r from address rc; do
      replied[$from:$address]="$rc"
      for vm in "${vms[@]}"; do
        if [ "${vm_addr[$vm]}" = "$address" ] && [ "${after[$vm]:-0}" -gt "${before[$vm]:-0}" ]; then
          reached[$from:$address]+=" $vm"
        fi
      done
    done <"$tmp/ping.$n"
  done
}

# The matrix: one row per ordered pair of VMs.
report() {
  local from to address expected measured result passed=0 failed=0 skipped=0
  printf '%-6s %-8s %-6s   %-6s %-8s %-6s   %-10s %-9s %-12s %s\n' \
    FROM NODE NET TO NODE NET ADDRESS EXPECTED MEASURED RESULT
  for from in "${vms[@]}"; do
    for to in "${vms[@]}"; do
      [ "$from" != "$to" ] || continue
      address="${vm_addr[$to]}"
      if [ "${vm_net[$from]}" = "${vm_net[$to]}" ]; then expected=reachable; else expected=isolated; fi
      if [ -z "$address" ] || [ -z "${vm_addr[$from]}" ]; then
        measured=no-address result=skipped
      elif [ "$address" = "${vm_addr[$from]}" ]; then
        # Its own address: the ping would never leave the VM.
        measured=self-address result=skipped
      elif [ -z "${replied[$from:$address]+set}" ]; then
        measured=not-probed result=MISMATCH
      else
        case "${reached[$from:$address]:-} " in
          *" $to "*) if [ "${replied[$from:$address]}" = 0 ]; then measured=reachable; else measured=one-way; fi ;;
          *) measured=isolated ;;
        esac
        if [ "$measured" = "$expected" ]; then result=ok; else result=MISMATCH; fi
      fi
      case "$result" in
        ok) passed=$((passed + 1)) ;;
        skipped) skipped=$((skipped + 1)) ;;
        *) failed=$((failed + 1)) ;;
      esac
      printf '%-6s %-8s %-6s   %-6s %-8s %-6s   %-10s %-9s %-12s %s\n' \
        "$from" "${vm_node[$from]}" "${vm_netname[$from]}" "$to" "${vm_node[$to]}" \
        "${vm_netname[$to]}" "${address:--}" "$expected" "$measured" "$result"
    done
  done
  echo "vagrant lab: $passed passed, $failed failed, $skipped skipped"
  [ "$failed" = 0 ]
}

main() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --local) mode=local; shift ;;
      --nodes) read -r -a nodes <<<"$2"; shift 2 ;;
      --doc) doc="$2"; shift 2 ;;
      --prefix) prefix="$2"; shift 2 ;;
      --node-netns-prefix) node_netns_prefix="$2"; shift 2 ;;
      --count) count="$2"; shift 2 ;;
      --wait) wait_s="$2"; shift 2 ;;
      -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      *) die "unknown argument $1 (--help)" ;;
    esac
  done
  [ ${#nodes[@]} -gt 0 ] || die "no --nodes"
  tmp="$(mktemp -d)"
  trap cleanup EXIT
  connect
  read_vms
  check_plugged
  plan_probes
  local rounds round started=$SECONDS
  rounds="$(plan_rounds)"
  echo "check: ${#vms[@]} VMs on ${#nodes[@]} nodes, ${#probes[@]} probes in $(wc -l <<<"$rounds") rounds"
  while read -r round; do
    run_round "$round"
  done <<<"$rounds"
  echo "check: measured in $((SECONDS - started)) s"
  report
}

main "$@"
