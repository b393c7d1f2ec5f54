// The port program (bpf/port.bpf.c) run on built frames through
// BPF_PROG_TEST_RUN, on the real kernel: verdict, output bytes and counters,
// for switching, anti-spoofing and the fixed traffic of ports whose groups
// admit everything (security groups themselves: test_sg.cpp). The node and
// its fixture: port_fixture.hpp.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/prog/port_fixture.hpp"

namespace weft::test {
namespace {

using namespace std::chrono_literals;

// --- drops before switching --------------------------------------------------------

TEST_F(PortProgTest, DeviceThatIsNotAPortDropsEverything) {
  RunResult result = run_on(stranger, broadcast_udp(vm1));

  EXPECT_EQ(result.retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), (Counts{{{stranger, "drop-not-a-port"}, 1}}));
}

TEST_F(PortProgTest, AdminDownSourcePortDropsWhatItsVmSends) {
  RunResult result = run(vm4, ping(vm4, vm1));

  EXPECT_EQ(result.retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm4, WEFT_DROP_PORT_DOWN));
}

TEST_F(PortProgTest, AdminDownSourcePortDropsEvenArpItCouldBeAnswered) {
  EXPECT_EQ(run(vm4, arp_request(vm4, vm1.ip)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm4, WEFT_DROP_PORT_DOWN));
}

TEST_F(PortProgTest, UnicastToAdminDownPortIsDropped) {
  RunResult result = run(vm1, ping(vm1, vm4));

  EXPECT_EQ(result.retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_PORT_DOWN));
}

TEST_F(PortProgTest, TruncatedFramesAreMalformed) {
  Bytes ip = ping(vm1, vm2);
  Bytes arp = arp_request(vm1, vm2.ip);
  Bytes ra = PacketBuilder()
                 .eth(kIpv6AllNodesMac, vm1.mac)
                 .ipv6(link_local(vm1.mac), ipv6("ff02::1"), 255)
                 .icmpv6(kIcmpv6RouterAdvert, 0, router_advert_body(vm1.mac))
                 .build();
  Bytes dhcp6 = PacketBuilder()
                    .eth(vm2.mac, vm1.mac)
                    .ipv6(link_local(vm1.mac), link_local(vm2.mac))
                    .udp(547, 546)
                    .payload(dhcpv6_advertise())
                    .build();
  Bytes not_ipv4 = ip;
  not_ipv4[14] = 0x65; // version 6 under an IPv4 ethertype
  Bytes short_ihl = ip;
  short_ihl[14] = 0x44; // a 16-byte IPv4 header
  Bytes not_ipv6 = ra;
  not_ipv6[14] = 0x40; // version 4 under the IPv6 ethertype
  Bytes not_ethernet_arp = arp;
  not_ethernet_arp[14 + 1] = 6; // hardware type 6 (IEEE 802)

  // The kernel refuses to test-run an IPv4 or IPv6 frame shorter than its
  // IP header (EINVAL), so those are cut after the IP header or made invalid.
  const std::vector<std::pair<std::string, Bytes>> frames = {
      {"Ethernet header only, ARP", Bytes(arp.begin(), arp.begin() + 14)},
      {"ARP cut at 20 bytes", Bytes(arp.begin(), arp.begin() + 34)},
      {"ARP cut at 27 bytes", Bytes(arp.begin(), arp.begin() + 41)},
      {"ARP over another hardware type", not_ethernet_arp},
      {"IPv4 ethertype, version 6", not_ipv4},
      {"IPv4 IHL 4", short_ihl},
      {"IPv6 ethertype, version 4", not_ipv6},
      {"ICMPv6 header cut at 7 bytes", Bytes(ra.begin(), ra.begin() + 61)},
      {"UDP over IPv6 cut at 7 bytes", Bytes(dhcp6.begin(), dhcp6.begin() + 61)},
  };
  std::uint64_t expected = 0;
  for (const auto& [what, frame] : frames) {
    SCOPED_TRACE(what);
    EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
    EXPECT_EQ(counts(), one(vm1, WEFT_DROP_MALFORMED, ++expected));
  }
}

