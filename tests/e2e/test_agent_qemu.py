"""End to end: weftd plugs a real qemu guest, on the tap qemu itself makes.

Two nodes built by `weft lab up -f` on one underlay, a VXLAN network, a lab
VM v2 on n2 and a port "guest" bound to n1 with no lab VM: its VM is a qemu
guest (TCG, Debian 12's kernel, a busybox initramfs from
guest/make-guest.sh) started in n1's namespace with `-netdev tap,ifname=...`,
so that qemu creates the port's tap the way it does under Nova and libvirt.
weftd follows a state file on both nodes. Checked:

* weftd attaches the tap qemu made (the agent's own attach time printed and
  bounded);
* the guest, once booted (its boot time printed), reaches v2 on the other
  node through VXLAN, and v2 reaches it;
* the guest's ping from an address that is not its port's is dropped as
  spoofed: counted so on the port, and never seen by v2;
* qemu gone, its tap goes and the agent reports the port down.

Run as root: python3 tests/e2e/test_agent_qemu.py (env WEFT, WEFTD = the
binaries; QEMU = qemu-system-x86_64; WEFT_GUEST_CACHE = make-guest.sh's
cache). The first run downloads Debian's kernel package (about 70 MB).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

import agentlab
import weftlab as w

QEMU = os.environ.get("QEMU") or "qemu-system-x86_64"
MAKE_GUEST = os.path.join(w.HERE, "guest", "make-guest.sh")
NODES = ["n1", "n2"]
ATTACH_LIMIT_MS = 100.0            # the agent's bound, as in test_agent.py
BOOT_TIMEOUT = 60.0                # TCG on a loaded CI machine
GUEST_IP, PEER_IP, SPOOF_IP = "10.19.0.5", "10.19.0.2", "10.19.0.66"
PINGS = 3                          # the guest's count, make-guest.sh's init


def icmp_in_echos(ns):
    """Echo requests the namespace's kernel has received (its /proc/net/snmp)."""
    text = w.run(w.in_ns(ns, "cat", "/proc/net/snmp")).stdout
    rows = [line.split()[1:] for line in text.splitlines() if line.startswith("Icmp:")]
    return int(dict(zip(rows[0], rows[1]))["InEchos"])


