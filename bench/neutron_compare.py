#!/usr/bin/env python3
"""neutron_compare: weft against Neutron's linuxbridge datapath, cross-node, in one run.

What it builds (all in network namespaces named PREFIX-*, default `wbench`):
two nodes, each with two VMs (a VM is a namespace whose eth0 is the peer of a
veth whose host end, in the node namespace, is named `tap` + the first 11
characters of its Neutron port id), three times over:

  (a) weft: each node namespace has an uplink veth (`wbench-up`, addressed with
      its tunnel IP) into an underlay namespace holding a bridge;
      `weft --netns NODE --node NODE node install --uplink wbench-up --tunnel-ip IP`
      then `weft ... apply -f DOC.json` with a VXLAN network, the four ports
      (`binding:host_id` = their node) and one security group on every port.
  (b) Neutron's linuxbridge agent datapath, built as that agent builds it, on
      the same underlay shape: per node a kernel vxlan device (`vxlan-1001 ...
      dstport 4789 nolearning`), l2pop's static FDB entries (a flood entry
      00:00:00:00:00:00 per remote VTEP and one per remote MAC), a bridge
      `brq<network id>` with the vxlan device and the taps, and the same
      security group as iptables rules in the iptables_firewall driver's shape
      (raw-table conntrack zones, physdev dispatch to per-port chains
      neutron-linuxbri-i/o/s..., RELATED,ESTABLISHED first, INVALID dropped,
      the rules, then the fallback drop), with
      net.bridge.bridge-nf-call-iptables=1 in the node namespace. The rules
      are loaded with iptables-restore, into the backend Debian 12's
      `iptables` points at (nf_tables unless changed; --iptables chooses).
  (c) the floor: the same four VMs' veths on one plain bridge, no tunnel, no
      filtering (bridge-nf off): what the machine can do.

The security group: egress IPv4 any; ingress ICMP, TCP 5201 (iperf3), TCP
7000 (request/response), UDP 7001 (small packets), and N filler rules (TCP
ports from 198.18.x.y/32 prefixes, which the test traffic never matches).
The fillers come first in the group, so that in iptables a new connection
walks all of them (the worst case; weft's matching does not depend on order).
N is 0, 1,000 and 10,000 (--rules). Every port of both nodes has the group,
as in Neutron, so (b) holds 4 x N filler rules per node.

What it measures, from the first VM of node 1 (the client) to the first VM
of node 2 (the server), both pinned to CPU 0 by default (--cpus: on this
2-vCPU machine a wake-up across CPUs costs ~100 us and would hide the
datapath in request/response), in rounds that interleave the three set-ups
(a, b, c, then b, c, a, ...), per metric; the figure is the median of the rounds:
  tcp   TCP throughput, one stream (iperf3), Gbit/s
  udp   UDP datagrams of 64 payload bytes received per second, from a
        sendmmsg sender as fast as it goes (bench/net/wbench_net), Mpps
  rr    TCP request/response, 1 byte each way on one connection (netperf
        TCP_RR's shape; wbench_net rr), transactions/s
  rtt   ping -f round trip, average, microseconds (ping prints whole microseconds)
  crr   new TCP connections per second, each with one 1-byte request and
        response, closed by the client (netperf TCP_CRR's shape; wbench_net crr)
Before measuring, each set-up is checked: the server answers, and a TCP port
that no rule admits is refused in (a) and (b) (the filter is in force).

It prints a table with the ratios a/b (weft against Neutron) and a/c (weft
against the floor) and the issue's targets (rr >= 1.3x, rtt <= 0.6x, udp >=
1.3x, tcp >= 1.0x, crr >= 1.5x at 0 rules and >= 3x at 10,000), writes JSON
and, with python3-matplotlib, a PNG (rule count on the x axis, one panel per
metric). It is a benchmark, not a test: nothing is asserted about time.

--quick is a smoke run (1 s, 2 rounds, 0 and 1,000 rules: about 1.5 minutes);
the default (5 s, 5 rounds, 0/1,000/10,000 rules) takes about 25 minutes.
--replot results.json redraws a finished run.

Everything it creates is removed when it ends, also on failure or Ctrl-C
(weft node uninstall of its nodes, then the namespaces); traffic stays
between its namespaces. Needs root, build/weft and build/wbench_net
(cmake --build build), and `scripts/install-deps.sh --bench`.
"""

import argparse
import fcntl
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

NETWORK_ID = "b1c2d3e4-0a0b-4c0d-8e0f-100000000001"
SUBNET_ID = "b1c2d3e4-0a0b-4c0d-8e0f-200000000001"
SG_ID = "b1c2d3e4-0a0b-4c0d-8e0f-300000000001"
VNI = 1001
MTU = 1450
UPLINK = "wbench-up"
CIDR_PREFIXLEN = 24
IPERF_PORT = 5201
RR_PORT = 7000
UDP_PORT = 7001
BLOCKED_PORT = 7999  # a server listens there too; only (c) may reach it
CT_MAX = 262144  # as the kernel's nf_conntrack_max here, for (a) and (b) alike

NODES = [
    {"key": "n1", "tunnel_ip": "172.31.0.1"},
    {"key": "n2", "tunnel_ip": "172.31.0.2"},
]
VMS = [
    {"key": "n1v1", "node": "n1", "ip": "10.0.0.11", "mac": "fa:16:3e:00:01:11",
     "port_id": "5e0b1011-0001-4000-8000-000000000011"},
    {"key": "n1v2", "node": "n1", "ip": "10.0.0.12", "mac": "fa:16:3e:00:01:12",
     "port_id": "5e0b1012-0002-4000-8000-000000000012"},
    {"key": "n2v1", "node": "n2", "ip": "10.0.0.21", "mac": "fa:16:3e:00:02:21",
     "port_id": "5e0b2021-0003-4000-8000-000000000021"},
    {"key": "n2v2", "node": "n2", "ip": "10.0.0.22", "mac": "fa:16:3e:00:02:22",
     "port_id": "5e0b2022-0004-4000-8000-000000000022"},
]
CLIENT_VM, SERVER_VM = "n1v1", "n2v1"

MODES = {
    "a": "weft",
    "b": "neutron-lb",
    "c": "floor",
}