TEST_F(PortProgTest, VlanTaggedFramesFromSecuredPortAreDropped) {
  Bytes dot1q = PacketBuilder()
                    .eth(kBroadcastMac, vm1.mac)
                    .vlan(100)
                    .arp(kArpRequest, vm1.mac, vm1.ip, kZeroMac, vm2.ip)
                    .build();
  Bytes dot1ad = PacketBuilder()
                     .eth(vm2.mac, vm1.mac)
                     .vlan(200, kEth8021AD)
                     .vlan(100)
                     .ipv4(vm1.ip, vm2.ip)
                     .udp(5000, 5000)
                     .build();

  EXPECT_EQ(run(vm1, dot1q).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(vm1, dot1ad).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_VLAN_TAGGED, 2));
}

TEST_F(PortProgTest, SourceMacNotThePortsIsSpoofed) {
  // An unknown MAC, and the MAC of another port of the same network.
  EXPECT_EQ(run(vm1, udp4(kStrangerMac, vm2.mac, vm1.ip, vm2.ip, 5000, 5000)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(vm1, udp4(vm3.mac, vm2.mac, vm1.ip, vm2.ip, 5000, 5000)).retval, TC_ACT_SHOT);
  // A spoofed MAC is a spoofed MAC whatever the frame carries.
  EXPECT_EQ(run(vm1, PacketBuilder()
                         .eth(kBroadcastMac, kStrangerMac)
                         .arp(kArpRequest, kStrangerMac, vm1.ip, kZeroMac, vm2.ip)
                         .build())
                .retval,
            TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_SPOOF_MAC, 3));
}

TEST_F(PortProgTest, Ipv4SourceNotThePortsIsSpoofed) {
  // Another port's IP; a foreign IP; the port's own IP from the pair's MAC
  // (Neutron allows MAC and IP together, not each on its own).
  EXPECT_EQ(run(vm1, udp4(vm1.mac, vm2.mac, vm3.ip, vm2.ip, 5000, 5000)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(vm1, udp4(vm1.mac, vm2.mac, ipv4("192.0.2.1"), vm2.ip, 5000, 5000)).retval,
            TC_ACT_SHOT);
  EXPECT_EQ(run(vm1, udp4(pair_mac, vm2.mac, vm1.ip, vm2.ip, 5000, 5000)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_SPOOF_IP, 3));
}

TEST_F(PortProgTest, AllowedAddressPairCidrIsAcceptedWithThePairsMac) {
  for (const char* source : {"10.0.0.128", "10.0.0.200", "10.0.0.255"}) {
    SCOPED_TRACE(source);
    Bytes frame = udp4(pair_mac, vm2.mac, ipv4(source), vm2.ip, 5000, 5000);
    RunResult result = run(vm1, frame);
    EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
    EXPECT_EQ(result.out, frame);
  }
  EXPECT_EQ(counts(),
            (Counts{{{vm1.device, "forward-unicast"}, 3}, {{vm2.device, "delivered"}, 3}}));
}

TEST_F(PortProgTest, AllowedAddressPairIsBoundToItsMacAndPrefix) {
  // Just outside the /25, and inside it but from the port's own MAC.
  EXPECT_EQ(run(vm1, udp4(pair_mac, vm2.mac, ipv4("10.0.0.127"), vm2.ip, 5000, 5000)).retval,
            TC_ACT_SHOT);
  EXPECT_EQ(run(vm1, udp4(vm1.mac, vm2.mac, ipv4("10.0.0.200"), vm2.ip, 5000, 5000)).retval,
            TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_SPOOF_IP, 2));
}

