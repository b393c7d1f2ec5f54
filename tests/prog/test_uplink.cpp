// The uplink program (bpf/uplink.bpf.c) on VXLAN from the underlay: what it
// accepts (from a VTEP of the document, a VNI hosted here, an inner source
// that is a port behind that VTEP), each reason it refuses the rest for,
// counted on the uplink, and the node's own traffic it leaves alone. The
// node: tunnel_fixture.hpp; provider networks: test_vlan.cpp.
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tests/prog/tunnel_fixture.hpp"

namespace weft::test {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kOuterIpOffset = 14;

// The outer IPv4 header's checksum, after a change to it.
void fix_outer_checksum(Bytes& frame) {
  std::size_t ihl = (frame[kOuterIpOffset] & 0x0f) * std::size_t{4};
  frame[kOuterIpOffset + 10] = 0;
  frame[kOuterIpOffset + 11] = 0;
  std::uint16_t sum = ~checksum_fold(
      checksum_add(0, std::span<const std::uint8_t>(frame).subspan(kOuterIpOffset, ihl)));
  frame[kOuterIpOffset + 10] = static_cast<std::uint8_t>(sum >> 8);
  frame[kOuterIpOffset + 11] = static_cast<std::uint8_t>(sum);
}

// The same VXLAN packet with 4 bytes of IPv4 options (NOP, NOP, NOP, EOL).
Bytes with_outer_ip_options(Bytes frame) {
  std::size_t options = kOuterIpOffset + 20;
  frame.insert(frame.begin() + static_cast<long>(options), {1, 1, 1, 0});
  frame[kOuterIpOffset] = 0x46;
  std::uint16_t total =
      static_cast<std::uint16_t>((frame[kOuterIpOffset + 2] << 8 | frame[kOuterIpOffset + 3]) + 4);
  frame[kOuterIpOffset + 2] = static_cast<std::uint8_t>(total >> 8);
  frame[kOuterIpOffset + 3] = static_cast<std::uint8_t>(total);
  fix_outer_checksum(frame);
  return frame;
}

// The same VXLAN packet as the first fragment of a bigger datagram (MF set).
Bytes as_first_fragment(Bytes frame) {
  frame[kOuterIpOffset + 6] = 0x20; // MF, offset 0, no DF
  frame[kOuterIpOffset + 7] = 0;
  fix_outer_checksum(frame);
  return frame;
}

using UplinkTest = TunnelTest;

// --- accepted ----------------------------------------------------------------------

TEST_F(UplinkTest, VxlanFromKnownVtepIsDecapsulatedAndDeliveredToItsPort) {
  Bytes inner = udp4(rb.mac, vm2.mac, rb.ip, vm2.ip, 5000, 5000);
  Bytes packet = from_vtep(kVtepB, 1001, inner);

  RunResult result = run_uplink(kUplink, packet);

  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(result.out, inner);
  EXPECT_EQ(counts(), (Counts{{{kUplink, "forward-unicast"}, 1}, {{vm2.device, "delivered"}, 1}}));
  EXPECT_EQ(vtep_counts(), (VtepCounts{{{"B", "ingress"}, 1}}));
}

TEST_F(UplinkTest, DecapsulatedArpIsDeliveredToItsPort) {
  Bytes reply =
      PacketBuilder().eth(vm1.mac, rc.mac).arp(kArpReply, rc.mac, rc.ip, vm1.mac, vm1.ip).build();

  RunResult result = run_uplink(kUplink, from_vtep(kVtepC, 1001, reply));

  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(result.out, reply);
  EXPECT_EQ(counts(), (Counts{{{kUplink, "forward-unicast"}, 1}, {{vm1.device, "delivered"}, 1}}));
}

TEST_F(UplinkTest, DecapsulatedIpv6IsDeliveredToItsPort) {
  Bytes inner = PacketBuilder()
                    .eth(vm2.mac, rb.mac)
                    .ipv6(link_local(rb.mac), link_local(vm2.mac))
                    .udp(5000, 5000)
                    .payload(Bytes(32, 0x66))
                    .build();

  RunResult result = run_uplink(kUplink, from_vtep(kVtepB, 1001, inner));

  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(result.out, inner);
  EXPECT_EQ(counts(), (Counts{{{kUplink, "forward-unicast"}, 1}, {{vm2.device, "delivered"}, 1}}));
}

TEST_F(UplinkTest, DecapsulatedFrameForAdminDownPortIsDropped) {
  Bytes inner = udp4(rb.mac, vm4.mac, rb.ip, vm4.ip, 5000, 5000);

  EXPECT_EQ(run_uplink(kUplink, from_vtep(kVtepB, 1001, inner)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), on_uplink(WEFT_DROP_PORT_DOWN));
}

TEST_F(UplinkTest, DecapsulatedFrameMeetsTheDestinationPortsIngressGroups) {
  // Egress rules only: vm2 may send but receive nothing.
  constexpr std::uint32_t kEgressOnly = 7;
  put_sg_l4(kEgressOnly, WEFT_DIR_EGRESS, 4, WEFT_PROTO_ANY, 0, 0, {0});
  put_sg_remote(kEgressOnly, WEFT_DIR_EGRESS, "0.0.0.0/0", {0});
  set_policy(vm2, kEgressOnly, true);
  Bytes inner = udp4(rb.mac, vm2.mac, rb.ip, vm2.ip, 5000, 5000);

  RunResult result = run_uplink(kUplink, from_vtep(kVtepB, 1001, inner));

  EXPECT_EQ(result.retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm2, WEFT_DROP_SG_INGRESS));
}