# metric: (label, unit, scale from the raw figure, higher is better)
METRICS = {
    "tcp": ("TCP throughput", "Gbit/s", 1e-9, True),
    "udp": ("UDP 64 B received", "Mpps", 1e-6, True),
    "rr": ("TCP request/response", "k trans/s", 1e-3, True),
    "rtt": ("ping -f RTT", "us", 1.0, False),
    "crr": ("new TCP connections", "k conn/s", 1e-3, True),
}

# The targets for a/b: (comparison, ratio, rule counts it applies to or None for all)
TARGETS = {
    "rr": [(">=", 1.3, None)],
    "rtt": [("<=", 0.6, None)],
    "udp": [(">=", 1.3, None)],
    "tcp": [(">=", 1.0, None)],
    "crr": [(">=", 1.5, {0}), (">=", 3.0, {10000})],
}


def tap_name(port_id):
    """Nova's libvirt device name for a port (DESIGN.md 3.1)."""
    return ("tap" + port_id)[:14]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --- processes and the things we create ---------------------------------------


class Failed(RuntimeError):
    pass


def run(argv, check=True, timeout=120, input=None):
    """Runs argv, returns CompletedProcess (text)."""
    try:
        proc = subprocess.run(argv, input=input, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise Failed("%s: timed out after %ss" % (" ".join(argv[:8]), timeout)) from e
    if check and proc.returncode != 0:
        raise Failed("%s: exit %d: %s" % (" ".join(argv[:12]), proc.returncode,
                                          (proc.stderr or proc.stdout).strip()[-2000:]))
    return proc


def nsexec(ns, *argv):
    return ["ip", "netns", "exec", ns] + list(argv)


class Janitor:
    """Remembers everything the run makes and removes it, newest first."""

    def __init__(self, weft, state_dir):
        self.weft = weft
        self.state_dir = state_dir
        self.netns = []
        self.weft_nodes = []  # (netns, node)
        self.procs = []

    def add_netns(self, name):
        run(["ip", "netns", "add", name])
        self.netns.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])

    def spawn(self, argv):
        """Starts a long-running process; it is killed (by pid) at cleanup."""
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        self.procs.append(proc)
        return proc

    def cleanup(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.procs = []
        for ns, node in reversed(self.weft_nodes):
            p = run([self.weft, "--netns", ns, "--node", node, "--state-dir", self.state_dir,
                     "node", "uninstall"], check=False, timeout=60)
            if p.returncode != 0:
                log("cleanup: weft node uninstall %s: %s" % (node, p.stderr.strip()))
        self.weft_nodes = []
        for ns in reversed(self.netns):
            run(["ip", "netns", "del", ns], check=False)
        self.netns = []


def stale_cleanup(prefix, weft, state_dir):
    """Removes what an earlier run with this prefix left (the lock says none runs)."""
    names = [n.split()[0] for n in run(["ip", "netns", "list"]).stdout.splitlines() if n]
    mine = [n for n in names if n.startswith(prefix + "-")]
    pins = "/sys/fs/bpf/weft"
    nodes = [n for n in (os.listdir(pins) if os.path.isdir(pins) else [])
             if n.startswith(prefix + "-")]
    if not mine and not nodes:
        return
    log("removing what an earlier run left: %s" % " ".join(sorted(set(mine + nodes))))
    for node in nodes:
        if node in names:
            run([weft, "--netns", node, "--node", node, "--state-dir", state_dir,
                 "node", "uninstall"], check=False, timeout=60)
        if os.path.isdir(os.path.join(pins, node)):
            shutil.rmtree(os.path.join(pins, node), ignore_errors=True)
    for ns in mine:
        run(["ip", "netns", "del", ns], check=False)


# --- building blocks -------------------------------------------------------------


def sysctl(ns, key, value):
    run(nsexec(ns, "sysctl", "-q", "-w", "%s=%s" % (key, value)))


def plug_vm(jan, vm_ns, host_ns, vm):
    """A VM as Nova plugs it: its eth0 is the peer of a veth named after its port."""
    jan.add_netns(vm_ns)
    tap = tap_name(vm["port_id"])
    run(["ip", "-n", host_ns, "link", "add", tap, "mtu", str(MTU), "type", "veth", "peer",
         "name", "eth0", "netns", vm_ns])
    run(["ip", "-n", vm_ns, "link", "set", "eth0", "address", vm["mac"], "mtu", str(MTU), "up"])
    run(["ip", "-n", vm_ns, "addr", "add", "%s/%d" % (vm["ip"], CIDR_PREFIXLEN), "dev", "eth0"])
    run(["ip", "-n", host_ns, "link", "set", tap, "up"])
    sysctl(vm_ns, "net.ipv6.conf.all.disable_ipv6", 1)
    # The client opens tens of thousands of connections per round (crr).
    sysctl(vm_ns, "net.ipv4.tcp_tw_reuse", 1)
    sysctl(vm_ns, "net.ipv4.ip_local_port_range", "1024 65535")
    return tap


def underlay(jan, ns, node_nss):
    """The operator's underlay: one bridge, each node's uplink veth on it."""
    jan.add_netns(ns)
    sysctl(ns, "net.bridge.bridge-nf-call-iptables", 0)
    run(["ip", "-n", ns, "link", "add", "wbench-br", "type", "bridge"])
    run(["ip", "-n", ns, "link", "set", "wbench-br", "up"])
    for i, (node_ns, node) in enumerate(zip(node_nss, NODES)):
        port = "wbench-p%d" % (i + 1)
        run(["ip", "-n", ns, "link", "add", port, "type", "veth", "peer", "name", UPLINK,
             "netns", node_ns])
        run(["ip", "-n", ns, "link", "set", port, "master", "wbench-br", "up"])
        run(["ip", "-n", node_ns, "addr", "add", node["tunnel_ip"] + "/24", "dev", UPLINK])
        run(["ip", "-n", node_ns, "link", "set", UPLINK, "up"])


def filler_rules(n):
    """N ingress rules that never match the test traffic (unique, as Neutron insists)."""
    for i in range(n):
        yield {"prefix": "198.18.%d.%d/32" % (i // 250, i % 250 + 1),
               "port": 10000 + i % 50000}


ADMIT = [  # (protocol, port or None): what the test traffic needs, ingress
    ("icmp", None),
    ("tcp", IPERF_PORT),
    ("tcp", RR_PORT),
    ("udp", UDP_PORT),
]


class Side:
    """One of the three set-ups: namespaces of its VMs, a way to load N rules."""

    mode = "?"

    def __init__(self, args, jan):
        self.args = args
        self.jan = jan
        self.vm_ns = {vm["key"]: "%s-%s-%s" % (args.prefix, self.mode, vm["key"]) for vm in VMS}
        self.servers = []

    @property
    def client(self):
        return self.vm_ns[CLIENT_VM]

    @property
    def server(self):
        return self.vm_ns[SERVER_VM]

    def build(self):
        raise NotImplementedError

    def load_rules(self, n):
        """Loads the security group with n fillers; returns seconds taken."""
        return 0.0

    def diagnose(self):
        return ""

    def drops(self):
        """Packets the datapath dropped so far, by reason (both nodes)."""
        return {}

    def start_servers(self, net_tool):
        for port in (RR_PORT, BLOCKED_PORT):
            proc = self.jan.spawn(nsexec(self.server, *pinned(self.args, "server", [
                net_tool, "server", str(port)])))
            if proc.stdout.readline().strip() != "ready":
                raise Failed("%s: wbench_net server did not start: %s" %
                             (self.mode, proc.stderr.read()))
        self.jan.spawn(nsexec(self.server, *pinned(self.args, "server", [
            "iperf3", "-s", "-p", str(IPERF_PORT)])))


class Weft(Side):
    mode = "a"

    def node_ns(self, node):
        return "%s-a-%s" % (self.args.prefix, node["key"])

    def weft(self, node, *argv, timeout=300):
        ns = self.node_ns(node)
        return run([self.args.weft, "--netns", ns, "--node", ns, "--state-dir",
                    self.args.state_dir] + list(argv), timeout=timeout)

    def build(self):
        nss = [self.node_ns(n) for n in NODES]
        for ns in nss:
            self.jan.add_netns(ns)
        underlay(self.jan, "%s-a-ul" % self.args.prefix, nss)
        for vm in VMS:
            node = next(n for n in NODES if n["key"] == vm["node"])
            plug_vm(self.jan, self.vm_ns[vm["key"]], self.node_ns(node), vm)
        for node in NODES:
            ns = self.node_ns(node)
            self.jan.weft_nodes.append((ns, ns))
            self.weft(node, "node", "install", "--uplink", UPLINK, "--tunnel-ip",
                      node["tunnel_ip"], "--ct-max", str(CT_MAX), "--ct-network-max",
                      str(CT_MAX))

    def document(self, n):
        rules = [{"id": "b1c2d3e4-eeee-4000-8000-%012x" % 0, "direction": "egress",
                  "ethertype": "IPv4", "protocol": None, "remote_ip_prefix": None,
                  "remote_group_id": None}]
        for i, f in enumerate(filler_rules(n)):
            rules.append({"id": "b1c2d3e4-ffff-4000-8000-%012x" % i, "direction": "ingress",
                          "ethertype": "IPv4", "protocol": "tcp", "port_range_min": f["port"],
                          "port_range_max": f["port"], "remote_ip_prefix": f["prefix"],
                          "remote_group_id": None})
        for j, (proto, port) in enumerate(ADMIT):
            rule = {"id": "b1c2d3e4-aaaa-4000-8000-%012x" % j, "direction": "ingress",
                    "ethertype": "IPv4", "protocol": proto, "remote_ip_prefix": "0.0.0.0/0",
                    "remote_group_id": None}
            if port is not None:
                rule["port_range_min"] = rule["port_range_max"] = port
            rules.append(rule)
        return {
            "nodes": [{"name": self.node_ns(n), "tunnel_ip": n["tunnel_ip"]} for n in NODES],
            "networks": [{"id": NETWORK_ID, "name": "wbench", "project_id": "wbench",
                          "provider:network_type": "vxlan", "provider:segmentation_id": VNI,
                          "provider:physical_network": None, "mtu": MTU,
                          "port_security_enabled": True}],
            "subnets": [{"id": SUBNET_ID, "network_id": NETWORK_ID, "ip_version": 4,
                         "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1",
                         "enable_dhcp": False}],
            "ports": [{"id": vm["port_id"], "network_id": NETWORK_ID,
                       "mac_address": vm["mac"],
                       "fixed_ips": [{"subnet_id": SUBNET_ID, "ip_address": vm["ip"]}],
                       "binding:host_id": self.node_ns(
                           next(n for n in NODES if n["key"] == vm["node"])),
                       "device_owner": "compute:nova", "security_groups": [SG_ID],
                       "port_security_enabled": True} for vm in VMS],
            "security_groups": [{"id": SG_ID, "name": "wbench", "stateful": True,
                                 "security_group_rules": rules}],
        }

    def load_rules(self, n):
        path = os.path.join(self.args.state_dir, "wbench-doc-%d.json" % n)
        with open(path, "w") as f:
            json.dump(self.document(n), f)
        start = time.monotonic()
        for node in NODES:
            self.weft(node, "apply", "-f", path)
        return time.monotonic() - start

    def drops(self):
        counts = {}
        for node in NODES:
            p = run([self.args.weft, "-j", "--netns", self.node_ns(node), "--node",
                     self.node_ns(node), "--state-dir", self.args.state_dir, "stats"],
                    check=False)
            try:
                rows = json.loads(p.stdout)
            except ValueError:
                continue
            for row in rows if isinstance(rows, list) else []:
                reason = str(row.get("reason", ""))
                if reason.startswith("drop"):
                    counts[reason] = counts.get(reason, 0) + int(row.get("packets", 0))
        return counts

    def diagnose(self):
        out = []
        for node in NODES:
            p = run([self.args.weft, "--netns", self.node_ns(node), "--node",
                     self.node_ns(node), "--state-dir", self.args.state_dir, "stats"],
                    check=False)
            out.append("weft stats on %s:\n%s" % (self.node_ns(node), p.stdout.strip()))
        return "\n".join(out)


class Neutron(Side):
    mode = "b"

    def node_ns(self, node):
        return "%s-b-%s" % (self.args.prefix, node["key"])

    def build(self):
        nss = [self.node_ns(n) for n in NODES]
        for ns in nss:
            self.jan.add_netns(ns)
        underlay(self.jan, "%s-b-ul" % self.args.prefix, nss)
        vxlan = "vxlan-%d" % VNI
        brq = ("brq" + NETWORK_ID)[:14]
        for node in NODES:
            ns = self.node_ns(node)
            # The agent: its vxlan device on the uplink, its bridge, the taps in it.
            run(["ip", "-n", ns, "link", "add", vxlan, "type", "vxlan", "id", str(VNI), "dev",
                 UPLINK, "local", node["tunnel_ip"], "dstport", "4789", "nolearning"])
            run(["ip", "-n", ns, "link", "set", vxlan, "mtu", str(MTU)])
            run(["ip", "-n", ns, "link", "add", brq, "type", "bridge", "forward_delay", "0",
                 "stp_state", "0"])
            sysctl(ns, "net.ipv6.conf.%s.disable_ipv6" % brq, 1)
            run(["ip", "-n", ns, "link", "set", vxlan, "master", brq, "up"])
            run(["ip", "-n", ns, "link", "set", brq, "up"])
            sysctl(ns, "net.bridge.bridge-nf-call-iptables", 1)
        for vm in VMS:
            node = next(n for n in NODES if n["key"] == vm["node"])
            tap = plug_vm(self.jan, self.vm_ns[vm["key"]], self.node_ns(node), vm)
            run(["ip", "-n", self.node_ns(node), "link", "set", tap, "master", brq])
        # l2pop: per remote VTEP a flood entry, per remote port its MAC.
        for node in NODES:
            ns = self.node_ns(node)
            for other in NODES:
                if other is node:
                    continue
                run(["bridge", "-n", ns, "fdb", "append", "00:00:00:00:00:00", "dev", vxlan,
                     "dst", other["tunnel_ip"]])
                for vm in VMS:
                    if vm["node"] == other["key"]:
                        run(["bridge", "-n", ns, "fdb", "replace", vm["mac"], "dev", vxlan,
                             "dst", other["tunnel_ip"]])

    def ruleset(self, node, n):
        """The iptables_firewall driver's tables for the ports of one node."""
        brq = ("brq" + NETWORK_ID)[:14]
        ports = [vm for vm in VMS if vm["node"] == node["key"]]
        w = "neutron-linuxbri"
        raw = ["*raw", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
               ":%s-OUTPUT - [0:0]" % w, ":%s-PREROUTING - [0:0]" % w,
               "-A PREROUTING -j %s-PREROUTING" % w, "-A OUTPUT -j %s-OUTPUT" % w]
        filt = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]",
                ":OUTPUT ACCEPT [0:0]"]
        chains = ["neutron-filter-top", w + "-FORWARD", w + "-INPUT", w + "-OUTPUT",
                  w + "-local", w + "-sg-chain", w + "-sg-fallback"]
        body = ["-A INPUT -j %s-INPUT" % w, "-A FORWARD -j neutron-filter-top",
                "-A FORWARD -j %s-FORWARD" % w, "-A OUTPUT -j neutron-filter-top",
                "-A OUTPUT -j %s-OUTPUT" % w, "-A neutron-filter-top -j %s-local" % w]
        zone = 4097  # one zone per network, as the driver keys them
        sg_chain = []
        fillers = list(filler_rules(n))
        for vm in ports:
            tap = tap_name(vm["port_id"])
            suffix = tap[3:13]
            ci, co, cs = w + "-i" + suffix, w + "-o" + suffix, w + "-s" + suffix
            chains += [ci, co, cs]
            comment = '-m comment --comment "Set zone for %s"' % tap[4:]
            raw += ["-A %s-PREROUTING -m physdev --physdev-in %s %s -j CT --zone %d"
                    % (w, brq, comment, zone),
                    "-A %s-PREROUTING -i %s %s -j CT --zone %d" % (w, brq, comment, zone),
                    "-A %s-PREROUTING -m physdev --physdev-in %s %s -j CT --zone %d"
                    % (w, tap, comment, zone)]
            to_sg = ('-m comment --comment "Direct traffic from the VM interface to the '
                     'security group chain." -j %s-sg-chain' % w)
            body += ["-A %s-FORWARD -m physdev --physdev-out %s --physdev-is-bridged %s"
                     % (w, tap, to_sg),
                     "-A %s-FORWARD -m physdev --physdev-in %s --physdev-is-bridged %s"
                     % (w, tap, to_sg),
                     "-A %s-INPUT -m physdev --physdev-in %s --physdev-is-bridged -m comment "
                     '--comment "Direct incoming traffic from VM to the security group '
                     'chain." -j %s' % (w, tap, co)]
            jump = '-m comment --comment "Jump to the VM specific chain."'
            sg_chain += ["-A %s-sg-chain -m physdev --physdev-out %s --physdev-is-bridged %s "
                         "-j %s" % (w, tap, jump, ci),
                         "-A %s-sg-chain -m physdev --physdev-in %s --physdev-is-bridged %s "
                         "-j %s" % (w, tap, jump, co)]
            known = ('-m state --state RELATED,ESTABLISHED -m comment --comment "Direct '
                     'packets associated with a known session to the RETURN chain." -j RETURN')
            invalid = ('-m state --state INVALID -m comment --comment "Drop packets that '
                       'appear related to an existing connection (e.g. TCP ACK/FIN) but do '
                       'not have an entry in conntrack." -j DROP')
            fallback = ('-m comment --comment "Send unmatched traffic to the fallback '
                        'chain." -j %s-sg-fallback' % w)
            # ingress
            body += ["-A %s %s" % (ci, known), "-A %s %s" % (ci, invalid),
                     "-A %s -d %s/32 -p udp -m udp --sport 67 --dport 68 -j RETURN"
                     % (ci, vm["ip"]),
                     "-A %s -d 255.255.255.255/32 -p udp -m udp --sport 67 --dport 68 -j RETURN"
                     % ci]
            body += ["-A %s -s %s -p tcp -m tcp --dport %d -j RETURN" % (ci, f["prefix"], f["port"])
                     for f in fillers]
            for proto, port in ADMIT:
                if port is None:
                    body.append("-A %s -p %s -j RETURN" % (ci, proto))
                else:
                    body.append("-A %s -p %s -m %s --dport %d -j RETURN" % (ci, proto, proto, port))
            body.append("-A %s %s" % (ci, fallback))
            # egress
            dhcp = '-m comment --comment "Allow DHCP client traffic." -j RETURN'
            body += ["-A %s -s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 "
                     "--dport 67 %s" % (co, dhcp),
                     "-A %s -j %s" % (co, cs),
                     "-A %s -p udp -m udp --sport 68 --dport 67 %s" % (co, dhcp),
                     "-A %s -p udp -m udp --sport 67 --dport 68 -m comment --comment "
                     '"Prevent DHCP Spoofing by VM." -j DROP' % co,
                     "-A %s %s" % (co, known), "-A %s %s" % (co, invalid),
                     "-A %s -j RETURN" % co,  # egress IPv4 any
                     "-A %s %s" % (co, fallback)]
            # anti-spoofing
            body += ["-A %s -s %s/32 -m mac --mac-source %s -m comment --comment \"Allow "
                     'traffic from defined IP/MAC pairs." -j RETURN' % (cs, vm["ip"],
                                                                         vm["mac"].upper()),
                     '-A %s -m comment --comment "Drop traffic without an IP/MAC allow rule." '
                     "-j DROP" % cs]
        body += sg_chain + ["-A %s-sg-chain -j ACCEPT" % w,
                            '-A %s-sg-fallback -m comment --comment "Default drop rule for '
                            'unmatched traffic." -j DROP' % w]
        filt += [":%s - [0:0]" % c for c in chains] + body + ["COMMIT"]
        raw.append("COMMIT")
        return "\n".join(raw + filt) + "\n"

    def load_rules(self, n):
        start = time.monotonic()
        for node in NODES:
            run(nsexec(self.node_ns(node), self.args.iptables_restore),
                input=self.ruleset(node, n), timeout=600)
        return time.monotonic() - start

    def filter_hits(self):
        """Packets the per-port dispatch saw: proves bridge-nf hands bridged frames over."""
        ns = self.node_ns(NODES[1])
        out = run(nsexec(ns, self.args.iptables, "-w", "-L", "neutron-linuxbri-sg-chain",
                         "-v", "-x", "-n")).stdout
        return sum(int(line.split()[0]) for line in out.splitlines()[2:] if line.strip())

    def drops(self):
        counts = {}
        for node in NODES:
            p = run(nsexec(self.node_ns(node), self.args.iptables + "-save", "-c"), check=False)
            for line in p.stdout.splitlines():
                m = re.match(r"\[(\d+):\d+\] -A (\S+) .*-j DROP", line)
                if not m or m.group(1) == "0":
                    continue
                chain = m.group(2)
                if "INVALID" in line:
                    reason = "state-INVALID"
                elif chain.endswith("-sg-fallback"):
                    reason = "sg-fallback"
                elif chain.startswith("neutron-linuxbri-s"):
                    reason = "spoof"
                elif "--sport 67" in line:
                    reason = "dhcp-spoof"
                else:
                    reason = chain
                reason = "iptables " + reason
                counts[reason] = counts.get(reason, 0) + int(m.group(1))
        return counts

    def conntrack_count(self):
        counts = []
        for node in NODES:
            p = run(nsexec(self.node_ns(node), "cat", "/proc/sys/net/netfilter/nf_conntrack_count"),
                    check=False)
            counts.append(int(p.stdout.strip() or 0))
        return max(counts)

    def diagnose(self):
        ns = self.node_ns(NODES[1])
        return run(nsexec(ns, self.args.iptables, "-w", "-L", "-v", "-n"), check=False).stdout[-3000:]


