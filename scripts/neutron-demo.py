#!/usr/bin/python3
"""scripts/demo.sh --with-neutron: the agent path end to end.

Three lab nodes (network namespaces weftnd-n1..n3 on one underlay), each
run by weftd following etcd; a controller namespace (weftnd-ctl) with etcd
(TLS, client certificates, auth on), MariaDB and Debian's neutron-server
with weft's ML2 mechanism driver. Everything is done through Neutron's REST
API, as OpenStack would; VMs are plugged as Nova plugs them, taps made after
their ports exist. It shows the ports bound and going ACTIVE, traffic
between nodes, another project kept out, a security-group rule changing
live traffic, and what a node's agent says. Then it removes everything,
or with --keep waits for Ctrl-C first.

Run as root with Debian's python3 (it has neutron's libraries):
  /usr/bin/python3 scripts/neutron-demo.py [--keep]
"""

import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
os.environ.setdefault("WEFT", os.path.join(REPO, "build", "weft"))
os.environ.setdefault("WEFTD", os.path.join(REPO, "build", "weftd"))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))

import weftlab as w  # noqa: E402

w.PREFIX = "weftnd-"  # the lab's names: weftnd-n1, weftnd-ctl, ...

import agentlab  # noqa: E402
import neutronlab  # noqa: E402

NODES = ["n1", "n2", "n3"]
CONTROLLER_IP = "172.31.74.250"


def say(text=""):
    print(text, flush=True)


def step(text):
    say()
    say("== " + text)


def ms(seconds):
    return "%.0f ms" % (seconds * 1000)


def weft(lab, ns, *args):
    """`weft` on node `ns`, its human output."""
    return w.run([w.WEFT, "--netns", lab.ns(ns), "--node", lab.node(ns), "--state-dir",
                  lab.weft_state] + list(args)).stdout.rstrip()


UNEXPECTED = []  # what did not go as the fabric promises: the demo fails


def ping(lab, vm, ip, expect):
    """ping's summary line, marked when answered (or not) against `expect`."""
    proc = w.run(w.in_ns(lab.ns(vm), "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", ip),
                 check=False)
    line = next((text for text in proc.stdout.splitlines() if "transmitted" in text),
                "no answer")
    if (proc.returncode == 0) != expect:
        UNEXPECTED.append("%s -> %s" % (vm, ip))
        line += "  <- NOT AS EXPECTED"
    return line


