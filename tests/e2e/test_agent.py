"""End to end: weftd keeps two lab nodes equal to a state file.

Two nodes built by `weft lab up -f` (their uplinks on one underlay), a VXLAN
network with a VM on each, and weftd on each node following one state file
(its --state source, watched with inotify). Checked with real traffic and
the agent's own report (`weft agent status -j`):

* started (again) on a node that is already up to date, weftd writes
  nothing;
* a port's device made after the port exists (a veth or a real tap, up or
  down) is attached within 100 ms of appearing, measured and printed; the
  VM behind it then reaches the other node; its removal is seen too;
* an edit of the file reaches the datapath: a port taken out is cut;
* a file that is not a valid document is refused with the resource named,
  and nothing of it is applied; the last good one stays in force (a device
  made meanwhile is attached by it);
* weftd killed with SIGKILL on both nodes under a `ping -f` and an iperf3
  stream, and started again: not one packet lost, not one map entry
  rewritten.

Run as root: python3 tests/e2e/test_agent.py (env WEFT, WEFTD = the binaries).
"""

import json
import os
import signal
import socket
import time
import unittest

import agentlab
import weftlab as w

NODES = ["n1", "n2"]
ATTACH_LIMIT_MS = 100.0            # the bound, device seen to attached


class AgentOnStateFile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        w.require_root()
        cls.lab = lab = agentlab.AgentLab("ag", NODES, "172.31.67.0/24")
        cls.addClassCleanup(lab.destroy)
        cls.addClassCleanup(cls.remove_extra_namespaces)
        net, sub = w.make_network("blue", 4170, cidr="10.17.0.0/24", project="tenant-a")
        red, red_sub = w.make_network("red", 4171, cidr="10.17.0.0/24", project="tenant-b")
        node = lab.node
        cls.ports = {
            "v1": w.make_port(net["id"], sub["id"], "fa:16:3e:17:00:01", "10.17.0.1", node("n1")),
            "v2": w.make_port(net["id"], sub["id"], "fa:16:3e:17:00:02", "10.17.0.2", node("n2")),
            # Bound to n1, but their devices come later, made by the tests.
            "late": w.make_port(net["id"], sub["id"], "fa:16:3e:17:00:03", "10.17.0.3",
                                node("n1")),
            "tapped": w.make_port(net["id"], sub["id"], "fa:16:3e:17:00:04", "10.17.0.4",
                                  node("n1")),
            # Another tenant in the same address range, on n2.
            "r2": w.make_port(red["id"], red_sub["id"], "fa:16:3e:17:01:02", "10.17.0.9",
                              node("n2")),
        }
        cls.document = w.with_open_group({
            "nodes": lab.nodes_document(), "networks": [net, red], "subnets": [sub, red_sub],
            "ports": list(cls.ports.values())})
        # The lab makes the VMs of v1, v2 and r2; weftd is given the late
        # ports too.
        lab.up(cls.document, [(n, cls.ports[n]) for n in ("v1", "v2", "r2")])
        cls.state_file = os.path.join(lab.state, "state.json")
        cls.write_state(cls.document)
        for ns in NODES:
            lab.start_agent(ns, "--state", cls.state_file)
        for ns in NODES:
            lab.wait_status(ns, lambda s: s.get("ready"), "ready")

    @classmethod
    def remove_extra_namespaces(cls):
        for name in ("late", "tapped"):
            if os.path.exists("/run/netns/" + cls.lab.ns(name)):
                w.run(["ip", "netns", "del", cls.lab.ns(name)], check=False)

    @classmethod
    def write_state(cls, document, text=None):
        """Replaces the state file the way a config manager does: a new file
        renamed over the old one."""
        tmp = cls.state_file + ".new"
        with open(tmp, "w") as f:
            f.write(text if text is not None else json.dumps(document, indent=1))
        os.rename(tmp, cls.state_file)

    def make_vm(self, name, tap=False, up=True):
        """The VM of port `name` on n1, its device made now: a veth whose
        peer is the VM's eth0, or (tap) a real tap device with no VM.
        Returns the time just before the device was made."""
        port = self.ports[name]
        device = "tap" + port["id"][:11]
        node = self.lab.ns("n1")
        if tap:
            started = time.monotonic()
            w.run(["ip", "-n", node, "tuntap", "add", "dev", device, "mode", "tap"])
            if up:
                w.run(["ip", "-n", node, "link", "set", device, "up"])
            return started, device
        return self.lab.plug_vm(port, "n1", name, up)

    def wait_attached(self, name, started):
        port_id = self.ports[name]["id"]
        status = self.lab.wait_status(
            "n1", lambda s: any(p["id"] == port_id and p["status"] == "ACTIVE" and
                                "attach_ms" in p for p in s["ports"]),
            "attached port " + name, timeout=5)
        seen = time.monotonic() - started
        agent_ms = [p for p in status["ports"] if p["id"] == port_id][0]["attach_ms"]
        return agent_ms, seen * 1000.0

    # -- the tests, in the order they run (unittest sorts by name) ---------------

    def test_1_a_started_agent_on_an_up_to_date_node_writes_nothing(self):
        for ns in NODES:
            self.assertTrue(self.lab.status(ns)["ready"])
            self.lab.kill_agent(ns, signal.SIGTERM)
            self.assertTrue(self.lab.status(ns)["ready"])
            self.assertFalse(self.lab.status(ns)["running"])
            # As systemd starts a Type=notify service: READY=1 comes on the
            # socket once the first revision is applied, not before.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
                path = os.path.join(self.lab.state, "notify-" + ns)
                notify.bind(path)
                notify.settimeout(10)
                self.lab.start_agent(ns, "--state", self.state_file,
                                     env={"NOTIFY_SOCKET": path})
                message = notify.recv(4096).decode()
            os.unlink(path)
            self.assertIn("READY=1", message)
            status = self.lab.status(ns)
            self.assertTrue(status["ready"] and status["pid"] == self.lab.agents[ns].pid,
                            status)
        for ns in NODES:
            status = self.lab.status(ns)
            self.assertTrue(status["ready"], status)
            self.assertTrue(status["running"], status)
            self.assertEqual(status["writes"], 0, status)
            self.assertEqual(status["source"], "file " + self.state_file)
        self.assertEqual(self.lab.ping("v1", "10.17.0.2"), 0)

    def test_2_a_device_made_later_is_attached_within_100_ms(self):
        started, device = self.make_vm("late")
        agent_ms, seen_ms = self.wait_attached("late", started)
        print("\n  veth %s: attached %.1f ms after the kernel announced it "
              "(the test saw it after %.0f ms, polling)" % (device, agent_ms, seen_ms))
        self.assertLess(agent_ms, ATTACH_LIMIT_MS)
        self.assertIn(device, self.lab.attached_devices("n1"))
        self.assertEqual(self.lab.ping("late", "10.17.0.2"), 0,
                         "the late VM must reach v2 on the other node")
        # The other tenant's VM, in the same address range on n2, is not.
        self.assertNotEqual(self.lab.ping("late", "10.17.0.9"), 0)

        # A real tap, made down (as qemu and libvirt make them), then up.
        started, tap = self.make_vm("tapped", tap=True, up=False)
        agent_ms, seen_ms = self.wait_attached("tapped", started)
        print("  tap %s (down): attached %.1f ms after it appeared" % (tap, agent_ms))
        self.assertLess(agent_ms, ATTACH_LIMIT_MS)
        self.assertIn(tap, self.lab.attached_devices("n1"))

        # Gone: detached, and the port waits for its device again.
        w.run(["ip", "-n", self.lab.ns("n1"), "link", "del", tap])
        self.lab.wait_status("n1", lambda s: any(p["device"] == tap and p["status"] == "DOWN"
                                             for p in s["ports"]), "port down", timeout=5)
        self.assertNotIn(tap, self.lab.attached_devices("n1"))

    def test_3_an_edit_of_the_file_reaches_the_datapath(self):
        self.assertEqual(self.lab.ping("v1", "10.17.0.2"), 0)
        before = self.lab.status("n1")["writes"]
        cut = dict(self.document)
        cut["ports"] = [p for p in self.document["ports"] if p["id"] != self.ports["v2"]["id"]]
        try:
            self.write_state(cut)
            for ns in NODES:
                self.lab.wait_status(ns, lambda s: s["last_change_at"] > 0 and not any(
                    p["id"] == self.ports["v2"]["id"] for p in s["ports"]) and
                    s["reconciles"] > 0, "without v2")
            self.lab.wait_status("n1", lambda s: s["writes"] > before, "written")
            self.assertNotEqual(self.lab.ping("v1", "10.17.0.2"), 0,
                                "v2's port is gone from the document: v1 must not reach it")
        finally:
            self.write_state(self.document)
        self.lab.wait_status("n2", lambda s: any(p["id"] == self.ports["v2"]["id"] and
                                             p["status"] == "ACTIVE" for p in s["ports"]),
                         "v2 back")
        self.lab.wait_ping("v1", "10.17.0.2", ok=True)

    def test_4_an_invalid_file_is_refused_and_nothing_applied(self):
        maps_before = self.lab.weft("n1", "map", "dump", "ports")
        writes_before = self.lab.status("n1")["writes"]
        bad = json.loads(json.dumps(self.document))
        bad["ports"][0]["mac_address"] = "not-a-mac"
        # Also a change that alone would be valid: it must not be applied.
        bad["ports"] = [p for p in bad["ports"] if p["id"] != self.ports["late"]["id"]]
        try:
            self.write_state(bad)
            status = self.lab.wait_status("n1", lambda s: s["refused"], "refusing")
            self.assertIn(bad["ports"][0]["id"], status["refused"])
            self.assertIn("mac_address", status["refused"])
            self.assertEqual(status["writes"], writes_before)
            self.assertEqual(self.lab.weft("n1", "map", "dump", "ports"), maps_before)
            # The last good document stays in force: a device made now is
            # attached by it.
            started, tap = self.make_vm("tapped", tap=True, up=False)
            self.wait_attached("tapped", started)
            self.assertIn(tap, self.lab.attached_devices("n1"))
            self.assertTrue(self.lab.status("n1")["refused"])
            w.run(["ip", "-n", self.lab.ns("n1"), "link", "del", tap])
            self.lab.wait_status("n1", lambda s: any(p["device"] == tap and p["status"] == "DOWN"
                                                 for p in s["ports"]), "port down", timeout=5)
            writes_before = self.lab.status("n1")["writes"]
            maps_before = self.lab.weft("n1", "map", "dump", "ports")
            self.write_state(None, text="{ not json")
            self.lab.wait_status("n1", lambda s: "JSON" in s["refused"],
                             "refusing text that is not JSON")
            self.assertEqual(self.lab.status("n1")["writes"], writes_before)
        finally:
            self.write_state(self.document)
        self.lab.wait_status("n1", lambda s: not s["refused"], "accepting the good file again")
        self.assertEqual(self.lab.status("n1")["writes"], writes_before,
                         "the good document again: nothing to change")

    def test_5_a_killed_agent_restarts_without_losing_a_packet(self):
        snapshots = {ns: self.lab.map_dumps(ns) for ns in NODES}

        def restart():
            for ns in NODES:
                self.lab.kill_agent(ns)
            time.sleep(0.5)
            for ns in NODES:
                self.lab.start_agent(ns, "--state", self.state_file)
            for ns in NODES:
                self.lab.wait_restarted(ns)
        traffic = self.lab.traffic_during(restart, "v1", "v2", "10.17.0.2")
        print("\n  weftd killed and restarted on both nodes: ping -f %(sent)d sent, "
              "%(received)d received; iperf3 %(mb_sent).1f MB sent, %(mb_received).1f MB "
              "received (%(gbps).2f Gbit/s)" % dict(traffic, mb_sent=traffic["bytes_sent"] / 1e6,
                                                    mb_received=traffic["bytes_received"] / 1e6))
        self.assertGreater(traffic["sent"], 100)
        self.assertEqual(traffic["sent"], traffic["received"],
                         "ping -f lost packets across the restart")
        self.assertGreater(traffic["bytes_received"], 0)
        for ns in NODES:
            status = self.lab.status(ns)
            self.assertEqual(status["writes"], 0, "the new weftd rewrote something: %s" % status)
            for name, dump in self.lab.map_dumps(ns).items():
                self.assertEqual(dump, snapshots[ns][name],
                                 "%s: map %s changed across the restart" % (ns, name))


if __name__ == "__main__":
    unittest.main(verbosity=2)