TEST_F(PortProgTest, ArpWithSpoofedSenderIpIsDropped) {
  Bytes request = PacketBuilder()
                      .eth(kBroadcastMac, vm1.mac)
                      .arp(kArpRequest, vm1.mac, vm3.ip, kZeroMac, vm2.ip)
                      .build();
  Bytes reply = PacketBuilder()
                    .eth(vm2.mac, vm1.mac)
                    .arp(kArpReply, vm1.mac, ipv4("10.0.0.254"), vm2.mac, vm2.ip)
                    .build();

  EXPECT_EQ(run(vm1, request).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(vm1, reply).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_SPOOF_ARP, 2));
}

TEST_F(PortProgTest, ArpSenderMacDifferentFromEthernetSourceIsDropped) {
  // Both MACs are the port's to use, and the IP belongs to the pair; only
  // the mismatch between sha and the Ethernet source is wrong.
  Bytes frame = PacketBuilder()
                    .eth(kBroadcastMac, vm1.mac)
                    .arp(kArpRequest, pair_mac, ipv4("10.0.0.200"), kZeroMac, vm2.ip)
                    .build();

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_SPOOF_ARP));
}

TEST_F(PortProgTest, ArpFromAllowedAddressPairIsAccepted) {
  Bytes frame = PacketBuilder()
                    .eth(vm2.mac, pair_mac)
                    .arp(kArpReply, pair_mac, ipv4("10.0.0.200"), vm2.mac, vm2.ip)
                    .build();

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(),
            (Counts{{{vm1.device, "forward-unicast"}, 1}, {{vm2.device, "delivered"}, 1}}));
}

TEST_F(PortProgTest, DhcpDiscoverFromUnconfiguredVmIsFlooded) {
  Bytes frame = udp4(vm1.mac, kBroadcastMac, ipv4("0.0.0.0"), ipv4("255.255.255.255"), 68, 67,
                     dhcp_discover(vm1.mac));
  Wire vm2_side(peer_name(vm2.device));
  Wire vm3_side(peer_name(vm3.device));

  RunResult result = run(vm1, frame);

  EXPECT_EQ(result.retval, TC_ACT_SHOT); // the original; clones went out
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "forward-flood"}, 1},
                              {{vm2.device, "delivered"}, 1},
                              {{vm3.device, "delivered"}, 1}}));
  EXPECT_TRUE(vm2_side.receives(frame, 1s));
  EXPECT_TRUE(vm3_side.receives(frame, 1s));
}

TEST_F(PortProgTest, OnlyTheDhcpDiscoverShapeMaySendFromZeroAddress) {
  // To a unicast server, or from/to other ports.
  EXPECT_EQ(
      run(vm1, udp4(vm1.mac, vm2.mac, ipv4("0.0.0.0"), vm2.ip, 68, 67, dhcp_discover(vm1.mac)))
          .retval,
      TC_ACT_SHOT);
  EXPECT_EQ(
      run(vm1, udp4(vm1.mac, kBroadcastMac, ipv4("0.0.0.0"), ipv4("255.255.255.255"), 5000, 67))
          .retval,
      TC_ACT_SHOT);
  EXPECT_EQ(
      run(vm1, udp4(vm1.mac, kBroadcastMac, ipv4("0.0.0.0"), ipv4("255.255.255.255"), 68, 5000))
          .retval,
      TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_SPOOF_IP, 3));
}

TEST_F(PortProgTest, VmMayNotAnswerAsDhcpServer) {
  // Broadcast offer and unicast offer, from the VM's own, valid address.
  EXPECT_EQ(run(vm1, udp4(vm1.mac, kBroadcastMac, vm1.ip, ipv4("255.255.255.255"), 67, 68,
                          dhcp_offer(vm2.mac)))
                .retval,
            TC_ACT_SHOT);
  EXPECT_EQ(run(vm1, udp4(vm1.mac, vm2.mac, vm1.ip, vm2.ip, 67, 68, dhcp_offer(vm2.mac))).retval,
            TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_DHCP_SERVER, 2));
}

