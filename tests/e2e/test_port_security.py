"""End to end: port security (Neutron's anti-spoofing and fixed rules).

Frames are forged in a VM and sent with an AF_PACKET socket; the receiving VM
captures to show whether they arrived, and `weft -j stats` must give the
reason of every drop. Every refused frame has a well-formed twin that must
arrive, so a silent capture means "dropped", not "the test is blind".

Run as root: python3 tests/e2e/test_port_security.py (env WEFT = weft binary).
"""

import struct
import unittest

import weftlab as w

PAIR_CIDR = "10.0.0.128/25"


def dhcp_payload(mac, message_type, token):
    """A BOOTP/DHCP message (RFC 2131) carrying `token` in an option."""
    op = 1 if message_type in (1, 3) else 2
    header = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", op, 1, 6, 0, 0x5745F7, 0, 0x8000,
                         b"\0" * 4, b"\0" * 4, b"\0" * 4, b"\0" * 4,
                         w.mac_bytes(mac) + b"\0" * 10, b"", b"")
    options = b"\x63\x82\x53\x63" + bytes([53, 1, message_type]) + \
        bytes([224, len(token)]) + token + b"\xff"
    return header + options


class PortSecurity(w.LabTestMixin, unittest.TestCase):
    """s1: port security on, an allowed pair 10.0.0.128/25; s2: the receiver;
    s3: port security off."""

    @classmethod
    def setUpClass(cls):
        cls.start_lab("ps")
        net, sub = w.make_network("secure", 3001)
        host = cls.lab.node
        cls.ports = {
            "s1": w.make_port(net["id"], sub["id"], "fa:16:3e:5e:00:01", "10.0.0.11", host,
                              allowed_address_pairs=[{"ip_address": PAIR_CIDR}]),
            "s2": w.make_port(net["id"], sub["id"], "fa:16:3e:5e:00:02", "10.0.0.12", host),
            "s3": w.make_port(net["id"], sub["id"], "fa:16:3e:5e:00:03", "10.0.0.13", host,
                              port_security_enabled=False),
        }
        cls.vm = {name: cls.lab.add_vm(name, port) for name, port in cls.ports.items()}
        cls.lab.install()
        cls.lab.apply(w.with_open_group({"networks": [net], "subnets": [sub],
                                         "ports": list(cls.ports.values()),
                                         "security_groups": []}))
        cls.s1, cls.s2, cls.s3 = cls.vm["s1"], cls.vm["s2"], cls.vm["s3"]

    def counters(self, name="s1"):
        return self.lab.counters(self.ports[name]["id"])

    def refused(self, bad, reason, good=None, sender=None):
        """`good` arrives at s2 and is forwarded; `bad` does not arrive and is
        counted on the sender's port as `reason`."""
        sender = sender or self.s1
        port_id = self.ports[sender.name]["id"]
        if good is not None:
            before = self.lab.counters(port_id)
            self.exchange(sender, [good], arrive=[self.s2])
            after = self.lab.counters(port_id)
            forwarded = sum(after.get(r, 0) - before.get(r, 0)
                            for r in ("forward-unicast", "forward-flood"))
            self.assertGreaterEqual(forwarded, 1, "the well-formed twin was not forwarded: %s" %
                                    self.delta(before, after))
        before = self.lab.counters(port_id)
        self.exchange(sender, [bad], absent=[self.s2, self.s3])
        after = self.assertCounted(self.lab, port_id, before, reason)
        # Counted under its own reason only (the VM's kernel may chat
        # meanwhile, but never with a frame weft has to drop).
        drops = {r: n for r, n in self.delta(before, after).items()
                 if n and r.startswith("drop-")}
        self.assertEqual(set(drops), {reason},
                         "the refused frame was counted as %s, not only %s" % (drops, reason))

    # --- anti-spoofing --------------------------------------------------------------

    def test_spoofed_source_mac_is_dropped(self):
        s1, s2 = self.s1, self.s2
        self.refused(s1.udp_frame(s2.mac, s2.ip, src_mac="fa:16:3e:66:66:66"),
                     "drop-spoofed-mac", good=s1.udp_frame(s2.mac, s2.ip))
        # Broadcast too: a forged MAC may not flood either.
        self.refused(s1.udp_frame(w.BROADCAST, "255.255.255.255", src_mac="fa:16:3e:66:66:66"),
                     "drop-spoofed-mac")

    def test_spoofed_source_ip_is_dropped(self):
        s1, s2 = self.s1, self.s2
        self.refused(s1.udp_frame(s2.mac, s2.ip, src_ip="10.0.0.99"), "drop-spoofed-ip",
                     good=s1.udp_frame(s2.mac, s2.ip))
        # Another port's address is as foreign as any other.
        self.refused(s1.udp_frame(s2.mac, s2.ip, src_ip=self.s3.ip), "drop-spoofed-ip")

    def test_arp_with_spoofed_sender_ip_is_dropped(self):
        s1, s2 = self.s1, self.s2
        self.refused(s1.arp_request("10.0.0.77", sender_ip="10.0.0.99"), "drop-spoofed-arp",
                     good=s1.arp_request("10.0.0.77"))
        # ARP poisoning: a reply claiming s3's address for s1's MAC, sent to s2.
        token = w.new_token()
        poison = w.eth(s2.mac, s1.mac, w.ETH_P_ARP,
                       w.arp(2, s1.mac, self.s3.ip, s2.mac, s2.ip, token))
        self.refused((poison, token), "drop-spoofed-arp")
        # The sender MAC inside the ARP must be the frame's too.
        token = w.new_token()
        forged = w.eth(w.BROADCAST, s1.mac, w.ETH_P_ARP,
                       w.arp(1, "fa:16:3e:66:66:66", s1.ip, "00:00:00:00:00:00", "10.0.0.77",
                             token))
        self.refused((forged, token), "drop-spoofed-arp")

    def test_vlan_tagged_frame_is_dropped(self):
        s1, s2 = self.s1, self.s2
        self.refused(s1.udp_frame(s2.mac, s2.ip, vlan=100), "drop-vlan-tagged",
                     good=s1.udp_frame(s2.mac, s2.ip))
        self.refused(s1.udp_frame(w.BROADCAST, "255.255.255.255", vlan=42), "drop-vlan-tagged")

    # --- DHCP and router advertisements ---------------------------------------------

    def test_dhcp_server_reply_is_dropped(self):
        s1, s2 = self.s1, self.s2
        token = w.new_token()
        offer = w.eth(w.BROADCAST, s1.mac, w.ETH_P_IP,
                      w.udp4(s1.ip, "255.255.255.255", 67, 68, dhcp_payload(s2.mac, 2, token)))
        self.refused((offer, token), "drop-dhcp-server",
                     good=s1.udp_frame(w.BROADCAST, "255.255.255.255", sport=68, dport=67))
        token = w.new_token()
        unicast = w.eth(s2.mac, s1.mac, w.ETH_P_IP,
                        w.udp4(s1.ip, s2.ip, 67, 68, dhcp_payload(s2.mac, 5, token)))
        self.refused((unicast, token), "drop-dhcp-server")

    def test_dhcp_discover_passes(self):
        s1, s2 = self.s1, self.s2
        before = self.counters()
        token = w.new_token()
        discover = w.eth(w.BROADCAST, s1.mac, w.ETH_P_IP,
                         w.udp4("0.0.0.0", "255.255.255.255", 68, 67,
                                dhcp_payload(s1.mac, 1, token)))
        self.exchange(s1, [(discover, token)], arrive=[s2, self.s3])
        after = self.assertCounted(self.lab, self.ports["s1"]["id"], before, "forward-flood")
        self.assertFalse({r: n for r, n in self.delta(before, after).items()
                          if n and r.startswith("drop")})
        # The exception is that one packet: 0.0.0.0 to any other port is spoofed.
        self.refused(s1.udp_frame(w.BROADCAST, "255.255.255.255", src_ip="0.0.0.0",
                                  sport=68, dport=5000), "drop-spoofed-ip")

    def test_ipv6_router_advertisement_is_dropped(self):
        s1 = self.s1
        src = w.link_local(s1.mac)
        token = w.new_token()
        echo = w.eth("33:33:00:00:00:01", s1.mac, w.ETH_P_IPV6,
                     w.icmp6(src, "ff02::1", 128, 0, struct.pack("!HH", 1, 1) + token))
        token_ra = w.new_token()
        advert = w.eth("33:33:00:00:00:01", s1.mac, w.ETH_P_IPV6,
                       w.icmp6(src, "ff02::1", 134, 0, w.router_advert_body(token_ra)))
        self.refused((advert, token_ra), "drop-ipv6-router-advert", good=(echo, token))

    # --- allowed address pairs and port security off ----------------------------------

    def test_allowed_address_pair_cidr(self):
        s1, s2 = self.s1, self.s2
        port = self.ports["s1"]["id"]
        # Crafted: inside 10.0.0.128/25 passes, outside is spoofed.
        for inside in ("10.0.0.150", "10.0.0.255", "10.0.0.128"):
            self.exchange(s1, [s1.udp_frame(s2.mac, s2.ip, src_ip=inside)], arrive=[s2])
        self.refused(s1.udp_frame(s2.mac, s2.ip, src_ip="10.0.0.127"), "drop-spoofed-ip")

        # Real traffic from an address the VM takes inside the pair.
        s1.sh("ip", "addr", "add", "10.0.0.150/32", "dev", "eth0")
        self.addCleanup(s1.sh, "ip", "addr", "del", "10.0.0.150/32", "dev", "eth0", check=False)
        s1.sh("ip", "addr", "add", "10.0.0.99/32", "dev", "eth0")
        self.addCleanup(s1.sh, "ip", "addr", "del", "10.0.0.99/32", "dev", "eth0", check=False)
        # The crafted frames above left s2 resolving .150 etc. (its port
        # unreachables): start the real traffic from clean neighbour tables.
        for vm in (s1, s2):
            vm.sh("ip", "neigh", "flush", "dev", "eth0")
        before = self.lab.counters(port)
        pattern = w.ping_pattern()
        captures = self.watch([s2], lambda: self.assertTrue(
            s1.ping(s2.ip, source="10.0.0.150", count=2, interval=0.05, wait=2, pattern=pattern),
            "ping from the allowed pair 10.0.0.150 failed"))
        self.assertTrue(captures["s2"].with_token(pattern))
        self.assertCounted(self.lab, port, before, "forward-unicast", 2)

        self.assertTrue(s1.ping(s2.ip))  # s2's MAC is in s1's ARP cache now
        before = self.lab.counters(port)
        pattern = w.ping_pattern()
        captures = self.watch([s2], lambda: self.assertFalse(
            s1.ping(s2.ip, source="10.0.0.99", count=2, interval=0.05, wait=1, pattern=pattern),
            "ping from 10.0.0.99, outside every pair, got through"))
        self.assertFalse(captures["s2"].with_token(pattern),
                         "an echo from 10.0.0.99 reached s2")
        self.assertCounted(self.lab, port, before, "drop-spoofed-ip", 2)

    def test_port_security_disabled_lets_spoofed_frames_pass(self):
        s2, s3 = self.s2, self.s3
        port = self.ports["s3"]["id"]
        before = self.lab.counters(port)
        frames = [s3.udp_frame(s2.mac, s2.ip, src_mac="fa:16:3e:77:77:77", src_ip="10.0.0.199"),
                  s3.udp_frame(s2.mac, s2.ip, src_ip="10.0.0.198"),
                  s3.udp_frame(w.BROADCAST, "255.255.255.255", src_mac="fa:16:3e:77:77:78",
                               src_ip="10.0.0.197"),
                  s3.arp_request("10.0.0.77", sender_ip="10.0.0.196")]
        self.exchange(s3, frames, arrive=[s2])
        after = self.lab.counters(port)
        moved = {r: n for r, n in self.delta(before, after).items() if n}
        self.assertGreaterEqual(moved.get("forward-unicast", 0), 2, moved)
        self.assertGreaterEqual(moved.get("forward-flood", 0), 2, moved)
        self.assertFalse([r for r in moved if r.startswith("drop")], moved)

        # And a real ping from an address that is not the port's.
        s3.sh("ip", "addr", "add", "10.0.0.199/32", "dev", "eth0")
        self.addCleanup(s3.sh, "ip", "addr", "del", "10.0.0.199/32", "dev", "eth0", check=False)
        for vm in (s2, s3):  # s2 may still be resolving .199 for its port unreachable
            vm.sh("ip", "neigh", "flush", "dev", "eth0")
        self.assertTrue(s3.ping(s2.ip, source="10.0.0.199", wait=2),
                        "a port without port security cannot send from another address")


if __name__ == "__main__":
    unittest.main(verbosity=2)
