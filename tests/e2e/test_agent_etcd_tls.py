"""End to end: agents authenticate to etcd with TLS client certificates and
may only read the fabric's state and write their own keys.

etcd (TLS, --client-cert-auth, auth enabled: the certificate's CN is the
user) in a controller namespace on the lab's underlay. The "neutron" user
may write the whole prefix; each node's agent user (its host name) may read
<prefix>/state/ and write only <prefix>/agents/<host> and
<prefix>/status/<host>/. Checked:

* weftd with its node's certificate follows the state, announces itself
  and reports its ports: traffic flows;
* with that certificate, writing the state or another host's keys is
  refused by etcd;
* a certificate etcd's CA did not sign, and one of a user with no role,
  get nothing: that weftd applies nothing and says why;
* without TLS the agent cannot talk to this etcd at all.

Run as root: python3 tests/e2e/test_agent_etcd_tls.py (env WEFT, WEFTD).
"""

import json
import os
import unittest

import agentlab
import etcdlab
import weftlab as w

NODES = ["n1", "n2"]
CONTROLLER_IP = "172.31.72.250"
CLIENT_PORT = 23792
PEER_PORT = 23802
KEYS = "/weft"


class TlsAgents(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        w.require_root()
        cls.lab = lab = agentlab.AgentLab("tl", NODES, "172.31.72.0/24")
        cls.addClassCleanup(lab.destroy)
        net, sub = w.make_network("blue", 4172, cidr="10.22.0.0/24", project="tenant-a")
        cls.ports = {
            "v1": w.make_port(net["id"], sub["id"], "fa:16:3e:22:00:01", "10.22.0.1",
                              lab.node("n1")),
            "v2": w.make_port(net["id"], sub["id"], "fa:16:3e:22:00:02", "10.22.0.2",
                              lab.node("n2")),
        }
        cls.document = w.with_open_group({
            "nodes": lab.nodes_document(), "networks": [net], "subnets": [sub],
            "ports": list(cls.ports.values())})
        lab.up(cls.document, list(cls.ports.items()))
        ctl = etcdlab.controller(lab.prefix, CONTROLLER_IP)
        cls.addClassCleanup(w.run, ["ip", "netns", "del", ctl], check=False)
        cls.certs = etcdlab.Certs(os.path.join(lab.state, "pki"))
        cls.etcd = etcdlab.Etcd(ctl, CONTROLLER_IP, os.path.join(lab.state, "etcd"),
                                os.path.join(lab.state, "etcd.log"), CLIENT_PORT, PEER_PORT,
                                certs=cls.certs)
        cls.addClassCleanup(cls.etcd.stop)
        cls.etcd.start()
        cls.etcd.enable_rbac(KEYS, [lab.node(ns) for ns in NODES])
        # The state as the driver writes it: as "neutron".
        neutron, neutron_key = cls.certs.issue("neutron")
        cls.neutron_tls = ["--cacert", cls.certs.ca, "--cert", neutron, "--key", neutron_key]
        for kind in etcdlab.KINDS:
            for resource in cls.document.get(kind, []):
                cls.etcd.ctl("put", etcdlab.key(KEYS, kind, resource),
                             json.dumps(resource), tls=cls.neutron_tls)
        cls.agent_tls = {}
        for ns in NODES:
            cert, key = cls.certs.issue(lab.node(ns))
            cls.agent_tls[ns] = (cert, key)
            lab.start_agent(ns, *cls.source(cert, key))
        for ns in NODES:
            lab.wait_status(ns, lambda s: s.get("ready"), "ready")

    @classmethod
    def source(cls, cert, key, ca=None, url=None):
        return ["--etcd", url or cls.etcd.url, "--etcd-cacert", ca or cls.certs.ca,
                "--etcd-cert", cert, "--etcd-key", key, "--etcd-lease-ttl", "5"]

    def agent_ctl(self, ns, *args):
        cert, key = self.agent_tls[ns]
        return self.etcd.ctl(*args, check=False, tls=["--cacert", self.certs.ca, "--cert", cert,
                                                      "--key", key])

    def test_1_agents_with_their_certificates_follow_and_report(self):
        for ns in NODES:
            status = self.lab.status(ns)
            self.assertTrue(status["source_connected"], status)
            self.assertTrue(status["source"].startswith("etcd https://"), status)
        self.assertEqual(self.lab.ping("v1", "10.22.0.2"), 0)
        for ns, vm in (("n1", "v1"), ("n2", "v2")):
            got = self.etcd.get("%s/status/%s/%s" % (KEYS, self.lab.node(ns),
                                                     self.ports[vm]["id"]))
            self.assertEqual(len(got), 1, "status of %s: %s" % (vm, got))
            self.assertIn('"ACTIVE"', list(got.values())[0])
            self.assertTrue(self.etcd.get("%s/agents/%s" % (KEYS, self.lab.node(ns))))

    def test_2_an_agent_may_write_only_its_own_keys(self):
        node1, node2 = self.lab.node("n1"), self.lab.node("n2")
        own = self.agent_ctl("n1", "put", "%s/status/%s/probe" % (KEYS, node1), "{}")
        self.assertEqual(own.returncode, 0, own.stderr)
        self.agent_ctl("n1", "del", "%s/status/%s/probe" % (KEYS, node1))
        read = self.agent_ctl("n1", "get", "--prefix", KEYS + "/state/")
        self.assertEqual(read.returncode, 0, read.stderr)
        self.assertIn(self.ports["v2"]["id"], read.stdout)
        for key in ("%s/state/ports/%s" % (KEYS, self.ports["v2"]["id"]),
                    "%s/state/networks/forged" % KEYS,
                    "%s/agents/%s" % (KEYS, node2),
                    "%s/status/%s/%s" % (KEYS, node2, self.ports["v2"]["id"])):
            proc = self.agent_ctl("n1", "put", key, '{"forged": true}')
            self.assertNotEqual(proc.returncode, 0, "n1's agent wrote %s" % key)
            self.assertIn("permission denied", proc.stderr, key)
        # Nor may it read what is not the fabric's state.
        secret = self.agent_ctl("n1", "get", "--prefix", KEYS + "/status/" + node2)
        self.assertNotEqual(secret.returncode, 0)

    def test_3_a_certificate_without_rights_gets_nothing(self):
        other_ca = etcdlab.Certs(os.path.join(self.lab.state, "other-pki"))
        strangers = {
            "no role": self.certs.issue("intruder"),
            "another CA": other_ca.issue(self.lab.node("n1")),
        }
        for why, (cert, key) in strangers.items():
            self.lab.kill_agent("n1")
            self.lab.start_agent("n1", *self.source(cert, key))
            try:
                status = self.lab.wait_status(
                    "n1", lambda s: s["pid"] == self.lab.agents["n1"].pid and
                    not s["source_connected"] and s["source_problem"], "refused by etcd")
                print("\n  weftd with a certificate of %s: %s" % (why, status["source_problem"]))
                self.assertFalse(status["ready"], status)
                self.assertEqual(status["writes"], 0, status)
                # The datapath keeps what it has.
                self.assertEqual(self.lab.ping("v1", "10.22.0.2"), 0)
            finally:
                self.lab.kill_agent("n1")
        cert, key = self.agent_tls["n1"]
        self.lab.start_agent("n1", *self.source(cert, key))
        self.lab.wait_restarted("n1")

    def test_4_plain_text_is_not_spoken(self):
        plain = w.run(w.in_ns(self.etcd.netns, "env", "ETCDCTL_API=3", etcdlab.ETCDCTL,
                              "--endpoints", "http://127.0.0.1:%d" % CLIENT_PORT,
                              "--dial-timeout", "2s", "--command-timeout", "3s", "get",
                              "--prefix", KEYS + "/state/"), check=False)
        self.assertNotEqual(plain.returncode, 0, "etcd answered without TLS")
        self.assertNotIn(self.ports["v1"]["id"], plain.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