TEST_F(UplinkTest, VxlanBroadcastReachesEveryLocalPortAndGoesBackToNoVtep) {
  Bytes inner = udp4(rb.mac, kBroadcastMac, rb.ip, ipv4("10.0.0.255"), 5000, 5000);
  Wire vm1_side(peer_name(vm1.device));
  Wire vm2_side(peer_name(vm2.device));
  Wire vm3_side(peer_name(vm3.device));
  Wire underlay(peer_name(kUplink));

  RunResult result = run_uplink(kUplink, from_vtep(kVtepB, 1001, inner));

  EXPECT_EQ(result.retval, TC_ACT_SHOT);
  EXPECT_TRUE(vm1_side.receives(inner, 1s));
  EXPECT_TRUE(vm2_side.receives(inner, 1s));
  EXPECT_TRUE(vm3_side.receives(inner, 1s));
  EXPECT_TRUE(underlay.drain(200ms).empty());
  EXPECT_EQ(counts(), (Counts{{{kUplink, "forward-flood"}, 1},
                              {{vm1.device, "delivered"}, 1},
                              {{vm2.device, "delivered"}, 1},
                              {{vm3.device, "delivered"}, 1}}));
  EXPECT_EQ(vtep_counts(), (VtepCounts{{{"B", "ingress"}, 1}}));
}