class Floor(Side):
    mode = "c"

    def build(self):
        ns = "%s-c-l2" % self.args.prefix
        self.jan.add_netns(ns)
        sysctl(ns, "net.bridge.bridge-nf-call-iptables", 0)
        run(["ip", "-n", ns, "link", "add", "wbench-br", "type", "bridge"])
        run(["ip", "-n", ns, "link", "set", "wbench-br", "up"])
        for vm in VMS:
            tap = plug_vm(self.jan, self.vm_ns[vm["key"]], ns, vm)
            run(["ip", "-n", ns, "link", "set", tap, "master", "wbench-br"])


SIDES = {"a": Weft, "b": Neutron, "c": Floor}


# --- measuring ------------------------------------------------------------------


def server_ip():
    return next(vm["ip"] for vm in VMS if vm["key"] == SERVER_VM)


CPU_PLACEMENT = {"same": ("0", "0"), "split": ("0", "1"), "none": (None, None)}


def pinned(args, role, argv):
    """argv under taskset on the CPU --cpus gives the client or the server."""
    cpu = CPU_PLACEMENT[args.cpus][0 if role == "client" else 1]
    return (["taskset", "-c", cpu] if cpu is not None else []) + list(argv)


def client(side, *argv, timeout):
    return run(nsexec(side.client, *pinned(side.args, "client", argv)), timeout=timeout)


