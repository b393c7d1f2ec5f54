"""End to end: Neutron's own security-group scenarios, with real traffic.

The cases of neutron-tempest-plugin's scenario/test_security_groups.py and of
neutron's fullstack test_securitygroup.py (NEUTRON.md, "Scenario tests
Neutron runs"), on one node: ping, TCP and UDP echo, a long-lived TCP
session, and frames crafted where no socket can make them (odd TCP flags,
IPv4 fragments, SCTP, unsolicited ICMP errors, forged IPv6). Every refusal is
shown twice: the traffic does not arrive (or gets no answer), and the port
that refused it counts the drop under the right reason (`weft -j stats`):
drop-sg-egress on the sender's port, drop-sg-ingress on the receiver's.

One lab serves every test. Network A (tenant-a, 10.0.0.0/24) has a1..a5;
network B (tenant-b) repeats a1's and a2's MACs and IPs as b1 and b2;
network C is dual-stack (10.1.0.0/24 and fd00:1::/64) with IPv6 turned on in
c1 and c2. Each test applies the whole document with the groups it needs;
ports a test does not use keep port security and no group at all.

Run as root: python3 tests/e2e/test_sg_scenarios.py (env WEFT = weft binary).
"""

import os
import struct
import subprocess
import time
import unittest
import uuid

import weftlab as w

PAIR_CIDR = "10.0.0.128/25"
PAIR_IP = "10.0.0.150"


# --- documents -----------------------------------------------------------------


def rule(direction, protocol=None, ethertype="IPv4", ports=None, prefix=None, group=None):
    """A security_group_rule as the Neutron API shows it; `ports` is (min, max)
    (for ICMP: type, code); `group` a group (dict) or its id."""
    body = {"id": str(uuid.uuid4()), "direction": direction, "ethertype": ethertype,
            "protocol": protocol, "port_range_min": None, "port_range_max": None,
            "remote_ip_prefix": prefix, "remote_group_id": None}
    if ports is not None:
        body["port_range_min"], body["port_range_max"] = ports
    if group is not None:
        body["remote_group_id"] = group["id"] if isinstance(group, dict) else group
    return body


def group(name, rules=(), stateful=True, egress=True):
    """A security group; like a new Neutron group it starts with the two
    egress-any rules unless `egress` is false."""
    gid = str(uuid.uuid4())
    base = [rule("egress", ethertype="IPv4"), rule("egress", ethertype="IPv6")] if egress else []
    sg = {"id": gid, "name": name, "stateful": stateful, "security_group_rules": base}
    for r in rules:
        r = dict(r)
        r.setdefault("security_group_id", gid)
        sg["security_group_rules"].append(r)
    return sg


def default_group():
    """Neutron's `default`: egress any, ingress any from the group itself."""
    sg = group("default")
    for ethertype in ("IPv4", "IPv6"):
        sg["security_group_rules"].append(rule("ingress", ethertype=ethertype, group=sg["id"]))
    return sg


def with_rules(sg, rules):
    """A copy of `sg` (same id) whose rules are `rules` exactly."""
    out = dict(sg)
    out["security_group_rules"] = list(rules)
    return out


def rules_of(sg, *, without=()):
    ids = {r["id"] for r in without}
    return [r for r in sg["security_group_rules"] if r["id"] not in ids]


def rule_shape(r):
    """What `sg show` must give back for a rule, in comparable form."""
    protocol = r.get("protocol")
    return (r["direction"], r["ethertype"], None if protocol in (None, "any") else str(protocol),
            r.get("port_range_min"), r.get("port_range_max"), r.get("remote_ip_prefix"),
            r.get("remote_group_id"))


# --- the scenarios -------------------------------------------------------------


