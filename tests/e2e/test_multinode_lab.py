"""End to end: a lab of three nodes joined by an underlay and a provider switch.

`weft lab up -f` builds, from a topology file with its own prefix and node
names, three nodes whose uplinks sit on one underlay switch (each with its
tunnel IP) and whose physnet devices sit on one provider switch, VMs of a
VXLAN, a VLAN and a flat network spread across them, and a physical host on
the flat network. The nodes reach each other's tunnel IPs; `lab status -j`
lists the nodes; a VM reaches the VMs of its network on the other nodes
(VXLAN over the underlay, VLAN and flat over the provider switch) and the
physical host, and no other tenant's; `lab down` leaves no namespace, pin or
record.

Run as root: python3 tests/e2e/test_multinode_lab.py (env WEFT = the weft binary).
"""

import json
import os
import shutil
import tempfile
import unittest

import weftlab as w

PREFIX = w.PREFIX + "mn"          # namespaces <PREFIX>-<name>
NODES = ["n1", "n2", "n3"]         # namespaces <PREFIX>-n1, …
CIDR = "172.31.66.0/24"            # inside the lab's namespaces only


def node_name(ns):
    """The weft node of namespace `ns`: prefixed, so that its pins
    (<bpffs>/weft/<node>) are this run's alone."""
    return w.PREFIX + ns


def tunnel_ip(index):
    return "172.31.66.%d" % (index + 1)  # the underlay's host number index + 1


def namespaces():
    return set(w.run(["ip", "netns", "list"]).stdout.split())


def lab_namespaces():
    return sorted(n for n in namespaces() if n.startswith(PREFIX + "-"))


def topology():
    """blue: VXLAN on n1, n2 and n3; red: VLAN 120 on physnet1, n1 and n3,
    in another project with blue's addresses; lan: flat on physnet2, a VM on
    n2 and the physical host ph."""
    blue, blue_sub = w.make_network("blue", 4120, cidr="10.12.0.0/24", project="tenant-a")
    red, red_sub = w.make_network("red", 120, cidr="10.12.0.0/24", project="tenant-b")
    red.update({"provider:network_type": "vlan", "provider:physical_network": "physnet1",
                "mtu": 1500})
    lan, lan_sub = w.make_network("lan", 0, cidr="10.13.0.0/24", project="tenant-a")
    lan.update({"provider:network_type": "flat", "provider:segmentation_id": None,
                "provider:physical_network": "physnet2", "mtu": 1500})
    vms = {  # name: (network, subnet, MAC, IP, node namespace)
        "v1": (blue, blue_sub, "fa:16:3e:12:00:01", "10.12.0.1", "n1"),
        "v2": (blue, blue_sub, "fa:16:3e:12:00:02", "10.12.0.2", "n2"),
        "v3": (blue, blue_sub, "fa:16:3e:12:00:03", "10.12.0.3", "n3"),
        "r1": (red, red_sub, "fa:16:3e:12:01:01", "10.12.0.11", "n1"),
        "r3": (red, red_sub, "fa:16:3e:12:01:03", "10.12.0.13", "n3"),
        "f2": (lan, lan_sub, "fa:16:3e:13:00:02", "10.13.0.2", "n2"),
    }
    ports = {name: w.make_port(net["id"], sub["id"], mac, ip, node_name(ns))
             for name, (net, sub, mac, ip, ns) in vms.items()}
    document = w.with_open_group({
        "networks": [blue, red, lan], "subnets": [blue_sub, red_sub, lan_sub],
        "ports": [ports[name] for name in sorted(ports)]})
    mappings = {"physnet1": "eth-physnet1", "physnet2": "eth-physnet2"}
    return {
        "underlay": {"cidr": CIDR},
        "nodes": [{"name": node_name(ns), "namespace": ns,
                   "physical_interface_mappings": mappings} for ns in NODES],
        "vms": [{"name": name, "port_id": ports[name]["id"]} for name in sorted(ports)],
        "physical_hosts": [{"name": "ph", "physnet": "physnet2", "mac": "52:54:00:13:00:64",
                            "addresses": ["10.13.0.100/24"]}],
        "document": document,
    }


class Weft:
    def __init__(self, state):
        self.state = state

    def __call__(self, *args, check=True, input=None):
        return w.run([w.WEFT, "--state-dir", self.state] + list(args), check=check,
                     timeout=240, input=input)

    def lab(self, *args, check=True, input=None):
        return self("-j", "lab", "--prefix", PREFIX, *args, check=check, input=input)


