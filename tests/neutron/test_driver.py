"""Unit tests of networking_weft without a neutron-server or an etcd: the
driver's writes against an etcd held in memory, and the etcd client's HTTP
handling against scripted connections. No root, no network.

Run: /usr/bin/python3 tests/neutron/test_driver.py (Debian's python3, which
has neutron's libraries; PYTHONPATH=neutron)."""

import json
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "neutron"))

from networking_weft import etcd as etcd_api  # noqa: E402
from networking_weft import mech_driver  # noqa: E402


class MemoryEtcd:
    """The part of etcd_api.Etcd the driver's write() uses, in memory;
    `race` values are written by "someone else" just before the next
    compare-and-put."""

    def __init__(self):
        self.kv = {}  # key -> (value, mod_revision)
        self.revision = 0
        self.puts = 0
        self.race = []

    def get(self, key, prefix=False):
        if prefix:
            return {k: v for k, v in self.kv.items() if k.startswith(key)}, self.revision
        return ({key: self.kv[key]} if key in self.kv else {}), self.revision

    def write(self, key, value):
        """Someone else's write (a postcommit), now."""
        self.revision += 1
        self.kv[key] = (value, self.revision)

    def delete_if_unchanged(self, key, mod_revision):
        if self.kv.get(key, (None, 0))[1] != mod_revision:
            return False
        del self.kv[key]
        return True

    def put_if_unchanged(self, key, value, mod_revision):
        if self.race:
            self.revision += 1
            self.kv[key] = (self.race.pop(0), self.revision)
        if self.kv.get(key, (None, 0))[1] != mod_revision:
            return False
        self.revision += 1
        self.puts += 1
        self.kv[key] = (value, self.revision)
        return True

    def delete(self, key, prefix=False):
        self.kv.pop(key, None)


def driver(memory):
    d = mech_driver.WeftMechanismDriver.__new__(mech_driver.WeftMechanismDriver)
    d.prefix = "/weft"
    d.etcd = memory
    d._resync_needed = threading.Event()
    return d


def port(revision, host="node1", **fields):
    doc = {"id": "p1", "revision_number": revision, "network_id": "n1",
           "mac_address": "fa:16:3e:00:00:01", "fixed_ips": [], "binding:host_id": host,
           "device_owner": "compute:nova", "security_groups": [], "port_security_enabled": True,
           "allowed_address_pairs": []}
    doc.update(fields)
    return doc


class Writes(unittest.TestCase):
    def setUp(self):
        self.etcd = MemoryEtcd()
        self.driver = driver(self.etcd)
        self.key = "/weft/state/ports/p1"

    def stored(self):
        return json.loads(self.etcd.kv[self.key][0])

    def test_a_new_resource_is_written(self):
        self.driver.write("ports", port(3))
        self.assertEqual(self.stored()["revision_number"], 3)
        self.assertEqual(self.etcd.puts, 1)

    def test_the_same_value_again_writes_nothing(self):
        self.driver.write("ports", port(3))
        self.driver.write("ports", port(3))
        self.assertEqual(self.etcd.puts, 1)

    def test_an_older_revision_never_goes_over_a_newer_one(self):
        self.driver.write("ports", port(5, host="node2"))
        self.driver.write("ports", port(4, host="node1"))
        self.assertEqual(self.stored()["binding:host_id"], "node2")
        self.assertEqual(self.etcd.puts, 1)

    def test_a_newer_revision_replaces_an_older_one(self):
        self.driver.write("ports", port(4, host="node1"))
        self.driver.write("ports", port(5, host="node2"))
        self.assertEqual(self.stored()["binding:host_id"], "node2")

    def test_a_newer_write_in_between_wins_over_the_older_one(self):
        # Between this writer's read and its compare-and-put, another
        # neutron-server worker wrote revision 9: the compare fails, the
        # re-read sees 9 > 6, nothing is written over it.
        self.driver.write("ports", port(5))
        self.etcd.race.append(json.dumps(port(9, host="node3"), sort_keys=True))
        self.driver.write("ports", port(6, host="node2"))
        self.assertEqual(self.stored()["revision_number"], 9)
        self.assertEqual(self.stored()["binding:host_id"], "node3")

    def test_etcd_away_asks_for_a_resync(self):
        class Away(MemoryEtcd):
            def get(self, key, prefix=False):
                raise etcd_api.EtcdError("etcd http://x: connection refused")
        self.driver.etcd = Away()
        self.driver.write("ports", port(1))
        self.assertTrue(self.driver._resync_needed.is_set())


class Plugin:
    """Neutron's database as the resync reads it; `during` runs when the
    resync reads the networks (after it read etcd), as a postcommit of
    another request would."""

    def __init__(self, networks=(), during=None):
        self.networks, self.during = list(networks), during

    def get_networks(self, context):
        if self.during:
            self.during()
        return self.networks

    def get_subnets(self, context):
        return []

    def get_ports(self, context):
        return []

    def get_security_groups(self, context):
        return []


def network(network_id, revision=1):
    return {"id": network_id, "name": network_id, "project_id": "p", "mtu": 1450,
            "provider:network_type": "vxlan", "provider:segmentation_id": 1001,
            "provider:physical_network": None, "revision_number": revision}