TEST_F(PortProgTest, VmMayNotAnswerAsDhcpv6Server) {
  Bytes frame = PacketBuilder()
                    .eth(vm2.mac, vm1.mac)
                    .ipv6(link_local(vm1.mac), link_local(vm2.mac))
                    .udp(547, 546)
                    .payload(dhcpv6_advertise())
                    .build();

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_DHCP_SERVER));
}

TEST_F(PortProgTest, Dhcpv6ClientSolicitIsFlooded) {
  Bytes frame = PacketBuilder()
                    .eth(mac("33:33:00:01:00:02"), vm1.mac)
                    .ipv6(link_local(vm1.mac), ipv6("ff02::1:2"))
                    .udp(546, 547)
                    .payload({1, 0x12, 0x34, 0x56})
                    .build();

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "forward-flood"}, 1},
                              {{vm2.device, "delivered"}, 1},
                              {{vm3.device, "delivered"}, 1}}));
}

TEST_F(PortProgTest, VmMayNotSendIpv6RouterAdvertisements) {
  Bytes frame = PacketBuilder()
                    .eth(kIpv6AllNodesMac, vm1.mac)
                    .ipv6(link_local(vm1.mac), ipv6("ff02::1"), 255)
                    .icmpv6(kIcmpv6RouterAdvert, 0, router_advert_body(vm1.mac))
                    .build();

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_IPV6_RA));
}

// ip6tables' `-p ipv6-icmp` (Neutron's iptables driver) and OVS flow
// extraction (its OVS driver) both look past extension headers, so Neutron
// drops an RA behind a hop-by-hop header too (the RA-guard evasion of RFC 7113).
TEST_F(PortProgTest, RouterAdvertisementBehindHopByHopHeaderIsDropped) {
  Bytes frame = PacketBuilder()
                    .eth(kIpv6AllNodesMac, vm1.mac)
                    .ipv6(link_local(vm1.mac), ipv6("ff02::1"), 255)
                    .ipv6_hop_by_hop()
                    .icmpv6(kIcmpv6RouterAdvert, 0, router_advert_body(vm1.mac))
                    .build();

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_IPV6_RA));
}

TEST_F(PortProgTest, OtherIcmpv6FromSecuredPortIsForwarded) {
  Bytes solicit = PacketBuilder()
                      .eth(mac("33:33:00:00:00:02"), vm1.mac)
                      .ipv6(link_local(vm1.mac), ipv6("ff02::2"), 255)
                      .icmpv6(kIcmpv6RouterSolicit, 0, Bytes(4, 0))
                      .build();
  Bytes echo = PacketBuilder()
                   .eth(vm2.mac, vm1.mac)
                   .ipv6(link_local(vm1.mac), link_local(vm2.mac))
                   .icmpv6(kIcmpv6EchoRequest, 0, {0, 1, 0, 1})
                   .build();

  EXPECT_EQ(run(vm1, solicit).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(vm1, echo).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "forward-flood"}, 1},
                              {{vm1.device, "forward-unicast"}, 1},
                              {{vm2.device, "delivered"}, 2},
                              {{vm3.device, "delivered"}, 1}}));
}

TEST_F(PortProgTest, UnknownEthertypeFromSecuredPortIsDropped) {
  for (std::uint16_t type : {0x88b5 /* local experimental */, 0x88cc /* LLDP */,
                             0x8863 /* PPPoE discovery */, 0x0600 /* XNS */}) {
    SCOPED_TRACE(type);
    Bytes frame =
        PacketBuilder().eth(kBroadcastMac, vm1.mac, type).payload(Bytes(46, 0x5a)).build();
    EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
  }
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_ETHERTYPE, 4));
}