def measure_tcp(side, args):
    seconds = max(1, int(round(args.duration)))  # iperf3 takes whole seconds; 0 is forever
    p = client(side, "iperf3", "-c", server_ip(), "-p", str(IPERF_PORT), "-t", str(seconds),
               "-J", timeout=seconds + 20)
    return json.loads(p.stdout)["end"]["sum_received"]["bits_per_second"]


def measure_udp(side, args):
    sink = side.jan.spawn(nsexec(side.server, *pinned(args, "server", [
        args.net_tool, "udp-sink", str(UDP_PORT), str(args.duration + 5)])))
    try:
        if sink.stdout.readline().strip() != "ready":
            raise Failed("udp-sink did not start: %s" % sink.stderr.read())
        client(side, args.net_tool, "udp-blast", server_ip(), str(UDP_PORT),
               str(args.duration), "64", timeout=args.duration + 20)
        out, err = sink.communicate(timeout=args.duration + 15)
        if sink.returncode != 0:
            raise Failed("udp-sink received nothing: %s" % err.strip())
        return json.loads(out)["pps"]
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait()


def measure_rr(side, args):
    p = client(side, args.net_tool, "rr", server_ip(), str(RR_PORT), str(args.duration),
               timeout=args.duration + 20)
    return json.loads(p.stdout)["rate"]


