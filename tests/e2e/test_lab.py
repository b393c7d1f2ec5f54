"""End to end: the demo lab, as the README's first command runs it.

`weft lab up` builds three nodes joined by an underlay and a provider switch,
seven VMs in two tenants whose first VMs share an IP and a MAC, and a physical
host on a flat network; it measures the connectivity matrix with real pings
and must find every pair as expected: reachable inside a network, on one node
or across nodes (VXLAN, VLAN, flat, the physical host), isolated across
tenants. `lab down` leaves no namespace, pin or record behind.

The demo runs under a prefix of this run's and with its weft nodes renamed
(lab-nodeN -> <run prefix>nodeN), so that it never meets a demo someone else
has up on the machine (prefix weftlab, pins <bpffs>/weft/lab-nodeN).

Run as root: python3 tests/e2e/test_lab.py (env WEFT = the weft binary).
"""

import json
import os
import shutil
import tempfile
import unittest

import weftlab as w

DEMO_PREFIX = w.PREFIX + "demo"
DEMO_NODES = [w.PREFIX + "node%d" % i for i in (1, 2, 3)]
LAB_NAMESPACES = [DEMO_PREFIX + "-" + name for name in
                  ["node1", "node2", "node3", "underlay", "provider", "a1", "a2", "a3", "b1",
                   "b2", "c1", "c2", "ph1"]]


def namespaces():
    return set(w.run(["ip", "netns", "list"]).stdout.split())


class DemoLab(unittest.TestCase):
    def setUp(self):
        w.require_root()
        if namespaces() & set(LAB_NAMESPACES):
            self.fail("a lab is already up on this machine (%s-*): take it down first" %
                      DEMO_PREFIX)
        self.state = tempfile.mkdtemp(prefix=w.PREFIX + "lab-")
        self.addCleanup(shutil.rmtree, self.state, True)
        self.addCleanup(self.weft, "lab", "--prefix", DEMO_PREFIX, "down")
        # The embedded demo (a private state dir has no record: `lab
        # topology` prints the embedded one), with this run's node names.
        demo = self.weft("lab", "topology").stdout
        self.assertIn('"lab-node1"', demo)
        self.topology = os.path.join(self.state, "demo.json")
        with open(self.topology, "w") as f:
            f.write(demo.replace('"lab-node', '"' + w.PREFIX + "node"))

    def weft(self, *args, check=True):
        proc = w.run([w.WEFT, "--state-dir", self.state] + list(args), check=check, timeout=240)
        return proc

    def test_up_measures_isolation_and_down_removes_everything(self):
        proc = self.weft("-j", "lab", "--prefix", DEMO_PREFIX, "up", "-f", self.topology,
                         check=False)
        up = json.loads(proc.stdout)
        status = up["status"]
        cells = {(c["from"], c["to"]): c for c in status["matrix"]}
        # Inside a network: reachable, measured by the target's own ICMP
        # counters — on one node (a1, a2), over the underlay (VXLAN: a3), over
        # the provider switch (VLAN: b1, b2; flat: c1, c2) and to the
        # physical host ph1 of the flat network.
        for pair in [("a1", "a2"), ("a2", "a1"), ("a1", "a3"), ("a3", "a2"), ("b1", "b2"),
                     ("b2", "b1"), ("c1", "c2"), ("c2", "c1"), ("c1", "ph1"), ("ph1", "c2")]:
            self.assertEqual(cells[pair]["measured"], "reachable", pair)
        # Across tenants: isolated, although b1 has a1's very IP and MAC.
        for pair in [("a1", "b2"), ("a2", "b2"), ("b1", "a2"), ("b2", "a2"), ("a2", "b1"),
                     ("b2", "a1"), ("a3", "b1"), ("b2", "a3"), ("ph1", "a1"), ("a1", "ph1")]:
            self.assertEqual(cells[pair]["measured"], "isolated", pair)
        self.assertTrue(status["ok"], json.dumps(
            [c for c in status["matrix"] if c["result"] != "ok" and c["result"] != "skipped"],
            indent=1))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(set(LAB_NAMESPACES) <= namespaces())

        again = json.loads(self.weft("-j", "lab", "--prefix", DEMO_PREFIX, "status").stdout)
        self.assertTrue(again["ok"])
        self.assertEqual([n["name"] for n in again["nodes"]], DEMO_NODES)

        self.weft("lab", "--prefix", DEMO_PREFIX, "down")
        self.assertFalse(namespaces() & set(LAB_NAMESPACES))
        for node in DEMO_NODES:
            self.assertFalse(os.path.exists(os.path.join(w.BPFFS, "weft", node)))
            self.assertFalse(os.path.exists(os.path.join(self.state, node)))
        # Down again: nothing to do, still a success.
        self.weft("lab", "--prefix", DEMO_PREFIX, "down")