TEST_F(PortProgTest, PortSecurityOffForwardsSpoofedTaggedAndForeignFrames) {
  Bytes spoofed_mac_broadcast = udp4(kStrangerMac, kBroadcastMac, ipv4("192.0.2.7"),
                                     ipv4("255.255.255.255"), 67, 68, dhcp_offer(vm8.mac));
  Bytes spoofed_ip_unicast = udp4(vm7.mac, vm8.mac, ipv4("192.0.2.7"), vm8.ip, 5000, 5000);
  Bytes tagged_unicast =
      PacketBuilder().eth(vm8.mac, kStrangerMac).vlan(42).ipv4(vm7.ip, vm8.ip).udp(1, 2).build();
  Bytes foreign_type =
      PacketBuilder().eth(vm8.mac, vm7.mac, 0x88b5).payload(Bytes(46, 0x5a)).build();
  Bytes router_advert = PacketBuilder()
                            .eth(kIpv6AllNodesMac, vm7.mac)
                            .ipv6(link_local(vm7.mac), ipv6("ff02::1"), 255)
                            .icmpv6(kIcmpv6RouterAdvert, 0, router_advert_body(vm7.mac))
                            .build();
  Wire vm8_side(peer_name(vm8.device));

  EXPECT_EQ(run(vm7, spoofed_mac_broadcast).retval, TC_ACT_SHOT);
  EXPECT_TRUE(vm8_side.receives(spoofed_mac_broadcast, 1s));
  EXPECT_EQ(run(vm7, spoofed_ip_unicast).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(vm7, tagged_unicast).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(vm7, foreign_type).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(vm7, router_advert).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), (Counts{{{vm7.device, "forward-flood"}, 2},
                              {{vm7.device, "forward-unicast"}, 3},
                              {{vm8.device, "delivered"}, 5}}));
}

// --- unicast ----------------------------------------------------------------------

TEST_F(PortProgTest, UnicastToKnownMacIsRedirectedToItsPort) {
  Bytes icmp = ping(vm1, vm2);
  Bytes tcp = PacketBuilder().eth(vm2.mac, vm1.mac).ipv4(vm1.ip, vm2.ip).tcp(40000, 22).build();

  RunResult result = run(vm1, icmp);

  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(result.out, icmp); // switched, not rewritten
  EXPECT_EQ(counts(),
            (Counts{{{vm1.device, "forward-unicast"}, 1}, {{vm2.device, "delivered"}, 1}}));
  EXPECT_EQ(counter(vm1.ifindex, WEFT_FWD_UNICAST).bytes, icmp.size());
  EXPECT_EQ(counter(vm2.ifindex, WEFT_DELIVERED).bytes, icmp.size());

  EXPECT_EQ(run(vm1, tcp).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(vm3, ping(vm3, vm2)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counter(vm2.ifindex, WEFT_DELIVERED).packets, 3u);
  EXPECT_EQ(counter(vm2.ifindex, WEFT_DELIVERED).bytes, 2 * icmp.size() + tcp.size());
}

TEST_F(PortProgTest, UnknownUnicastIsDropped) {
  Bytes frame = udp4(vm1.mac, kStrangerMac, vm1.ip, ipv4("10.0.0.99"), 5000, 5000);

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_UNKNOWN_UNICAST));
}

TEST_F(PortProgTest, UnicastToOwnMacIsHairpinDrop) {
  Bytes frame = udp4(vm1.mac, vm1.mac, vm1.ip, vm1.ip, 5000, 5000);

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_HAIRPIN));
}

