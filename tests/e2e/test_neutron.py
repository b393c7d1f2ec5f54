"""End to end: a real Neutron drives two lab nodes through etcd.

A controller namespace on the lab's underlay runs Debian's etcd, MariaDB and
neutron-server (ML2 with the "weft" mechanism driver, noauth, no broker);
each node runs weftd --etcd. etcd speaks only TLS, wants a client
certificate of its CA and has its auth on: each agent is the user of its
certificate's CN (it may read the state and write its own keys), the driver
logs in as "neutron" with a password (etcd's JSON gateway takes no CN) and
may write the whole prefix. Everything goes through Neutron's REST API:

* networks, subnets, ports and security groups created there reach every
  node; a port bound to a node with a live agent gets vif_type "tap", one
  bound to a host without an agent fails to bind;
* VMs plugged as taps after their ports exist (as Nova does) are attached,
  and their ports turn ACTIVE through the agents' status;
* traffic flows both ways; another project's VM stays unreachable;
* a security-group rule removed or added through the API changes live
  traffic; the time from the API call to the datapath change is printed
  (p50, p99);
* neutron-server restarted resyncs etcd from its database (a stale key goes,
  a missing one comes back) while the datapath keeps forwarding;
* a change made through the API while etcd is down reaches the nodes once
  etcd is back (the datapath keeps its last state meanwhile);
* a port deleted is cut.

Run as root: python3 tests/e2e/test_neutron.py (env WEFT, WEFTD).
"""

import statistics
import time
import unittest

import agentlab
import neutronlab
import weftlab as w

NODES = ["n1", "n2"]
CONTROLLER_IP = "172.31.73.250"
ETCD_PORT, ETCD_PEER = 23796, 23806
KEYS = "/weft"


