#!/usr/bin/env bash
# The fast checks of vagrant/ (ctest vagrant_validate; no VM is booted):
#   * `vagrant validate` with the libvirt provider's config, and without any
#     provider's (VirtualBox is not in Debian, and Vagrant validates a
#     provider's block only where that provider is installed);
#   * lab.json is JSON, and names the nodes, tunnel IPs and physnets the
#     Vagrantfile makes;
#   * every shell script parses (bash -n) and passes shellcheck.
# A missing tool fails the check: `scripts/install-deps.sh --tests` installs them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
failures=0

fail() {
  echo "vagrant_validate: FAIL: $*" >&2
  failures=$((failures + 1))
}

need() {
  command -v "$1" >/dev/null ||
    { echo "vagrant_validate: $1 is not installed (scripts/install-deps.sh --tests installs it)" >&2; exit 1; }
}

validate_vagrantfile() {
  need vagrant
  vagrant plugin list 2>/dev/null | grep -q '^vagrant-libvirt ' ||
    { echo "vagrant_validate: the vagrant-libvirt plugin is missing (Debian's vagrant-libvirt)" >&2; exit 1; }
  # Vagrant's state of this check goes to a scratch directory, not vagrant/.vagrant or ~/.vagrant.d.
  local scratch
  scratch="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand now
  trap "rm -rf '$scratch'" EXIT
  local env=(VAGRANT_CWD="$here" VAGRANT_DOTFILE_PATH="$scratch/dotfile" VAGRANT_HOME="$scratch/home"
    VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_NO_COLOR=1)
  if env "${env[@]}" VAGRANT_DEFAULT_PROVIDER=libvirt vagrant validate; then
    echo "vagrant_validate: libvirt: ok"
  else
    fail "vagrant validate (libvirt)"
  fi
  if env "${env[@]}" vagrant validate --ignore-provider; then
    echo "vagrant_validate: without provider config: ok"
  else
    fail "vagrant validate --ignore-provider"
  fi
}

# The Vagrantfile and lab.json agree: each machine's provisioner names a node
# of the document with its tunnel_ip, on the underlay NIC's address, and no
# two NICs share a MAC. Ruby reads the Vagrantfile against a stand-in for
# Vagrant that records what it is told.
check_consistency() {
  need ruby
  local machines
  machines="$(cd "$here" && ruby - Vagrantfile <<'RUBY'
require "json"
class Recorder
  def initialize(path = [], log = [])
    @path, @log = path, log
  end
  attr_reader :log
  def method_missing(name, *args, **kw, &block)
    @log << { "path" => @path + [name.to_s], "args" => args.map(&:to_s), "kw" => kw }
    child = Recorder.new(@path + [name.to_s] + args.map(&:to_s), @log)
    block&.call(child)
    child
  end
  def respond_to_missing?(*) = true
end
module Vagrant
  def self.configure(_version)
    $root = Recorder.new
    yield $root
  end
end
load ARGV[0]
machines = Hash.new { |h, k| h[k] = { "networks" => [], "env" => nil } }
$root.log.each do |call|
  path = call["path"]
  next unless path[0..1] == ["vm", "define"]
  machines[path[2]]["networks"] << call["kw"] if path[-2..] == ["vm", "network"]
  machines[path[2]]["env"] = call["kw"][:env] if path[-2..] == ["vm", "provision"]
end
puts JSON.generate(machines)
RUBY
  )" || { fail "the Vagrantfile does not evaluate"; return; }
  if python3 - "$here/lab.json" "$machines" <<'PYTHON'; then
import json, sys
doc = json.load(open(sys.argv[1]))
machines = json.loads(sys.argv[2])
nodes = {n["name"]: n.get("tunnel_ip") for n in doc["nodes"]}
problems, macs = [], []
if sorted(machines) != sorted(nodes):
    problems.append(f"machines {sorted(machines)} are not the document's nodes {sorted(nodes)}")
for name, m in machines.items():
    env = m["env"] or {}
    if env.get("WEFT_NODE") != name:
        problems.append(f"{name}: WEFT_NODE is {env.get('WEFT_NODE')}")
    if name in nodes and env.get("WEFT_TUNNEL_IP") != nodes[name]:
        problems.append(f"{name}: WEFT_TUNNEL_IP {env.get('WEFT_TUNNEL_IP')} is not tunnel_ip {nodes[name]}")
    ips = [n.get("ip") for n in m["networks"] if n.get("ip")]
    if ips != [env.get("WEFT_TUNNEL_IP")]:
        problems.append(f"{name}: the addressed NICs {ips} are not the tunnel IP alone")
    nic_macs = [n["mac"].lower() for n in m["networks"]]
    env_macs = [env.get(k, "").replace(":", "").lower()
                for k in ("WEFT_UPLINK_MAC", "WEFT_PHYSNET1_MAC", "WEFT_PHYSNET2_MAC")]
    if nic_macs != env_macs:
        problems.append(f"{name}: NIC MACs {nic_macs} are not the provisioner's {env_macs}")
    macs += nic_macs
if len(set(macs)) != len(macs):
    problems.append(f"MACs repeat: {macs}")
physnets = {n.get("provider:physical_network") for n in doc["networks"]} - {None}
if not physnets <= {"physnet1", "physnet2"}:
    problems.append(f"the document uses physnets {sorted(physnets)}; the VMs have physnet1 and physnet2")
for p in problems:
    print("vagrant_validate:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PYTHON
    echo "vagrant_validate: the Vagrantfile and lab.json agree"
  else
    fail "the Vagrantfile and lab.json disagree"
  fi
}

check_scripts() {
  need shellcheck
  local script
  for script in "$here"/*.sh; do
    bash -n "$script" || fail "bash -n $script"
    shellcheck -x "$script" || fail "shellcheck $script"
  done
  echo "vagrant_validate: scripts: $(cd "$here" && echo ./*.sh)"
}

check_document() {
  need python3
  python3 -m json.tool "$here/lab.json" >/dev/null || fail "lab.json is not JSON"
}

validate_vagrantfile
check_scripts
check_document
check_consistency
if [ "$failures" -gt 0 ]; then
  echo "vagrant_validate: $failures failures" >&2
  exit 1
fi
echo "vagrant_validate: all passed"