TEST_F(PortProgTest, SameMacInTwoNetworksReachesOnlyItsOwnNetworksPort) {
  ASSERT_EQ(vm1.mac, vm5.mac);

  EXPECT_EQ(run(vm2, ping(vm2, vm1)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(),
            (Counts{{{vm2.device, "forward-unicast"}, 1}, {{vm1.device, "delivered"}, 1}}));

  EXPECT_EQ(run(vm6, ping(vm6, vm5)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(), (Counts{{{vm2.device, "forward-unicast"}, 1},
                              {{vm1.device, "delivered"}, 1},
                              {{vm6.device, "forward-unicast"}, 1},
                              {{vm5.device, "delivered"}, 1}}));
}

TEST_F(PortProgTest, MacOfAnotherNetworkIsUnknownUnicast) {
  // vm6 lives in red only; vm1 (blue) cannot reach it, even by its MAC.
  EXPECT_EQ(run(vm1, udp4(vm1.mac, vm6.mac, vm1.ip, vm6.ip, 5000, 5000)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_UNKNOWN_UNICAST));
}

// --- flooding ---------------------------------------------------------------------

TEST_F(PortProgTest, BroadcastIsFloodedToTheOtherUpPortsOfItsNetworkOnly) {
  Bytes frame = broadcast_udp(vm1);
  Wire vm2_side(peer_name(vm2.device));
  Wire vm3_side(peer_name(vm3.device));
  Wire vm4_side(peer_name(vm4.device));
  Wire vm5_side(peer_name(vm5.device));

  RunResult result = run(vm1, frame);

  EXPECT_EQ(result.retval, TC_ACT_SHOT);
  // Nothing for vm1 itself, vm4 (down), vm5/vm6 (red, vm5 even shares vm1's MAC).
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "forward-flood"}, 1},
                              {{vm2.device, "delivered"}, 1},
                              {{vm3.device, "delivered"}, 1}}));
  EXPECT_EQ(counter(vm2.ifindex, WEFT_DELIVERED).bytes, frame.size());
  EXPECT_TRUE(vm2_side.receives(frame, 1s));
  EXPECT_TRUE(vm3_side.receives(frame, 1s));
  EXPECT_FALSE(vm4_side.receives(frame, 100ms));
  EXPECT_FALSE(vm5_side.receives(frame, 100ms));
}

TEST_F(PortProgTest, AFloodCopyThatCannotBeSentIsCountedOnItsTarget) {
  // A port entry whose device is gone (deleted between two applies): the
  // copy for it fails and is counted there, the others still go.
  constexpr std::uint32_t kGone = 0x7ffffff0;
  VmPort ghost = vm3;
  ghost.ifindex = kGone;
  write_port(ghost);
  weft_flood list{};
  ASSERT_EQ(
      bpf_map__lookup_elem(maps().flood, &vm1.net_id, sizeof vm1.net_id, &list, sizeof list, 0), 0);
  list.ifindex[list.count++] = kGone;
  put(maps().flood, vm1.net_id, list);

  EXPECT_EQ(run(vm1, broadcast_udp(vm1)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "forward-flood"}, 1},
                              {{vm2.device, "delivered"}, 1},
                              {{vm3.device, "delivered"}, 1},
                              {{ifname(kGone), "drop-redirect-failed"}, 1}}));
}

TEST_F(PortProgTest, MulticastIsFloodedLikeBroadcast) {
  Bytes frame = PacketBuilder()
                    .eth(mac("01:00:5e:00:00:fb"), vm2.mac)
                    .ipv4(vm2.ip, ipv4("224.0.0.251"), 255)
                    .udp(5353, 5353)
                    .payload(Bytes(12, 0))
                    .build();

  EXPECT_EQ(run(vm2, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), (Counts{{{vm2.device, "forward-flood"}, 1},
                              {{vm1.device, "delivered"}, 1},
                              {{vm3.device, "delivered"}, 1}}));
}

TEST_F(PortProgTest, FloodWithNoOtherPortIsDropped) {
  EXPECT_EQ(run(vm9, broadcast_udp(vm9)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm9, WEFT_DROP_NO_FLOOD_TARGET));
}

TEST_F(PortProgTest, FloodWithEveryOtherPortDownIsDropped) {
  vm2.up = false;
  vm3.up = false;
  write_port(vm2);
  write_port(vm3);

  EXPECT_EQ(run(vm1, broadcast_udp(vm1)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_NO_FLOOD_TARGET));
}