class NeutronDrivesTheNodes(unittest.TestCase):
    vms = []  # VM namespaces made by plug()

    @classmethod
    def setUpClass(cls):
        w.require_root()
        neutronlab.require_neutron()
        cls.t0 = time.monotonic()
        cls.lab = lab = agentlab.AgentLab("nt", NODES, "172.31.73.0/24")
        cls.addClassCleanup(lab.destroy)
        cls.addClassCleanup(cls.remove_vms)
        lab.up({"nodes": lab.nodes_document()}, [])
        cls.plane = plane = neutronlab.ControlPlane(lab, CONTROLLER_IP, ETCD_PORT, ETCD_PEER,
                                                    KEYS, say=lambda text: print("\n  " + text))
        cls.addClassCleanup(plane.down)
        plane.up()
        cls.etcd, cls.server = plane.etcd, plane.server
        cls.api, cls.other = plane.api("tenant-a"), plane.api("tenant-b")

        net = cls.api.create("network", name="blue", **{"provider:network_type": "vxlan",
                                                         "provider:segmentation_id": 1601})
        sub = cls.api.create("subnet", network_id=net["id"], ip_version=4,
                             cidr="10.31.0.0/24", enable_dhcp=False)
        red = cls.other.create("network", name="red", **{"provider:network_type": "vxlan",
                                                          "provider:segmentation_id": 1602})
        red_sub = cls.other.create("subnet", network_id=red["id"], ip_version=4,
                                   cidr="10.31.0.0/24", enable_dhcp=False)
        cls.ports = {}
        for name, api, network, subnet, ip, ns in (
                ("v1", cls.api, net, sub, "10.31.0.11", "n1"),
                ("v2", cls.api, net, sub, "10.31.0.12", "n2"),
                ("r2", cls.other, red, red_sub, "10.31.0.13", "n2")):
            cls.ports[name] = api.create(
                "port", network_id=network["id"], device_owner="compute:nova",
                fixed_ips=[{"subnet_id": subnet["id"], "ip_address": ip}],
                **{"binding:host_id": lab.node(ns)})
            cls.ports[name]["node"] = ns

    @classmethod
    def remove_vms(cls):
        for vm in cls.vms:
            w.run(["ip", "netns", "del", cls.lab.ns(vm)], check=False)

    def plug(self, name):
        port = self.ports[name]
        type(self).vms.append(name)
        self.plane.plug(port, port["node"], name)

    def wait_active(self, name, api=None):
        return (api or self.api).wait_port_status(self.ports[name]["id"], "ACTIVE")

    def take_member_rules(self, group):
        """Deletes the group's ingress rules from its own members (the
        default group's); returns them."""
        rules = [r for r in group["security_group_rules"]
                 if r["direction"] == "ingress" and r["remote_group_id"]]
        for rule in rules:
            self.api.delete("/security-group-rules/" + rule["id"])
        return rules

    def give_back_member_rules(self, group, rules):
        for rule in rules:
            self.api.create("security_group_rule", security_group_id=group["id"],
                            direction="ingress", ethertype=rule["ethertype"],
                            remote_group_id=group["id"])
        self.lab.wait_ping("v1", "10.31.0.12", ok=True, timeout=10)

    # -- the tests, in order --------------------------------------------------------

    def test_1_ports_bind_only_where_an_agent_lives(self):
        for name in ("v1", "v2", "r2"):
            port = self.api.port(self.ports[name]["id"])
            self.assertEqual(port["binding:vif_type"], "tap", port)
            self.assertEqual(port["status"], "DOWN", "no tap yet: %s" % port)
            key = "%s/state/ports/%s" % (KEYS, port["id"])
            self.assertEqual(len(self.etcd.get(key)), 1, key)
        orphan = self.api.create("port", network_id=self.ports["v1"]["network_id"],
                                 device_owner="compute:nova",
                                 **{"binding:host_id": "no-such-host"})
        self.assertEqual(orphan["binding:vif_type"], "binding_failed", orphan)
        self.assertEqual(self.etcd.get("%s/state/ports/%s" % (KEYS, orphan["id"])), {})
        self.api.delete("/ports/" + orphan["id"])

    def test_2_plugged_vms_go_active_and_talk_within_their_network(self):
        keys = {name: "%s/state/ports/%s" % (KEYS, port["id"]) for name, port in self.ports.items()}
        written = {name: self.etcd.mod_revision(key) for name, key in keys.items()}
        self.assertTrue(all(written.values()), "every bound port has its key: %s" % written)
        for name in ("v1", "v2", "r2"):
            self.plug(name)
        for name in ("v1", "v2"):
            self.wait_active(name)
        self.wait_active("r2", self.other)
        # The agents' reports turned into Neutron's status: not echoed back
        # into the fabric's state.
        self.assertEqual({name: self.etcd.mod_revision(key) for name, key in keys.items()},
                         written, "a status-only update rewrote a port's key")
        self.lab.wait_ping("v1", "10.31.0.12", ok=True, timeout=10)
        self.assertEqual(self.lab.ping("v2", "10.31.0.11"), 0)
        # Another project's VM in the same address range is not reachable.
        self.assertNotEqual(self.lab.ping("v1", "10.31.0.13"), 0)
        self.assertNotEqual(self.lab.ping("r2", "10.31.0.12"), 0)

    def test_3_rule_changes_through_the_api_change_live_traffic(self):
        group = self.api.default_group()
        # The default group admits its members: take those rules out, and
        # v2 cannot be reached; an ICMP rule from anywhere admits it again.
        member_rules = self.take_member_rules(group)
        self.lab.wait_ping("v1", "10.31.0.12", ok=False, timeout=10)
        latencies, calls = [], []
        rule = None
        for round_ in range(10):
            for adding in (True, False):
                before = self.lab.status("n2")["revision"]
                started = time.monotonic()
                if adding:
                    rule = self.api.create("security_group_rule", security_group_id=group["id"],
                                           direction="ingress", ethertype="IPv4",
                                           protocol="icmp", remote_ip_prefix="0.0.0.0/0")
                else:
                    self.api.delete("/security-group-rules/" + rule["id"])
                calls.append((time.monotonic() - started) * 1000)
                self.lab.wait_status("n2", lambda s: (s["revision"] or 0) > before,
                                     "a newer revision", interval=0.005)
                latencies.append((time.monotonic() - started) * 1000)
                if round_ == 0:
                    self.lab.wait_ping("v1", "10.31.0.12", ok=adding, timeout=5)
        latencies.sort()
        print("\n  Neutron API call -> node n2's datapath changed (rule added or removed): "
              "p50 %.0f ms, p99 %.0f ms over %d changes; the API call itself (Neutron, and "
              "the driver's write to etcd) p50 %.0f ms" %
              (statistics.median(latencies), latencies[-1], len(latencies),
               statistics.median(calls)))
        self.give_back_member_rules(group, member_rules)

    def test_4_neutron_server_restarted_resyncs_and_the_datapath_keeps_forwarding(self):
        self.server.stop()
        try:
            self.assertEqual(self.lab.ping("v1", "10.31.0.12", count=3), 0,
                             "traffic must flow while neutron-server is down")
            subnet_key = "%s/state/subnets/%s" % (KEYS, self.ports["v1"]["fixed_ips"][0]
                                                  ["subnet_id"])
            self.etcd.delete(subnet_key)
            stale = "%s/state/networks/00000000-0000-4000-8000-00000000dead" % KEYS
            self.etcd.put(stale, {"id": stale.rsplit("/", 1)[1], "name": "stale",
                                  "provider:network_type": "vxlan",
                                  "provider:segmentation_id": 1999, "mtu": 1450})
        finally:
            self.server.start()
        deadline = time.monotonic() + 30
        while self.etcd.get(stale) or not self.etcd.get(subnet_key):
            self.assertLess(time.monotonic(), deadline, "no resync:\n" + self.server.log()[-3000:])
            time.sleep(0.2)
        self.assertEqual(self.lab.ping("v1", "10.31.0.12"), 0)

    def test_5_a_change_made_while_etcd_is_down_arrives_when_it_is_back(self):
        group = self.api.default_group()
        logins = self.server.log().count("logged in to etcd")
        self.assertGreater(logins, 0, "the driver logs in as neutron")
        self.etcd.stop()
        try:
            member_rules = self.take_member_rules(group)  # Neutron takes it; etcd cannot
            self.assertEqual(self.lab.ping("v1", "10.31.0.12", count=3), 0,
                             "the datapath keeps its last state while etcd is down")
        finally:
            self.etcd.start()
        # The driver writes everything again (logging in anew: etcd's
        # tokens died with it), the agents follow: the rules are gone.
        self.lab.wait_ping("v1", "10.31.0.12", ok=False, timeout=30)
        self.assertGreater(self.server.log().count("logged in to etcd"), logins)
        self.give_back_member_rules(group, member_rules)

    def test_6_a_deleted_port_is_cut(self):
        self.assertEqual(self.lab.ping("v1", "10.31.0.12"), 0)
        self.api.delete("/ports/" + self.ports["v2"]["id"])
        self.lab.wait_ping("v1", "10.31.0.12", ok=False, timeout=10)
        self.assertEqual(self.etcd.get("%s/state/ports/%s" % (KEYS, self.ports["v2"]["id"])), {})
        print("\n  whole test with set-up: %.1f s" % (time.monotonic() - self.t0))


if __name__ == "__main__":
    unittest.main(verbosity=2)
