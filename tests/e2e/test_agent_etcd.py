"""End to end: weftd on two lab nodes follows a real etcd.

A controller namespace on the lab's underlay runs Debian's etcd (its own
data folder, ports away from the defaults). The state is written there as
the Neutron driver writes it (<prefix>/state/<kind>/<id>, one JSON resource
a key) and each node's weftd (--etcd) applies it. Checked with traffic and
with what the agents write back:

* each agent announces itself (tunnel IP, network types) on its lease and
  reports its ports ACTIVE under <prefix>/status/<host>/;
* a key removed or put back changes live traffic; the time from the write
  in etcd to the datapath change is measured (p50, p99) and printed;
* a malformed value is refused with its key named, and nothing applied;
* with etcd stopped the datapath keeps forwarding and the agents say they
  lost it; etcd started again (and compacted at once) is followed again.

Run as root: python3 tests/e2e/test_agent_etcd.py (env WEFT, WEFTD).
"""

import json
import os
import re
import statistics
import time
import unittest

import agentlab
import etcdlab
import weftlab as w

NODES = ["n1", "n2"]
CONTROLLER_IP = "172.31.68.250"
CLIENT_PORT = 23790          # not etcd's 2379
PEER_PORT = 23800
KEYS = "/weftt"              # not weft's default prefix either
URL = "http://%s:%d" % (CONTROLLER_IP, CLIENT_PORT)
METRICS_PORT = 19464         # in each node's namespace