def measure_crr(side, args):
    p = client(side, args.net_tool, "crr", server_ip(), str(RR_PORT), str(args.duration),
               timeout=args.duration + 20)
    return json.loads(p.stdout)["rate"]


def measure_rtt(side, args):
    p = client(side, "ping", "-f", "-q", "-w", str(max(1, int(args.duration))), server_ip(),
               timeout=args.duration + 20)
    m = re.search(r"= [\d.]+/([\d.]+)/", p.stdout)
    if not m:
        raise Failed("ping: no rtt in %r" % p.stdout)
    return float(m.group(1)) * 1000.0  # ms -> us


MEASURE = {"tcp": measure_tcp, "udp": measure_udp, "rr": measure_rr, "rtt": measure_rtt,
           "crr": measure_crr}


def reachable(side, args):
    """The server answers, and (for a and b) a port no rule admits stays shut."""
    p = run(nsexec(side.client, "ping", "-c", "3", "-i", "0.2", "-W", "1", server_ip()),
            check=False, timeout=15)
    if p.returncode != 0:
        return False, "ping %s from %s fails" % (server_ip(), side.client)
    p = run(nsexec(side.client, args.net_tool, "rr", server_ip(), str(RR_PORT), "0.1"),
            check=False, timeout=15)
    if p.returncode != 0:
        return False, "TCP %d fails: %s" % (RR_PORT, p.stderr.strip())
    p = run(nsexec(side.client, args.net_tool, "rr", server_ip(), str(BLOCKED_PORT), "0.1"),
            check=False, timeout=15)
    if side.mode in ("a", "b") and p.returncode == 0:
        return False, "TCP %d, which no rule admits, is open: the filter is not in force" % BLOCKED_PORT
    if side.mode == "c" and p.returncode != 0:
        return False, "TCP %d fails on the floor: %s" % (BLOCKED_PORT, p.stderr.strip())
    return True, ""


