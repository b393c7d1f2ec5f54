"""End to end: a newer build of the datapath swapped in under traffic, and back.

Two lab nodes run by weftd (a state file), a VXLAN network with a VM on
each. `weft_build2` is the same weft built with the next build of the BPF
programs (serial 2, bpf/lib/common.h: one instruction differs, so the
kernel's tag does). Under a `ping -f` and an iperf3 stream between the
nodes:

* `weft_build2 node install` on both nodes says "upgraded", replaces the
  port and uplink programs in place on every device (the programs' tags
  and ids change), keeps every map: not one packet lost, no map entry
  changed, and weftd (still the older build) writes nothing;
* a VM plugged afterwards gets the new program from weftd;
* the older build's `node install` takes the nodes back the same way.

Run as root: python3 tests/e2e/test_upgrade.py (env WEFT, WEFTD; WEFT_BUILD2
= weft_build2, default beside WEFT).
"""

import json
import os
import time
import unittest

import agentlab
import weftlab as w

NODES = ["n1", "n2"]
WEFT_BUILD2 = os.environ.get("WEFT_BUILD2") or os.path.join(os.path.dirname(w.WEFT),
                                                            "weft_build2")


class UpgradeUnderTraffic(unittest.TestCase):
    vms = []

    @classmethod
    def setUpClass(cls):
        w.require_root()
        if not os.access(WEFT_BUILD2, os.X_OK):
            raise AssertionError("%s is not built (cmake --build build: target weft_build2)" %
                                 WEFT_BUILD2)
        cls.lab = lab = agentlab.AgentLab("up", NODES, "172.31.75.0/24")
        cls.addClassCleanup(lab.destroy)
        cls.addClassCleanup(cls.remove_vms)
        net, sub = w.make_network("blue", 4175, cidr="10.75.0.0/24", project="tenant-a")
        cls.ports = {
            "v1": w.make_port(net["id"], sub["id"], "fa:16:3e:75:00:01", "10.75.0.1",
                              lab.node("n1")),
            "v2": w.make_port(net["id"], sub["id"], "fa:16:3e:75:00:02", "10.75.0.2",
                              lab.node("n2")),
            "later": w.make_port(net["id"], sub["id"], "fa:16:3e:75:00:03", "10.75.0.3",
                                 lab.node("n2")),
        }
        document = w.with_open_group({
            "nodes": lab.nodes_document(), "networks": [net], "subnets": [sub],
            "ports": list(cls.ports.values())})
        lab.up(document, [(n, cls.ports[n]) for n in ("v1", "v2")])
        state_file = os.path.join(lab.state, "state.json")
        with open(state_file, "w") as f:
            json.dump(document, f)
        for ns in NODES:
            lab.start_agent(ns, "--state", state_file)
        for ns in NODES:
            lab.wait_status(ns, lambda s: s.get("ready"), "ready")

    @classmethod
    def remove_vms(cls):
        for vm in cls.vms:
            w.run(["ip", "netns", "del", cls.lab.ns(vm)], check=False)

    def node_show(self, ns):
        return self.lab.weft(ns, "node", "show")

    def install(self, binary, ns):
        proc = w.run([binary, "-j", "--netns", self.lab.ns(ns), "--node", self.lab.node(ns),
                      "--state-dir", self.lab.weft_state, "node", "install"])
        return json.loads(proc.stdout)

    def swap(self, binary, what):
        """`binary node install` on both nodes under traffic; checks that it
        replaced the programs and lost and changed nothing."""
        before = {ns: self.node_show(ns) for ns in NODES}
        maps = {ns: self.lab.map_dumps(ns) for ns in NODES}
        writes = {ns: self.lab.status(ns)["writes"] for ns in NODES}
        installs = {}

        def upgrade():
            for ns in NODES:
                started = time.monotonic()
                installs[ns] = self.install(binary, ns)
                installs[ns]["seconds"] = time.monotonic() - started
        traffic = self.lab.traffic_during(upgrade, "v1", "v2", "10.75.0.2")
        print("\n  %s on both nodes under traffic (node install %s): ping -f %d sent, %d "
              "received; iperf3 %.1f MB sent, %.1f MB received (%.2f Gbit/s)" %
              (what, ", ".join("%.2f s" % installs[ns]["seconds"] for ns in NODES),
               traffic["sent"], traffic["received"], traffic["bytes_sent"] / 1e6,
               traffic["bytes_received"] / 1e6, traffic["gbps"]))
        self.assertGreater(traffic["sent"], 100)
        self.assertEqual(traffic["sent"], traffic["received"], "ping -f lost packets")
        self.assertGreater(traffic["bytes_received"], 0)
        for ns in NODES:
            after = self.node_show(ns)
            self.assertTrue(installs[ns]["program_replaced"], installs[ns])
            self.assertFalse(installs[ns]["fresh_install"], installs[ns])
            self.assertNotEqual(after["program"]["tag"], before[ns]["program"]["tag"])
            ids = {a["prog_id"] for a in after["attachments"] if a["program"] == "port"}
            self.assertEqual(ids, {after["program"]["id"]},
                             "%s: every port device runs the new program" % ns)
            old = {a["device"]: a["prog_id"] for a in before[ns]["attachments"]}
            for a in after["attachments"]:
                self.assertNotEqual(a["prog_id"], old.get(a["device"]),
                                    "%s: %s still runs the old %s program" %
                                    (ns, a["device"], a["program"]))
            self.assertEqual({a["device"] for a in after["attachments"]}, set(old),
                             "the same devices, no more, no fewer")
            for name, dump in self.lab.map_dumps(ns).items():
                self.assertEqual(dump, maps[ns][name], "%s: map %s changed" % (ns, name))
            self.assertEqual(self.lab.status(ns)["writes"], writes[ns],
                             "weftd rewrote something after the swap")
        return {ns: self.node_show(ns)["program"] for ns in NODES}

    def test_1_the_next_build_goes_in_under_traffic(self):
        programs = self.swap(WEFT_BUILD2, "the next build swapped in")
        # weftd attaches a VM's device that comes now with what is installed.
        type(self).vms.append("later")
        self.lab.plug_vm(self.ports["later"], "n2", "later")
        self.lab.wait_status("n2", lambda s: any(
            p["id"] == self.ports["later"]["id"] and p["status"] == "ACTIVE"
            for p in s["ports"]), "the later port attached")
        device = "tap" + self.ports["later"]["id"][:11]
        attached = {a["device"]: a["prog_id"] for a in self.node_show("n2")["attachments"]}
        self.assertEqual(attached[device], programs["n2"]["id"])
        self.lab.wait_ping("later", "10.75.0.1", ok=True)

    def test_2_and_back_to_the_older_build(self):
        self.swap(w.WEFT, "the older build swapped back")


if __name__ == "__main__":
    unittest.main(verbosity=2)