class EtcdAgents(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        w.require_root()
        for binary in (etcdlab.ETCD, etcdlab.ETCDCTL):
            if not os.access(binary, os.X_OK):
                raise AssertionError("%s is missing (scripts/install-deps.sh --tests)" % binary)
        cls.lab = lab = agentlab.AgentLab("et", NODES, "172.31.68.0/24")
        cls.addClassCleanup(lab.destroy)
        net, sub = w.make_network("blue", 4180, cidr="10.18.0.0/24", project="tenant-a")
        cls.ports = {
            "v1": w.make_port(net["id"], sub["id"], "fa:16:3e:18:00:01", "10.18.0.1",
                              lab.node("n1")),
            "v2": w.make_port(net["id"], sub["id"], "fa:16:3e:18:00:02", "10.18.0.2",
                              lab.node("n2")),
        }
        cls.document = w.with_open_group({
            "nodes": lab.nodes_document(), "networks": [net], "subnets": [sub],
            "ports": list(cls.ports.values())})
        lab.up(cls.document, list(cls.ports.items()))
        ctl = etcdlab.controller(lab.prefix, CONTROLLER_IP)
        cls.addClassCleanup(w.run, ["ip", "netns", "del", ctl], check=False)
        cls.etcd = etcdlab.Etcd(ctl, CONTROLLER_IP, os.path.join(lab.state, "etcd"),
                                os.path.join(lab.state, "etcd.log"), CLIENT_PORT, PEER_PORT)
        cls.addClassCleanup(cls.etcd.stop)
        cls.etcd.start()
        cls.etcd.put_document(KEYS, cls.document)
        for ns in NODES:
            lab.start_agent(ns, "--etcd", URL, "--etcd-prefix", KEYS, "--etcd-lease-ttl", "5",
                            "--metrics", "127.0.0.1:%d" % METRICS_PORT)
        for ns in NODES:
            lab.wait_status(ns, lambda s: s.get("ready"), "ready")

    @staticmethod
    def key(kind, resource):
        return etcdlab.key(KEYS, kind, resource)

    def metrics(self, ns):
        """{(name, frozenset(labels)): value} scraped from the node's weftd."""
        fetch = ("import urllib.request; print(urllib.request.urlopen("
                 "'http://127.0.0.1:%d/metrics', timeout=5).read().decode())" % METRICS_PORT)
        text = w.run(w.in_ns(self.lab.ns(ns), w.PYTHON, "-c", fetch)).stdout
        samples = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name_labels, value = line.rsplit(" ", 1)
            labels = frozenset()
            name = name_labels
            if "{" in name_labels:
                name, rest = name_labels.split("{", 1)
                labels = frozenset(tuple(item.split("=", 1)) for item in
                                   re.findall(r'[a-z_]+="[^"]*"', rest))
            samples[(name, labels)] = float(value)
        return samples

    # -- tests --------------------------------------------------------------------

    def test_1_agents_announce_themselves_and_report_their_ports(self):
        for i, ns in enumerate(NODES):
            status = self.lab.status(ns)
            self.assertTrue(status["source_connected"], status)
            self.assertEqual(status["writes"], 0, "the lab had applied the same state: %s" % status)
            announced = self.etcd.get("%s/agents/%s" % (KEYS, self.lab.node(ns)))
            self.assertEqual(len(announced), 1, announced)
            agent = json.loads(list(announced.values())[0])
            self.assertEqual(agent["tunnel_ip"], "172.31.68.%d" % (i + 1))
            self.assertIn("vxlan", agent["network_types"])
        deadline = time.monotonic() + 5
        while True:
            statuses = self.etcd.get("%s/status/" % KEYS, prefix=True)
            want = {"%s/status/%s/%s" % (KEYS, self.lab.node(ns), self.ports[vm]["id"])
                    for ns, vm in (("n1", "v1"), ("n2", "v2"))}
            if set(statuses) == want and all(json.loads(v)["status"] == "ACTIVE"
                                             for v in statuses.values()):
                break
            self.assertLess(time.monotonic(), deadline, "status keys: %s" % statuses)
            time.sleep(0.05)
        self.assertEqual(self.lab.ping("v1", "10.18.0.2"), 0)

    def test_1_metrics_count_what_the_datapath_does(self):
        port = self.ports["v1"]["id"]
        network = self.ports["v1"]["network_id"]

        def forwarded(samples):
            return sum(v for (name, labels), v in samples.items()
                       if name == "weft_forward_packets_total" and
                       ("port", '"%s"' % port) in labels and
                       ("network", '"%s"' % network) in labels)
        before = self.metrics("n1")
        self.assertEqual(self.lab.ping("v1", "10.18.0.2", count=3), 0)
        after = self.metrics("n1")
        self.assertGreaterEqual(forwarded(after) - forwarded(before), 3, after)
        self.assertEqual(after[("weft_agent_revision_lag", frozenset())], 0)
        self.assertEqual(after[("weft_agent_source_connected", frozenset())], 1)
        self.assertGreater(after[("weft_conntrack_capacity", frozenset())], 0)
        self.assertGreaterEqual(after[("weft_conntrack_entries", frozenset())], 1)
        self.assertEqual(after[("weft_agent_ports", frozenset({("status", '"ACTIVE"')}))], 1)
        self.assertGreaterEqual(after[("weft_agent_apply_seconds_count", frozenset())], 1)

    def test_2_a_key_changed_in_etcd_changes_live_traffic(self):
        port = self.ports["v2"]
        key = self.key("ports", [p for p in self.document["ports"] if p["id"] == port["id"]][0])
        value = self.etcd.get(key)[key]
        latencies = []
        try:
            for round_ in range(10):
                started = time.monotonic()
                revision = self.etcd.delete(key)
                self.lab.wait_revision("n1", revision, interval=0.005)
                latencies.append((time.monotonic() - started) * 1000)
                if round_ == 0:
                    self.assertNotEqual(self.lab.ping("v1", "10.18.0.2"), 0,
                                        "v2's port is gone: v1 must not reach it")
                    # Its agent takes its status back.
                    status_key = "%s/status/%s/%s" % (KEYS, self.lab.node("n2"), port["id"])
                    deadline = time.monotonic() + 5
                    while self.etcd.get(status_key):
                        self.assertLess(time.monotonic(), deadline, status_key + " stays")
                        time.sleep(0.05)
                started = time.monotonic()
                revision = self.etcd.put(key, value)
                self.lab.wait_revision("n1", revision, interval=0.005)
                latencies.append((time.monotonic() - started) * 1000)
        finally:
            self.etcd.put(key, value)
        self.lab.wait_ping("v1", "10.18.0.2", ok=True)
        latencies.sort()
        print("\n  etcd write -> node applied (weft agent status polled every 5 ms, etcdctl "
              "included): p50 %.0f ms, p99 %.0f ms over %d changes" %
              (statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1],
               len(latencies)))

    def test_3_a_malformed_value_is_refused_with_its_key_named(self):
        before = self.lab.weft("n1", "map", "dump", "ports")
        writes = self.lab.status("n1")["writes"]
        bad_key = "%s/state/ports/%s" % (KEYS, self.ports["v2"]["id"])
        good = self.etcd.get(bad_key)[bad_key]
        try:
            self.etcd.put(bad_key, "{not json")
            status = self.lab.wait_status("n1", lambda s: s["refused"], "refusing")
            self.assertIn(bad_key, status["refused"])
            self.assertEqual(status["writes"], writes)
            # A value that parses but is not a valid port: named by its id.
            broken = json.loads(good)
            broken["mac_address"] = "zz"
            self.etcd.put(bad_key, broken)
            status = self.lab.wait_status("n1", lambda s: "mac_address" in s["refused"],
                                          "refusing the bad MAC")
            self.assertIn(self.ports["v2"]["id"], status["refused"])
            self.assertEqual(status["writes"], writes)
            self.assertEqual(self.lab.weft("n1", "map", "dump", "ports"), before)
            self.assertEqual(self.lab.ping("v1", "10.18.0.2"), 0)
        finally:
            self.etcd.put(bad_key, good)
        self.lab.wait_status("n1", lambda s: not s["refused"], "accepting again")

    def test_4_the_datapath_keeps_forwarding_without_etcd(self):
        self.etcd.stop()
        try:
            for ns in NODES:
                self.lab.wait_status(ns, lambda s: not s["source_connected"], "disconnected")
            self.assertEqual(self.lab.ping("v1", "10.18.0.2", count=5), 0,
                             "traffic must flow while etcd is down")
        finally:
            self.etcd.start()
        # A change right after the restart, then a compaction: the agents
        # resume (or read everything again) and end at the newest revision.
        group = [g for g in self.document["security_groups"]][0]
        closed = dict(group, security_group_rules=[])
        revision = self.etcd.put(self.key("security_groups", group), closed)
        self.etcd.ctl("compact", str(revision))
        try:
            for ns in NODES:
                self.lab.wait_revision(ns, revision)
                self.assertTrue(self.lab.status(ns)["source_connected"])
            self.lab.wait_ping("v1", "10.18.0.2", ok=False)
        finally:
            revision = self.etcd.put(self.key("security_groups", group), group)
        for ns in NODES:
            self.lab.wait_revision(ns, revision)
        self.lab.wait_ping("v1", "10.18.0.2", ok=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
