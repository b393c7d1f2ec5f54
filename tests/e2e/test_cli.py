"""End to end: the `weft` command against a live node.

A refused document changes nothing (every map dumped before and after), a dry
run lists its changes and changes nothing, every list/show command prints
valid JSON with -j, map dumps are decoded, and the clsact (`--attach tc`)
path forwards traffic and is removed again by uninstall.

Run as root: python3 tests/e2e/test_cli.py (env WEFT = the weft binary).
"""

import copy
import ipaddress
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import weftlab as w

MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
HEX_BLOB_RE = re.compile(r"^(0x)?[0-9a-fA-F]{12,}$|^([0-9a-fA-F]{2} ){3,}")


def is_ipv4(text):
    try:
        ipaddress.IPv4Address(text)
        return True
    except ValueError:
        return False


class Cli(w.LabTestMixin, unittest.TestCase):
    """One network, two local ports with VMs and one remote port."""

    @classmethod
    def setUpClass(cls):
        cls.start_lab("cli")
        cls.net, cls.sub = w.make_network("cli-net", 4001, project="tenant-c")
        n, s = cls.net["id"], cls.sub["id"]
        cls.p1 = w.make_port(n, s, "fa:16:3e:c1:00:01", "10.0.0.11", cls.lab.node)
        cls.p2 = w.make_port(n, s, "fa:16:3e:c1:00:02", "10.0.0.12", cls.lab.node,
                             allowed_address_pairs=[{"ip_address": "10.0.0.200/32"}])
        cls.remote = w.make_port(n, s, "fa:16:3e:c1:00:09", "10.0.0.19", "other-node")
        cls.v1 = cls.lab.add_vm("v1", cls.p1)
        cls.v2 = cls.lab.add_vm("v2", cls.p2)
        cls.lab.install()
        cls.lab.apply(cls.document())
        cls.tmp = tempfile.mkdtemp(prefix=w.PREFIX + "cli-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)

    @classmethod
    def document(cls):
        return w.with_open_group({
            "nodes": [{"name": cls.lab.node, "tunnel_ip": "172.31.0.1"},
                      {"name": "other-node", "tunnel_ip": "172.31.0.2"}],
            "networks": [copy.deepcopy(cls.net)], "subnets": [copy.deepcopy(cls.sub)],
            "ports": [copy.deepcopy(p) for p in (cls.p1, cls.p2, cls.remote)],
            "security_groups": []})

    def setUp(self):
        self.lab.apply(self.document())

    def observable_state(self):
        return {"maps": self.lab.maps_snapshot(),
                "ports": self.lab.weft_ok("port", "list"),
                "progs": self.lab.weft_ok("prog", "list"),
                "fdb": self.lab.weft_ok("fdb", "list")}

    def assertStateEqual(self, before, after, what):
        for part in before:
            if part == "maps":
                self.assertEqual(set(before["maps"]), set(after["maps"]))
                for name in before["maps"]:
                    self.assertEqual(after["maps"][name], before["maps"][name],
                                     "%s changed map %s" % (what, name))
            else:
                self.assertEqual(after[part], before[part], "%s changed %s" % (what, part))

    # --- validation -----------------------------------------------------------------

    def invalid_documents(self):
        """(what, document text, resource id, field) for refused documents. Each also
        adds a valid new port, so a partial apply would show."""
        extra = w.make_port(self.net["id"], self.sub["id"], "fa:16:3e:c1:00:33", "10.0.0.33",
                            "other-node")

        def with_change(change):
            doc = self.document()
            doc["ports"].append(copy.deepcopy(extra))
            change(doc)
            return json.dumps(doc)

        p1, p2, net = self.p1["id"], self.p2["id"], self.net["id"]

        def bad_mac(doc):
            doc["ports"][0]["mac_address"] = "fa:16:3e:zz:00:01"

        def ip_outside(doc):
            doc["ports"][0]["fixed_ips"][0]["ip_address"] = "10.9.9.9"

        def unknown_network(doc):
            doc["ports"][1]["network_id"] = "0b5e1c4d-no-such-network"

        def duplicate_mac(doc):
            doc["ports"][1]["mac_address"] = self.p1["mac_address"]

        def vni_too_big(doc):
            doc["networks"][0]["provider:segmentation_id"] = 16777216

        def vni_zero(doc):
            doc["networks"][0]["provider:segmentation_id"] = 0

        return [
            ("malformed JSON", '{"networks": [' + json.dumps(self.net) + ', ', None, None),
            ("bad MAC", with_change(bad_mac), p1, "mac_address"),
            ("IP outside its subnet", with_change(ip_outside), p1, "ip_address"),
            ("unknown network", with_change(unknown_network), p2, "network_id"),
            ("duplicate MAC in one network", with_change(duplicate_mac), p2, "mac_address"),
            ("VNI out of range", with_change(vni_too_big), net, "provider:segmentation_id"),
            ("VNI zero", with_change(vni_zero), net, "provider:segmentation_id"),
        ]

    def test_invalid_documents_are_refused_and_change_nothing(self):
        before = self.observable_state()
        for what, text, resource, field in self.invalid_documents():
            with self.subTest(what):
                code, out, stdout, _ = self.lab.apply_raw(text)
                self.assertEqual(code, 1, "%s: exit %d, %s" % (what, code, stdout))
                self.assertIsInstance(out, dict, "-j error is not JSON: %r" % stdout)
                self.assertEqual(out.get("error"), "invalid document", out)
                problems = out.get("problems")
                self.assertTrue(problems and all(isinstance(p, str) for p in problems), out)
                if resource is None:
                    self.assertTrue(any("JSON" in p for p in problems), problems)
                else:
                    self.assertTrue(any(resource in p and field in p for p in problems),
                                    "%s: no problem names %s and %s: %s" %
                                    (what, resource, field, problems))
                # The same document from a file, without -j: text on stderr.
                path = os.path.join(self.tmp, "doc.json")
                with open(path, "w") as f:
                    f.write(text)
                proc = w.run(self.lab.weft_argv("apply", "-f", path, json_output=False),
                             check=False)
                self.assertEqual(proc.returncode, 1)
                self.assertIn("invalid document", proc.stderr)
                if resource is not None:
                    self.assertIn(resource, proc.stderr)
                    self.assertIn(field, proc.stderr)
                # Refused in a dry run too.
                code, out, _, _ = self.lab.apply_raw(text, dry_run=True)
                self.assertEqual(code, 1)
                self.assertEqual(out.get("error"), "invalid document")
                self.assertStateEqual(before, self.observable_state(), what)
        # And the fabric still works.
        self.assertTrue(self.v1.ping(self.v2.ip))

    def test_dry_run_lists_changes_and_changes_nothing(self):
        doc = self.document()
        added = w.make_port(self.net["id"], self.sub["id"], "fa:16:3e:c1:00:44", "10.0.0.44",
                            "other-node")
        doc["ports"] = [p for p in doc["ports"] if p["id"] != self.p2["id"]] + [added]
        before = self.observable_state()
        out = self.lab.apply(doc, dry_run=True)
        self.assertTrue(out["dry_run"])
        self.assertStateEqual(before, self.observable_state(), "--dry-run")

        changes = out["changes"]
        self.assertEqual(out["entries_added"], sum(c["op"] == "add" for c in changes))
        self.assertEqual(out["entries_removed"], sum(c["op"] == "remove" for c in changes))
        self.assertEqual(out["entries_changed"], sum(c["op"] == "change" for c in changes))
        self.assertIn({"op": "add", "map": "arp", "key": {"net_id": 1, "ip": "10.0.0.44"},
                       "value": {"mac": "fa:16:3e:c1:00:44"}},
                      [{k: c[k] for k in ("op", "map", "key", "value")} for c in changes])
        removed = [c for c in changes if c["op"] == "remove"]
        self.assertIn("fdb", [c["map"] for c in removed])
        self.assertIn("fa:16:3e:c1:00:02", [c["key"].get("mac") for c in removed
                                            if c["map"] == "fdb"])
        self.assertIn(self.lab.device(self.p2), [d["device"] for d in out["detach"]])

        # Text mode lists every change, one a line.
        proc = w.run(self.lab.weft_argv("apply", "-f", "-", "--dry-run", json_output=False),
                     input=json.dumps(doc))
        self.assertIn("would change:", proc.stdout)
        self.assertIn("10.0.0.44", proc.stdout)
        self.assertIn("detach " + self.lab.device(self.p2), proc.stdout)
        self.assertStateEqual(before, self.observable_state(), "--dry-run (text)")
        self.assertTrue(self.v1.ping(self.v2.ip))

        # Applying for real does exactly what the dry run said.
        real = self.lab.apply(doc)
        self.assertEqual(real["changes"], changes)
        self.assertEqual(real["detach"], out["detach"])

    # --- output ---------------------------------------------------------------------

    def commands(self):
        lab = self.lab
        cmds = [["node", "show"], ["node", "list"], ["net", "list"], ["port", "list"],
                ["port", "show", self.p1["id"]], ["port", "show", self.p2["id"][:13]],
                ["port", "show"], ["fdb", "list"], ["map", "list"], ["prog", "list"],
                ["stats"], ["stats", "--port", self.p1["id"]]]
        cmds += [["map", "dump", m["name"]] for m in lab.weft_ok("map", "list")]
        return cmds

    def test_json_output_of_every_list_and_show_command(self):
        self.assertTrue(self.v1.ping(self.v2.ip))  # some counters
        for cmd in self.commands():
            for flag in ("-j", "-p"):
                with self.subTest(" ".join([flag] + cmd)):
                    proc = w.run([w.WEFT, flag] + self.lab.weft_argv(*cmd, json_output=False)[1:],
                                 check=False)
                    self.assertEqual(proc.returncode, 0, proc.stderr)
                    try:
                        value = json.loads(proc.stdout)
                    except ValueError as error:
                        self.fail("%s %s: not JSON (%s): %r" % (flag, cmd, error, proc.stdout))
                    self.assertIsInstance(value, (dict, list))
        # Shapes the contract promises.
        rows = self.lab.weft_ok("port", "list")
        self.assertEqual({r["id"] for r in rows},
                         {self.p1["id"], self.p2["id"], self.remote["id"]})
        by_id = {r["id"]: r for r in rows}
        self.assertEqual(by_id[self.p1["id"]]["state"], "attached")
        self.assertEqual(by_id[self.p1["id"]]["device"], self.lab.device(self.p1))
        self.assertEqual(by_id[self.remote["id"]]["state"], "remote")
        shown = self.lab.weft_ok("port", "show", self.p1["id"])
        self.assertEqual(shown["mac_address"], "fa:16:3e:c1:00:01")
        self.assertEqual(shown["fixed_ips"], ["10.0.0.11"])
        for row in self.lab.weft_ok("stats"):
            self.assertEqual(set(row) >= {"port_id", "device", "ifindex", "reason", "drop",
                                          "packets", "bytes"}, True, row)
        # Errors are JSON too.
        for cmd in (["port", "show", "no-such-port"], ["map", "dump", "no-such-map"]):
            code, out, stdout, _ = self.lab.weft(*cmd)
            self.assertEqual(code, 1, cmd)
            self.assertIsInstance(out, dict, "%s: error is not JSON: %r" % (cmd, stdout))
            self.assertIn("error", out)

    def assertNoHex(self, value, where):
        if isinstance(value, str):
            self.assertFalse(HEX_BLOB_RE.search(value), "%s: hex %r" % (where, value))
        elif isinstance(value, dict):
            for key, item in value.items():
                self.assertNoHex(item, "%s.%s" % (where, key))
        elif isinstance(value, list):
            if where.endswith("ifindexes"):
                return
            self.assertFalse(len(value) >= 4 and all(isinstance(v, int) for v in value),
                             "%s: raw bytes %r" % (where, value))
            for i, item in enumerate(value):
                self.assertNoHex(item, "%s[%d]" % (where, i))

    def test_concurrent_applies_are_serialised(self):
        """Two applies at once: both succeed, the maps hold exactly one document."""
        full = self.document()
        small = dict(full, ports=[copy.deepcopy(self.p1)])
        docs = {"full": json.dumps(full), "small": json.dumps(small)}
        for round_no in range(4):
            procs = []
            for name in ("full", "small") if round_no % 2 else ("small", "full"):
                procs.append(subprocess.Popen(self.lab.weft_argv("apply", "-f", "-"),
                                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, text=True))
                procs[-1].stdin.write(docs[name])
                procs[-1].stdin.close()
            for proc in procs:
                proc.wait(timeout=60)
                err = proc.stderr.read()
                proc.stdout.close()
                proc.stderr.close()
                self.assertEqual(proc.returncode, 0, err)
            unchanged = []
            for name, text in docs.items():
                code, plan, out, err = self.lab.apply_raw(text, dry_run=True)
                self.assertEqual(code, 0, err)
                if (plan["entries_added"], plan["entries_changed"], plan["entries_removed"]) == (0, 0, 0):
                    unchanged.append(name)
            self.assertEqual(len(unchanged), 1,
                             "round %d: the maps match %s, not exactly one document" %
                             (round_no, unchanged or "neither"))
            record_dir = os.path.join(self.lab.state_dir, self.lab.node)
            self.assertEqual(sorted(os.listdir(record_dir)), ["applied.json"],
                             "temporary records left behind")

    def test_damaged_record_does_not_wedge_the_node(self):
        record = os.path.join(self.lab.state_dir, self.lab.node, "applied.json")
        with open(record, "w") as f:
            f.write('{"document": "{\\"ports\\": [')  # torn mid-write
        code, plan, out, err = self.lab.apply_raw(json.dumps(self.document()))
        self.assertEqual(code, 0, err)
        self.assertIn("damaged", err)
        # The pinned maps were the truth: the same document changes nothing.
        self.assertEqual((plan["entries_added"], plan["entries_changed"],
                          plan["entries_removed"]), (0, 0, 0), plan)
        with open(record) as f:
            json.load(f)  # whole again
        again = self.lab.apply(self.document())
        self.assertEqual((again["entries_added"], again["entries_changed"],
                          again["entries_removed"]), (0, 0, 0))

    def test_failed_install_leaves_nothing_behind(self):
        """Refused before anything is made (bad options), and refused by the
        kernel after libbpf pinned the first maps (a conntrack table larger
        than the kernel can make): either way nothing is left."""
        node = w.PREFIX + "failed"
        state = os.path.join(self.tmp, "failed-state")
        failures = ((["--ct-max", "2048", "--ct-network-max", "4096"],
                     "--ct-network-max 4096 is above --ct-max 2048"),
                    (["--ct-max", "4294967295"], "load the port program"))
        for args, message in failures:
            argv = [w.WEFT, "-j", "--netns", self.lab.node_ns, "--node", node, "--state-dir",
                    state, "node", "install"] + args
            proc = subprocess.run(argv, capture_output=True, text=True)
            self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
            self.assertIn(message, proc.stdout)
            self.assertFalse(os.path.lexists(os.path.join(w.BPFFS, "weft", node)),
                             "install %s left pins or folders" % " ".join(args))
            self.assertFalse(os.path.lexists(state), "install %s left its state folder" %
                             " ".join(args))

    def test_map_dump_is_decoded(self):
        self.assertTrue(self.v1.ping(self.v2.ip))
        lab = self.lab
        names = [m["name"] for m in lab.weft_ok("map", "list")]
        for name in ("fdb", "arp", "ports", "spoof_v4", "port_macs", "networks", "flood", "stats"):
            self.assertIn(name, names)
        for name in names:
            rows = lab.weft_ok("map", "dump", name)
            self.assertIsInstance(rows, list)
            for row in rows:
                self.assertEqual(set(row), {"key", "value"}, row)
                self.assertNoHex(row, name)

        fdb = lab.weft_ok("map", "dump", "fdb")
        # The local ports by their device, the other node's port behind its VTEP (l2pop).
        self.assertEqual({r["key"]["mac"]: r["value"]["vtep"] for r in fdb},
                         {"fa:16:3e:c1:00:01": None, "fa:16:3e:c1:00:02": None,
                          "fa:16:3e:c1:00:09": "172.31.0.2"})
        for row in fdb:
            self.assertRegex(row["key"]["mac"], MAC_RE)
            self.assertIsInstance(row["value"]["ifindex"], int)
            self.assertEqual(row["value"]["ifindex"] == 0, row["value"]["vtep"] is not None, row)
        arp_rows = lab.weft_ok("map", "dump", "arp")
        for row in arp_rows:
            self.assertTrue(is_ipv4(row["key"]["ip"]), row)
            self.assertRegex(row["value"]["mac"], MAC_RE)
        arp = {r["key"]["ip"]: r["value"]["mac"] for r in arp_rows}
        self.assertEqual(arp, {"10.0.0.11": "fa:16:3e:c1:00:01", "10.0.0.12": "fa:16:3e:c1:00:02",
                               "10.0.0.200": "fa:16:3e:c1:00:02",
                               "10.0.0.19": "fa:16:3e:c1:00:09"})
        for row in lab.weft_ok("map", "dump", "ports"):
            self.assertRegex(row["value"]["mac"], MAC_RE)
        prefixes = {(r["key"]["mac"], r["key"]["ip_prefix"])
                    for r in lab.weft_ok("map", "dump", "spoof_v4")}
        self.assertIn(("fa:16:3e:c1:00:02", "10.0.0.200/32"), prefixes)
        self.assertIn(("fa:16:3e:c1:00:01", "10.0.0.11/32"), prefixes)
        nets = lab.weft_ok("map", "dump", "networks")
        self.assertEqual([(r["value"]["type"], r["value"]["segmentation_id"]) for r in nets],
                         [("vxlan", 4001)])
        # What ports forward is counted in their slots, drops by device.
        port_stats = lab.weft_ok("map", "dump", "port_stats")
        self.assertIn("forward-unicast", {reason for r in port_stats for reason in r["value"]})
        slots = {r["value"]["stat_slot"] for r in lab.weft_ok("map", "dump", "ports")}
        self.assertNotIn(0, slots)
        self.assertLessEqual({r["key"]["stat_slot"] for r in port_stats}, slots)

        # Text mode: column titles and decoded values, no byte dumps.
        proc = w.run(lab.weft_argv("map", "dump", "fdb", json_output=False))
        self.assertIn("KEY", proc.stdout)
        self.assertIn("fa:16:3e:c1:00:01", proc.stdout)
        self.assertNotRegex(proc.stdout, r"\bfa 16 3e\b|0xfa")
        proc = w.run(lab.weft_argv("map", "dump", "arp", json_output=False))
        self.assertIn("10.0.0.11", proc.stdout)


class TcAttach(w.LabTestMixin, unittest.TestCase):
    """`node install --attach tc`: the clsact fallback for kernels without tcx."""

    def setUp(self):
        w.require_root()
        self.lab = w.Lab("tc")
        self.addCleanup(self.lab.destroy)
        self.lab.create()
        net, sub = w.make_network("tc-net", 5001)
        self.ports = [w.make_port(net["id"], sub["id"], "fa:16:3e:7c:00:0%d" % i,
                                  "10.0.0.%d" % i, self.lab.node) for i in (1, 2, 3)]
        self.vms = [self.lab.add_vm("v%d" % i, p) for i, p in enumerate(self.ports, 1)]
        self.doc = w.with_open_group({"networks": [net], "subnets": [sub], "ports": self.ports})

    def tc_filters(self, port):
        return self.lab.node_sh("tc", "filter", "show", "dev", self.lab.device(port),
                                "ingress").stdout

    def test_tc_attach_forwards_and_uninstalls_cleanly(self):
        lab = self.lab
        out = lab.install("--attach", "tc")
        self.assertEqual(out["attach_mode"], "tc")
        lab.apply(self.doc)
        v1, v2, v3 = self.vms
        progs = lab.weft_ok("prog", "list")
        self.assertEqual(sorted(p["device"] for p in progs),
                         sorted(self.lab.device(p) for p in self.ports))
        self.assertEqual({p["mode"] for p in progs}, {"tc"})
        self.assertEqual(lab.weft_ok("node", "show")["attach_mode"], "tc")
        for port in self.ports:
            self.assertIn("bpf", self.tc_filters(port))

        self.assertTrue(v1.ping(v2.ip), "no ping over tc attachments")
        before = lab.counters(self.ports[0]["id"])
        self.exchange(v1, [v1.udp_frame(v3.mac, v3.ip)], arrive=[v3], absent=[v2])
        self.exchange(v1, [v1.udp_frame(w.BROADCAST, "255.255.255.255")], arrive=[v2, v3])
        self.exchange(v1, [v1.udp_frame(v2.mac, v2.ip, src_mac="fa:16:3e:66:66:66")],
                      absent=[v2, v3])
        after = lab.counters(self.ports[0]["id"])
        for reason in ("forward-unicast", "forward-flood", "drop-spoofed-mac"):
            self.assertGreaterEqual(after.get(reason, 0) - before.get(reason, 0), 1,
                                    "%s not counted: %s" % (reason, self.delta(before, after)))

        # A second install keeps the mode; re-apply changes nothing.
        self.assertEqual(lab.install()["attach_mode"], "tc")
        again = lab.apply(self.doc)
        self.assertEqual((again["entries_added"], again["entries_changed"],
                          again["entries_removed"], again["attach"]), (0, 0, 0, []))

        # Removing a port removes its filter.
        gone = self.ports[2]
        lab.apply(w.with_open_group(dict(self.doc, ports=self.ports[:2])))
        self.assertEqual(self.tc_filters(gone).strip(), "")
        self.assertNotIn(self.lab.device(gone), [p["device"] for p in lab.weft_ok("prog", "list")])

        out = lab.uninstall()
        self.assertTrue(out["was_installed"])
        for port in self.ports:
            self.assertEqual(self.tc_filters(port).strip(), "",
                             "uninstall left a tc filter on " + self.lab.device(port))
        self.assertFalse(os.path.lexists(lab.pin_dir()))
        self.assertEqual(lab.weft_ok("prog", "list"), [])
        v1.sh("ip", "neigh", "flush", "dev", "eth0")
        self.assertFalse(v1.ping(v2.ip, wait=1))


if __name__ == "__main__":
    unittest.main(verbosity=2)