TEST_F(PortProgTest, FloodInNetworkWithoutFloodListIsDropped) {
  VmPort orphan{stranger, mac("fa:16:3e:00:05:01"), ipv4("10.5.0.1"), kNoFloodList, true, true};
  orphan.ifindex = if_nametoindex(stranger.c_str());
  write_port(orphan);
  allow_mac(orphan, orphan.mac);
  add_fixed_ip(orphan, orphan.ip);

  EXPECT_EQ(run(orphan, broadcast_udp(orphan)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(orphan, WEFT_DROP_NO_FLOOD_TARGET));
}

// --- the ARP responder ------------------------------------------------------------

void expect_arp_reply(const RunResult& result, const Bytes& request, const Mac& owner_mac,
                      Ipv4Address owner_ip, const Mac& requester_mac, Ipv4Address requester_ip) {
  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  ASSERT_EQ(result.out.size(), request.size());
  FrameView reply(result.out);
  EXPECT_EQ(reply.dst(), requester_mac);
  EXPECT_EQ(reply.src(), owner_mac);
  EXPECT_EQ(reply.ethertype(), kEthArp);
  auto msg = reply.arp();
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->htype, 1);
  EXPECT_EQ(msg->ptype, kEthIpv4);
  EXPECT_EQ(msg->hlen, 6);
  EXPECT_EQ(msg->plen, 4);
  EXPECT_EQ(msg->op, kArpReply);
  EXPECT_EQ(msg->sha, owner_mac);
  EXPECT_EQ(msg->spa, owner_ip);
  EXPECT_EQ(msg->tha, requester_mac);
  EXPECT_EQ(msg->tpa, requester_ip);
  // Anything after the ARP body (padding) is left as it was.
  EXPECT_TRUE(std::equal(result.out.begin() + 42, result.out.end(), request.begin() + 42));
}

TEST_F(PortProgTest, ArpRequestForKnownIpIsAnsweredInPlace) {
  Bytes request = arp_request(vm1, vm2.ip);

  RunResult result = run(vm1, request);

  expect_arp_reply(result, request, vm2.mac, vm2.ip, vm1.mac, vm1.ip);
  // Sent back to the asking port; nothing delivered to vm2.
  EXPECT_EQ(counts(), one(vm1, WEFT_ARP_REPLY));
  EXPECT_EQ(counter(vm1.ifindex, WEFT_ARP_REPLY).bytes, request.size());
}

TEST_F(PortProgTest, ArpRequestWithPaddingAndUnicastDestinationIsAnswered) {
  // A padded (60-byte) request, sent unicast as a cache refresh.
  Bytes request = PacketBuilder()
                      .eth(vm3.mac, vm1.mac)
                      .arp(kArpRequest, vm1.mac, vm1.ip, vm3.mac, vm3.ip)
                      .payload(Bytes(18, 0))
                      .build();

  expect_arp_reply(run(vm1, request), request, vm3.mac, vm3.ip, vm1.mac, vm1.ip);
  EXPECT_EQ(counts(), one(vm1, WEFT_ARP_REPLY));
}

TEST_F(PortProgTest, ArpIsAnsweredFromTheMapEvenForAdminDownPort) {
  Bytes request = arp_request(vm2, vm4.ip);

  expect_arp_reply(run(vm2, request), request, vm4.mac, vm4.ip, vm2.mac, vm2.ip);
  EXPECT_EQ(counts(), one(vm2, WEFT_ARP_REPLY));
}

TEST_F(PortProgTest, ArpIsAnsweredFromTheRequestersNetwork) {
  // 10.0.0.2 is vm2 in blue and vm6 in red.
  Bytes from_blue = arp_request(vm1, ipv4("10.0.0.2"));
  Bytes from_red = arp_request(vm5, ipv4("10.0.0.2"));

  expect_arp_reply(run(vm1, from_blue), from_blue, vm2.mac, vm2.ip, vm1.mac, vm1.ip);
  expect_arp_reply(run(vm5, from_red), from_red, vm6.mac, vm6.ip, vm5.mac, vm5.ip);
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "arp-reply"}, 1}, {{vm5.device, "arp-reply"}, 1}}));
}