class Guest:
    """The qemu process and its serial console, read from a file."""

    def __init__(self, argv, console, qemu_log):
        self.console, self.qemu_log = console, qemu_log
        with open(qemu_log, "w") as log:
            self.started = time.monotonic()
            # `ip netns exec` execs qemu: the pid is qemu's, and so is the signal.
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT,
                                         preexec_fn=agentlab.die_with_parent(signal.SIGKILL))

    def text(self):
        try:
            with open(self.console, "rb") as f:
                return f.read().decode("utf-8", "replace").replace("\r", "")
        except FileNotFoundError:
            return ""

    def wait_line(self, pattern, timeout):
        """The first console line matching `pattern` (a regex), and when it
        was first seen, in seconds since qemu started."""
        regex = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.text())
            if match:
                return match, time.monotonic() - self.started
            if self.proc.poll() is not None:
                raise AssertionError("qemu exited (%d) before the console said %r\n%s" %
                                     (self.proc.returncode, pattern, self.report()))
            if time.monotonic() > deadline:
                raise AssertionError("the guest did not say %r within %.0f s\n%s" %
                                     (pattern, timeout, self.report()))
            time.sleep(0.02)

    def report(self):
        with open(self.qemu_log) as f:
            qemu = f.read()
        return "console:\n%s\nqemu:\n%s" % (self.text()[-4000:], qemu[-2000:])

    def stop(self):
        """SIGTERM (what libvirt sends first), then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class QemuGuestLab(unittest.TestCase):
    guest = None

    @classmethod
    def setUpClass(cls):
        cls.t0 = time.monotonic()
        # Registered first, so run last: after qemu, weftd and the lab are gone.
        cls.addClassCleanup(lambda: print("\n  total, with set-up and clean-up: %.1f s" %
                                          (time.monotonic() - cls.t0)))
        w.require_root()
        if not os.path.isfile(MAKE_GUEST):
            raise AssertionError("%s is missing" % MAKE_GUEST)
        if shutil.which(QEMU) is None:
            raise AssertionError("%s is missing (apt-get install qemu-system-x86)" % QEMU)
        if not os.path.exists("/dev/net/tun"):
            raise AssertionError("/dev/net/tun is missing: qemu cannot make the tap")
        # Before the lab: on a fresh machine this downloads the kernel.
        started = time.monotonic()
        proc = w.run(["bash", MAKE_GUEST], check=False, timeout=900)
        if proc.returncode != 0:
            raise AssertionError("make-guest.sh: exit %d\n%s\n%s" %
                                 (proc.returncode, proc.stdout, proc.stderr[-3000:]))
        paths = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
        cls.kernel, cls.initrd = paths.get("kernel"), paths.get("initrd")
        for path in (cls.kernel, cls.initrd):
            if not path or not os.path.isfile(path):
                raise AssertionError("make-guest.sh printed no usable kernel/initrd:\n" +
                                     proc.stdout)
        print("\n  guest image: %s, %s (%.1f s%s)" % (
            cls.kernel, cls.initrd, time.monotonic() - started,
            ", built now" if "building" in proc.stderr else ", cached"))

        cls.lab = lab = agentlab.AgentLab("qm", NODES, "172.31.69.0/24")
        cls.addClassCleanup(lab.destroy)
        cls.state = lab.state
        net, sub = w.make_network("qm", 4190, cidr="10.19.0.0/24", project="tenant-q")
        cls.ports = {
            "v2": w.make_port(net["id"], sub["id"], "fa:16:3e:19:00:02", PEER_IP,
                              lab.node("n2")),
            # Its VM is the qemu guest, and its tap qemu's.
            "guest": w.make_port(net["id"], sub["id"], "fa:16:3e:19:00:05", GUEST_IP,
                                 lab.node("n1")),
        }
        cls.tap = "tap" + cls.ports["guest"]["id"][:11]
        cls.document = w.with_open_group({
            "nodes": lab.nodes_document(), "networks": [net], "subnets": [sub],
            "ports": list(cls.ports.values())})
        lab.up(cls.document, [("v2", cls.ports["v2"])])
        cls.state_file = os.path.join(cls.state, "state.json")
        with open(cls.state_file, "w") as f:
            json.dump(cls.document, f, indent=1)
        for ns in NODES:
            lab.start_agent(ns, "--state", cls.state_file)
        for ns in NODES:
            lab.wait_status(ns, lambda s: s.get("ready"), "ready")
        print("  lab and agents ready after %.1f s" % (time.monotonic() - cls.t0))

    @classmethod
    def guest_port(cls, status):
        return next((p for p in status["ports"] if p["id"] == cls.ports["guest"]["id"]), None)

    def tap_exists(self):
        return w.run(["ip", "-n", self.lab.ns("n1"), "link", "show", "dev", self.tap],
                     check=False).returncode == 0

    def spoof_counts(self):
        counts = {}
        for row in self.lab.weft("n1", "stats", "--port", self.ports["guest"]["id"]):
            if row.get("port_id") == self.ports["guest"]["id"] and \
                    row["reason"].startswith("drop-spoofed"):
                counts[row["reason"]] = counts.get(row["reason"], 0) + row["packets"]
        return counts

    def require_guest(self):
        if self.guest is None:
            self.fail("no guest: test_1 did not start qemu")

    # -- the tests, in the order they run (unittest sorts by name) ---------------

    def test_1_weftd_attaches_the_tap_qemu_makes(self):
        cls = type(self)
        port = self.guest_port(self.lab.weft("n1", "agent", "status"))
        self.assertEqual(port["status"], "DOWN", "no tap yet: %s" % port)
        self.assertFalse(self.tap_exists())
        cls.echos_before = icmp_in_echos(self.lab.ns("v2"))
        mac = self.ports["guest"]["mac_address"]
        append = ("console=ttyS0 quiet panic=-1 weft.ip=%s/24 weft.peer=%s weft.spoof=%s "
                  "weft.mtu=%d" % (GUEST_IP, PEER_IP, SPOOF_IP, 1450))
        argv = w.in_ns(
            self.lab.ns("n1"), QEMU, "-accel", "tcg", "-m", "256", "-nographic", "-nodefaults",
            "-no-user-config", "-no-reboot",
            "-serial", "file:" + os.path.join(self.state, "console.log"),
            # As Nova's libvirt plugs a port: qemu opens the tap by name and
            # so creates it; no script touches it.
            "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % self.tap,
            # No option ROM: the kernel is loaded directly, nothing boots from the net.
            "-device", "virtio-net-pci,netdev=n0,mac=%s,romfile=" % mac,
            "-kernel", self.kernel, "-initrd", self.initrd, "-append", append)
        cls.guest = Guest(argv, os.path.join(self.state, "console.log"),
                          os.path.join(self.state, "qemu.log"))
        cls.addClassCleanup(cls.guest.stop)
        status = self.lab.wait_status(
            "n1", lambda s: (self.guest_port(s) or {}).get("status") == "ACTIVE" and
            "attach_ms" in self.guest_port(s), "attached the guest's tap", timeout=15)
        seen = time.monotonic() - self.guest.started
        attach_ms = self.guest_port(status)["attach_ms"]
        print("\n  tap %s made by qemu (pid %d): attached %.1f ms after it appeared "
              "(the test saw it %.0f ms after starting qemu)" %
              (self.tap, self.guest.proc.pid, attach_ms, seen * 1000))
        self.assertLess(attach_ms, ATTACH_LIMIT_MS)
        self.assertEqual(self.guest_port(status)["device"], self.tap)
        self.assertIn(self.tap, self.lab.attached_devices("n1"))
        # qemu with script=no leaves its tap down; libvirt brings it up, and
        # so does the test, in n1's namespace.
        link = json.loads(w.run(["ip", "-j", "-n", self.lab.ns("n1"), "link", "show", "dev",
                                 self.tap]).stdout)[0]
        self.assertNotIn("UP", link["flags"], "qemu brought its tap up itself: %s" % link)
        w.run(["ip", "-n", self.lab.ns("n1"), "link", "set", self.tap, "up"])

    def test_2_the_guest_boots_and_reaches_the_other_node(self):
        self.require_guest()
        ready, boot = self.guest.wait_line(r"^WEFT-GUEST-READY .*uptime=([0-9.]+)$",
                                           BOOT_TIMEOUT)
        print("\n  guest booted: READY %.1f s after qemu started (its kernel's uptime %s s)" %
              (boot, ready.group(1)))
        self.assertIn("mac=" + self.ports["guest"]["mac_address"], ready.group(0))
        result, _ = self.guest.wait_line(r"^WEFT-GUEST-PING-(OK|FAIL) .*$", 30)
        print("  guest -> v2 (%s, n2, over VXLAN): %s" % (PEER_IP, result.group(0)))
        self.assertEqual(result.group(1), "OK", self.guest.report())

    def test_3_the_other_node_reaches_the_guest(self):
        self.require_guest()
        self.guest.wait_line(r"^WEFT-GUEST-DONE", 30)
        proc = w.run(w.in_ns(self.lab.ns("v2"), "ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "2",
                             GUEST_IP), check=False)
        summary = re.search(r"(\d+) packets transmitted, (\d+) received", proc.stdout)
        print("\n  v2 -> guest: %s" % (summary.group(0) if summary else proc.stdout))
        self.assertEqual(proc.returncode, 0, "v2 must reach the guest\n" + proc.stdout)

    def test_4_the_guests_spoofed_source_is_dropped(self):
        self.require_guest()
        result, _ = self.guest.wait_line(r"^WEFT-GUEST-SPOOFED-PING-(OK|FAIL) .*$", 30)
        self.guest.wait_line(r"^WEFT-GUEST-DONE", 30)
        spoofed = self.spoof_counts()
        echos = icmp_in_echos(self.lab.ns("v2")) - self.echos_before
        print("\n  guest -> v2 from %s (not the port's address): %s; port counters %s; "
              "v2 received %d echo requests from the guest in all" %
              (SPOOF_IP, result.group(0), spoofed, echos))
        self.assertEqual(result.group(1), "FAIL",
                         "anti-spoofing let the guest's forged source through")
        self.assertGreaterEqual(spoofed.get("drop-spoofed-ip", 0), PINGS,
                                "each spoofed echo request must be dropped as spoofed")
        # The spoofed pings came after the good ones: had any passed, v2
        # would have seen more than the good ones.
        self.assertGreaterEqual(echos, 1)
        self.assertLessEqual(echos, PINGS)

    def test_5_qemu_gone_its_tap_goes_and_the_port_is_down(self):
        self.require_guest()
        self.assertTrue(self.tap_exists())
        started = time.monotonic()
        self.guest.stop()
        self.lab.wait_status("n1", lambda s: (self.guest_port(s) or {}).get("status") == "DOWN",
                         "reporting the guest's port down", timeout=10)
        print("\n  qemu stopped: port DOWN %.0f ms later" % ((time.monotonic() - started) * 1000))
        self.assertFalse(self.tap_exists(), "qemu's tap outlived qemu")
        self.assertNotIn(self.tap, self.lab.attached_devices("n1"))
        # v2's side is untouched.
        status = self.lab.weft("n2", "agent", "status")
        self.assertEqual([p["status"] for p in status["ports"]
                          if p["id"] == self.ports["v2"]["id"]], ["ACTIVE"])


def _on_sigterm(signum, frame):
    # ctest's timeout: the class cleanups (qemu, weftd, `weft lab down`, the
    # files) still run, which weftlab's own handler does not know of.
    signal.signal(signum, signal.SIG_IGN)
    try:
        QemuGuestLab.doClassCleanups()
    finally:
        w.destroy_all()
        os._exit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_sigterm)
    unittest.main(verbosity=2)