def until(predicate, timeout=10.0):
    """Seconds until `predicate()` held (None if it never did)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.005)
    return None


def applied_after(lab, ns, change):
    """How long after `change()` (an API call) began node `ns`'s agent had
    applied a newer revision of the state: its datapath changed."""
    before = lab.status(ns)["revision"] or 0
    started = time.monotonic()
    change()
    if until(lambda: (lab.status(ns)["revision"] or 0) > before) is None:
        UNEXPECTED.append("node %s never changed" % ns)
        return "NEVER (a defect)"
    return ms(time.monotonic() - started)


def demo(lab, plane, keep):
    step("The lab: nodes %s on the underlay %s, each with weft's datapath" %
         (", ".join(lab.ns(n) for n in NODES), lab.cidr))
    lab.up({"nodes": lab.nodes_document()}, [])
    step("The control plane in %s: etcd, MariaDB, neutron-server (ML2, mechanism driver "
         "\"weft\"); weftd on every node" % lab.ns("ctl"))
    plane.up()
    blue, red = plane.api("tenant-blue"), plane.api("tenant-red")

    step("Through Neutron's REST API: network, subnet, ports bound to the nodes")
    net = blue.create("network", name="blue", **{"provider:network_type": "vxlan"})
    sub = blue.create("subnet", network_id=net["id"], ip_version=4, cidr="10.40.0.0/24",
                      enable_dhcp=False)
    say("  network blue: %s %s, subnet %s" % (net["provider:network_type"],
                                              net["provider:segmentation_id"], sub["cidr"]))
    vms = {}
    for vm, node, ip in (("vm1", "n1", "10.40.0.11"), ("vm2", "n2", "10.40.0.12"),
                         ("vm3", "n3", "10.40.0.13")):
        port = blue.create("port", network_id=net["id"], device_owner="compute:nova",
                           name=vm, fixed_ips=[{"subnet_id": sub["id"], "ip_address": ip}],
                           **{"binding:host_id": lab.node(node)})
        vms[vm] = (port, node)
        say("  port %s %s on %s: binding:vif_type %s, status %s" %
            (vm, ip, port["binding:host_id"], port["binding:vif_type"], port["status"]))
    other = red.create("network", name="red", **{"provider:network_type": "vxlan"})
    red_sub = red.create("subnet", network_id=other["id"], ip_version=4, cidr="10.40.0.0/24",
                         enable_dhcp=False)
    intruder = red.create("port", network_id=other["id"], device_owner="compute:nova",
                          name="red1", fixed_ips=[{"subnet_id": red_sub["id"],
                                                   "ip_address": "10.40.0.99"}],
                          **{"binding:host_id": lab.node("n2")})
    vms["red1"] = (intruder, "n2")
    say("  project tenant-red: network red, the same 10.40.0.0/24, port red1 10.40.0.99 on n2")
    if any(p["binding:vif_type"] != "tap" for p, _ in vms.values()):
        UNEXPECTED.append("a port on a node with weftd not bound to a tap")
    orphan = blue.create("port", network_id=net["id"], device_owner="compute:nova",
                         **{"binding:host_id": "compute-without-weftd"})
    say("  a port for host compute-without-weftd (no agent there): binding:vif_type %s" %
        orphan["binding:vif_type"])
    if orphan["binding:vif_type"] != "binding_failed":
        UNEXPECTED.append("a port bound where no agent lives")

    step("Nova plugs the VMs: each tap made after its port exists; weftd attaches it and "
         "reports it up, Neutron turns the port ACTIVE")
    for vm, (port, node) in vms.items():
        api = red if vm == "red1" else blue
        device = plane.plug(port, node, vm)
        started = time.monotonic()
        api.wait_port_status(port["id"], "ACTIVE")
        say("  %s: tap %s on %s, port ACTIVE %s after the tap came up" %
            (vm, device, node, ms(time.monotonic() - started)))

    step("Traffic between nodes (VXLAN, security group \"default\"), and isolation")
    say("  vm1 -> vm2 (n1 -> n2): " + ping(lab, "vm1", "10.40.0.12", True))
    say("  vm3 -> vm1 (n3 -> n1): " + ping(lab, "vm3", "10.40.0.11", True))
    say("  vm1 -> 10.40.0.99 (red1, another project, same addresses): " +
        ping(lab, "vm1", "10.40.0.99", False))

    step("A security group changed through the API changes live traffic")
    group = blue.default_group()
    member = next(r for r in group["security_group_rules"] if r["direction"] == "ingress"
                  and r["ethertype"] == "IPv4" and r["remote_group_id"])
    took = applied_after(lab, "n2", lambda: blue.delete("/security-group-rules/" + member["id"]))
    say("  default's rule ingress IPv4 from its members deleted: n2's datapath changed %s "
        "after the API call; vm1 -> vm2: %s" % (took, ping(lab, "vm1", "10.40.0.12", False)))
    took = applied_after(lab, "n2", lambda: blue.create(
        "security_group_rule", security_group_id=group["id"], direction="ingress",
        ethertype="IPv4", protocol="icmp", remote_ip_prefix="10.40.0.0/24"))
    say("  rule ingress icmp from 10.40.0.0/24 added: n2's datapath changed %s after the API "
        "call; vm1 -> vm2: %s" % (took, ping(lab, "vm1", "10.40.0.12", True)))
    say("  red1 -> vm2 (outside that prefix, another project): " + ping(lab, "red1", "10.40.0.12",
                                                                         False))

    step("What node n2's agent says (weft agent status)")
    say(weft(lab, "n2", "agent", "status"))
    step("Node n2's ports (weft port list)")
    say(weft(lab, "n2", "port", "list"))

    if keep:
        step("The lab stays up until Ctrl-C (or SIGTERM), then goes. Look around, e.g.:")
        say("  %s --netns %s --node %s --state-dir %s stats" %
            (w.WEFT, lab.ns("n1"), lab.node("n1"), lab.weft_state))
        say("  ip netns exec %s ping 10.40.0.13" % lab.ns("vm1"))
        say("  ip netns exec %s curl -s -H 'X-Project-Id: tenant-blue' -H 'X-Roles: admin' "
            "%s/ports" % (lab.ns("ctl"), plane.server.url))
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass


def main():
    if os.geteuid() != 0:
        sys.exit("weft neutron demo: run as root (BPF, namespaces, servers)")
    keep = "--keep" in sys.argv[1:]
    neutronlab.require_neutron()
    lab = agentlab.AgentLab("", NODES, "172.31.74.0/24")
    lab.prefix = "weftnd"
    plane = neutronlab.ControlPlane(lab, CONTROLLER_IP, 23798, 23808,
                                    say=lambda text: say("  " + text))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # Ctrl-C ends it with everything removed, also where the shell started
    # it with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    failed = False
    try:
        demo(lab, plane, keep)
    except (AssertionError, w.CommandError, neutronlab.ApiError, subprocess.SubprocessError,
            OSError) as error:
        failed = True
        say("\nweft neutron demo: FAILED: %s" % error)
    finally:
        step("Removing the lab: servers, agents, namespaces")
        plane.down()
        for vm in ("vm1", "vm2", "vm3", "red1"):
            w.run(["ip", "netns", "del", lab.ns(vm)], check=False)
        lab.destroy()
        say("  done")
    if UNEXPECTED:
        say("weft neutron demo: FAILED: not as expected: " + "; ".join(UNEXPECTED))
    sys.exit(1 if failed or UNEXPECTED else 0)


if __name__ == "__main__":
    main()