def rounds(sides, args, n, results, notes, warnings):
    """Interleaved rounds for one rule count: per round, per metric, every side in turn."""
    live = []
    for side in sides:
        ok, why = reachable(side, args)
        if ok and side.mode == "b" and side.filter_hits() == 0:
            ok, why = False, "iptables saw no bridged packet (bridge-nf-call-iptables not in force)"
        if not ok:
            note = "%s (%s) at %d rules passes no traffic: %s" % (side.mode, MODES[side.mode], n, why)
            log("  " + note)
            diag = side.diagnose()
            if diag and args.verbose:
                log(diag)
            notes.append(note)
        else:
            live.append(side)
    before = {side.mode: side.drops() for side in live}
    for r in range(args.rounds):
        order = live[r % len(live):] + live[:r % len(live)] if live else []
        for metric in args.metrics:
            for side in order:
                try:
                    value = MEASURE[metric](side, args)
                except (Failed, ValueError, KeyError) as e:
                    notes.append("%s %s round %d at %d rules failed: %s" % (side.mode, metric, r + 1, n, e))
                    log("  " + notes[-1])
                    value = None
                results[n][side.mode][metric].append(value)
        log("  round %d/%d done" % (r + 1, args.rounds))
        for side in live:
            if side.mode == "b":
                count = side.conntrack_count()
                if count > 0.8 * CT_MAX:
                    warnings.append("b: conntrack holds %d entries (max %d): figures may suffer"
                                    % (count, CT_MAX))
    for side in live:
        after = side.drops()
        delta = {k: v - before[side.mode].get(k, 0) for k, v in after.items()}
        delta = {k: v for k, v in delta.items() if v > 0}
        if delta:
            warnings.append("%s at %d rules dropped during the rounds: %s" % (
                side.mode, n, ", ".join("%s %d" % kv for kv in sorted(delta.items()))))


# --- reporting ------------------------------------------------------------------
# Everything below works from the results document (results.json), so that
# --replot can redraw a finished run.


def median(samples):
    good = [s for s in samples if s is not None]
    return statistics.median(good) if good else None


def target_for(metric, n):
    for cmp, ratio, counts in TARGETS[metric]:
        if counts is None or n in counts:
            return cmp, ratio
    return None


def summarize(samples, rules, modes, metrics):
    """Medians, ratios a/b and a/c, and the issue's targets, per rule count and metric."""
    summary = {}
    for n in rules:
        summary[str(n)] = {}
        for metric in metrics:
            med = {m: median(samples[str(n)][m][metric]) for m in modes}
            row = {"median": med}
            a, b, c = med.get("a"), med.get("b"), med.get("c")
            row["a/b"] = a / b if a is not None and b else None
            row["a/c"] = a / c if a is not None and c else None
            t = target_for(metric, n)
            if t:
                cmp, ratio = t
                row["target"] = "a/b %s %.1f" % (cmp, ratio)
                if row["a/b"] is None:
                    row["met"] = None
                else:
                    row["met"] = row["a/b"] >= ratio if cmp == ">=" else row["a/b"] <= ratio
            summary[str(n)][metric] = row
    return summary


def fmt(value, metric):
    if value is None:
        return "-"
    v = value * METRICS[metric][2]
    return "%.2f" % v if v < 100 else "%.0f" % v


def ratio_text(r):
    return "-" if r is None else "%.2f" % r