TEST_F(PortProgTest, ArpForIpKnownOnlyInAnotherNetworkIsFloodedNotAnswered) {
  for (Ipv4Address target : {red_only_ip, vm5.ip}) {
    Bytes request = arp_request(vm1, target);
    RunResult result = run(vm1, request);
    EXPECT_EQ(result.retval, TC_ACT_SHOT);
    EXPECT_EQ(result.out, request);
  }
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "forward-flood"}, 2},
                              {{vm2.device, "delivered"}, 2},
                              {{vm3.device, "delivered"}, 2}}));
}

TEST_F(PortProgTest, GratuitousArpIsFloodedNotAnswered) {
  Bytes announce = PacketBuilder()
                       .eth(kBroadcastMac, vm1.mac)
                       .arp(kArpRequest, vm1.mac, vm1.ip, kZeroMac, vm1.ip)
                       .build();

  RunResult result = run(vm1, announce);

  EXPECT_EQ(result.retval, TC_ACT_SHOT);
  EXPECT_EQ(result.out, announce);
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "forward-flood"}, 1},
                              {{vm2.device, "delivered"}, 1},
                              {{vm3.device, "delivered"}, 1}}));
}

TEST_F(PortProgTest, ArpReplyFromVmIsSwitchedNotAnswered) {
  Bytes reply = PacketBuilder()
                    .eth(vm2.mac, vm1.mac)
                    .arp(kArpReply, vm1.mac, vm1.ip, vm2.mac, vm2.ip)
                    .build();

  RunResult result = run(vm1, reply);

  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(result.out, reply);
  EXPECT_EQ(counts(),
            (Counts{{{vm1.device, "forward-unicast"}, 1}, {{vm2.device, "delivered"}, 1}}));
}

TEST_F(PortProgTest, ArpResponderServesPortsWithoutPortSecurity) {
  Bytes request = arp_request(vm7, vm8.ip);

  expect_arp_reply(run(vm7, request), request, vm8.mac, vm8.ip, vm7.mac, vm7.ip);
  EXPECT_EQ(counts(), one(vm7, WEFT_ARP_REPLY));
}

// --- the real ingress path ----------------------------------------------------------

// The same program attached with tcx to a port device, fed by a frame sent
// from the VM's side of the veth: what BPF_PROG_TEST_RUN cannot show is how
// the kernel hands a frame to tc ingress.
using PortIngressTest = PortProgTest;

TEST_F(PortIngressTest, ArpRequestFromVmIsAnsweredOnTheWire) {
  TcxIngress attached(program_->program(), vm1.ifindex);
  Wire vm1_side(peer_name(vm1.device));
  Bytes request = arp_request(vm1, vm2.ip);

  vm1_side.send(request);

  EXPECT_EQ(wait_for(one(vm1, WEFT_ARP_REPLY)), one(vm1, WEFT_ARP_REPLY));
  Bytes reply = PacketBuilder()
                    .eth(vm1.mac, vm2.mac)
                    .arp(kArpReply, vm2.mac, vm2.ip, vm1.mac, vm1.ip)
                    .build();
  EXPECT_TRUE(vm1_side.receives(reply, 1s));
}

// Neutron drops every VLAN-tagged frame a VM sends. On the wire the kernel
// moves the tag into skb metadata (skb_vlan_untag in __netif_receive_skb_core)
// before tc ingress runs, so the check must not rely on the tag being in the
// packet bytes, as it is in a test run.
TEST_F(PortIngressTest, VlanTaggedFrameFromVmIsDroppedOnTheWire) {
  TcxIngress attached(program_->program(), vm1.ifindex);
  Wire vm1_side(peer_name(vm1.device));
  Bytes tagged = PacketBuilder()
                     .eth(vm2.mac, vm1.mac)
                     .vlan(100)
                     .ipv4(vm1.ip, vm2.ip)
                     .udp(5000, 5000)
                     .payload(Bytes(32, 0xab))
                     .build();

  vm1_side.send(tagged);

  EXPECT_EQ(wait_for(one(vm1, WEFT_DROP_VLAN_TAGGED)), one(vm1, WEFT_DROP_VLAN_TAGGED));
}

} // namespace
} // namespace weft::test