class SecurityGroupScenarios(w.LabTestMixin, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.start_lab("sg")
        host = cls.lab.node
        cls.net_a, cls.sub_a = w.make_network("sg-a", 4001, project="tenant-a")
        cls.net_b, cls.sub_b = w.make_network("sg-b", 4002, project="tenant-b")
        cls.net_c, cls.sub_c = w.make_network("sg-c", 4003, cidr="10.1.0.0/24",
                                              project="tenant-a")
        cls.sub_c6 = {"id": str(uuid.uuid4()), "network_id": cls.net_c["id"], "ip_version": 6,
                      "cidr": "fd00:1::/64", "gateway_ip": "fd00:1::1", "enable_dhcp": False}
        a, sa = cls.net_a["id"], cls.sub_a["id"]
        b, sb = cls.net_b["id"], cls.sub_b["id"]
        c, sc = cls.net_c["id"], cls.sub_c["id"]
        cls.ports = {
            "a1": w.make_port(a, sa, "fa:16:3e:5a:00:11", "10.0.0.11", host,
                              allowed_address_pairs=[{"ip_address": PAIR_CIDR}]),
            "a2": w.make_port(a, sa, "fa:16:3e:5a:00:12", "10.0.0.12", host),
            "a3": w.make_port(a, sa, "fa:16:3e:5a:00:13", "10.0.0.13", host),
            "a4": w.make_port(a, sa, "fa:16:3e:5a:00:14", "10.0.0.14", host),
            "a5": w.make_port(a, sa, "fa:16:3e:5a:00:15", "10.0.0.15", host),
            # Tenant B reuses a1's and a2's MACs and IPs.
            "b1": w.make_port(b, sb, "fa:16:3e:5a:00:11", "10.0.0.11", host),
            "b2": w.make_port(b, sb, "fa:16:3e:5a:00:12", "10.0.0.12", host),
        }
        for name, last in (("c1", 0x21), ("c2", 0x22)):
            port = w.make_port(c, sc, "fa:16:3e:5c:00:%02x" % last, "10.1.0.%d" % last, host)
            port["fixed_ips"].append({"subnet_id": cls.sub_c6["id"],
                                      "ip_address": "fd00:1::%x" % last})
            cls.ports[name] = port
        cls.vm = {}
        for name, port in cls.ports.items():
            cls.vm[name] = cls.lab.add_vm(name, port, ipv6=name.startswith("c"))
        cls.lab.install()
        cls.lab.apply(cls.document())

    @classmethod
    def document(cls, groups=(), members=None, overrides=None):
        """Every network and port; `members` maps a VM name to its groups
        (dicts), `overrides` to extra port fields. Others have no group."""
        members = members or {}
        overrides = overrides or {}
        ports = []
        for name, port in cls.ports.items():
            port = dict(port)
            port["security_groups"] = [g["id"] for g in members.get(name, ())]
            port.update(overrides.get(name, {}))
            ports.append(port)
        return {"nodes": [{"name": cls.lab.node, "tunnel_ip": "172.31.0.1"}],
                "networks": [cls.net_a, cls.net_b, cls.net_c],
                "subnets": [cls.sub_a, cls.sub_b, cls.sub_c, cls.sub_c6],
                "ports": ports, "security_groups": list(groups)}

    def apply(self, groups=(), members=None, overrides=None):
        self.lab.apply(self.document(groups, members, overrides))

    def setUp(self):
        self.apply()
        self.lab.weft_ok("ct", "flush")

    # --- helpers --------------------------------------------------------------------------

    def pid(self, name):
        return self.ports[name]["id"]

    def counters(self, name):
        return self.lab.counters(self.pid(name))

    def serve(self, name, *ports):
        for port in ports:
            proc = self.vm[name].serve_echo(port)
            self.addCleanup(w.Vm.stop_echo, proc)

    def probe(self, client, proto, ip, ports, timeout=1.0):
        """port -> the echo reply (or None), all ports tried at once."""
        agent = os.path.abspath(w.__file__)
        procs = {port: subprocess.Popen(
            w.in_ns(self.vm[client].ns, w.PYTHON, agent, "connect", proto, ip, str(port), "probe",
                    str(timeout)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for port in ports}
        out = {}
        for port, proc in procs.items():
            stdout, _ = proc.communicate(timeout=30)
            out[port] = stdout.strip() if proc.returncode == 0 else None
        return out

    def assertReaches(self, client, proto, server, ports, ip=None):
        ip = ip or self.vm[server].ip
        got = self.probe(client, proto, ip, ports, timeout=2.0)
        for port in ports:
            self.assertEqual(got[port], "%s:probe" % server,
                             "%s %s to %s (%s) port %d got no answer" %
                             (client, proto, server, ip, port))

    def assertBlocked(self, client, proto, server, ports, charged, reason, ip=None):
        """No answer from any of `ports`, and `charged` counted `reason` for
        each attempt."""
        ip = ip or self.vm[server].ip
        before = self.counters(charged)
        got = self.probe(client, proto, ip, ports, timeout=0.6)
        for port in ports:
            self.assertIsNone(got[port], "%s %s to %s port %d must be blocked, got %r" %
                              (client, proto, server, port, got[port]))
        self.assertCounted(self.lab, self.pid(charged), before, reason, len(ports))

    def assertPing(self, src, dst_ip, **kwargs):
        self.assertTrue(self.vm[src].ping(dst_ip, wait=2, **kwargs),
                        "%s cannot ping %s" % (src, dst_ip))

    def assertNoPing(self, src, dst_ip, charged, reason, absent_at=None, count=2, **kwargs):
        """The ping fails, `charged` counts `reason` for every echo, and when
        the request was refused on its way in, `absent_at` never sees it."""
        pattern = w.ping_pattern()

        def ping():
            self.assertFalse(self.vm[src].ping(dst_ip, count=count, interval=0.05, wait=0.5,
                                               pattern=pattern, **kwargs),
                             "%s pinged %s although it must be blocked" % (src, dst_ip))

        before = self.counters(charged)
        if absent_at:
            captures = self.watch([self.vm[absent_at]], ping, window=0.2)
            self.assertFalse(captures[absent_at].with_token(pattern),
                             "the echo request from %s reached %s" % (src, absent_at))
        else:
            ping()
        self.assertCounted(self.lab, self.pid(charged), before, reason, count)

    def moved(self, name, before):
        return {r: n for r, n in self.delta(before, self.counters(name)).items() if n}

    def frames_pass(self, sender, frames, receiver):
        """Crafted (frame, token) pairs from `sender` all reach `receiver`."""
        before = {name: self.counters(name) for name in (sender, receiver)}
        try:
            self.exchange(self.vm[sender], frames, arrive=[self.vm[receiver]], window=0.3)
        except AssertionError as error:
            raise AssertionError("%s\ncounters moved: %s" % (error, {
                name: self.moved(name, counts) for name, counts in before.items()})) from None

    def frames_dropped(self, sender, frames, receiver, charged, reason):
        before = self.counters(charged)
        self.exchange(self.vm[sender], frames, absent=[self.vm[receiver]], window=0.3)
        self.assertCounted(self.lab, self.pid(charged), before, reason, len(frames))

    def ct_rows(self, **filters):
        args = ["ct", "list"]
        for key, value in filters.items():
            args += ["--" + key, value]
        return self.lab.weft_ok(*args)

    # --- 1. the default group -------------------------------------------------------------

    def test_01_default_group_members_talk_outsiders_are_blocked(self):
        default, outside = default_group(), group("outside")
        self.apply([default, outside], {"a1": [default], "a2": [default], "a3": [outside]})
        a1, a2, a3 = (self.vm[n].ip for n in ("a1", "a2", "a3"))
        self.assertPing("a1", a2)
        self.assertPing("a2", a1)
        # Ingress from the group itself admits every protocol: "SSH" on 22.
        self.serve("a2", 22)
        self.serve("a1", 22)
        self.assertReaches("a1", "tcp", "a2", [22])
        self.assertReaches("a1", "udp", "a2", [22])
        self.assertReaches("a2", "tcp", "a1", [22])

        # a3 is in another group (egress only): the members do not let it in...
        self.assertNoPing("a3", a1, "a1", "drop-sg-ingress", absent_at="a1")
        self.assertBlocked("a3", "tcp", "a1", [22], "a1", "drop-sg-ingress")
        self.assertBlocked("a3", "udp", "a2", [22], "a2", "drop-sg-ingress")
        # ...and a3 itself has no ingress rule at all.
        self.assertNoPing("a1", a3, "a3", "drop-sg-ingress", absent_at="a3")

        # SSH from outside needs a rule of its own, and opens only port 22.
        ssh = rule("ingress", "tcp", ports=(22, 22), prefix="0.0.0.0/0")
        default_ssh = with_rules(default, rules_of(default) + [ssh])
        self.apply([default_ssh, outside], {"a1": [default_ssh], "a2": [default_ssh],
                                            "a3": [outside]})
        self.assertReaches("a3", "tcp", "a1", [22])
        self.assertNoPing("a3", a1, "a1", "drop-sg-ingress")
        self.assertPing("a1", a2)

    # --- 2. protocol given as a number ----------------------------------------------------

    def test_02_protocol_given_as_a_number(self):
        client = group("client")
        server = group("server")
        self.apply([client, server], {"a1": [client], "a2": [server]})
        a2 = self.vm["a2"].ip
        self.assertNoPing("a1", a2, "a2", "drop-sg-ingress", absent_at="a2")
        self.serve("a2", 7100)
        for protocol in ("1", 1):
            numbered = with_rules(server, rules_of(server) + [rule("ingress", protocol)])
            self.apply([client, numbered], {"a1": [client], "a2": [numbered]})
            self.assertPing("a1", a2)
            # Protocol 1 is ICMP only.
            self.assertBlocked("a1", "tcp", "a2", [7100], "a2", "drop-sg-ingress")
            shown = self.lab.weft_ok("sg", "show", server["id"])
            self.assertIn(("ingress", "icmp"),
                          [(r["direction"], r["protocol"]) for r in shown["rules"]])

    # --- 3. two groups on one port --------------------------------------------------------

    def test_03_removing_one_of_two_groups_removes_only_its_rules(self):
        client = group("client")
        web1 = group("web1", [rule("ingress", "tcp", ports=(7001, 7001))])
        web2 = group("web2", [rule("ingress", "tcp", ports=(7002, 7002))])
        self.serve("a2", 7001, 7002)
        self.apply([client, web1, web2], {"a1": [client], "a2": [web1, web2]})
        self.assertReaches("a1", "tcp", "a2", [7001, 7002])
        # The document without web1 on a2 (the group itself still exists).
        self.apply([client, web1, web2], {"a1": [client], "a2": [web2]})
        self.assertBlocked("a1", "tcp", "a2", [7001], "a2", "drop-sg-ingress")
        self.assertReaches("a1", "tcp", "a2", [7002])
        # And back.
        self.apply([client, web1, web2], {"a1": [client], "a2": [web1, web2]})
        self.assertReaches("a1", "tcp", "a2", [7001, 7002])

    # --- 4. remote_ip_prefix --------------------------------------------------------------

    def test_04_remote_ip_prefix(self):
        client = group("client")
        a2 = self.vm["a2"].ip

        def server_with(prefix):
            return group("icmp-from", [rule("ingress", "icmp", prefix=prefix)])

        subnet = server_with("10.0.0.0/24")
        self.apply([client, subnet], {"a1": [client], "a3": [client], "a2": [subnet]})
        self.assertPing("a1", a2)
        self.assertPing("a3", a2)
        unrelated = with_rules(subnet, [rule("ingress", "icmp", prefix="192.0.2.7/32")])
        self.apply([client, unrelated], {"a1": [client], "a3": [client], "a2": [unrelated]})
        self.assertNoPing("a1", a2, "a2", "drop-sg-ingress", absent_at="a2")
        # A /32 admits exactly its one address.
        only_a3 = with_rules(subnet, [rule("ingress", "icmp", prefix=self.vm["a3"].ip + "/32")])
        self.apply([client, only_a3], {"a1": [client], "a3": [client], "a2": [only_a3]})
        self.assertPing("a3", a2)
        self.assertNoPing("a1", a2, "a2", "drop-sg-ingress", absent_at="a2")

    # --- 5. remote_group ------------------------------------------------------------------

    def test_05_remote_group_needs_a_self_referencing_rule(self):
        members = group("members")
        outside = group("outside")
        a1, a2 = self.vm["a1"].ip, self.vm["a2"].ip
        self.apply([members, outside], {"a1": [members], "a2": [members], "a3": [outside]})
        self.assertNoPing("a1", a2, "a2", "drop-sg-ingress", absent_at="a2")
        self.assertNoPing("a2", a1, "a1", "drop-sg-ingress", absent_at="a1")
        selfref = with_rules(members, rules_of(members) +
                             [rule("ingress", "icmp", group=members["id"])])
        self.apply([selfref, outside], {"a1": [selfref], "a2": [selfref], "a3": [outside]})
        self.assertPing("a1", a2)
        self.assertPing("a2", a1)
        self.assertNoPing("a3", a1, "a1", "drop-sg-ingress", absent_at="a1")
        # a3 joins the group: it is a member now, on both ends.
        self.apply([selfref, outside], {"a1": [selfref], "a2": [selfref], "a3": [selfref]})
        self.assertPing("a3", a1)
        self.assertPing("a2", self.vm["a3"].ip)

    # --- 6. port ranges with a remote group -----------------------------------------------

    def test_06_port_ranges_with_a_remote_group(self):
        web = group("web")
        low = rule("ingress", "tcp", ports=(80, 81), group=web["id"])
        high = rule("ingress", "tcp", ports=(82, 83), group=web["id"])
        web = with_rules(web, rules_of(web) + [low, high])
        self.serve("a2", 79, 80, 81, 82, 83, 84)
        self.apply([web], {"a1": [web], "a2": [web]})
        self.assertReaches("a1", "tcp", "a2", [80, 81, 82, 83])
        self.assertBlocked("a1", "tcp", "a2", [79, 84], "a2", "drop-sg-ingress")
        # Deleting the second rule closes exactly its ports.
        web = with_rules(web, rules_of(web, without=[high]))
        self.apply([web], {"a1": [web], "a2": [web]})
        self.assertBlocked("a1", "tcp", "a2", [82, 83], "a2", "drop-sg-ingress")
        self.assertReaches("a1", "tcp", "a2", [80, 81])

    # --- 7. overlapping rules from two groups ---------------------------------------------

    def test_07_overlapping_rules_from_two_groups(self):
        clients = group("clients")
        a1, a3 = self.vm["a1"].ip, self.vm["a3"].ip
        narrow = group("narrow", [rule("ingress", "tcp", ports=(3000, 3000), prefix=a1 + "/32")])
        wide = group("wide", [rule("ingress", "tcp", ports=(3000, 3002), prefix=a3 + "/32")])
        self.serve("a2", 3000, 3001, 3002)
        self.apply([clients, narrow, wide],
                   {"a1": [clients], "a3": [clients], "a4": [clients], "a2": [narrow, wide]})
        self.assertReaches("a1", "tcp", "a2", [3000])
        self.assertBlocked("a1", "tcp", "a2", [3001, 3002], "a2", "drop-sg-ingress")
        self.assertReaches("a3", "tcp", "a2", [3000, 3001, 3002])
        self.assertBlocked("a4", "tcp", "a2", [3000], "a2", "drop-sg-ingress")

    # --- 8. removing every group from an active port --------------------------------------

    def test_08_removing_all_groups_blocks_the_port(self):
        default = default_group()
        # a4 admits anything, so that fixed traffic from a2 has somewhere to go.
        anyone = group("anyone", [rule("ingress", prefix="0.0.0.0/0")])
        members = {"a1": [default], "a2": [default], "a4": [anyone]}
        self.apply([default, anyone], members)
        a1, a2 = self.vm["a1"].ip, self.vm["a2"].ip
        self.assertPing("a1", a2)
        self.assertPing("a2", self.vm["a4"].ip)
        self.apply([default, anyone], dict(members, a2=[]))
        self.assertNoPing("a1", a2, "a2", "drop-sg-ingress", absent_at="a2")
        self.assertNoPing("a2", a1, "a2", "drop-sg-egress", absent_at="a1")
        self.assertNoPing("a2", self.vm["a4"].ip, "a2", "drop-sg-egress", absent_at="a4")
        # Fixed traffic still passes: ARP, both ways, and a DHCP discover.
        vm2 = self.vm["a2"]
        self.frames_pass("a2", [vm2.arp_request("10.0.0.99")], "a1")
        self.frames_pass("a1", [self.vm["a1"].arp_request("10.0.0.98")], "a2")
        token = w.new_token()
        discover = w.eth(w.BROADCAST, vm2.mac, w.ETH_P_IP,
                         w.udp4("0.0.0.0", "255.255.255.255", 68, 67, token))
        before = self.counters("a2")
        self.frames_pass("a2", [(discover, token)], "a4")
        self.assertCounted(self.lab, self.pid("a2"), before, "forward-flood")
        # Attached again: the port talks again.
        self.apply([default, anyone], members)
        self.assertPing("a1", a2)

    # --- 9. an established session across detach and re-attach ----------------------------

    def test_09_established_tcp_session_cut_and_restored_repeatedly(self):
        default = default_group()
        members = {"a1": [default], "a2": [default]}
        self.apply([default], members)
        server = self.vm["a2"].stream_server(6000)
        self.addCleanup(w.Vm.stop_echo, server)
        stream = self.vm["a1"].stream_client(self.vm["a2"].ip, 6000, interval=0.1)
        self.addCleanup(stream.stop)
        self.assertTrue(stream.wait_for(5, 5), "the session never got going: %s" % stream.errors)
        flows = [r for r in self.ct_rows(port=self.pid("a2"))
                 if r["protocol"] == "tcp" and r["dport"] == 6000]
        self.assertEqual(len(flows), 1, flows)
        self.assertEqual(flows[0]["state"], "established")

        for cycle in (1, 2, 3):
            before = self.counters("a2")
            self.apply([default], dict(members, a2=[]))
            time.sleep(0.3)  # what was already in flight
            frozen = stream.count()
            time.sleep(1.0)
            self.assertEqual(stream.count(), frozen,
                             "cycle %d: messages still arrive with the group detached" % cycle)
            self.assertCounted(self.lab, self.pid("a2"), before, "drop-sg-ingress")
            self.apply([default], members)
            self.assertTrue(stream.wait_for(frozen + 3, 8),
                            "cycle %d: the session did not resume after re-attaching "
                            "(%d echoes, client errors %s)" % (cycle, stream.count(),
                                                                stream.errors))
            self.assertTrue(stream.alive(), "the client lost its connection: %s" % stream.errors)

        # One connection all along: never re-opened, nothing lost or reordered.
        local = stream.local
        stream.stop()
        self.assertFalse(stream.errors, stream.errors)
        seen = [n for _, n in stream.echoes]
        self.assertEqual(seen, list(range(1, len(seen) + 1)))
        out, _ = server.communicate(timeout=5)
        self.assertEqual(out.count("ACCEPTED"), 1, "the server saw reconnections: %s" % out)
        self.assertIn(local, out)

    # --- 10. stateless groups -------------------------------------------------------------

    def test_10_stateless_group_needs_both_directions(self):
        a1, a2 = self.vm["a1"], self.vm["a2"]
        server_in = rule("ingress", "tcp", ports=(5000, 5000))
        server_out = rule("egress", "tcp")
        client_in = rule("ingress", "tcp")
        client_out = rule("egress", "tcp")

        def apply(server_rules, client_rules):
            srv = with_rules(server, server_rules)
            cli = with_rules(client, client_rules)
            self.apply([srv, cli], {"a1": [cli], "a2": [srv]})

        server = group("stateless-server", stateful=False, egress=False)
        client = group("stateless-client", stateful=False, egress=False)
        self.serve("a2", 5000, 5001)
        apply([server_in, server_out], [client_in, client_out])
        self.assertReaches("a1", "tcp", "a2", [5000])
        self.assertBlocked("a1", "tcp", "a2", [5001], "a2", "drop-sg-ingress")
        # No tracking at all.
        self.assertEqual(self.ct_rows(port=self.pid("a1")), [])
        self.assertEqual(self.ct_rows(port=self.pid("a2")), [])

        # Only the way in: the SYN arrives, the SYN-ACK may not leave.
        apply([server_in], [client_in, client_out])
        captures = self.watch([a2], lambda: self.assertBlocked("a1", "tcp", "a2", [5000], "a2",
                                                               "drop-sg-egress"), window=0.1)
        syns = [f for f in captures["a2"].result()
                if f.ethertype == w.ETH_P_IP and f.l3[9] == 6 and f.l3[22:24] == b"\x13\x88" and
                f.l3[33] & 0x02]
        self.assertTrue(syns, "the SYN to 5000 did not reach a2")
        # The client without its ingress rule: the SYN-ACK may not enter.
        apply([server_in, server_out], [client_out])
        self.assertBlocked("a1", "tcp", "a2", [5000], "a1", "drop-sg-ingress")

        # Any TCP flag combination passes a rule that allows the port.
        apply([server_in, server_out], [client_in, client_out])

        def segment(flags, dport):
            token = w.new_token()
            return w.eth(a2.mac, a1.mac, w.ETH_P_IP,
                         w.tcp4(a1.ip, a2.ip, 41000, dport, flags, token)), token

        odd = (0x03, 0x00, 0x29, 0x10, 0x01, 0x04)  # SYN|FIN, none, FIN|PSH|URG, ACK, FIN, RST
        self.frames_pass("a1", [segment(flags, 5000) for flags in odd], "a2")
        self.frames_dropped("a1", [segment(flags, 5001) for flags in (0x03, 0x00)], "a2", "a2",
                            "drop-sg-ingress")
        self.assertEqual(self.ct_rows(port=self.pid("a2")), [])

    def test_10b_stateless_group_passes_ipv4_fragments(self):
        a1, a2 = self.vm["a1"], self.vm["a2"]
        server = group("stateless-server", [rule("ingress", "tcp", ports=(5000, 5000)),
                                            rule("ingress", "udp")],
                       stateful=False, egress=False)
        client = group("stateless-client", stateful=False)
        self.apply([server, client], {"a1": [client], "a2": [server]})

        def fragments(proto, l4, ident):
            out = []
            for packet in w.ipv4_fragments(a1.ip, a2.ip, proto, l4, 24, ident=ident):
                out.append((w.eth(a2.mac, a1.mac, w.ETH_P_IP, packet), packet))
            return out

        payload = w.new_token() * 4
        # A UDP datagram, the rule allows UDP to any port.
        udp = w.udp4_datagram(a1.ip, a2.ip, 41000, 9000, payload)
        self.frames_pass("a1", fragments(17, udp, 0x5101), "a2")
        # The first fragment of a segment to a port no rule allows is dropped.
        tcp = w.tcp4_segment(a1.ip, a2.ip, 41000, 5001, 0x18, payload)
        first = fragments(6, tcp, 0x5103)[0]
        self.frames_dropped("a1", [first], "a2", "a2", "drop-sg-ingress")
        # A TCP segment to 5000, which the rule allows: every fragment of it
        # (Neutron's firewall sees the datagram reassembled).
        tcp = w.tcp4_segment(a1.ip, a2.ip, 41000, 5000, 0x18, payload)
        self.frames_pass("a1", fragments(6, tcp, 0x5102), "a2")

    def test_10c_fragmented_udp_through_stateful_groups(self):
        """Conntrack reassembles, so Neutron matches a fragmented datagram as
        a whole: every fragment of a datagram to an allowed port passes, and
        so does every fragment of its (established) reply."""
        client = group("client")
        server = group("udp-9000", [rule("ingress", "udp", ports=(9000, 9000))])
        self.apply([client, server], {"a1": [client], "a2": [server]})
        self.serve("a2", 9000)
        a1, a2 = self.vm["a1"], self.vm["a2"]
        small = self.probe("a1", "udp", a2.ip, [9000], timeout=2.0)[9000]
        self.assertEqual(small, "a2:probe")
        # 3000 bytes: the VM's kernel sends three fragments each way.
        big = "x" * 3000
        before1, before2 = self.counters("a1"), self.counters("a2")
        got = a1.connect("udp", a2.ip, 9000, big, timeout=2.0).stdout.strip()
        self.assertTrue(got == "a2:" + big,
                        "a 3000-byte UDP echo did not come back whole: got %r; counters moved "
                        "a1 %s, a2 %s" % (got[:40], self.moved("a1", before1),
                                          self.moved("a2", before2)))

        # Crafted: each fragment of a datagram to 9000 reaches a2.
        payload = w.new_token() * 4
        udp = w.udp4_datagram(a1.ip, a2.ip, 41000, 9000, payload)
        frames = [(w.eth(a2.mac, a1.mac, w.ETH_P_IP, packet), packet)
                  for packet in w.ipv4_fragments(a1.ip, a2.ip, 17, udp, 24, ident=0x5201)]
        self.frames_pass("a1", frames, "a2")

    # --- 11. port security off ------------------------------------------------------------

    def test_11_port_security_disabled_needs_no_group(self):
        open_port = {"port_security_enabled": False, "security_groups": []}
        client = group("client")
        self.apply([client], {"a1": [client]}, {"a4": open_port, "a5": open_port})
        self.serve("a5", 7200)
        self.assertPing("a4", self.vm["a5"].ip)
        self.assertPing("a5", self.vm["a4"].ip)
        before4, before5 = self.counters("a4"), self.counters("a5")
        self.assertReaches("a4", "tcp", "a5", [7200])
        self.assertReaches("a4", "udp", "a5", [7200])
        for name, before in (("a4", before4), ("a5", before5)):
            drops = {r: n for r, n in self.delta(before, self.counters(name)).items()
                     if n and r.startswith("drop")}
            self.assertFalse(drops, "%s without port security dropped %s" % (name, drops))
        # a1 (egress only) reaches the open port; the open port does not get
        # into a1, whose own rules still apply.
        self.assertPing("a1", self.vm["a5"].ip)
        self.assertNoPing("a5", self.vm["a1"].ip, "a1", "drop-sg-ingress", absent_at="a1")

    # --- 12. allowed address pair with a CIDR ---------------------------------------------

    def test_12_allowed_address_pair_cidr_joins_the_remote_group(self):
        default, outside = default_group(), group("outside")
        self.apply([default, outside], {"a1": [default], "a2": [default], "a3": [outside]})
        vm1 = self.vm["a1"]
        vm1.sh("ip", "addr", "add", PAIR_IP + "/32", "dev", "eth0")
        self.addCleanup(vm1.sh, "ip", "addr", "del", PAIR_IP + "/32", "dev", "eth0", check=False)
        for name in ("a1", "a2", "a3"):
            self.addCleanup(self.vm[name].sh, "ip", "neigh", "flush", "dev", "eth0", check=False)
        # A member reaches the pair's address; the pair's address is a member.
        self.assertPing("a2", PAIR_IP)
        self.assertPing("a1", self.vm["a2"].ip, source=PAIR_IP)
        # A UDP exchange sourced from the pair's address.
        self.serve("a2", 7300)
        got = vm1.sh(w.PYTHON, "-c",
                     "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
                     "s.settimeout(2); s.bind(('%s', 0)); s.sendto(b'pair', ('%s', 7300));"
                     "print(s.recv(100).decode())" % (PAIR_IP, self.vm["a2"].ip),
                     check=False).stdout.strip()
        self.assertEqual(got, "a2:pair")
        # Not for the outsider; and an address outside the pair is spoofed.
        self.assertNoPing("a3", PAIR_IP, "a1", "drop-sg-ingress", absent_at="a1")
        vm1.sh("ip", "addr", "add", "10.0.0.99/32", "dev", "eth0")
        self.addCleanup(vm1.sh, "ip", "addr", "del", "10.0.0.99/32", "dev", "eth0", check=False)
        self.assertNoPing("a1", self.vm["a2"].ip, "a1", "drop-spoofed-ip", absent_at="a2",
                          source="10.0.0.99")

    # --- 13. identical MACs and IPs in two projects ---------------------------------------

    def test_13_identical_addresses_in_two_projects_stay_isolated(self):
        open_a = group("open-a", [rule("ingress", prefix="0.0.0.0/0")])
        open_b = group("open-b", [rule("ingress", prefix="0.0.0.0/0")])
        self.apply([open_a, open_b], {"a1": [open_a], "a2": [open_a], "a3": [open_a],
                                      "b1": [open_b], "b2": [open_b]})
        vm = self.vm
        for sender, owner, other in (("a2", "a1", "b1"), ("b2", "b1", "a1")):
            pattern = w.ping_pattern()
            captures = self.watch([vm[owner], vm[other]],
                                  lambda: self.assertPing(sender, "10.0.0.11", pattern=pattern),
                                  window=0.2)
            self.assertTrue(captures[owner].with_token(pattern))
            self.assertFalse(captures[other].with_token(pattern),
                             "%s's echo crossed into the other project (%s)" % (sender, other))
        self.serve("a1", 7400)
        self.serve("b1", 7400)
        for client, owner in (("a2", "a1"), ("b2", "b1"), ("a3", "a1")):
            for proto in ("tcp", "udp"):
                got = self.probe(client, proto, "10.0.0.11", [7400], timeout=2.0)[7400]
                self.assertEqual(got, owner + ":probe",
                                 "%s %s to 10.0.0.11 answered by %r" % (client, proto, got))
        # Crafted unicast to the shared MAC stays in its network too.
        self.exchange(vm["b2"], [vm["b2"].udp_frame(vm["b1"].mac, "10.0.0.11")],
                      arrive=[vm["b1"]], absent=[vm["a1"]], window=0.3)

    # --- 14. SCTP -------------------------------------------------------------------------

    def test_14_sctp_rule_admits_its_port(self):
        """This kernel has no SCTP (an IPPROTO_SCTP socket gets
        EPROTONOSUPPORT), so the INIT chunks are crafted and captured."""
        client = group("client")
        sctp = group("sctp", [rule("ingress", 132, ports=(7000, 7000))])
        self.apply([client, sctp], {"a1": [client], "a2": [sctp]})
        a1, a2 = self.vm["a1"], self.vm["a2"]

        def init(dport):
            token = w.new_token()
            packet = w.ipv4(a1.ip, a2.ip, 132, w.sctp_init(41000, dport, token))
            return w.eth(a2.mac, a1.mac, w.ETH_P_IP, packet), token

        self.frames_pass("a1", [init(7000)], "a2")
        self.frames_dropped("a1", [init(7001), init(6999)], "a2", "a2", "drop-sg-ingress")
        # The name means the same as the number.
        named = with_rules(sctp, rules_of(sctp)[:2] + [rule("ingress", "sctp", ports=(7001, 7001))])
        self.apply([client, named], {"a1": [client], "a2": [named]})
        self.frames_pass("a1", [init(7001)], "a2")
        self.frames_dropped("a1", [init(7000)], "a2", "a2", "drop-sg-ingress")

    # --- 15. related ICMP -----------------------------------------------------------------

    def test_15_related_icmp_error_passes_unsolicited_is_dropped(self):
        client = group("client")  # egress any, no ingress rule at all
        server = group("udp-9999", [rule("ingress", "udp", ports=(9999, 9999))], egress=False)
        self.apply([client, server], {"a1": [client], "a2": [server]})
        a1, a2 = self.vm["a1"], self.vm["a2"]
        # Nobody listens on 9999: a2's kernel answers port unreachable, which
        # is related to the datagram on both ports, without an ICMP rule.
        result = {}

        def send():
            result["proc"] = a1.connect("udp", a2.ip, 9999, "anyone", timeout=2.0)

        captures = self.watch([a1], send, window=0.2)
        self.assertIn("refused", result["proc"].stdout,
                      "no port unreachable came back: %s" % result["proc"].stdout)
        unreachables = [f for f in captures["a1"].result()
                        if f.ethertype == w.ETH_P_IP and f.l3[9] == 1 and
                        f.l3[20:22] == b"\x03\x03"]
        self.assertTrue(unreachables, "the ICMP port unreachable did not reach a1")

        # An ICMP error about a datagram a1 never sent is not related to anything.
        def unsolicited():
            token = w.new_token()
            quoted = w.udp4(a1.ip, a2.ip, 41999, 9998, token)
            frame = w.eth(a1.mac, a2.mac, w.ETH_P_IP, w.icmp4_error(a2.ip, a1.ip, 3, 3, quoted))
            return frame, token

        self.frames_dropped("a2", [unsolicited()], "a1", "a2", "drop-sg-egress")
        # With egress open on the server, it is a1's ingress that refuses it.
        server_out = with_rules(server, rules_of(server) + [rule("egress")])
        self.apply([client, server_out], {"a1": [client], "a2": [server_out]})
        self.frames_dropped("a2", [unsolicited()], "a1", "a1", "drop-sg-ingress")
        # ... while a real one still comes back.
        self.assertIn("refused", a1.connect("udp", a2.ip, 9999, "again", timeout=2.0).stdout)

    # --- 16. IPv6 -------------------------------------------------------------------------

    def test_16_ipv6_rules_and_anti_spoofing(self):
        c1, c2 = self.vm["c1"], self.vm["c2"]
        client = group("client")
        server = group("v6-server")
        self.apply([client, server], {"c1": [client], "c2": [server]})
        self.assertNoPing("c1", c2.ip6, "c2", "drop-sg-ingress", absent_at="c2")
        # An IPv4 ICMP rule does not admit ICMPv6.
        v4 = with_rules(server, rules_of(server) + [rule("ingress", "icmp", ethertype="IPv4")])
        self.apply([client, v4], {"c1": [client], "c2": [v4]})
        self.assertPing("c1", c2.ip)
        self.assertNoPing("c1", c2.ip6, "c2", "drop-sg-ingress", absent_at="c2")
        for protocol in ("ipv6-icmp", "icmp", "58", 1):
            v6 = with_rules(server, rules_of(server) +
                            [rule("ingress", protocol, ethertype="IPv6")])
            self.apply([client, v6], {"c1": [client], "c2": [v6]})
            self.assertPing("c1", c2.ip6)
        # The link-local address of the port's MAC (EUI-64) is the port's own.
        self.assertPing("c1", c2.link_local + "%eth0")

        def echo6(src, dst, dst_mac=None, src_mac=None):
            token = w.new_token()
            body = struct.pack("!HH", 0x5745, 1) + token
            return w.eth(dst_mac or c2.mac, src_mac or c1.mac, w.ETH_P_IPV6,
                         w.icmp6(src, dst, 128, 0, body, hop_limit=64)), token

        self.frames_pass("c1", [echo6(c1.link_local, c2.link_local), echo6(c1.ip6, c2.ip6)],
                         "c2")
        self.frames_dropped("c1", [echo6("fd00:1::99", c2.ip6), echo6("fe80::99", c2.link_local)],
                            "c2", "c1", "drop-spoofed-ip")
        # A neighbour advertisement may claim the port's own address only.
        def advert(target):
            token = w.new_token()
            return w.eth("33:33:00:00:00:01", c1.mac, w.ETH_P_IPV6,
                         w.icmp6(c1.link_local, "ff02::1", 136, 0,
                                 w.neighbour_advert_body(target, c1.mac, token))), token

        self.frames_pass("c1", [advert(c1.ip6), advert(c1.link_local)], "c2")
        self.frames_dropped("c1", [advert(c2.ip6), advert(c2.link_local)], "c2", "c1",
                            "drop-spoofed-nd")

    # --- 17. conntrack zones --------------------------------------------------------------

    def test_17_conntrack_is_zoned_per_network(self):
        open_a = group("open-a", [rule("ingress", prefix="0.0.0.0/0")])
        open_b = group("open-b", [rule("ingress", prefix="0.0.0.0/0")])
        self.apply([open_a, open_b], {"a1": [open_a], "a2": [open_a],
                                      "b1": [open_b], "b2": [open_b]})
        vm = self.vm

        def datagrams(sender, receiver, count):
            return [sender.udp_frame(receiver.mac, receiver.ip, sport=45000, dport=7000)
                    for _ in range(count)]

        # The same 5-tuple, three datagrams in A and one in B; only B answers.
        self.frames_pass("a1", datagrams(vm["a1"], vm["a2"], 3), "a2")
        self.frames_pass("b1", datagrams(vm["b1"], vm["b2"], 1), "b2")
        self.frames_pass("b2", [vm["b2"].udp_frame(vm["b1"].mac, vm["b1"].ip, sport=7000,
                                                   dport=45000)], "b1")

        def entries(network):
            return [r for r in self.ct_rows(network=network["id"])
                    if r["protocol"] == "udp" and {r["sport"], r["dport"]} == {45000, 7000}]

        in_a, in_b = entries(self.net_a), entries(self.net_b)
        self.assertEqual(len(in_a), 1, in_a)
        self.assertEqual(len(in_b), 1, in_b)
        (in_a,), (in_b,) = in_a, in_b
        for row, network in ((in_a, self.net_a), (in_b, self.net_b)):
            self.assertEqual(row["network_id"], network["id"])
            self.assertEqual((row["src"], row["sport"], row["dst"], row["dport"]),
                             ("10.0.0.11", 45000, "10.0.0.12", 7000))
        self.assertEqual((in_a["packets_orig"], in_a["packets_reply"]), (3, 0), in_a)
        self.assertEqual((in_b["packets_orig"], in_b["packets_reply"]), (1, 1), in_b)

    # --- 18. ct flush --port, sg show -----------------------------------------------------

    def test_18_ct_flush_by_port_and_sg_show(self):
        default = default_group()
        web = group("web", [rule("ingress", "tcp", ports=(8080, 8081), prefix="10.0.0.0/24")])
        open_b = group("open-b", [rule("ingress", prefix="0.0.0.0/0")])
        self.apply([default, web, open_b], {"a1": [default], "a2": [default, web],
                                            "a3": [default], "b1": [open_b], "b2": [open_b]})
        self.assertPing("a1", self.vm["a2"].ip)
        self.assertPing("a3", self.vm["a2"].ip)
        self.assertPing("b1", self.vm["b2"].ip)
        a1, a2, a3 = self.pid("a1"), self.pid("a2"), self.pid("a3")
        self.assertTrue(self.ct_rows(port=a1))
        self.assertTrue(self.ct_rows(port=a3))
        flushed = self.lab.weft_ok("ct", "flush", "--port", a1)
        self.assertGreaterEqual(flushed["flushed"], 1, flushed)
        self.assertEqual(self.ct_rows(port=a1), [])
        # The other ports' connections stay, in both networks.
        self.assertTrue(self.ct_rows(port=a3))
        self.assertTrue(self.ct_rows(port=self.pid("b1")))
        # Every remaining row is of another port.
        for row in self.ct_rows():
            self.assertNotIn(a1, (row.get("orig_port"), row.get("reply_port")), row)

        for sg, users in ((default, {a1, a2, a3}), (web, {a2})):
            shown = self.lab.weft_ok("sg", "show", sg["id"])
            self.assertEqual(shown["id"], sg["id"])
            self.assertEqual(shown["name"], sg["name"])
            self.assertTrue(shown["stateful"])
            self.assertEqual(set(shown["ports"]), users)
            self.assertEqual(sorted(map(rule_shape, shown["rules"]), key=repr),
                             sorted(map(rule_shape, sg["security_group_rules"]), key=repr))
        listed = {g["id"]: g for g in self.lab.weft_ok("sg", "list")}
        self.assertEqual(set(listed), {default["id"], web["id"], open_b["id"]})
        self.assertEqual(set(listed[open_b["id"]]["ports"]), {self.pid("b1"), self.pid("b2")})

    # --- hostile tenants against conntrack ------------------------------------------------

    def test_19_an_entry_towards_a_permissive_port_does_not_open_its_neighbour(self):
        """a3 points its neighbour entry for a2's IP at a1 (which accepts SSH
        from anyone) for the first SYN, then at a2 (which accepts nothing) for
        the retransmission: a2's rules still decide, the session never opens."""
        permissive = group("permissive", [rule("ingress", "tcp", ports=(22, 22),
                                               prefix="0.0.0.0/0")])
        closed, client = group("closed"), group("client")
        self.apply([permissive, closed, client],
                   {"a1": [permissive], "a2": [closed], "a3": [client]})
        self.serve("a2", 22)
        a3, victim = self.vm["a3"], self.vm["a2"]
        a3.sh("ip", "neigh", "replace", victim.ip, "lladdr", self.vm["a1"].mac, "dev", "eth0",
              "nud", "permanent")
        self.addCleanup(a3.sh, "ip", "neigh", "flush", "dev", "eth0", check=False)
        before = self.counters("a2")
        agent = os.path.abspath(w.__file__)
        proc = subprocess.Popen(
            w.in_ns(a3.ns, w.PYTHON, agent, "connect", "tcp", victim.ip, "22", "probe", "3.5"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.4)  # the first SYN went to a1's MAC and opened an entry
        a3.sh("ip", "neigh", "replace", victim.ip, "lladdr", victim.mac, "dev", "eth0",
              "nud", "permanent")
        out, _ = proc.communicate(timeout=30)
        self.assertFalse(proc.returncode == 0 and out.strip() == "a2:probe",
                         "a3 reached a2's port 22 through a1's conntrack entry")
        self.assertGreaterEqual(self.moved("a2", before).get("drop-sg-ingress", 0), 1,
                                "a2 did not refuse the retransmitted SYN: %s" %
                                self.moved("a2", before))
        # Each entry a3 made is bound to the ports it was made between.
        for row in self.ct_rows(port=self.pid("a3")):
            self.assertNotEqual(row["dst_port"], self.pid("a2"), row)


if __name__ == "__main__":
    unittest.main(verbosity=2)