class TopologyLab(unittest.TestCase):
    """`weft lab up -f`: any topology, here two nodes, each in its own
    namespace with its own pins and record, built by the same code as the
    demo. VMs of one network on one node reach each other; across nodes they
    are isolated: this topology has no underlay (the single-node format),
    so nothing joins its nodes (test_multinode_lab.py joins them)."""

    PREFIX = w.PREFIX + "topo"

    def setUp(self):
        w.require_root()
        self.state = tempfile.mkdtemp(prefix=w.PREFIX + "topo-")
        self.addCleanup(shutil.rmtree, self.state, True)
        self.addCleanup(self.weft, "lab", "--prefix", self.PREFIX, "down", check=False)

    def weft(self, *args, check=True, input=None):
        return w.run([w.WEFT, "--state-dir", self.state] + list(args), check=check, timeout=120,
                     input=input)

    def topology(self):
        net, sub = w.make_network("blue", 7, cidr="10.7.0.0/24", project="tenant-t")
        hosts = {"v1": "t-n1", "v2": "t-n1", "v3": "t-n2"}
        ports = {name: w.make_port(net["id"], sub["id"], "fa:16:3e:00:07:%02d" % i,
                                   "10.7.0.%d" % (10 + i), host, port_security_enabled=False)
                 for i, (name, host) in enumerate(sorted(hosts.items()), 1)}
        document = {"nodes": [{"name": "t-n1", "tunnel_ip": "172.31.7.1"},
                              {"name": "t-n2", "tunnel_ip": "172.31.7.2"}],
                    "networks": [net], "subnets": [sub], "ports": list(ports.values())}
        return {"nodes": [{"name": "t-n1", "namespace": "n1"}, {"name": "t-n2", "namespace": "n2"}],
                "vms": [{"name": name, "port_id": port["id"]} for name, port in sorted(ports.items())],
                "document": document}

    def test_two_nodes_from_a_file_up_measured_and_down(self):
        path = os.path.join(self.state, "topology.json")
        with open(path, "w") as f:
            json.dump(self.topology(), f)
        up = json.loads(self.weft("-j", "lab", "--prefix", self.PREFIX, "up", "-f", path).stdout)
        self.assertTrue(up["status"]["ok"], json.dumps(up["status"]["matrix"], indent=1))
        self.assertEqual([n["node"] for n in up["nodes"]], ["t-n1", "t-n2"])
        # Each node attached its own ports only.
        self.assertEqual([len(n["applied"]["attach"]) for n in up["nodes"]], [2, 1])
        for node in up["nodes"]:
            self.assertTrue(os.path.exists(os.path.join(w.BPFFS, "weft", node["node"], "progs")))
        # Each VM's device is in its own node's namespace, named by weft.
        for vm in up["vms"]:
            ns = self.PREFIX + ("-n1" if vm["node"] == "t-n1" else "-n2")
            w.run(["ip", "-n", ns, "link", "show", vm["device"]])
        cells = {(c["from"], c["to"]): c for c in up["status"]["matrix"]}
        for pair in [("v1", "v2"), ("v2", "v1")]:
            self.assertEqual(cells[pair]["measured"], "reachable", pair)
        for pair in [("v1", "v3"), ("v3", "v1"), ("v2", "v3"), ("v3", "v2")]:
            self.assertEqual(cells[pair]["measured"], "isolated", pair)
        # status and the printed topology are the one up built, not the demo's.
        again = json.loads(self.weft("-j", "lab", "--prefix", self.PREFIX, "status").stdout)
        self.assertTrue(again["ok"])
        self.assertEqual(len(again["matrix"]), 6)
        shown = json.loads(self.weft("lab", "--prefix", self.PREFIX, "topology").stdout)
        self.assertEqual([n["name"] for n in shown["nodes"]], ["t-n1", "t-n2"])

        self.weft("lab", "--prefix", self.PREFIX, "down")
        left = [n for n in namespaces() if n.startswith(self.PREFIX + "-")]
        self.assertEqual(left, [])
        for node in ("t-n1", "t-n2"):
            self.assertFalse(os.path.exists(os.path.join(w.BPFFS, "weft", node)))
            self.assertFalse(os.path.exists(os.path.join(self.state, node)))
        self.assertEqual(os.listdir(self.state), ["topology.json"])

    def test_a_bad_topology_is_refused_before_anything_is_made(self):
        topology = self.topology()
        topology["vms"][2]["port_id"] = "no-such-port"
        topology["nodes"][1]["namespace"] = "N 2"
        proc = self.weft("lab", "--prefix", self.PREFIX, "up", "-f", "-", check=False,
                         input=json.dumps(topology))
        self.assertEqual(proc.returncode, 1)
        self.assertIn("vms[2] (v3): port_id 'no-such-port' is not a port of the document",
                      proc.stderr)
        self.assertIn("nodes[1]: namespace 'N 2' is not a name", proc.stderr)
        self.assertEqual([n for n in namespaces() if n.startswith(self.PREFIX + "-")], [])


    def test_plug_makes_what_is_missing_and_down_removes_it(self):
        """What the e2e harness does: plug a node, then VMs of ports given
        inline one at a time, asking weft for each VM's device; down removes
        them all and the record."""
        net, sub = w.make_network("green", 8, cidr="10.8.0.0/24", project="tenant-p")
        ports = [w.make_port(net["id"], sub["id"], "fa:16:3e:00:08:0%d" % i, "10.8.0.%d" % i,
                             "p-n1") for i in (1, 2)]
        node = [{"name": "p-n1", "namespace": "node"}]

        def plug(vms, *extra):
            topology = json.dumps({"nodes": node, "vms": vms})
            return json.loads(self.weft("-j", "lab", "--prefix", self.PREFIX, "plug", "-f", "-",
                                        *extra, input=topology).stdout)

        self.assertEqual(plug([])["made"], [self.PREFIX + "-node"])
        entry = {"name": "v1", "port": ports[0], "prefixlen": 16}
        dry = plug([entry], "--dry-run")
        self.assertEqual(dry["made"], [self.PREFIX + "-v1"])
        self.assertNotIn(self.PREFIX + "-v1", namespaces())
        first = plug([entry])["vms"][0]
        self.assertEqual((first["made"], first["device"]), (True, dry["vms"][0]["device"]))
        self.assertEqual(first["addresses"], ["10.8.0.1/16"])
        w.run(["ip", "-n", self.PREFIX + "-node", "link", "show", first["device"]])
        out = w.run(["ip", "-n", self.PREFIX + "-v1", "-br", "addr", "show", "eth0"]).stdout
        self.assertIn("10.8.0.1/16", out)
        # Plugging again makes only what is missing.
        again = plug([entry, {"name": "v2", "port": ports[1], "up": False}])
        self.assertEqual(again["made"], [self.PREFIX + "-v2"])
        self.assertEqual([vm["made"] for vm in again["vms"]], [False, True])
        shown = json.loads(self.weft("lab", "--prefix", self.PREFIX, "topology").stdout)
        self.assertEqual([vm["name"] for vm in shown["vms"]], ["v1", "v2"])

        down = json.loads(self.weft("-j", "lab", "--prefix", self.PREFIX, "down").stdout)
        self.assertEqual(sorted(down["namespaces_removed"]),
                         sorted(self.PREFIX + n for n in ("-node", "-v1", "-v2")))
        self.assertEqual([n for n in namespaces() if n.startswith(self.PREFIX + "-")], [])
        self.assertEqual(os.listdir(self.state), [])


if __name__ == "__main__":
    unittest.main()