class Resync(unittest.TestCase):
    def setUp(self):
        self.etcd = MemoryEtcd()
        self.driver = driver(self.etcd)
        self.saved = (mech_driver.directory.get_plugin, mech_driver.n_context.get_admin_context)
        mech_driver.n_context.get_admin_context = lambda: None

    def tearDown(self):
        mech_driver.directory.get_plugin, mech_driver.n_context.get_admin_context = self.saved

    def resync(self, plugin):
        mech_driver.directory.get_plugin = lambda: plugin
        self.driver.resync()

    def test_stale_keys_go_and_missing_ones_come(self):
        self.etcd.write("/weft/state/networks/gone", json.dumps(network("gone")))
        self.etcd.write("/weft/state/nodes/node1", '{"name": "node1"}')
        self.resync(Plugin([network("kept")]))
        self.assertEqual(sorted(self.etcd.kv), ["/weft/state/networks/kept",
                                                "/weft/state/nodes/node1"])

    def test_a_network_created_while_it_runs_is_not_taken_for_a_stale_one(self):
        # The database was read before the network's commit; its postcommit
        # wrote the key after the resync read etcd.
        key = "/weft/state/networks/new"
        self.resync(Plugin([], during=lambda: self.etcd.write(key, json.dumps(network("new")))))
        self.assertIn(key, self.etcd.kv)

    def test_a_network_deleted_while_it_runs_is_not_written_back(self):
        key = "/weft/state/networks/old"
        self.etcd.write(key, json.dumps(network("old", 1)))
        # Read from the database at revision 2, deleted (key too) before
        # the resync writes.
        self.resync(Plugin([network("old", 2)], during=lambda: self.etcd.kv.pop(key)))
        self.assertNotIn(key, self.etcd.kv)


class Response:
    def __init__(self, status, body, will_close=False):
        self.status, self.body, self.will_close = status, body, will_close

    def read(self):
        return self.body


class ScriptedConnection:
    """Answers each request with the next of `script` (a Response, or an
    exception to raise); records what it was asked."""

    def __init__(self, script, log):
        self.script, self.log = script, log
        self.closed = False

    def request(self, method, path, data, headers):
        self.log.append((self, path, headers.get("Authorization"), json.loads(data)))

    def getresponse(self):
        answer = self.script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self):
        self.closed = True


class Client(unittest.TestCase):
    def client(self, connections, **options):
        etcd = etcd_api.Etcd("https://etcd.example:2379", **options)
        made = []

        def connect():
            with etcd._lock:
                if etcd._idle:
                    return etcd._idle.pop()
            made.append(connections.pop(0))
            return made[-1]
        etcd._connection = connect
        return etcd, made

    def test_calls_share_one_kept_alive_connection(self):
        log = []
        ok = Response(200, b'{"header": {"revision": "7"}}')
        conn = ScriptedConnection([ok, ok, ok], log)
        etcd, made = self.client([conn])
        for _ in range(3):
            etcd.put("/weft/x", "1")
        self.assertEqual(len(made), 1)
        self.assertEqual([path for _, path, _, _ in log], ["/v3/kv/put"] * 3)

    def test_a_connection_etcd_closed_is_replaced_and_the_call_made_again(self):
        log = []
        stale = ScriptedConnection([ConnectionResetError("reset by peer")], log)
        fresh = ScriptedConnection([Response(200, b'{"header": {"revision": "2"}}')], log)
        etcd, made = self.client([stale, fresh])
        etcd.put("/weft/x", "1")
        self.assertTrue(stale.closed)
        self.assertEqual(made, [stale, fresh])

    def test_twice_unreachable_is_an_error_naming_the_call(self):
        log = []
        down = [ScriptedConnection([ConnectionRefusedError("refused")], log) for _ in range(2)]
        etcd, _ = self.client(down)
        with self.assertRaisesRegex(etcd_api.EtcdError, "/v3/kv/put.*refused"):
            etcd.put("/weft/x", "1")

    def test_it_logs_in_and_again_when_etcd_forgot_the_token(self):
        log = []
        conn = ScriptedConnection([
            Response(200, b'{"token": "t1"}'),
            Response(200, b'{"header": {"revision": "3"}}'),
            Response(401, b'{"error": "etcdserver: invalid auth token", "code": 16}'),
            Response(200, b'{"token": "t2"}'),
            Response(200, b'{"header": {"revision": "4"}}'),
        ], log)
        etcd, _ = self.client([conn], username="neutron", password="secret")
        etcd.put("/weft/a", "1")
        etcd.put("/weft/b", "2")
        self.assertEqual([(path, token) for _, path, token, _ in log], [
            ("/v3/auth/authenticate", None), ("/v3/kv/put", "t1"), ("/v3/kv/put", "t1"),
            ("/v3/auth/authenticate", None), ("/v3/kv/put", "t2")])
        self.assertEqual(log[0][3], {"name": "neutron", "password": "secret"})

    def test_a_refused_login_is_an_error_naming_the_user(self):
        conn = ScriptedConnection([Response(400, b'{"error": "authentication failed"}')], [])
        etcd, _ = self.client([conn], username="neutron", password="wrong")
        with self.assertRaisesRegex(etcd_api.EtcdError, "login as neutron refused"):
            etcd.put("/weft/a", "1")

    def test_an_error_answer_is_an_error(self):
        conn = ScriptedConnection([Response(403, b'{"error": "permission denied"}')], [])
        etcd, _ = self.client([conn])
        with self.assertRaisesRegex(etcd_api.EtcdError, "HTTP 403: permission denied"):
            etcd.put("/weft/a", "1")


if __name__ == "__main__":
    unittest.main(verbosity=2)