def start(test_class):
    """Writes the topology to a file and brings the lab up from it; `lab up`
    exits non-zero when the matrix differs from the expected one, which the
    tests then look at cell by cell."""
    w.require_root()
    if lab_namespaces():
        raise AssertionError("namespaces of prefix %s exist already: %s" %
                             (PREFIX, lab_namespaces()))
    test_class.state = tempfile.mkdtemp(prefix=w.PREFIX + "mn-")
    test_class.addClassCleanup(shutil.rmtree, test_class.state, True)
    test_class.weft = Weft(test_class.state)
    test_class.addClassCleanup(test_class.weft.lab, "down", check=False)
    test_class.path = os.path.join(test_class.state, "topology.json")
    with open(test_class.path, "w") as f:
        json.dump(topology(), f, indent=1)
    proc = test_class.weft.lab("up", "-f", test_class.path, check=False)
    try:
        test_class.up = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("weft lab up: exit %d\nstdout: %s\nstderr: %s" %
                             (proc.returncode, proc.stdout, proc.stderr))
    if "error" in test_class.up and "status" not in test_class.up:
        raise AssertionError("weft lab up: %s" % test_class.up["error"])


class MultiNodeLab(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        start(cls)
        cls.status = json.loads(cls.weft.lab("status", check=False).stdout)
        cls.cells = {(c["from"], c["to"]): c for c in cls.status["matrix"]}

    def cell(self, pair):
        return self.cells[pair]

    def test_each_node_has_its_uplink_with_its_tunnel_ip_and_reaches_the_others(self):
        for i, ns in enumerate(NODES):
            out = w.run(["ip", "-n", PREFIX + "-" + ns, "-br", "addr", "show", "dev",
                         "eth-underlay"]).stdout
            self.assertIn(tunnel_ip(i) + "/24", out, ns)
            for j in range(len(NODES)):
                if i != j:
                    w.run(w.in_ns(PREFIX + "-" + ns, "ping", "-n", "-q", "-c", "1", "-W", "2",
                                  tunnel_ip(j)))
        # The switches are the lab's: one bridge for the underlay, one per
        # physnet in the provider switch (separate wires), no VLAN filtering.
        for switch, bridge in (("underlay", "br0"), ("provider", "br-physnet1"),
                               ("provider", "br-physnet2")):
            w.run(["ip", "-n", PREFIX + "-" + switch, "link", "show", "dev", bridge])

    def test_nodes_are_installed_with_uplink_tunnel_ip_and_physnet_mappings(self):
        self.assertEqual([n["node"] for n in self.up["nodes"]], [node_name(n) for n in NODES])
        for i, node in enumerate(self.up["nodes"]):
            self.assertEqual(node["tunnel_ip"], tunnel_ip(i))
            self.assertEqual(node["uplink"], "eth-underlay")
            self.assertEqual(node["physical_interface_mappings"],
                             {"physnet1": "eth-physnet1", "physnet2": "eth-physnet2"})
            self.assertTrue(os.path.exists(os.path.join(w.BPFFS, "weft", node["node"], "progs")))
        # Every node's document names every node's VTEP.
        document = json.loads(self.weft("lab", "--prefix", PREFIX, "state").stdout)
        self.assertEqual(document["nodes"], [{"name": node_name(ns), "tunnel_ip": tunnel_ip(i)}
                                             for i, ns in enumerate(NODES)])

    def test_status_lists_the_nodes_the_physical_host_and_each_ends_node(self):
        self.assertEqual([(n["name"], n["namespace"], n["tunnel_ip"])
                          for n in self.status["nodes"]],
                         [(node_name(ns), PREFIX + "-" + ns, tunnel_ip(i))
                          for i, ns in enumerate(NODES)])
        self.assertEqual(self.status["underlay"]["cidr"], CIDR)
        self.assertEqual([h["name"] for h in self.status["physical_hosts"]], ["ph"])
        v1_v2 = self.cell(("v1", "v2"))
        self.assertEqual((v1_v2["from_node"], v1_v2["to_node"]), (node_name("n1"), node_name("n2")))
        f2_ph = self.cell(("f2", "ph"))
        self.assertEqual((f2_ph["to_node"], f2_ph["to_physnet"]), (None, "physnet2"))
        # Expected: one network, and the underlay or provider switch between the nodes.
        for pair in [("v1", "v2"), ("v1", "v3"), ("v2", "v3"), ("r1", "r3"), ("f2", "ph"),
                     ("ph", "f2")]:
            self.assertEqual(self.cell(pair)["expected"], "reachable", pair)
        for pair in [("v1", "r3"), ("r1", "v3"), ("v2", "ph"), ("ph", "v2"), ("r3", "f2")]:
            self.assertEqual(self.cell(pair)["expected"], "isolated", pair)

    def test_a_vm_reaches_the_vms_of_its_network_on_the_other_nodes(self):
        # VXLAN over the underlay; VLAN over the provider switch. Needs the
        # datapath (VXLAN encap/decap, VLAN push/pop).
        for pair in [("v1", "v2"), ("v2", "v1"), ("v1", "v3"), ("v3", "v2"), ("r1", "r3"),
                     ("r3", "r1")]:
            self.assertEqual(self.cell(pair)["measured"], "reachable",
                             "%s -> %s: %s" % (pair[0], pair[1], self.cell(pair)))
        self.assertTrue(self.status["ok"], json.dumps(
            [c for c in self.status["matrix"] if c["result"] == "MISMATCH"], indent=1))

    def test_a_vm_reaches_the_physical_host_of_its_flat_network_and_back(self):
        for pair in [("f2", "ph"), ("ph", "f2")]:
            self.assertEqual(self.cell(pair)["measured"], "reachable",
                             "%s -> %s: %s" % (pair[0], pair[1], self.cell(pair)))

    def test_other_tenants_stay_isolated_across_nodes(self):
        # red has blue's subnet: 10.12.0.0/24 in another project, on a VLAN.
        for pair in [("v1", "r3"), ("r3", "v1"), ("r1", "v3"), ("v3", "r1"), ("v2", "f2"),
                     ("r1", "f2"), ("ph", "v2")]:
            self.assertEqual(self.cell(pair)["measured"], "isolated", pair)


class MultiNodeLabDown(unittest.TestCase):
    """Down removes the switches, the physical host, every node's pins and
    the record, and is a success when run again."""

    @classmethod
    def setUpClass(cls):
        start(cls)

    def test_down_leaves_nothing_behind(self):
        made = lab_namespaces()
        for name in ["underlay", "provider", "ph", "v1", "r3", "f2"] + NODES:
            self.assertIn(PREFIX + "-" + name, made)
        down = json.loads(self.weft.lab("down").stdout)
        self.assertEqual(sorted(down["namespaces_removed"]), made)
        self.assertEqual(sorted(n["node"] for n in down["nodes"] if n["node_uninstalled"]),
                         sorted(node_name(n) for n in NODES))
        self.assertEqual(lab_namespaces(), [])
        for ns in NODES:
            self.assertFalse(os.path.exists(os.path.join(w.BPFFS, "weft", node_name(ns))))
        self.assertEqual(os.listdir(self.state), ["topology.json"])
        again = json.loads(self.weft.lab("down").stdout)
        self.assertFalse(again["was_up"])


class MultiNodePlug(unittest.TestCase):
    """`lab plug` grows a lab node by node, as the e2e harness does: each
    fragment's node gets its uplink with the tunnel IP of its place in the
    lab's record, not in the fragment."""

    def test_plugged_nodes_join_the_underlay_one_by_one(self):
        w.require_root()
        state = tempfile.mkdtemp(prefix=w.PREFIX + "mn-")
        self.addCleanup(shutil.rmtree, state, True)
        weft = Weft(state)
        self.addCleanup(weft.lab, "down", check=False)
        for i, ns in enumerate(NODES[:2]):
            fragment = {"underlay": {"cidr": CIDR},
                        "nodes": [{"name": node_name(ns), "namespace": ns,
                                   "physical_interface_mappings": {"physnet1": "eth-physnet1"}}]}
            out = json.loads(weft.lab("plug", "-f", "-", input=json.dumps(fragment)).stdout)
            self.assertIn("%s-%s:eth-underlay" % (PREFIX, ns), out["wired"])
            address = w.run(["ip", "-n", PREFIX + "-" + ns, "-br", "addr", "show", "dev",
                             "eth-underlay"]).stdout
            self.assertIn(tunnel_ip(i) + "/24", address)
        w.run(w.in_ns(PREFIX + "-n2", "ping", "-n", "-q", "-c", "1", "-W", "2", tunnel_ip(0)))
        down = json.loads(weft.lab("down").stdout)
        self.assertEqual(sorted(down["namespaces_removed"]),
                         sorted(PREFIX + "-" + n for n in ["n1", "n2", "underlay", "provider"]))
        self.assertEqual(lab_namespaces(), [])


class MultiNodeTopologyRefused(unittest.TestCase):
    def test_a_bad_topology_is_refused_before_anything_is_made(self):
        w.require_root()
        state = tempfile.mkdtemp(prefix=w.PREFIX + "mn-")
        self.addCleanup(shutil.rmtree, state, True)
        weft = Weft(state)
        self.addCleanup(weft.lab, "down", check=False)
        bad = topology()
        bad["nodes"][1]["tunnel_ip"] = "10.9.9.9"
        bad["nodes"][2]["physical_interface_mappings"]["physnet1"] = "eth-underlay"
        bad["physical_hosts"][0]["physnet"] = "physnet7"
        proc = weft("lab", "--prefix", PREFIX, "up", "-f", "-", check=False,
                    input=json.dumps(bad))
        self.assertEqual(proc.returncode, 1, proc.stderr)
        for line in ["nodes[1]: tunnel_ip '10.9.9.9' is not in the underlay " + CIDR,
                     "nodes[2]: physical_interface_mappings.physnet1 'eth-underlay' is the uplink",
                     "physical_hosts[0] (ph): physnet 'physnet7' is mapped by no node"]:
            self.assertIn(line, proc.stderr)
        self.assertEqual(lab_namespaces(), [])
        self.assertEqual(os.listdir(state), [])


if __name__ == "__main__":
    unittest.main()
