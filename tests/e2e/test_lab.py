"""End to end: the demo lab, as the README's first command runs it.

`weft lab up` builds a node and four VMs in two tenants that share an IP and a
MAC, measures the connectivity matrix with real pings, and must find every
pair as expected: reachable inside a tenant, isolated across. `lab down`
leaves no namespace, pin or record behind.

Run as root: python3 tests/e2e/test_lab.py (env WEFT = the weft binary).
"""

import json
import os
import shutil
import tempfile
import unittest

import weftlab as w

LAB_NAMESPACES = ["weftlab-node1", "weftlab-a1", "weftlab-a2", "weftlab-b1", "weftlab-b2"]


def namespaces():
    return set(w.run(["ip", "netns", "list"]).stdout.split())


class DemoLab(unittest.TestCase):
    def setUp(self):
        w.require_root()
        if namespaces() & set(LAB_NAMESPACES):
            self.fail("a lab is already up on this machine (weftlab-*): take it down first")
        self.state = tempfile.mkdtemp(prefix=w.PREFIX + "lab-")
        self.addCleanup(shutil.rmtree, self.state, True)
        self.addCleanup(self.weft, "lab", "down")

    def weft(self, *args, check=True):
        proc = w.run([w.WEFT, "--state-dir", self.state] + list(args), check=check, timeout=120)
        return proc

    def test_up_measures_isolation_and_down_removes_everything(self):
        up = json.loads(self.weft("-j", "lab", "up").stdout)
        status = up["status"]
        self.assertTrue(status["ok"], json.dumps(status["matrix"], indent=1))
        cells = {(c["from"], c["to"]): c for c in status["matrix"]}
        # Inside a tenant: reachable, measured by the target's own ICMP counters.
        for pair in [("a1", "a2"), ("a2", "a1"), ("b1", "b2"), ("b2", "b1")]:
            self.assertEqual(cells[pair]["measured"], "reachable", pair)
        # Across tenants: isolated, although b1 has a1's very IP and MAC.
        for pair in [("a1", "b2"), ("a2", "b2"), ("b1", "a2"), ("b2", "a2"), ("a2", "b1"),
                     ("b2", "a1")]:
            self.assertEqual(cells[pair]["measured"], "isolated", pair)
        self.assertTrue(set(LAB_NAMESPACES) <= namespaces())

        again = json.loads(self.weft("-j", "lab", "status").stdout)
        self.assertTrue(again["ok"])

        self.weft("lab", "down")
        self.assertFalse(namespaces() & set(LAB_NAMESPACES))
        self.assertFalse(os.path.exists(os.path.join(w.BPFFS, "weft", "lab-node1")))
        self.assertFalse(os.path.exists(os.path.join(self.state, "lab-node1")))
        # Down again: nothing to do, still a success.
        self.weft("lab", "down")


if __name__ == "__main__":
    unittest.main()