def table(doc):
    """The figures, medians in each metric's unit, with ratios and targets."""
    lines = ["weft (a) vs Neutron linuxbridge (b) vs floor (c), cross-node VM to VM; median "
             "of %d interleaved rounds of %g s; CPUs: %s; iptables: %s; kernel %s, %d CPUs" % (
                 doc["rounds"], doc["duration_s"], doc["cpus_placement"],
                 doc["iptables_backend"], doc["kernel"], doc["cpus"])]
    head = "%7s  %-34s %10s %10s %10s %7s %7s  %-11s %s" % (
        "rules", "metric", "a weft", "b neutron", "c floor", "a/b", "a/c", "target", "met")
    lines += [head, "-" * len(head)]
    for n in doc["rules"]:
        for metric in doc["metrics"]:
            row = doc["summary"][str(n)][metric]
            label = "%s (%s)" % (METRICS[metric][0], METRICS[metric][1])
            met = {True: "yes", False: "NO", None: "n/a"}[row["met"]] if "target" in row else ""
            lines.append("%7d  %-34s %10s %10s %10s %7s %7s  %-11s %s" % (
                n, label, fmt(row["median"].get("a"), metric), fmt(row["median"].get("b"), metric),
                fmt(row["median"].get("c"), metric), ratio_text(row["a/b"]),
                ratio_text(row["a/c"]), row.get("target", ""), met))
        load = doc["rule_load_s"][str(n)]
        if load:
            lines.append("%7s  rule load on both nodes: %s" % ("", ", ".join(
                "%s %.2f s" % (MODES[m], load[m]) for m in sorted(load))))
    if "loadavg_before" in doc:
        lines.append("machine load (1-min average) %.1f before, %.1f after: others' work "
                     "shares these CPUs; compare ratios within a rule count"
                     % (doc["loadavg_before"][0], doc["loadavg_after"][0]))
    lines += ["note: " + note for note in doc["notes"]]
    lines += ["warning: " + w for w in doc.get("warnings", [])]
    return "\n".join(lines)


def plot(doc, path):
    """One panel per metric (and one for rule loading), rule count on the x axis.

    Returns False when matplotlib is missing from this interpreter; main then
    asks Debian's python3 to draw it (--replot)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    metrics, rules, modes = doc["metrics"], doc["rules"], list(doc["modes"])
    panels = len(metrics) + 1
    cols = min(3, panels)
    rows = (panels + cols - 1) // cols
    fig, grid = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.4 * rows), squeeze=False)
    axes = [ax for row in grid for ax in row]
    for ax in axes[panels:]:
        ax.set_visible(False)
    axes = axes[:panels]
    xs = list(range(len(rules)))
    ticks = ["{:,}".format(n) for n in rules]
    for ax, metric in zip(axes, metrics):
        label, unit, scale, higher = METRICS[metric]
        for mode in modes:
            ys, lo, hi = [], [], []
            for n in rules:
                good = [v * scale for v in doc["samples"][str(n)][mode][metric] if v is not None]
                med = statistics.median(good) if good else float("nan")
                ys.append(med)
                lo.append(med - min(good) if good else 0)
                hi.append(max(good) - med if good else 0)
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3,
                        label="%s %s" % (mode, MODES[mode]))
        ax.set_title("%s\n(%s better)" % (label, "higher" if higher else "lower"), fontsize=9)
        ax.set_ylabel(unit)
        ax.set_ylim(bottom=0)
    ax = axes[-1]
    for mode in [m for m in modes if m in ("a", "b")]:
        ax.plot(xs, [doc["rule_load_s"][str(n)].get(mode, float("nan")) for n in rules],
                marker="o", label="%s %s" % (mode, MODES[mode]))
    ax.set_title("rule load, both nodes\n(lower better)", fontsize=9)
    ax.set_ylabel("s")
    ax.set_ylim(bottom=0)
    for ax in axes:
        ax.set_xticks(xs)
        ax.set_xticklabels(ticks)
        ax.set_xlabel("rules")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("weft vs Neutron linuxbridge vs floor, cross-node VM to VM "
                 "(median and range of %d rounds of %g s; kernel %s)"
                 % (doc["rounds"], doc["duration_s"], doc["kernel"]), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def draw(doc, json_path, png_path):
    """Draws with this interpreter, or with Debian's python3 if matplotlib is only there."""
    if plot(doc, png_path):
        return True
    debian = "/usr/bin/python3"
    if os.path.realpath(sys.executable) != os.path.realpath(debian) and os.access(debian, os.X_OK):
        p = run([debian, os.path.abspath(__file__), "--replot", json_path, "--png", png_path],
                check=False, timeout=120)
        if p.returncode == 0:
            return True
    log("no plot: python3-matplotlib is not installed (scripts/install-deps.sh --bench)")
    return False


# --- main -----------------------------------------------------------------------


def iptables_backend(choice):
    """The iptables commands to use and the backend's name."""
    if choice == "legacy":
        return "iptables-legacy", "iptables-legacy-restore", "legacy"
    if choice == "nft":
        return "iptables-nft", "iptables-nft-restore", "nf_tables"
    version = run(["iptables", "--version"]).stdout
    return "iptables", "iptables-restore", "nf_tables" if "nf_tables" in version else "legacy"


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="weft against Neutron's linuxbridge datapath and the veth/bridge floor, "
        "cross-node, in one run (see the module docstring: %s)." % os.path.relpath(__file__, REPO),
        epilog="Measures nothing timed as a test: it prints figures and ratios.")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 1 s per measurement, 2 rounds, rule counts 0 and 1000 "
                   "(each overridable)")
    p.add_argument("--duration", type=float, help="seconds per measurement (default 5; quick 1)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 5; quick 2)")
    p.add_argument("--rules", help="comma-separated filler rule counts "
                   "(default 0,1000,10000; quick 0,1000)")
    p.add_argument("--modes", default="a,b,c", help="which set-ups: a weft, b neutron-lb, c floor (default: %(default)s)")
    p.add_argument("--metrics", default=",".join(METRICS), help="which metrics (default: %(default)s)")
    p.add_argument("--cpus", choices=sorted(CPU_PLACEMENT), default="same",
                   help="client and server both on CPU 0 (same), on CPUs 0 and 1 (split: "
                   "cross-CPU wake-ups dominate request/response), or where the scheduler "
                   "puts them (none); default: %(default)s")
    p.add_argument("--iptables", choices=["auto", "nft", "legacy"], default="auto",
                   help="iptables backend for (b): auto (the default) is what Debian's `iptables` "
                   "points at")
    p.add_argument("--prefix", default="wbench",
                   help="prefix of every namespace and weft node (must start with wbench; "
                   "default: %(default)s)")
    p.add_argument("--out", default=os.path.join(REPO, "build", "neutron_compare"),
                   help="directory for results.json and results.png (default: build/neutron_compare)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--png", help="where to draw the plot (default: OUT/results.png)")
    p.add_argument("--replot", metavar="JSON",
                   help="measure nothing: print the table of a results.json and draw its plot")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when a set-up passed no traffic or a measurement failed "
                   "(for the smoke test; figures are never judged)")
    p.add_argument("--weft", default=os.path.join(REPO, "build", "weft"), help="the weft binary (default: build/weft)")
    p.add_argument("--net-tool", default=os.path.join(REPO, "build", "wbench_net"),
                   help="the wbench_net binary (bench/net/wbench_net.c; default: build/wbench_net)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print diagnostics (weft stats, iptables counters) when a set-up fails")
    args = p.parse_args(argv)
    quick = args.quick
    args.duration = args.duration or (1.0 if quick else 5.0)
    args.rounds = args.rounds or (2 if quick else 5)
    args.rules = [int(x) for x in (args.rules or ("0,1000" if quick else "0,1000,10000")).split(",")]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    args.metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    for m in args.modes:
        if m not in MODES:
            p.error("unknown mode %r (a, b or c)" % m)
    for m in args.metrics:
        if m not in METRICS:
            p.error("unknown metric %r (%s)" % (m, ", ".join(METRICS)))
    if not args.prefix.startswith("wbench") or not re.fullmatch(r"[a-z0-9]{1,16}", args.prefix):
        p.error("--prefix must start with wbench (lower-case letters and digits, at most 16)")
    if any(n < 0 or n > 60000 for n in args.rules):
        p.error("--rules: counts from 0 to 60000")
    return args


