"""End to end: the fabric between nodes, seen on the wire and attacked there.

Three nodes on one underlay switch and one provider switch (`weft lab up -f`),
two tenants whose addresses and even MACs overlap across nodes:

    blue  VXLAN 4177  v1 (n1), v2 (n2), m (n2, migrates to n3)   tenant-a
    red   VLAN 177    r1 (n1), r3 (n3, v2's MAC and IP)           tenant-b
    green VXLAN 4178  g2 (n2), g3 (n3)                            tenant-b

What must arrive: VXLAN with the right wire format, GSO super-packets kept
whole, a tagged frame of red from the provider wire to its port, path MTU
answers at the MTU edge, the nodes' own traffic on their uplinks, a migrated
port at its new node. What must NOT arrive, each dropped and counted on the
receiving node's device: VXLAN from an address that is no node's, with a VNI
the node does not host, with an inner source that is not a port behind the
sending VTEP (also a node impersonating another tenant's port); 802.1Q frames
with an unknown tag or a second tag; broadcast copies to a node that hosts no
port of the network; ARP for remote ports on the underlay at all.

Run as root: python3 tests/e2e/test_fabric.py (env WEFT = the weft binary).
"""

import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
import unittest

import weftlab as w

PREFIX = w.PREFIX + "fab"
NODES = ["n1", "n2", "n3"]
CIDR = "172.31.77.0/24"
VNI_BLUE, VNI_GREEN, VLAN_RED = 4177, 4178, 177


def node_name(ns):
    return w.PREFIX + "f" + ns


def tunnel_ip(ns):
    return "172.31.77.%d" % (NODES.index(ns) + 1)


def lab_namespaces():
    out = w.run(["ip", "netns", "list"]).stdout.split()
    return sorted(n for n in out if n.startswith(PREFIX + "-"))


VMS = {  # name: (network, MAC, IP, node)
    "v1": ("blue", "fa:16:3e:77:00:01", "10.77.0.1", "n1"),
    "v2": ("blue", "fa:16:3e:77:00:02", "10.77.0.2", "n2"),
    "m": ("blue", "fa:16:3e:77:00:09", "10.77.0.9", "n2"),
    "r1": ("red", "fa:16:3e:77:01:01", "10.77.0.11", "n1"),
    "r3": ("red", "fa:16:3e:77:00:02", "10.77.0.2", "n3"),  # v2's MAC and IP
    "g2": ("green", "fa:16:3e:78:00:02", "10.78.0.2", "n2"),
    "g3": ("green", "fa:16:3e:78:00:03", "10.78.0.3", "n3"),
}


def topology():
    blue, blue_sub = w.make_network("blue", VNI_BLUE, cidr="10.77.0.0/24", project="tenant-a")
    red, red_sub = w.make_network("red", VLAN_RED, cidr="10.77.0.0/24", project="tenant-b")
    red.update({"provider:network_type": "vlan", "provider:physical_network": "physnet1",
                "mtu": 1500})
    green, green_sub = w.make_network("green", VNI_GREEN, cidr="10.78.0.0/24", project="tenant-b")
    nets = {"blue": (blue, blue_sub), "red": (red, red_sub), "green": (green, green_sub)}
    ports = {name: w.make_port(nets[net][0]["id"], nets[net][1]["id"], mac, ip, node_name(ns))
             for name, (net, mac, ip, ns) in VMS.items()}
    document = w.with_open_group({
        "networks": [blue, red, green], "subnets": [blue_sub, red_sub, green_sub],
        "ports": [ports[name] for name in sorted(ports)]})
    return {
        "underlay": {"cidr": CIDR},
        "nodes": [{"name": node_name(ns), "namespace": ns,
                   "physical_interface_mappings": {"physnet1": "eth-physnet1"}} for ns in NODES],
        "vms": [{"name": name, "port_id": ports[name]["id"]} for name in sorted(ports)],
        "document": document,
    }, ports


def ipv4_header_checksum_ok(header):
    return w.checksum(header) == 0


