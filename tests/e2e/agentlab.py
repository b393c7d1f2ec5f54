"""A lab whose nodes are run by weftd: nodes built by `weft lab up -f` on one
underlay, weftd started and killed on each by pid, and what the agents say
of themselves (`weft agent status -j`). Shared by the agent's tests."""

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import weftlab as w

WEFTD = os.environ.get("WEFTD") or os.path.join(os.path.dirname(w.WEFT), "weftd")


def die_with_parent(sig):
    """For Popen's preexec_fn: the child gets `sig` when the test process
    dies, however it dies (prctl PR_SET_PDEATHSIG, kept across exec)."""
    def arm():
        if ctypes.CDLL(None, use_errno=True).prctl(1, int(sig), 0, 0, 0) != 0:
            os._exit(127)
    return arm


class AgentLab:
    """Nodes <prefix>-<ns> (weft nodes w.PREFIX + ns) on an underlay of
    `cidr` (node i has host number i + 1); destroy() removes it all, agents
    first."""

    def __init__(self, tag, nodes, cidr):
        self.prefix = w.PREFIX + tag
        self.nodes = list(nodes)
        self.cidr = cidr
        self.state = tempfile.mkdtemp(prefix=w.PREFIX + tag + "-")
        self.weft_state = os.path.join(self.state, "weft")
        self.agents = {}
        self.logs = {}
        self.built = False

    # -- names ----------------------------------------------------------------

    @staticmethod
    def node(ns):
        """The weft node of namespace `ns`."""
        return w.PREFIX + ns

    def ns(self, name):
        """The namespace of a lab node, VM or switch by its short name."""
        return self.prefix + "-" + name

    def tunnel_ip(self, ns):
        base = self.cidr.split("/")[0].rsplit(".", 1)[0]
        return "%s.%d" % (base, self.nodes.index(ns) + 1)

    def nodes_document(self):
        """The document's `nodes`: each node's VTEP."""
        return [{"name": self.node(ns), "tunnel_ip": self.tunnel_ip(ns)} for ns in self.nodes]

    # -- building ---------------------------------------------------------------

    def up(self, document, vms):
        """Builds the nodes and a VM for each (name, port) of `vms`, applying
        `document` restricted to those VMs' ports (`weft lab up` wants every
        port of a node to have its device)."""
        w.require_root()
        made = {port["id"] for _, port in vms}
        built = dict(document)
        built["ports"] = [p for p in document.get("ports", []) if p["id"] in made]
        path = os.path.join(self.state, "topology.json")
        with open(path, "w") as f:
            json.dump({"underlay": {"cidr": self.cidr},
                       "nodes": [{"name": self.node(ns), "namespace": ns} for ns in self.nodes],
                       "vms": [{"name": name, "port_id": port["id"]} for name, port in vms],
                       "document": built}, f, indent=1)
        self.built = True
        proc = self.lab("up", "-f", path, check=False)
        if proc.returncode != 0:
            raise AssertionError("weft lab up: exit %d\n%s\n%s" %
                                 (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))

    def lab(self, *args, check=True):
        return w.run([w.WEFT, "-j", "--state-dir", self.weft_state, "lab", "--prefix",
                      self.prefix] + list(args), check=check, timeout=240)

    def destroy(self):
        self.stop_agents()
        if self.built:
            self.lab("down", check=False)
        shutil.rmtree(self.state, ignore_errors=True)

    # -- agents -----------------------------------------------------------------

    def start_agent(self, ns, *source, env=None):
        """weftd on node `ns` with the source options `source` (--state FILE,
        or --etcd URL ...); its output goes to a log of its own."""
        if not os.access(WEFTD, os.X_OK):
            raise AssertionError("weftd not built at %s" % WEFTD)
        path = os.path.join(self.state, "weftd-%s.log" % ns)
        self.logs[ns] = path
        with open(path, "a") as log:
            self.agents[ns] = subprocess.Popen(
                [WEFTD, "--node", self.node(ns), "--netns", self.ns(ns), "--state-dir",
                 self.weft_state] + list(source), stdout=log, stderr=log,
                env=dict(os.environ, **(env or {})), preexec_fn=die_with_parent(signal.SIGTERM))
        return self.agents[ns]

    def kill_agent(self, ns, sig=signal.SIGKILL):
        proc = self.agents.pop(ns, None)
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(timeout=10)

    def stop_agents(self):
        for ns in list(self.agents):
            self.kill_agent(ns, signal.SIGTERM)

    def log(self, ns):
        with open(self.logs[ns]) as f:
            return f.read()

    def plug_vm(self, port, node, vm, up=True):
        """As Nova plugs a VM: the port's tap on lab node `node` (a veth
        named tap + 11 characters of the port id whose peer is eth0 of
        namespace `vm`, with the port's MAC and first IP), made now, up or
        not. Returns (the time just before the device was made, its name);
        the caller removes the VM's namespace."""
        node_ns, vm_ns = self.ns(node), self.ns(vm)
        device = "tap" + port["id"][:11]
        w.run(["ip", "netns", "add", vm_ns])
        w.run(["ip", "-n", vm_ns, "link", "set", "lo", "up"])
        started = time.monotonic()
        w.run(["ip", "-n", node_ns, "link", "add", device, "type", "veth", "peer", "name",
               "eth0", "netns", vm_ns])
        w.run(["ip", "-n", vm_ns, "link", "set", "eth0", "address", port["mac_address"]])
        w.run(["ip", "-n", vm_ns, "addr", "add", port["fixed_ips"][0]["ip_address"] + "/24",
               "dev", "eth0"])
        w.run(["ip", "-n", vm_ns, "link", "set", "eth0", "up"])
        if up:
            w.run(["ip", "-n", node_ns, "link", "set", device, "up"])
        return started, device

    def traffic_during(self, action, client, server, server_ip, seconds=4, port=5217):
        """A `ping -f` and an iperf3 stream from VM `client` to `server_ip`
        (VM `server`) for `seconds`, `action()` run a second in. Returns
        {sent, received} of the ping and {bytes_sent, bytes_received,
        gbps} of the stream."""
        listener = subprocess.Popen(w.in_ns(self.ns(server), "iperf3", "-s", "-1", "-p",
                                            str(port)),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.3)
            flood = subprocess.Popen(
                w.in_ns(self.ns(client), "ping", "-n", "-q", "-f", "-w", str(seconds),
                        server_ip),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            stream = subprocess.Popen(
                w.in_ns(self.ns(client), "iperf3", "-c", server_ip, "-p", str(port), "-t",
                        str(seconds), "-J"),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(1.0)
            action()
            ping_out, _ = flood.communicate(timeout=seconds + 16)
            iperf_out, iperf_err = stream.communicate(timeout=seconds + 16)
        finally:
            listener.kill()
            listener.communicate()
        match = re.search(r"(\d+) packets transmitted, (\d+) received", ping_out)
        if match is None:
            raise AssertionError("ping -f said: " + ping_out)
        result = json.loads(iperf_out)
        if "error" in result:
            raise AssertionError("iperf3: %s %s" % (result["error"], iperf_err))
        end = result["end"]
        return {"sent": int(match.group(1)), "received": int(match.group(2)),
                "bytes_sent": end["sum_sent"]["bytes"],
                "bytes_received": end["sum_received"]["bytes"],
                "gbps": end["sum_received"]["bits_per_second"] / 1e9}

    def map_dumps(self, ns, names=("ports", "fdb", "networks", "vteps", "sg_l4")):
        """{map: its decoded dump} of node `ns`."""
        return {name: self.weft(ns, "map", "dump", name) for name in names}

    # -- what the nodes say -----------------------------------------------------

    def weft(self, ns, *args):
        """`weft -j` on node `ns`, parsed."""
        proc = w.run([w.WEFT, "-j", "--netns", self.ns(ns), "--node", self.node(ns),
                      "--state-dir", self.weft_state] + list(args))
        return json.loads(proc.stdout)

    def status(self, ns):
        return self.weft(ns, "agent", "status")

    def wait_status(self, ns, predicate, what, timeout=15.0, interval=0.02):
        """The agent's status once `predicate` holds for it; fails naming
        `what`, with the status and the agent's log, after `timeout` s."""
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            try:
                status = self.status(ns)
            except w.CommandError:  # before the agent's first report
                status = None
            if status is not None and predicate(status):
                return status
            time.sleep(interval)
        raise AssertionError("weftd on %s: not %s within %.0f s; status %s\nlog:\n%s" %
                             (ns, what, timeout, status, self.log(ns) if ns in self.logs else ""))

    def wait_revision(self, ns, revision, interval=0.02):
        """Once the node has applied the source's `revision` (or a later one)."""
        return self.wait_status(ns, lambda s: (s["revision"] or 0) >= revision,
                                "at revision %d" % revision, interval=interval)

    def wait_restarted(self, ns):
        """Ready, and reported by the agent now running (not its predecessor)."""
        pid = self.agents[ns].pid
        return self.wait_status(ns, lambda s: s.get("ready") and s["pid"] == pid, "ready again")

    def attached_devices(self, ns):
        return {row["device"] for row in self.weft(ns, "prog", "list")
                if row.get("program") == "port"}

    def ping(self, vm, ip, count=1, wait=1):
        """ping's exit code from VM `vm` (0: answered)."""
        return w.run(w.in_ns(self.ns(vm), "ping", "-n", "-q", "-c", str(count), "-W", str(wait),
                             ip), check=False).returncode

    def wait_ping(self, vm, ip, ok, timeout=5.0):
        deadline = time.monotonic() + timeout
        while (self.ping(vm, ip) == 0) != ok:
            if time.monotonic() > deadline:
                raise AssertionError("%s -> %s must %sanswer" % (vm, ip, "" if ok else "not "))