def preflight(args):
    if os.geteuid() != 0:
        raise Failed("needs root (network namespaces, BPF, iptables)")
    need = ["ip", "bridge", "ping", "taskset", "sysctl"]
    if "b" in args.modes:
        need += [args.iptables, args.iptables_restore]
    if "tcp" in args.metrics:
        need.append("iperf3")
    missing = [t for t in need if not shutil.which(t)]
    if missing:
        raise Failed("missing: %s (scripts/install-deps.sh --bench)" % " ".join(missing))
    for path, what in ((args.net_tool, "wbench_net"), (args.weft, "weft")):
        if (what == "weft" and "a" not in args.modes):
            continue
        if not os.access(path, os.X_OK):
            raise Failed("%s not found at %s: cmake -S . -B build && cmake --build build -j2"
                         % (what, path))
    if os.cpu_count() < 2:
        log("warning: one CPU: client and server share it")


def measure_all(args):
    """Builds the set-ups, measures them; returns the results document."""
    results = {n: {m: {k: [] for k in args.metrics} for m in args.modes} for n in args.rules}
    load = {n: {} for n in args.rules}
    notes, warnings = [], []  # what failed; what may have skewed a figure
    started = time.monotonic()
    load_before = os.getloadavg()
    args.state_dir = tempfile.mkdtemp(prefix=args.prefix + "-state-")
    jan = Janitor(args.weft, args.state_dir)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    try:
        stale_cleanup(args.prefix, args.weft, args.state_dir)
        log("building %s (iptables: %s)" % (", ".join("%s %s" % (m, MODES[m]) for m in args.modes),
                                            args.backend))
        sides = [SIDES[m](args, jan) for m in args.modes]
        for side in sides:
            side.build()
        for side in sides:
            side.start_servers(args.net_tool)
        for n in args.rules:
            log("%d filler rules: loading" % n)
            for side in sides:
                if side.mode in ("a", "b"):
                    try:
                        load[n][side.mode] = side.load_rules(n)
                    except Failed as e:
                        notes.append("%s: loading %d rules failed: %s" % (side.mode, n, e))
                        log("  " + notes[-1])
            log("%d filler rules: measuring %s, %d rounds of %g s" %
                (n, ",".join(args.metrics), args.rounds, args.duration))
            rounds(sides, args, n, results, notes, warnings)
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        log("removing namespaces and weft nodes")
        jan.cleanup()
        shutil.rmtree(args.state_dir, ignore_errors=True)
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_DFL)
    samples = {str(n): results[n] for n in args.rules}
    return {
        "kernel": platform.release(), "cpus": os.cpu_count(), "cpus_placement": args.cpus,
        "iptables_backend": args.backend, "duration_s": args.duration, "rounds": args.rounds,
        "rules": args.rules, "modes": {m: MODES[m] for m in args.modes},
        "metrics": args.metrics,
        "units": {k: {"label": v[0], "unit": v[1], "scale": v[2], "higher_is_better": v[3]}
                  for k, v in METRICS.items() if k in args.metrics},
        "samples": samples,
        "summary": summarize(samples, args.rules, args.modes, args.metrics),
        "rule_load_s": {str(n): load[n] for n in args.rules},
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "notes": notes, "warnings": warnings, "elapsed_s": round(time.monotonic() - started, 1),
    }


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.replot:
        with open(args.replot) as f:
            doc = json.load(f)
        print(table(doc))
        png = args.png or os.path.splitext(args.replot)[0] + ".png"
        if not draw(doc, args.replot, png):
            return 1
        print("wrote %s" % png)
        return 0
    args.iptables, args.iptables_restore, args.backend = iptables_backend(args.iptables)
    preflight(args)
    os.makedirs(args.out, exist_ok=True)
    lock = open("/run/%s.lock" % args.prefix, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise Failed("another run with prefix %s is going on" % args.prefix)
    doc = measure_all(args)
    print()
    print(table(doc))
    json_path = os.path.join(args.out, "results.json")
    with open(json_path, "w") as f:
        json.dump(doc, f, indent=1)
    print("wrote %s" % json_path)
    png_path = args.png or os.path.join(args.out, "results.png")
    if not args.no_plot and draw(doc, json_path, png_path):
        print("wrote %s" % png_path)
    if args.strict and doc["notes"]:
        log("neutron_compare: --strict: %d problem(s), see the notes" % len(doc["notes"]))
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failed as e:
        log("neutron_compare: %s" % e)
        sys.exit(1)
    except KeyboardInterrupt:
        log("neutron_compare: interrupted; everything it made is removed")
        sys.exit(130)