class Fabric(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        w.require_root()
        if lab_namespaces():
            raise AssertionError("namespaces of prefix %s exist already" % PREFIX)
        cls.state = tempfile.mkdtemp(prefix=w.PREFIX + "fab-")
        cls.addClassCleanup(shutil.rmtree, cls.state, True)
        cls.addClassCleanup(cls.weft, "-j", "lab", "--prefix", PREFIX, "down", check=False)
        topo, cls.ports = topology()
        path = os.path.join(cls.state, "topology.json")
        with open(path, "w") as f:
            json.dump(topo, f)
        proc = cls.weft("-j", "lab", "--prefix", PREFIX, "up", "-f", path, check=False)
        if proc.returncode != 0:
            raise AssertionError("lab up: %s\n%s" % (proc.stdout[-3000:], proc.stderr[-3000:]))
        cls.vms = {name: w.Vm(cls, name, port) for name, port in cls.ports.items()}

    # The harness's Vm finds its namespace as <prefix><name>.
    prefix = PREFIX + "-"

    @classmethod
    def weft(cls, *args, check=True, input=None):
        return w.run([w.WEFT, "--state-dir", cls.state] + list(args), check=check, timeout=240,
                     input=input)

    @classmethod
    def on(cls, ns, *args, check=True, input=None):
        """weft on node `ns` (n1, n2, n3), JSON out."""
        proc = cls.weft("-j", "--netns", PREFIX + "-" + ns, "--node", node_name(ns), *args,
                        check=check, input=input)
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    def counted(self, ns, device, reason):
        return sum(r["packets"] for r in self.on(ns, "stats")
                   if r["device"] == device and r["reason"] == reason)

    @staticmethod
    def uplink_of(ns):
        """The node's uplink, to send from as if from that node (its
        programs run on ingress only, so nothing of weft's is in the way)."""
        return w.Endpoint(ns + "-uplink", PREFIX + "-" + ns, "eth-underlay")

    @staticmethod
    def underlay_port(ns):
        """What node `ns` receives from the underlay, as it comes off the wire
        (captures see a frame before tc ingress does)."""
        return w.Endpoint("wire-" + ns, PREFIX + "-" + ns, "eth-underlay")

    @staticmethod
    def mac_of(ns, device):
        out = w.run(["ip", "-n", PREFIX + "-" + ns, "-j", "link", "show", "dev", device]).stdout
        return json.loads(out)[0]["address"]

    def vxlan_frame(self, src_ns, dst_ns, vni, inner, outer_src=None):
        """A VXLAN frame on src_ns's uplink to dst_ns's VTEP, around `inner`."""
        vxlan = struct.pack("!II", 0x08000000, vni << 8) + inner
        udp = struct.pack("!HHHH", 50000, 4789, 8 + len(vxlan), 0) + vxlan
        ip = w.ipv4(outer_src or tunnel_ip(src_ns), tunnel_ip(dst_ns), 17, udp)
        return w.eth(self.mac_of(dst_ns, "eth-underlay"), self.mac_of(src_ns, "eth-underlay"),
                     w.ETH_P_IP, ip)

    # --- what crosses the underlay ----------------------------------------------

    def test_vxlan_on_the_wire_has_the_vni_the_vteps_and_the_frame_inside(self):
        v1, v2 = self.vms["v1"], self.vms["v2"]
        pattern = os.urandom(8)
        caps = w.capture_during([self.underlay_port("n2")],
                                lambda: self.assertTrue(v1.ping(v2.ip, pattern=pattern)))
        frames = [f for f in caps["wire-n2"].result() if pattern in f.raw]
        self.assertTrue(frames, "no echo with the pattern crossed the underlay")
        request = next(f.raw for f in frames if f.raw[12:14] == b"\x08\x00" and
                       f.raw[30:34] == w.ip4_bytes(tunnel_ip("n2")))
        ip = request[14:34]
        self.assertEqual(request[0:6], w.mac_bytes(self.mac_of("n2", "eth-underlay")))
        self.assertEqual(request[6:12], w.mac_bytes(self.mac_of("n1", "eth-underlay")))
        self.assertEqual(ip[0], 0x45)
        self.assertEqual(ip[9], 17)
        self.assertEqual(ip[12:16], w.ip4_bytes(tunnel_ip("n1")))
        self.assertTrue(ipv4_header_checksum_ok(ip))
        sport, dport, length, csum = struct.unpack("!HHHH", request[34:42])
        self.assertEqual(dport, 4789)
        self.assertGreaterEqual(sport, 49152)
        self.assertEqual(csum, 0)
        self.assertEqual(length, struct.unpack("!H", ip[2:4])[0] - 20)
        flags, vni = struct.unpack("!II", request[42:50])
        self.assertEqual(flags, 0x08000000)
        self.assertEqual(vni >> 8, VNI_BLUE)
        inner = request[50:]
        self.assertEqual(inner[0:6], w.mac_bytes(v2.mac))
        self.assertEqual(inner[6:12], w.mac_bytes(v1.mac))
        self.assertEqual(inner[26:30], w.ip4_bytes(v1.ip))

    def test_a_tcp_stream_crosses_in_gso_super_packets(self):
        v1, v2 = self.vms["v1"], self.vms["v2"]
        server = subprocess.Popen(w.in_ns(v2.ns, "iperf3", "-s", "-1", "-p", "5301"),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            caps = w.capture_during(
                [self.underlay_port("n2")],
                lambda: v1.sh("iperf3", "-c", v2.ip, "-p", "5301", "-n", "3M", timeout=60))
        finally:
            server.kill()
            server.wait()
        sizes = [len(f.raw) for f in caps["wire-n2"].result() if f.raw[12:14] == b"\x08\x00"]
        # Bigger than the underlay's 1500-byte MTU: segmented by the kernel
        # after the fabric, not before (FIXED_GSO keeps the inner MSS).
        self.assertTrue(any(s > 3000 for s in sizes), sorted(sizes)[-5:])

    def test_a_broadcast_reaches_only_the_nodes_that_host_its_network(self):
        v1 = self.vms["v1"]
        frame, token = v1.udp_frame(w.BROADCAST, "10.77.0.255")
        caps = w.capture_during([self.underlay_port("n2"), self.underlay_port("n3"),
                                 self.vms["v2"], self.vms["r3"], self.vms["g3"]],
                                lambda: v1.send(frame))
        self.assertTrue(caps["wire-n2"].with_token(token), "no copy to n2, which hosts blue")
        self.assertTrue(caps["v2"].with_token(token))
        self.assertEqual(caps["wire-n3"].with_token(token), [], "a copy went to n3")
        self.assertEqual(caps["r3"].with_token(token), [])
        self.assertEqual(caps["g3"].with_token(token), [])

    def test_arp_for_a_remote_port_is_answered_on_its_node_and_never_crosses(self):
        v1, v2 = self.vms["v1"], self.vms["v2"]
        frame, token = v1.arp_request(v2.ip)
        caps = w.capture_during([v1, v2, self.underlay_port("n2"), self.underlay_port("n3")],
                                lambda: v1.send(frame))
        replies = [f.arp() for f in caps["v1"].result() if f.arp() and f.arp()[0] == 2]
        self.assertIn((2, v2.mac, v2.ip, v1.mac, v1.ip), replies)
        for where in ("v2", "wire-n2", "wire-n3"):
            self.assertEqual(caps[where].with_token(token), [], where)

    def test_tenants_with_the_same_mac_and_ip_on_other_nodes_stay_apart(self):
        # r3 (red, n3) has v2's MAC and IP; v1 (blue, n1) reaches v2 only.
        v1, v2, r1, r3 = (self.vms[n] for n in ("v1", "v2", "r1", "r3"))
        frame, token = v1.udp_frame(v2.mac, v2.ip)
        caps = w.capture_during([v2, r3], lambda: v1.send(frame))
        self.assertTrue(caps["v2"].with_token(token))
        self.assertEqual(caps["r3"].with_token(token), [])
        frame, token = r1.udp_frame(r3.mac, r3.ip)
        caps = w.capture_during([v2, r3], lambda: r1.send(frame))
        self.assertTrue(caps["r3"].with_token(token))
        self.assertEqual(caps["v2"].with_token(token), [])
        self.assertFalse(v1.ping(self.vms["g2"].ip))

    # --- crafted VXLAN: none delivered, each counted ------------------------------

    def assert_refused(self, frame, reason, token, watchers):
        before = self.counted("n2", "eth-underlay", reason)
        caps = w.capture_during(watchers, lambda: self.uplink_of("n1").send(frame))
        for vm in watchers:
            self.assertEqual(caps[vm.name].with_token(token), [], vm.name)
        self.assertEqual(self.counted("n2", "eth-underlay", reason), before + 1, reason)

    def test_vxlan_from_an_address_that_is_no_node_is_dropped_and_counted(self):
        v1, v2 = self.vms["v1"], self.vms["v2"]
        inner, token = v1.udp_frame(v2.mac, v2.ip)
        frame = self.vxlan_frame("n1", "n2", VNI_BLUE, inner, outer_src="172.31.77.99")
        self.assert_refused(frame, "drop-unknown-vtep", token, [v2])

    def test_vxlan_with_a_vni_the_node_does_not_host_is_dropped_and_counted(self):
        v1, v2 = self.vms["v1"], self.vms["v2"]
        inner, token = v1.udp_frame(v2.mac, v2.ip)
        self.assert_refused(self.vxlan_frame("n1", "n2", 9999, inner), "drop-unknown-vni", token,
                            [v2])

    def test_vxlan_whose_inner_source_is_not_behind_the_sending_vtep_is_dropped(self):
        v2, g2, g3 = self.vms["v2"], self.vms["g2"], self.vms["g3"]
        # A MAC no port has, and a node posing as a port of another tenant
        # that lives on a third node: n1 hosts no green port, g3 is on n3.
        inner, token = self.vms["v1"].udp_frame(v2.mac, v2.ip, src_mac="fa:16:3e:77:00:99")
        self.assert_refused(self.vxlan_frame("n1", "n2", VNI_BLUE, inner),
                            "drop-inner-source-not-at-vtep", token, [v2])
        inner, token = g3.udp_frame(g2.mac, g2.ip)
        self.assert_refused(self.vxlan_frame("n1", "n2", VNI_GREEN, inner),
                            "drop-inner-source-not-at-vtep", token, [g2])

    def test_vxlan_as_the_sending_node_itself_would_send_it_is_delivered(self):
        # The checks above refuse what is wrong, not VXLAN as such.
        v1, v2 = self.vms["v1"], self.vms["v2"]
        inner, token = v1.udp_frame(v2.mac, v2.ip)
        caps = w.capture_during([v2], lambda: self.uplink_of("n1").send(
            self.vxlan_frame("n1", "n2", VNI_BLUE, inner)))
        self.assertTrue(caps["v2"].with_token(token))

    def test_the_nodes_own_traffic_on_the_uplink_is_untouched(self):
        n1, n2 = PREFIX + "-n1", PREFIX + "-n2"
        server = subprocess.Popen(w.in_ns(n2, "nc", "-l", "-p", "7777"), stdout=subprocess.PIPE,
                                  text=True)
        try:
            time.sleep(0.3)
            w.run(w.in_ns(n1, "sh", "-c", "echo node-to-node | nc -q 1 %s 7777" %
                          tunnel_ip("n2")))
            out, _ = server.communicate(timeout=10)
        finally:
            if server.poll() is None:
                server.kill()
        self.assertEqual(out.strip(), "node-to-node")
        w.run(w.in_ns(n1, "ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "1",
                      tunnel_ip("n3")))

    # --- the provider wire ----------------------------------------------------------

    def wire(self):
        """physnet1's bridge in the provider switch, as a host on that wire."""
        return w.Endpoint("provider", PREFIX + "-provider", "br-physnet1")

    def test_a_tagged_frame_of_red_from_the_wire_reaches_its_port_untagged(self):
        r1 = self.vms["r1"]
        frame, token = r1.udp_frame(r1.mac, r1.ip, src_mac="52:54:00:77:00:64",
                                    src_ip="10.77.0.100", vlan=VLAN_RED)
        caps = w.capture_during([r1], lambda: self.wire().send(frame))
        got = caps["r1"].with_token(token)
        self.assertTrue(got)
        self.assertEqual(got[0].vlan, None)
        self.assertEqual(got[0].raw[12:14], b"\x08\x00")

    def test_crafted_vlan_frames_on_the_provider_wire_are_dropped_and_counted(self):
        r1, v1 = self.vms["r1"], self.vms["v1"]
        for vlan, reason, inner_tag in [(999, "drop-unknown-vlan", None),
                                        (VLAN_RED, "drop-tagged-inside", 5)]:
            token = w.new_token()
            payload = w.udp4("10.77.0.100", r1.ip, 40000, 40001, token)
            if inner_tag is not None:
                payload = struct.pack("!HH", inner_tag, w.ETH_P_IP) + payload
                ethertype = w.ETH_P_8021Q
            else:
                ethertype = w.ETH_P_IP
            frame = w.eth(r1.mac, "52:54:00:77:00:64", ethertype, payload, vlan=vlan)
            before = self.counted("n1", "eth-physnet1", reason)
            caps = w.capture_during([r1, v1], lambda f=frame: self.wire().send(f))
            self.assertEqual(caps["r1"].with_token(token), [], reason)
            self.assertEqual(caps["v1"].with_token(token), [], reason)
            self.assertEqual(self.counted("n1", "eth-physnet1", reason), before + 1, reason)

    def test_red_reaches_across_nodes_on_its_vlan_tagged_on_the_wire(self):
        r1, r3 = self.vms["r1"], self.vms["r3"]
        frame, token = r1.udp_frame(r3.mac, r3.ip)
        wire = w.Endpoint("wire-n3", PREFIX + "-provider",
                          self.provider_port_of("n3"))
        caps = w.capture_during([r3, wire], lambda: r1.send(frame))
        self.assertTrue(caps["r3"].with_token(token))
        tagged = caps["wire-n3"].with_token(token)
        self.assertTrue(tagged)
        self.assertEqual(tagged[0].vlan, VLAN_RED)

    def provider_port_of(self, ns):
        """The provider switch's port to node `ns`'s physnet1 device."""
        peer = json.loads(w.run(["ip", "-n", PREFIX + "-" + ns, "-j", "link", "show", "dev",
                                 "eth-physnet1"]).stdout)[0]["link_index"]
        links = json.loads(w.run(["ip", "-n", PREFIX + "-provider", "-j", "link"]).stdout)
        return next(l["ifname"] for l in links if l["ifindex"] == peer)

    # --- MTU ----------------------------------------------------------------------

    def test_df_pings_at_the_mtu_edge_pass_and_above_it_learn_the_mtu(self):
        v1, v2 = self.vms["v1"], self.vms["v2"]
        v1.sh("ip", "link", "set", "eth0", "mtu", "1500")  # bigger than blue's 1450
        try:
            v1.sh("ip", "route", "flush", "cache")
            self.assertTrue(v1.ping(v2.ip, pattern=b"edge") and
                            v1.sh("ping", "-n", "-c", "1", "-W", "1", "-M", "do", "-s", "1422",
                                  v2.ip, check=False).returncode == 0)
            before = self.counted("n1", self.device_of("n1", "v1"), "mtu-icmp-sent")
            out = v1.sh("ping", "-n", "-c", "1", "-W", "1", "-M", "do", "-s", "1423", v2.ip,
                        check=False)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("mtu = 1450", out.stdout)
            self.assertEqual(self.counted("n1", self.device_of("n1", "v1"), "mtu-icmp-sent"),
                             before + 1)
            self.assertIn("mtu 1450", v1.sh("ip", "route", "get", v2.ip).stdout)
        finally:
            v1.sh("ip", "link", "set", "eth0", "mtu", "1450")
            v1.sh("ip", "route", "flush", "cache")

    def device_of(self, ns, vm):
        port = self.ports[vm]["id"]
        return next(p["device"] for p in self.on(ns, "port", "list") if p["id"] == port)

    # --- inspection ---------------------------------------------------------------

    def test_vteps_and_remote_macs_are_shown_decoded(self):
        vteps = {r["vtep"]: r for r in self.on("n1", "vtep", "list")}
        self.assertEqual(set(vteps), {tunnel_ip("n2"), tunnel_ip("n3")})
        self.assertEqual(vteps[tunnel_ip("n2")]["node"], node_name("n2"))
        self.assertEqual(vteps[tunnel_ip("n2")]["networks"], ["blue"])
        self.assertEqual(vteps[tunnel_ip("n3")]["networks"], [])  # n3 has no blue port
        fdb = {(r["network"], r["mac"]): r for r in self.on("n1", "fdb", "list")}
        self.assertEqual(fdb[("blue", self.vms["v2"].mac)]["vtep"], tunnel_ip("n2"))
        self.assertEqual(fdb[("blue", self.vms["v2"].mac)]["port_id"], self.ports["v2"]["id"])
        blue = self.on("n1", "net", "show", "blue")
        self.assertEqual([f.get("vtep") for f in blue["flood"] if f["to"] == "vtep"],
                         [tunnel_ip("n2")])
        red = self.on("n1", "net", "show", "red")
        self.assertEqual(red["wire_device"], "eth-physnet1")

    # --- changes of the fabric (run last: they change it) ---------------------------

    def apply_everywhere(self, document):
        for ns in NODES:
            self.on(ns, "apply", "-f", "-", input=json.dumps(document))

    def test_z1_a_port_that_migrates_is_reachable_at_its_new_node(self):
        v1, m = self.vms["v1"], self.vms["m"]
        self.assertTrue(v1.ping(m.ip))
        device = self.device_of("n2", "m")
        # Live migration: the VM's device moves to n3 (the VM keeps its end).
        w.run(["ip", "-n", PREFIX + "-n2", "link", "set", device, "netns", PREFIX + "-n3"])
        w.run(["ip", "-n", PREFIX + "-n3", "link", "set", device, "up"])
        # The document the lab applied: the topology's, with the nodes' VTEPs.
        moved = json.loads(self.weft("lab", "--prefix", PREFIX, "state").stdout)
        for port in moved["ports"]:
            if port["id"] == self.ports["m"]["id"]:
                port["binding:host_id"] = node_name("n3")
        self.apply_everywhere(moved)
        self.assertTrue(v1.ping(m.ip, count=3, interval=0.2))
        fdb = {(r["network"], r["mac"]): r for r in self.on("n1", "fdb", "list")}
        self.assertEqual(fdb[("blue", m.mac)]["vtep"], tunnel_ip("n3"))
        self.assertTrue(self.vms["v2"].ping(m.ip))

    def test_z2_uninstalling_one_node_leaves_the_others_working(self):
        v1, v2, r1 = self.vms["v1"], self.vms["v2"], self.vms["r1"]
        self.on("n3", "node", "uninstall")
        self.assertTrue(v1.ping(v2.ip, count=3, interval=0.2))
        self.assertTrue(v2.ping(v1.ip))
        self.assertFalse(r1.ping(self.vms["r3"].ip))  # r3's node has no fabric now
        self.assertFalse(os.path.exists(os.path.join(w.BPFFS, "weft", node_name("n3"))))


if __name__ == "__main__":
    unittest.main(verbosity=2)
