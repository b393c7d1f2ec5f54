"""End to end: L2 switching inside tenant segments on one node.

Two VXLAN networks, A and B, share one node, one CIDR and even one MAC
(a1 and b1 have the same MAC and IP). Every isolation property is shown by a
frame that must not arrive as much as by one that must, and by the counter
that says why (`weft -j stats`).

Run as root: python3 tests/e2e/test_l2.py (env WEFT = the weft binary).
"""

import os
import subprocess
import time
import unittest

import weftlab as w

SHARED_MAC = "fa:16:3e:00:00:11"


class L2Fabric(w.LabTestMixin, unittest.TestCase):
    """One node, networks A and B, three VMs each."""

    @classmethod
    def setUpClass(cls):
        cls.start_lab("l2")
        host = cls.lab.node
        cls.net_a, cls.sub_a = w.make_network("tenant-a-net", 1001, project="tenant-a")
        cls.net_b, cls.sub_b = w.make_network("tenant-b-net", 1002, project="tenant-b")
        a, sa, b, sb = cls.net_a["id"], cls.sub_a["id"], cls.net_b["id"], cls.sub_b["id"]
        cls.ports = {
            "a1": w.make_port(a, sa, SHARED_MAC, "10.0.0.11", host),
            "a2": w.make_port(a, sa, "fa:16:3e:0a:00:12", "10.0.0.12", host),
            "a3": w.make_port(a, sa, "fa:16:3e:0a:00:13", "10.0.0.13", host),
            "b1": w.make_port(b, sb, SHARED_MAC, "10.0.0.11", host),
            "b2": w.make_port(b, sb, "fa:16:3e:0b:00:12", "10.0.0.12", host),
            "b3": w.make_port(b, sb, "fa:16:3e:0b:00:22", "10.0.0.22", host),
        }
        cls.vm = {name: cls.lab.add_vm(name, port) for name, port in cls.ports.items()}
        cls.lab.install()
        cls.lab.apply(cls.document())

    @classmethod
    def document(cls, names=("a1", "a2", "a3", "b1", "b2", "b3"), extra=()):
        return w.with_open_group({
            "nodes": [{"name": cls.lab.node, "tunnel_ip": "172.31.0.1"}],
            "networks": [cls.net_a, cls.net_b],
            "subnets": [cls.sub_a, cls.sub_b],
            "ports": [cls.ports[n] for n in names] + list(extra),
            "security_groups": [],
        })

    def setUp(self):
        # Every test starts from the full document, whatever the last one did.
        self.lab.apply(self.document())

    def tenant_a(self):
        return [self.vm["a1"], self.vm["a2"], self.vm["a3"]]

    def tenant_b(self):
        return [self.vm["b1"], self.vm["b2"], self.vm["b3"]]

    # --- switching ----------------------------------------------------------------

    def test_ping_within_each_network(self):
        vm = self.vm
        for src, dst in (("a1", "a2"), ("a2", "a3"), ("a3", "a1"), ("b1", "b2"), ("b2", "b3")):
            self.assertTrue(vm[src].ping(vm[dst].ip), "%s cannot ping %s" % (src, dst))
        # TCP and UDP, not only ICMP.
        server = vm["a2"].serve_echo(7000)
        self.addCleanup(w.Vm.stop_echo, server)
        self.assertEqual(vm["a1"].echo("tcp", vm["a2"].ip, 7000, "over-tcp"), "a2:over-tcp")
        self.assertEqual(vm["a1"].echo("udp", vm["a2"].ip, 7000, "over-udp"), "a2:over-udp")
        a1, a2 = self.ports["a1"]["id"], self.ports["a2"]["id"]
        before1, before2 = self.lab.counters(a1), self.lab.counters(a2)
        self.assertTrue(vm["a1"].ping(vm["a2"].ip, count=3, interval=0.05))
        self.assertCounted(self.lab, a1, before1, "forward-unicast", 3)
        self.assertCounted(self.lab, a2, before2, "delivered", 3)  # the requests, at a2
        self.assertCounted(self.lab, a2, before2, "forward-unicast", 3)  # the replies

    def test_tenants_with_same_ip_and_mac_stay_isolated(self):
        vm = self.vm
        # Ping 10.0.0.11 from both tenants: each reaches its own .11 only.
        for sender, owner, other in (("a2", "a1", "b1"), ("b2", "b1", "a1")):
            pattern = w.ping_pattern()
            captures = self.watch(
                [vm[owner], vm[other]],
                lambda: self.assertTrue(vm[sender].ping("10.0.0.11", pattern=pattern),
                                        "%s cannot ping its own 10.0.0.11" % sender))
            self.assertTrue(captures[owner].with_token(pattern),
                            "the echo from %s did not reach %s" % (sender, owner))
            self.assertFalse(captures[other].with_token(pattern),
                             "the echo from %s crossed into the other tenant (%s)" %
                             (sender, other))
            self.assertFalse([f for f in captures[other].result() if f.src == vm[sender].mac],
                             "a frame from %s reached %s" % (sender, other))

        # Both .11s serve 10.0.0.11:7000; each tenant's client reaches its own.
        for owner in ("a1", "b1"):
            server = vm[owner].serve_echo(7000)
            self.addCleanup(w.Vm.stop_echo, server)
        for client, owner in (("a2", "a1"), ("b2", "b1"), ("a3", "a1"), ("b3", "b1")):
            for proto in ("tcp", "udp"):
                self.assertEqual(vm[client].echo(proto, "10.0.0.11", 7000, "x"), owner + ":x",
                                 "%s %s to 10.0.0.11 answered by the wrong tenant" %
                                 (client, proto))

        # Crafted unicast to the shared MAC, from each side.
        self.exchange(vm["a2"], [vm["a2"].udp_frame(SHARED_MAC, "10.0.0.11")],
                      arrive=[vm["a1"]], absent=self.tenant_b())
        self.exchange(vm["b2"], [vm["b2"].udp_frame(SHARED_MAC, "10.0.0.11")],
                      arrive=[vm["b1"]], absent=[vm["a1"], vm["a2"], vm["a3"]])

        # A MAC that exists only in B is unknown in A.
        a1 = self.ports["a1"]["id"]
        before = self.lab.counters(a1)
        self.exchange(vm["a1"], [vm["a1"].udp_frame(vm["b3"].mac, vm["b3"].ip)],
                      absent=self.tenant_b() + [vm["a2"], vm["a3"]])
        self.assertCounted(self.lab, a1, before, "drop-unknown-unicast")

    def test_broadcast_reaches_own_network_only(self):
        vm = self.vm
        a1 = self.ports["a1"]["id"]
        before = self.lab.counters(a1)
        before_a2 = self.lab.counters(self.ports["a2"]["id"])
        before_b1 = self.lab.counters(self.ports["b1"]["id"])
        frames = [vm["a1"].udp_frame(w.BROADCAST, "255.255.255.255"),
                  # ARP for an address nobody has: flooded, never answered.
                  vm["a1"].arp_request("10.0.0.99")]
        captures = self.exchange(vm["a1"], frames, arrive=[vm["a2"], vm["a3"]],
                                 absent=self.tenant_b() + [vm["a1"]])
        self.assertCounted(self.lab, a1, before, "forward-flood", 2)
        self.assertCounted(self.lab, self.ports["a2"]["id"], before_a2, "delivered", 2)
        after_b1 = self.lab.counters(self.ports["b1"]["id"])
        self.assertEqual(after_b1.get("delivered", 0), before_b1.get("delivered", 0),
                         "b1 was delivered a flood from network A")
        arp_seen = [f.arp() for f in captures["a2"].result() if f.arp()]
        self.assertIn((1, SHARED_MAC, "10.0.0.11", "00:00:00:00:00:00", "10.0.0.99"), arp_seen)

    def test_unknown_unicast_is_dropped(self):
        vm = self.vm
        a1 = self.ports["a1"]["id"]
        before = self.lab.counters(a1)
        frame = vm["a1"].udp_frame("fa:16:3e:ff:00:99", "10.0.0.99")
        self.exchange(vm["a1"], [frame], absent=self.tenant_a()[1:] + self.tenant_b())
        self.assertCounted(self.lab, a1, before, "drop-unknown-unicast")

    # --- the ARP responder --------------------------------------------------------

    def test_arp_responder_answers_for_a_down_vm(self):
        vm = self.vm
        a1 = self.ports["a1"]["id"]
        vm["a2"].link(False)
        self.addCleanup(vm["a2"].link, True)
        before = self.lab.counters(a1)
        request, token = vm["a1"].arp_request(vm["a2"].ip)
        captures = self.watch([vm["a1"]], lambda: vm["a1"].send(request),
                              until={"a1": token})
        replies = [f for f in captures["a1"].result() if f.arp() and f.arp()[0] == 2]
        self.assertTrue(replies, "no ARP reply for 10.0.0.12 while a2 is down")
        reply = replies[0]
        self.assertEqual(reply.arp(), (2, vm["a2"].mac, "10.0.0.12", SHARED_MAC, "10.0.0.11"))
        self.assertEqual(reply.src, vm["a2"].mac)
        self.assertEqual(reply.dst, SHARED_MAC)
        self.assertCounted(self.lab, a1, before, "arp-reply")
        # The VM itself, whose eth0 is down, can answer nothing: the fabric did.
        self.assertIn("DOWN", vm["a2"].sh("ip", "link", "show", "eth0").stdout)

        # The kernel of a1 resolves through the responder too: ARP works, the
        # echo itself has nowhere to go while a2 is down.
        vm["a1"].sh("ip", "neigh", "flush", "dev", "eth0")
        vm["a1"].ping(vm["a2"].ip, wait=1)
        neigh = vm["a1"].sh("ip", "neigh", "show", "10.0.0.12", "dev", "eth0").stdout
        self.assertIn(vm["a2"].mac, neigh)

    def test_arp_responder_ignores_other_networks(self):
        vm = self.vm
        # 10.0.0.22 exists only in network B (b3).
        request, token = vm["a1"].arp_request("10.0.0.22")
        captures = self.watch([vm["a1"], vm["b3"], vm["b1"]], lambda: vm["a1"].send(request))
        replies = [f.arp() for f in captures["a1"].result() if f.arp() and f.arp()[0] == 2]
        self.assertFalse(replies, "A was answered for B's address: %s" % replies)
        self.assertFalse(captures["b3"].with_token(token), "A's ARP request reached B")
        self.assertFalse(captures["b1"].with_token(token), "A's ARP request reached B")
        self.assertFalse(vm["a1"].ping("10.0.0.22", wait=1))

    # --- lifecycle ----------------------------------------------------------------

    def test_install_twice_keeps_maps_and_stats(self):
        vm = self.vm
        self.assertTrue(vm["a1"].ping(vm["a2"].ip, count=2, interval=0.05))
        fdb = self.lab.weft_ok("fdb", "list")
        self.assertEqual(len(fdb), 6, fdb)
        maps = self.lab.maps_snapshot()
        stats = self.lab.weft_ok("stats")
        self.assertTrue(stats)

        again = self.lab.install()
        self.assertFalse(again["fresh_install"])
        self.assertFalse(again["program_replaced"])

        self.assertEqual(self.lab.weft_ok("fdb", "list"), fdb)
        after = self.lab.maps_snapshot()
        for name in maps:
            if name != "stats":
                self.assertEqual(after[name], maps[name], "map %s changed on reinstall" % name)
        now = {(r["ifindex"], r["reason"]): r["packets"] for r in self.lab.weft_ok("stats")}
        for row in stats:
            key = (row["ifindex"], row["reason"])
            self.assertIn(key, now, "counter %s lost on reinstall" % (key,))
            self.assertGreaterEqual(now[key], row["packets"], "counter %s reset" % (key,))
        self.assertEqual(len(self.lab.weft_ok("prog", "list")), 6)
        self.assertTrue(vm["a1"].ping(vm["a2"].ip))

    def test_reapply_same_document_changes_nothing(self):
        out = self.lab.apply(self.document())
        self.assertEqual((out["entries_added"], out["entries_changed"], out["entries_removed"]),
                         (0, 0, 0), out)
        self.assertEqual(out["changes"], [])
        self.assertEqual(out["attach"], [])
        self.assertEqual(out["detach"], [])

    def test_waiting_port_attaches_once_its_device_exists(self):
        vm = self.vm
        late = w.make_port(self.net_a["id"], self.sub_a["id"], "fa:16:3e:0a:00:14", "10.0.0.14",
                           self.lab.node)
        device = self.lab.device(late)
        doc = self.document(extra=[late])
        out = self.lab.apply(doc)
        self.assertIn({"port_id": late["id"], "device": device}, out["waiting"])
        rows = {r["id"]: r for r in self.lab.weft_ok("port", "list")}
        self.assertEqual(rows[late["id"]]["state"], "waiting")
        self.assertEqual(rows[self.ports["a1"]["id"]]["state"], "attached")

        late_vm = self.lab.add_vm("a4", late)
        out = self.lab.apply(doc)
        self.assertIn(device, [p["device"] for p in out["attach"]])
        self.assertEqual(out["waiting"], [])
        rows = {r["id"]: r for r in self.lab.weft_ok("port", "list")}
        self.assertEqual(rows[late["id"]]["state"], "attached")
        self.assertIn(device, [p["device"] for p in self.lab.weft_ok("prog", "list")])
        self.assertTrue(vm["a1"].ping(late_vm.ip), "a1 cannot reach the port that was waiting")
        self.exchange(late_vm, [late_vm.udp_frame(vm["a2"].mac, vm["a2"].ip)],
                      arrive=[vm["a2"]], absent=[vm["b2"]])

    def test_removing_a_port_detaches_it_without_disturbing_others(self):
        vm = self.vm
        a3 = self.ports["a3"]
        device = self.lab.device(a3)
        self.assertTrue(vm["a1"].ping(vm["a3"].ip))
        self.assertTrue(vm["a1"].ping(vm["a2"].ip))

        ping = subprocess.Popen(
            w.in_ns(vm["a1"].ns, "ping", "-n", "-i", "0.05", "-c", "60", "-W", "1", vm["a2"].ip),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(lambda: ping.poll() is None and ping.kill())
        time.sleep(0.8)
        out = self.lab.apply(self.document(names=("a1", "a2", "b1", "b2", "b3")))
        self.assertIn(device, [p["device"] for p in out["detach"]])
        self.assertGreater(out["entries_removed"], 0)
        result, _ = ping.communicate(timeout=30)
        self.assertRegex(result, r" 60 received, 0% packet loss",
                         "the continuous ping a1 -> a2 lost packets during the apply:\n" + result)

        self.assertNotIn(device, [p["device"] for p in self.lab.weft_ok("prog", "list")])
        self.assertNotIn(a3["id"], [r["id"] for r in self.lab.weft_ok("port", "list")])
        self.assertNotIn(a3["mac_address"], [r["mac"] for r in self.lab.weft_ok("fdb", "list")])
        # Traffic to it stops (a1 still has its MAC in the ARP cache).
        a1 = self.ports["a1"]["id"]
        before = self.lab.counters(a1)
        self.assertFalse(vm["a1"].ping(vm["a3"].ip, wait=1))
        self.exchange(vm["a1"], [vm["a1"].udp_frame(vm["a3"].mac, vm["a3"].ip)],
                      absent=[vm["a3"]])
        self.assertCounted(self.lab, a1, before, "drop-unknown-unicast", 2)
        # And from it: its device runs no program, nothing is switched.
        self.exchange(vm["a3"], [vm["a3"].udp_frame(w.BROADCAST, "255.255.255.255")],
                      absent=[vm["a1"], vm["a2"]])

        # Applying the full document again brings it back.
        out = self.lab.apply(self.document())
        self.assertIn(device, [p["device"] for p in out["attach"]])
        self.assertTrue(vm["a1"].ping(vm["a3"].ip))


class Uninstall(w.LabTestMixin, unittest.TestCase):
    """`node uninstall` leaves no pin, no program and no switching behind."""

    def setUp(self):
        w.require_root()
        self.lab = w.Lab("un")
        self.addCleanup(self.lab.destroy)
        self.lab.create()
        net, sub = w.make_network("blue", 2001)
        self.ports = [w.make_port(net["id"], sub["id"], "fa:16:3e:0c:00:0%d" % i, "10.0.0.%d" % i,
                                  self.lab.node) for i in (1, 2)]
        self.vms = [self.lab.add_vm("v%d" % i, p) for i, p in enumerate(self.ports, 1)]
        self.doc = w.with_open_group({"networks": [net], "subnets": [sub], "ports": self.ports})

    def check_uninstall(self):
        lab = self.lab
        lab.apply(self.doc)
        self.assertTrue(self.vms[0].ping(self.vms[1].ip))
        progs = lab.weft_ok("prog", "list")
        self.assertEqual(len(progs), 2)
        prog_id = lab.weft_ok("node", "show")["program"]["id"]
        self.assertTrue(os.path.isdir(lab.pin_dir()))

        out = lab.uninstall()
        self.assertTrue(out["was_installed"], out)
        self.assertFalse(os.path.lexists(lab.pin_dir()),
                         "pins left behind: %s" % list(os.walk(lab.pin_dir())))
        self.assertEqual(lab.weft_ok("prog", "list"), [])
        self.assertFalse(lab.weft_ok("node", "show")["installed"])
        for port in self.ports:
            device = self.lab.device(port)
            self.assertEqual(lab.node_sh("tc", "filter", "show", "dev", device, "ingress").stdout
                             .strip(), "", "a tc filter is left on " + device)
        # Nothing holds the program any more: the kernel frees it.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if w.run(["bpftool", "prog", "show", "id", str(prog_id)], check=False).returncode:
                break
            time.sleep(0.1)
        else:
            self.fail("program %d still exists after uninstall (still attached?)" % prog_id)
        # And no switching: the VMs no longer reach each other.
        self.vms[0].sh("ip", "neigh", "flush", "dev", "eth0")
        self.assertFalse(self.vms[0].ping(self.vms[1].ip, wait=1))
        again = lab.uninstall()
        self.assertFalse(again["was_installed"])

    def test_uninstall_leaves_nothing(self):
        self.lab.install()
        self.check_uninstall()


if __name__ == "__main__":
    unittest.main(verbosity=2)
