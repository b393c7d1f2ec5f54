#!/usr/bin/env python3
"""Scale of the control plane: 10,000 ports and 100 networks over 3 nodes,
created through etcd, followed by each node's weftd.

Three lab nodes (namespaces, `weft lab up -f`), a controller namespace on
their underlay with Debian's etcd, weftd --etcd on each node. The resources
are written as the Neutron driver writes them (one JSON resource a key) in
transactions of 128 puts. Printed, per node:

* the time from the first write until the node's datapath had the last
  revision, against the baseline of the same run: one `weft apply` of the
  final document on a fresh node (the datapath's own cost of that state);
* the agent's reconciles and map writes (only the diff: the count is that of
  the entries the state needs, and one port changed afterwards costs a few);
* the agent's CPU time and peak memory.

Ports bound to a node have no device here (they wait for their tap, as
before Nova plugs them); remote ones fill the forwarding and ARP tables.

usage (root): python3 bench/control/scale.py [--ports N] [--networks N]
              [--weft build/weft] [--weftd build/weftd] [--out DIR]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))

import etcdlab  # noqa: E402
import weftlab as w  # noqa: E402

PREFIX = "wscale%d" % os.getpid()
NODES = ["n1", "n2", "n3"]
CIDR = "172.31.71.0/24"
CONTROLLER_IP = "172.31.71.250"
KEYS = "/weft"


def node_name(ns):
    return PREFIX + ns


def ns_of(name):
    return PREFIX + "-" + name


def make_state(n_ports, n_networks):
    nodes = [{"name": node_name(ns), "tunnel_ip": "172.31.71.%d" % (i + 1)}
             for i, ns in enumerate(NODES)]
    group = {"id": str(uuid.uuid4()), "name": "default", "stateful": True, "project_id": "p0",
             "security_group_rules": []}
    group["security_group_rules"] = [
        {"id": str(uuid.uuid4()), "direction": "egress", "ethertype": "IPv4"},
        {"id": str(uuid.uuid4()), "direction": "ingress", "ethertype": "IPv4",
         "remote_group_id": group["id"]},
        {"id": str(uuid.uuid4()), "direction": "ingress", "ethertype": "IPv4",
         "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
         "remote_ip_prefix": "0.0.0.0/0"}]
    networks, subnets, ports = [], [], []
    per_network = (n_ports + n_networks - 1) // n_networks
    for n in range(n_networks):
        net_id, sub_id = str(uuid.uuid4()), str(uuid.uuid4())
        third = "10.%d.%d" % (64 + n // 256, n % 256)
        networks.append({"id": net_id, "name": "net%d" % n, "project_id": "p%d" % (n % 10),
                         "provider:network_type": "vxlan",
                         "provider:segmentation_id": 10000 + n,
                         "provider:physical_network": None, "mtu": 1450})
        subnets.append({"id": sub_id, "network_id": net_id, "ip_version": 4,
                        "cidr": third + ".0/24", "gateway_ip": third + ".1",
                        "enable_dhcp": False})
        for p in range(per_network):
            i = n * per_network + p
            if i >= n_ports:
                break
            ports.append({"id": str(uuid.uuid4()), "network_id": net_id,
                          "mac_address": "fa:16:3e:%02x:%02x:%02x" % (i >> 16, (i >> 8) & 255,
                                                                      i & 255),
                          "fixed_ips": [{"subnet_id": sub_id,
                                         "ip_address": "%s.%d" % (third, p + 2)}],
                          "binding:host_id": node_name(NODES[i % len(NODES)]),
                          "device_owner": "compute:nova", "security_groups": [group["id"]],
                          "port_security_enabled": True})
    return {"nodes": nodes, "networks": networks, "subnets": subnets, "ports": ports,
            "security_groups": [group]}


def proc_figures(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    memory = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                name, value = line.split(":")
                memory[name] = int(value.split()[0]) / 1024.0
    return cpu, memory


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ports", type=int, default=10000)
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--weft", default=os.path.join(REPO, "build", "weft"))
    parser.add_argument("--weftd", default=os.path.join(REPO, "build", "weftd"))
    parser.add_argument("--out", default=None, help="folder for scale.json")
    args = parser.parse_args()
    w.require_root()
    w.WEFT = args.weft
    state = make_state(args.ports, args.networks)
    work = tempfile.mkdtemp(prefix=PREFIX + "-")
    weft_state = os.path.join(work, "weft")
    agents, etcd, ctl = {}, None, None

    def weft(*argv, netns=None, node=None):
        cmd = [args.weft, "-j", "--state-dir", weft_state]
        if netns:
            cmd += ["--netns", netns, "--node", node]
        return w.run(cmd + list(argv), timeout=600)

    def status(ns):
        """What the node's agent reports (the file `weft agent status` reads:
        polled often, read directly)."""
        try:
            with open(os.path.join(weft_state, node_name(ns), "agent.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            raise w.CommandError("no agent report of %s yet" % ns)

    try:
        topology = {"underlay": {"cidr": CIDR},
                    "nodes": [{"name": node_name(ns), "namespace": ns} for ns in NODES],
                    "vms": [], "document": {"nodes": state["nodes"]}}
        path = os.path.join(work, "topology.json")
        with open(path, "w") as f:
            json.dump(topology, f)
        print("scale: lab of %d nodes ..." % len(NODES), flush=True)
        weft("lab", "--prefix", PREFIX, "up", "-f", path)
        ctl = etcdlab.controller(PREFIX, CONTROLLER_IP)
        etcd = etcdlab.Etcd(ctl, CONTROLLER_IP, os.path.join(work, "etcd"),
                            os.path.join(work, "etcd.log"))
        etcd.start()
        etcd.put_document(KEYS, {"nodes": state["nodes"]})
        for ns in NODES:
            log = open(os.path.join(work, "weftd-%s.log" % ns), "w")
            agents[ns] = subprocess.Popen(
                [args.weftd, "--node", node_name(ns), "--netns", ns_of(ns), "--state-dir",
                 weft_state, "--etcd", etcd.url, "--etcd-prefix", KEYS], stdout=log, stderr=log)
            log.close()
        for ns in NODES:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if status(ns)["ready"]:
                        break
                except w.CommandError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("weftd on %s not ready" % ns)
                time.sleep(0.1)
        before = {ns: (status(ns), proc_figures(agents[ns].pid)) for ns in NODES}

        items = []
        for kind in ("security_groups", "networks", "subnets", "ports"):
            for resource in state[kind]:
                items.append((etcdlab.key(KEYS, kind, resource), resource))
        print("scale: writing %d keys (%d ports, %d networks) to etcd ..." %
              (len(items), len(state["ports"]), len(state["networks"])), flush=True)
        started = time.monotonic()
        revision = etcd.put_many(items)
        written = time.monotonic() - started
        done = {}
        while len(done) < len(NODES):
            for ns in NODES:
                if ns not in done and (status(ns)["revision"] or 0) >= revision:
                    done[ns] = time.monotonic() - started
            if time.monotonic() - started > 600:
                raise RuntimeError("nodes not at revision %d after 600 s: %s" % (revision, done))
            time.sleep(0.05)
        after = {ns: (status(ns), proc_figures(agents[ns].pid)) for ns in NODES}
        entries = {}
        for ns in NODES:
            maps = json.loads(weft("map", "list", netns=ns_of(ns), node=node_name(ns)).stdout)
            entries[ns] = {m["name"]: m.get("entries", 0) for m in maps}

        # One port changed afterwards: only its entries are written.
        port = dict(state["ports"][0])
        port["allowed_address_pairs"] = [{"ip_address": "10.250.0.1/32"}]
        mid = {ns: status(ns)["writes"] for ns in NODES}
        change_started = time.monotonic()
        revision = etcd.put(etcdlab.key(KEYS, "ports", port), port)
        change = {}
        while len(change) < len(NODES):
            for ns in NODES:
                if ns not in change and (status(ns)["revision"] or 0) >= revision:
                    change[ns] = time.monotonic() - change_started
            time.sleep(0.005)
        one = {ns: status(ns)["writes"] - mid[ns] for ns in NODES}

        # A device made for a port of n1 (as Nova plugs a VM): the agent's
        # own measure of how long after the kernel announced it the port ran.
        local = [p for p in state["ports"] if p["binding:host_id"] == node_name("n1")][1]
        device = "tap" + local["id"][:11]
        w.run(["ip", "-n", ns_of("n1"), "link", "add", device, "type", "veth", "peer", "name",
               "vm-" + local["id"][:8]])
        attach_ms = None
        deadline = time.monotonic() + 30
        while attach_ms is None and time.monotonic() < deadline:
            for p in status("n1")["ports"]:
                if p["id"] == local["id"] and "attach_ms" in p:
                    attach_ms = p["attach_ms"]
            time.sleep(0.02)

        # The baseline: one `weft apply` of the final document on a fresh
        # node of this lab's kernel (the datapath's cost of that state).
        final = dict(state)
        final["ports"] = [port] + state["ports"][1:]
        base_ns = ns_of("base")
        w.run(["ip", "netns", "add", base_ns])
        try:
            w.run(["ip", "-n", base_ns, "link", "set", "lo", "up"])
            weft("node", "install", netns=base_ns, node=node_name("base"))
            doc = os.path.join(work, "final.json")
            with open(doc, "w") as f:
                json.dump(final, f)
            t = time.monotonic()
            weft("apply", "-f", doc, netns=base_ns, node=node_name("base"))
            baseline = time.monotonic() - t
            weft("node", "uninstall", netns=base_ns, node=node_name("base"))
        finally:
            w.run(["ip", "netns", "del", base_ns], check=False)

        rows = []
        for ns in NODES:
            s0, (cpu0, _) = before[ns]
            s1, (cpu1, memory) = after[ns]
            rows.append({
                "node": node_name(ns), "seconds_to_applied": round(done[ns], 3),
                "seconds_after_last_write": round(done[ns] - written, 3),
                "ratio_to_one_apply": round(done[ns] / baseline, 2),
                "reconciles": s1["reconciles"] - s0["reconciles"],
                "writes": s1["writes"] - s0["writes"],
                "fdb_entries": entries[ns].get("fdb", 0), "arp_entries": entries[ns].get("arp", 0),
                "local_ports": len(s1["ports"]),
                "cpu_seconds": round(cpu1 - cpu0, 2), "peak_rss_mib": round(memory["VmHWM"], 1),
                "rss_mib": round(memory["VmRSS"], 1),
                "one_port_changed_writes": one[ns],
                "one_port_changed_seconds": round(change[ns], 3)})
        result = {"ports": len(state["ports"]), "networks": len(state["networks"]),
                  "device_attach_ms": attach_ms,
                  "keys": len(items), "etcd_write_seconds": round(written, 2),
                  "baseline_one_apply_seconds": round(baseline, 3), "nodes": rows}
        print("\nscale: %d ports, %d networks, %d keys written to etcd in %.1f s "
              "(transactions of 128 puts)" % (result["ports"], result["networks"],
                                               result["keys"], written))
        print("baseline: one `weft apply` of the final document on a fresh node: %.2f s" %
              baseline)
        print("a port's device made on %s: attached %s ms after the kernel announced it\n" %
              (node_name("n1"), "%.0f" % attach_ms if attach_ms is not None else "never (30 s)"))
        print("APPLIED_S: from the first write to the node's datapath at the last revision; "
              "AFTER_S: of that, after the last write;\nRATIO: APPLIED_S to the baseline; "
              "1PORT: one port changed afterwards (writes, ms to applied)\n")
        print("%-16s %9s %7s %7s %6s %7s %6s %6s %7s %8s %8s %8s" %
              ("NODE", "APPLIED_S", "AFTER_S", "RATIO", "RECON", "WRITES", "FDB", "ARP",
               "CPU_S", "PEAK_MIB", "1PORT_WR", "1PORT_MS"))
        for r in rows:
            print("%-16s %9.2f %7.2f %6.2fx %6d %7d %6d %6d %7.2f %8.1f %8d %8.0f" %
                  (r["node"], r["seconds_to_applied"], r["seconds_after_last_write"],
                   r["ratio_to_one_apply"], r["reconciles"],
                   r["writes"], r["fdb_entries"], r["arp_entries"], r["cpu_seconds"],
                   r["peak_rss_mib"], r["one_port_changed_writes"],
                   r["one_port_changed_seconds"] * 1000))
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            with open(os.path.join(args.out, "scale.json"), "w") as f:
                json.dump(result, f, indent=1)
        return 0
    finally:
        for proc in agents.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
        if etcd is not None:
            etcd.stop()
        if ctl:
            w.run(["ip", "netns", "del", ctl], check=False)
        w.run([args.weft, "--state-dir", weft_state, "lab", "--prefix", PREFIX, "down"],
              check=False, timeout=600)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