TEST_F(UplinkTest, SameMacInAnotherNetworkIsTheVnisPortOnly) {
  // vm5 (red) has vm1's MAC: a red frame for it never reaches vm1.
  ASSERT_EQ(vm1.mac, vm5.mac);
  Bytes inner = udp4(red_c.mac, vm5.mac, red_c.ip, vm5.ip, 5000, 5000);

  EXPECT_EQ(run_uplink(kUplink, from_vtep(kVtepC, 1002, inner)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(), (Counts{{{kUplink, "forward-unicast"}, 1}, {{vm5.device, "delivered"}, 1}}));
}

// --- refused, each with its reason ------------------------------------------------

class UplinkDropTest : public TunnelTest {
protected:
  // `packet` arrives on the uplink: dropped with `reason`, counted there,
  // nothing delivered, no VTEP credited.
  void expect_dropped(const Bytes& packet, weft_reason reason, std::uint64_t times = 1) {
    RunResult result = run_uplink(kUplink, packet);
    EXPECT_EQ(result.retval, TC_ACT_SHOT);
    EXPECT_EQ(counts(), on_uplink(reason, times));
    EXPECT_TRUE(vtep_counts().empty());
  }

  Bytes inner = udp4(rb.mac, vm2.mac, rb.ip, vm2.ip, 5000, 5000);
};

TEST_F(UplinkDropTest, VxlanWithOuterIpOptionsIsMalformed) {
  expect_dropped(with_outer_ip_options(from_vtep(kVtepB, 1001, inner)), WEFT_DROP_MALFORMED);
}

TEST_F(UplinkDropTest, FragmentedVxlanIsMalformed) {
  expect_dropped(as_first_fragment(from_vtep(kVtepB, 1001, inner)), WEFT_DROP_MALFORMED);
}

TEST_F(UplinkDropTest, VxlanFromUnknownVtepIsDropped) {
  expect_dropped(from_vtep(kStrangerVtep, 1001, inner), WEFT_DROP_UNKNOWN_VTEP);
}

TEST_F(UplinkDropTest, UnknownVtepIsCheckedBeforeAnythingInsideVxlan) {
  // Even with no I flag and a VNI nobody has.
  Bytes packet = PacketBuilder()
                     .eth(kUplinkMac, kStrangerVtep.next_hop_mac)
                     .ipv4(kStrangerVtep.ip, kTunnelIp)
                     .udp(54321, kVxlanPort)
                     .vxlan(4242, 0)
                     .payload(inner)
                     .build();
  expect_dropped(packet, WEFT_DROP_UNKNOWN_VTEP);
}

TEST_F(UplinkDropTest, VxlanWithoutTheVniFlagIsMalformed) {
  Bytes packet = PacketBuilder()
                     .eth(kUplinkMac, kVtepB.next_hop_mac)
                     .ipv4(kVtepB.ip, kTunnelIp)
                     .udp(54321, kVxlanPort)
                     .vxlan(1001, 0)
                     .payload(inner)
                     .build();
  expect_dropped(packet, WEFT_DROP_MALFORMED);
}

TEST_F(UplinkDropTest, VxlanTooShortForAnInnerEthernetHeaderIsMalformed) {
  Bytes packet = from_vtep(kVtepB, 1001, Bytes(inner.begin(), inner.begin() + 13));
  expect_dropped(packet, WEFT_DROP_MALFORMED);
}

TEST_F(UplinkDropTest, VxlanWithVniNotHostedHereIsDropped) {
  // 1003: nobody's; 1005: a network of the document without ports here.
  expect_dropped(from_vtep(kVtepB, 1003, inner), WEFT_DROP_UNKNOWN_VNI);
  expect_dropped(from_vtep(kVtepB, 1005, inner), WEFT_DROP_UNKNOWN_VNI, 2);
}

TEST_F(UplinkDropTest, TaggedFrameInsideVxlanIsDropped) {
  Bytes dot1q =
      PacketBuilder().eth(vm2.mac, rb.mac).vlan(100).ipv4(rb.ip, vm2.ip).udp(5000, 5000).build();
  Bytes dot1ad = PacketBuilder()
                     .eth(vm2.mac, rb.mac)
                     .vlan(200, kEth8021AD)
                     .vlan(100)
                     .ipv4(rb.ip, vm2.ip)
                     .udp(5000, 5000)
                     .build();
  expect_dropped(from_vtep(kVtepB, 1001, dot1q), WEFT_DROP_TAGGED_INSIDE);
  expect_dropped(from_vtep(kVtepB, 1001, dot1ad), WEFT_DROP_TAGGED_INSIDE, 2);
}

TEST_F(UplinkDropTest, InnerSourceThatIsNoPortBehindThatVtepIsDropped) {
  const std::vector<std::pair<std::string, Mac>> sources = {
      {"a MAC nobody has", kStrangerMac},
      {"a port behind another VTEP (C)", rc.mac},
      {"a port of this node", vm1.mac},
      {"a port behind B, but of another network", red_c.mac},
  };
  std::uint64_t expected = 0;
  for (const auto& [what, source] : sources) {
    SCOPED_TRACE(what);
    expect_dropped(from_vtep(kVtepB, 1001, udp4(source, vm2.mac, rb.ip, vm2.ip, 5000, 5000)),
                   WEFT_DROP_VTEP_SOURCE, ++expected);
  }
}

TEST_F(UplinkDropTest, UnknownUnicastFromTheWireIsDropped) {
  // Neither a MAC nobody has nor another node's port is this node's to deliver.
  Bytes to_stranger = udp4(rb.mac, kStrangerMac, rb.ip, ipv4("10.0.0.99"), 5000, 5000);
  Bytes to_remote = udp4(rb.mac, rc.mac, rb.ip, rc.ip, 5000, 5000);

  EXPECT_EQ(run_uplink(kUplink, from_vtep(kVtepB, 1001, to_stranger)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run_uplink(kUplink, from_vtep(kVtepB, 1001, to_remote)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), on_uplink(WEFT_DROP_UNKNOWN_UNICAST, 2));
}

// --- the node's own traffic --------------------------------------------------------

TEST_F(UplinkTest, NodesOwnTrafficPassesUntouchedAndUncounted) {
  const Mac& peer = kVtepB.next_hop_mac;
  const Ipv4Address other_host = ipv4("192.0.2.77");
  const std::vector<std::pair<std::string, Bytes>> frames = {
      {"ICMP echo to the tunnel IP", PacketBuilder()
                                         .eth(kUplinkMac, peer)
                                         .ipv4(kVtepB.ip, kTunnelIp)
                                         .icmp(kIcmpEchoRequest, 0, 0x00010001)
                                         .payload(Bytes(56, 0x42))
                                         .build()},
      {"TCP to the node (SSH)",
       PacketBuilder().eth(kUplinkMac, peer).ipv4(kVtepB.ip, kTunnelIp).tcp(40000, 22).build()},
      {"UDP 4789 to another address", PacketBuilder()
                                          .eth(kUplinkMac, peer)
                                          .ipv4(kVtepB.ip, other_host)
                                          .udp(54321, kVxlanPort)
                                          .vxlan(1001)
                                          .payload(udp4(rb.mac, vm2.mac, rb.ip, vm2.ip, 1, 2))
                                          .build()},
      {"UDP to the tunnel IP, another port", PacketBuilder()
                                                 .eth(kUplinkMac, peer)
                                                 .ipv4(kVtepB.ip, kTunnelIp)
                                                 .udp(54321, 4790)
                                                 .payload(Bytes(64, 0))
                                                 .build()},
      {"UDP from port 4789 to another port", PacketBuilder()
                                                 .eth(kUplinkMac, peer)
                                                 .ipv4(kVtepB.ip, kTunnelIp)
                                                 .udp(kVxlanPort, 54321)
                                                 .payload(Bytes(64, 0))
                                                 .build()},
      {"ARP for the tunnel IP", PacketBuilder()
                                    .eth(kBroadcastMac, peer)
                                    .arp(kArpRequest, peer, kVtepB.ip, kZeroMac, kTunnelIp)
                                    .build()},
      {"IPv6", PacketBuilder()
                   .eth(kUplinkMac, peer)
                   .ipv6(ipv6("2001:db8::2"), ipv6("2001:db8::1"))
                   .udp(54321, kVxlanPort)
                   .payload(Bytes(16, 0))
                   .build()},
  };
  for (const auto& [what, frame] : frames) {
    SCOPED_TRACE(what);
    RunResult result = run_uplink(kUplink, frame);
    EXPECT_EQ(result.retval, TC_ACT_OK);
    EXPECT_EQ(result.out, frame);
  }
  EXPECT_TRUE(counts().empty());
  EXPECT_TRUE(vtep_counts().empty());
}

TEST_F(UplinkTest, VxlanOnAProviderDeviceIsNotDecapsulated) {
  // Tunnels end on the uplink only; untagged frames on a device without a
  // flat network are the node's.
  Bytes packet = from_vtep(kVtepB, 1001, udp4(rb.mac, vm2.mac, rb.ip, vm2.ip, 5000, 5000));

  RunResult result = run_uplink(kVlanWire, packet);

  EXPECT_EQ(result.retval, TC_ACT_OK);
  EXPECT_EQ(result.out, packet);
  EXPECT_TRUE(counts().empty());
}

// --- the real receive path ----------------------------------------------------------

TEST_F(UplinkTest, VxlanFromTheWireReachesTheVm) {
  TcxIngress attached(uplink().program(), uplink_ifindex);
  Wire underlay(peer_name(kUplink));
  Wire vm2_side(peer_name(vm2.device));
  Bytes inner = udp4(rb.mac, vm2.mac, rb.ip, vm2.ip, 5000, 5000);

  underlay.send(from_vtep(kVtepB, 1001, inner));

  EXPECT_TRUE(vm2_side.receives(inner, 1s));
  Counts expected{{{kUplink, "forward-unicast"}, 1}, {{vm2.device, "delivered"}, 1}};
  EXPECT_EQ(wait_for(expected), expected);
}

} // namespace
} // namespace weft::test
