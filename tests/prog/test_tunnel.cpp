// The port program's way off the node on a vxlan network (bpf/lib/encap.h,
// deliver.h): unicast to another node's port leaves VXLAN-encapsulated
// towards its VTEP, broadcast leaves as one copy per VTEP of the network
// (head-end replication) besides the local copies. The encapsulated unicast
// is the test run's output; flood copies really go out of the uplink (a
// test run executes bpf_clone_redirect) and are read on its peer. The node:
// tunnel_fixture.hpp.
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/prog/tunnel_fixture.hpp"

namespace weft::test {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kOuterLen = WEFT_VXLAN_OVERHEAD; // Ethernet, IPv4, UDP, VXLAN
constexpr std::uint16_t kDontFragment = 0x4000;

// `out` is `inner` as this node sends it to `to` in `vni`, field by field.
void expect_vxlan(std::span<const std::uint8_t> out, const Vtep& to, std::uint32_t vni,
                  const Bytes& inner) {
  FrameView frame(out);
  ASSERT_EQ(out.size(), kOuterLen + inner.size());
  EXPECT_EQ(frame.dst(), to.next_hop_mac);
  EXPECT_EQ(frame.src(), kUplinkMac);
  EXPECT_TRUE(frame.vlan_ids().empty());
  EXPECT_EQ(frame.ethertype(), kEthIpv4);

  auto ip = frame.ipv4();
  ASSERT_TRUE(ip);
  EXPECT_EQ(ip->ihl, 5);
  EXPECT_EQ(ip->tos, 0);
  EXPECT_EQ(ip->total_length, out.size() - 14);
  EXPECT_EQ(ip->frag_off, kDontFragment);
  EXPECT_EQ(ip->ttl, 64);
  EXPECT_EQ(ip->protocol, kIpProtoUdp);
  EXPECT_EQ(ip->src, kTunnelIp);
  EXPECT_EQ(ip->dst, to.ip);
  EXPECT_TRUE(ip->checksum_ok);

  auto udp = frame.udp();
  ASSERT_TRUE(udp);
  EXPECT_EQ(udp->dport, kVxlanPort);
  EXPECT_GE(udp->sport, 49152);
  EXPECT_EQ(udp->length, out.size() - 14 - 20);
  EXPECT_EQ(udp->checksum, 0); // keeps GSO super-packets whole

  auto vx = frame.vxlan();
  ASSERT_TRUE(vx);
  EXPECT_EQ(vx->flags, 0x08000000u);
  EXPECT_EQ(vx->vni_word, vni << 8);
  EXPECT_TRUE(std::equal(vx->inner.begin(), vx->inner.end(), inner.begin(), inner.end()))
      << "the inner frame is not the one the VM sent";
}

std::uint16_t outer_source_port(const Bytes& out) {
  auto udp = FrameView(out).udp();
  return udp ? udp->sport : 0;
}

// --- unicast to another node's port ------------------------------------------------

TEST_F(TunnelTest, UnicastToRemotePortIsEncapsulatedToItsVtep) {
  Bytes frame = udp4(vm1.mac, rb.mac, vm1.ip, rb.ip, 5000, 5000);

  RunResult result = run(vm1, frame);

  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  expect_vxlan(result.out, kVtepB, 1001, frame);
  EXPECT_EQ(counts(), one(vm1, WEFT_FWD_VTEP));
  EXPECT_EQ(vtep_counts(), (VtepCounts{{{"B", "egress"}, 1}}));
}

// The way to a VTEP is asked of the FIB once per WEFT_VTEP_ROUTE_NS and CPU,
// not per frame: a neighbour that changes its MAC is followed after that.
TEST_F(TunnelTest, ANeighbourChangeIsFollowedOnceTheCachedRouteExpires) {
  auto set_b = [](const std::string& lladdr) {
    std::string command =
        "ip neigh replace 192.0.2.2 lladdr " + lladdr + " dev " + kUplink + " nud permanent";
    return std::system(command.c_str()) == 0;
  };
  struct Restore {
    std::function<bool(const std::string&)> set;
    ~Restore() { set("02:77:00:00:00:02"); } // kVtepB's, as the fixture made it
  } restore{set_b};
  Bytes frame = udp4(vm1.mac, rb.mac, vm1.ip, rb.ip, 5000, 5000);

  expect_vxlan(run(vm1, frame).out, kVtepB, 1001, frame);
  ASSERT_TRUE(set_b("02:77:00:00:00:22"));
  std::this_thread::sleep_for(std::chrono::nanoseconds(WEFT_VTEP_ROUTE_NS) +
                              std::chrono::milliseconds(50));
  Vtep moved = kVtepB;
  moved.next_hop_mac = mac("02:77:00:00:00:22");
  expect_vxlan(run(vm1, frame).out, moved, 1001, frame);
}

TEST_F(TunnelTest, EachNetworkIsSentWithItsOwnVni) {
  Bytes blue = udp4(vm1.mac, rc.mac, vm1.ip, rc.ip, 5000, 5000);
  Bytes red = udp4(vm5.mac, red_c.mac, vm5.ip, red_c.ip, 5000, 5000);

  RunResult to_blue = run(vm1, blue);
  RunResult to_red = run(vm5, red);

  expect_vxlan(to_blue.out, kVtepC, 1001, blue);
  expect_vxlan(to_red.out, kVtepC, 1002, red);
  EXPECT_EQ(counts(),
            (Counts{{{vm1.device, "forward-vtep"}, 1}, {{vm5.device, "forward-vtep"}, 1}}));
  EXPECT_EQ(vtep_counts(), (VtepCounts{{{"C", "egress"}, 2}}));
}

TEST_F(TunnelTest, RoutedVtepIsReachedThroughItsGatewaysMac) {
  Bytes frame = udp4(vm1.mac, re.mac, vm1.ip, re.ip, 5000, 5000);

  RunResult result = run(vm1, frame);

  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  expect_vxlan(result.out, kVtepE, 1001, frame);
}

TEST_F(TunnelTest, ArpToRemotePortIsEncapsulatedWhole) {
  // Not IP: room is made at the head rather than after the Ethernet header.
  Bytes reply =
      PacketBuilder().eth(rb.mac, vm1.mac).arp(kArpReply, vm1.mac, vm1.ip, rb.mac, rb.ip).build();

  RunResult result = run(vm1, reply);

  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  expect_vxlan(result.out, kVtepB, 1001, reply);
  EXPECT_EQ(counts(), one(vm1, WEFT_FWD_VTEP));
}

TEST_F(TunnelTest, Ipv6ToRemotePortIsEncapsulated) {
  Bytes frame = PacketBuilder()
                    .eth(rb.mac, vm1.mac)
                    .ipv6(link_local(vm1.mac), link_local(rb.mac))
                    .udp(5000, 5000)
                    .payload(Bytes(32, 0x66))
                    .build();

  RunResult result = run(vm1, frame);

  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  expect_vxlan(result.out, kVtepB, 1001, frame);
}

TEST_F(TunnelTest, OuterSourcePortIsTheSameForOneFlowAndSpreadsOverFlows) {
  auto flow = [&](std::uint16_t sport) { return udp4(vm1.mac, rb.mac, vm1.ip, rb.ip, sport, 53); };

  std::uint16_t first = outer_source_port(run(vm1, flow(40000)).out);
  std::uint16_t again = outer_source_port(run(vm1, flow(40000)).out);
  EXPECT_EQ(first, again);

  // Eight flows all on one port would be a hash that ignores the inner
  // flow (by chance: about 2^-98).
  std::set<std::uint16_t> ports;
  for (std::uint16_t sport = 40001; sport <= 40008; ++sport) {
    std::uint16_t port = outer_source_port(run(vm1, flow(sport)).out);
    EXPECT_GE(port, 49152);
    ports.insert(port);
  }
  EXPECT_GT(ports.size(), 1u);
}

TEST_F(TunnelTest, UnicastToUnresolvedVtepLeavesTheOuterMacsToTheKernel) {
  // No neighbour for D yet: bpf_redirect_neigh resolves it and writes the
  // Ethernet header; everything above it is the fabric's.
  Bytes frame = udp4(vm1.mac, rd.mac, vm1.ip, rd.ip, 5000, 5000);

  RunResult result = run(vm1, frame);

  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  ASSERT_EQ(result.out.size(), kOuterLen + frame.size());
  Bytes with_macs = result.out;
  std::copy(kVtepB.next_hop_mac.begin(), kVtepB.next_hop_mac.end(), with_macs.begin());
  std::copy(kUplinkMac.begin(), kUplinkMac.end(), with_macs.begin() + 6);
  expect_vxlan(with_macs, Vtep{"D", kVtepD.ip, kVtepB.next_hop_mac}, 1001, frame);
  EXPECT_EQ(counts(), one(vm1, WEFT_FWD_VTEP));
  EXPECT_EQ(vtep_counts(), (VtepCounts{{{"D", "egress"}, 1}}));
}

TEST_F(TunnelTest, Ipv6ToUnresolvedVtepAlsoFallsBackToTheKernel) {
  // Encapsulated, the frame is IPv4 (the underlay's), whatever it carries.
  Bytes frame = PacketBuilder()
                    .eth(rd.mac, vm1.mac)
                    .ipv6(link_local(vm1.mac), link_local(rd.mac))
                    .udp(5000, 5000)
                    .build();

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(), one(vm1, WEFT_FWD_VTEP));
}

TEST_F(TunnelTest, ArpToUnresolvedVtepIsDroppedAsUnresolved) {
  // bpf_redirect_neigh takes IP only.
  Bytes reply =
      PacketBuilder().eth(rd.mac, vm1.mac).arp(kArpReply, vm1.mac, vm1.ip, rd.mac, rd.ip).build();

  EXPECT_EQ(run(vm1, reply).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_VTEP_UNRESOLVED));
  EXPECT_TRUE(vtep_counts().empty());
}

// An IPv4 packet of `ip_len` bytes, with DF (the builder's) or without.
Bytes to_rb(const VmPort& from, const RemotePort& to, std::size_t ip_len, bool dont_fragment) {
  Bytes frame = PacketBuilder()
                    .eth(to.mac, from.mac)
                    .ipv4(from.ip, to.ip)
                    .udp(5000, 5000)
                    .payload(Bytes(ip_len - 28, 0x11))
                    .build();
  if (!dont_fragment) {
    constexpr std::size_t kIp = 14;
    frame[kIp + 6] = 0; // flags: none
    frame[kIp + 10] = 0;
    frame[kIp + 11] = 0;
    auto check = static_cast<std::uint16_t>(
        ~checksum_fold(checksum_add(0, std::span<const std::uint8_t>(frame).subspan(kIp, 20))));
    frame[kIp + 10] = static_cast<std::uint8_t>(check >> 8);
    frame[kIp + 11] = static_cast<std::uint8_t>(check);
  }
  return frame;
}

TEST_F(TunnelTest, FrameOverTheNetworkMtuIsDroppedNotEncapsulated) {
  // Blue's MTU is 1450: an IP packet of 1450 bytes goes, one of 1451 not
  // (without DF: nothing to answer).
  Bytes fits = to_rb(vm1, rb, 1450, false);
  Bytes too_big = to_rb(vm1, rb, 1451, false);
  ASSERT_TRUE(FrameView(too_big).ipv4()->checksum_ok);

  RunResult sent = run(vm1, fits);
  RunResult dropped = run(vm1, too_big);

  EXPECT_EQ(sent.retval, TC_ACT_REDIRECT);
  expect_vxlan(sent.out, kVtepB, 1001, fits);
  EXPECT_EQ(dropped.retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "forward-vtep"}, 1}, {{vm1.device, "drop-mtu"}, 1}}));
  EXPECT_EQ(vtep_counts(), (VtepCounts{{{"B", "egress"}, 1}}));
}

TEST_F(TunnelTest, DontFragmentPacketOverTheMtuIsAnsweredWithTheNetworksMtu) {
  Bytes too_big = to_rb(vm1, rb, 1451, true);

  RunResult result = run(vm1, too_big);

  // ICMP "fragmentation needed" back to vm1, as if from rb, quoting the packet.
  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  FrameView answer(result.out);
  EXPECT_EQ(answer.dst(), vm1.mac);
  EXPECT_EQ(answer.src(), rb.mac);
  auto ip = answer.ipv4();
  ASSERT_TRUE(ip);
  EXPECT_EQ(ip->protocol, kIpProtoIcmp);
  EXPECT_EQ(ip->src, rb.ip);
  EXPECT_EQ(ip->dst, vm1.ip);
  EXPECT_TRUE(ip->checksum_ok);
  EXPECT_EQ(ip->total_length, result.out.size() - 14);
  auto icmp = answer.l3().subspan(20);
  ASSERT_GE(icmp.size(), 8u + 28);
  EXPECT_EQ(icmp[0], kIcmpDestUnreach);
  EXPECT_EQ(icmp[1], 4); // fragmentation needed and DF set
  EXPECT_EQ(icmp[6] << 8 | icmp[7], 1450);
  EXPECT_EQ(checksum_fold(checksum_add(0, icmp)), 0xffff);
  EXPECT_TRUE(std::equal(icmp.begin() + 8, icmp.begin() + 8 + 28, too_big.begin() + 14));
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "drop-mtu"}, 1}, {{vm1.device, "mtu-icmp-sent"}, 1}}));
  EXPECT_TRUE(vtep_counts().empty());
}

TEST_F(TunnelTest, SendersEgressGroupsApplyBeforeEncapsulation) {
  // Ingress rules only: vm1 may receive but not send.
  constexpr std::uint32_t kIngressOnly = 7;
  put_sg_l4(kIngressOnly, WEFT_DIR_INGRESS, 4, WEFT_PROTO_ANY, 0, 0, {0});
  put_sg_remote(kIngressOnly, WEFT_DIR_INGRESS, "0.0.0.0/0", {0});
  set_policy(vm1, kIngressOnly, true);
  Bytes frame = udp4(vm1.mac, rb.mac, vm1.ip, rb.ip, 5000, 5000);

  RunResult result = run(vm1, frame);

  EXPECT_EQ(result.retval, TC_ACT_SHOT);
  EXPECT_EQ(result.out, frame);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_SG_EGRESS));
  EXPECT_TRUE(vtep_counts().empty());
}

TEST_F(TunnelTest, UnknownMacIsSentToNoVtep) {
  Bytes frame = udp4(vm1.mac, kStrangerMac, vm1.ip, ipv4("10.0.0.99"), 5000, 5000);

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_UNKNOWN_UNICAST));
  EXPECT_TRUE(vtep_counts().empty());
}

// --- broadcast: head-end replication -------------------------------------------------

// The VXLAN copies that came out of the uplink, by outer destination address.
std::map<Ipv4Address, Bytes> copies_by_vtep(Wire& underlay) {
  std::map<Ipv4Address, Bytes> copies;
  for (Received& received : underlay.drain(200ms)) {
    auto ip = FrameView(received.frame).ipv4();
    auto vx = FrameView(received.frame).vxlan();
    if (ip && vx)
      copies[ip->dst] = std::move(received.frame);
  }
  return copies;
}

TEST_F(TunnelTest, BroadcastReachesLocalPortsAndOneCopyPerVtepOfTheNetwork) {
  Bytes frame = broadcast_udp(vm1);
  Wire vm2_side(peer_name(vm2.device));
  Wire vm3_side(peer_name(vm3.device));
  Wire underlay(peer_name(kUplink));

  RunResult result = run(vm1, frame);

  EXPECT_EQ(result.retval, TC_ACT_SHOT); // the original; copies went out
  EXPECT_TRUE(vm2_side.receives(frame, 1s));
  EXPECT_TRUE(vm3_side.receives(frame, 1s));
  auto copies = copies_by_vtep(underlay);
  // B and C only: not D or E (ports of blue, not in its flood list), nor
  // the stranger (resolved on the link, no node of the document).
  ASSERT_EQ(copies.size(), 2u);
  ASSERT_TRUE(copies.count(kVtepB.ip));
  ASSERT_TRUE(copies.count(kVtepC.ip));
  expect_vxlan(copies[kVtepB.ip], kVtepB, 1001, frame);
  expect_vxlan(copies[kVtepC.ip], kVtepC, 1001, frame);
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "forward-flood"}, 1},
                              {{vm2.device, "delivered"}, 1},
                              {{vm3.device, "delivered"}, 1}}));
  EXPECT_EQ(vtep_counts(), (VtepCounts{{{"B", "egress"}, 1}, {{"C", "egress"}, 1}}));
}

TEST_F(TunnelTest, BroadcastCopiesGoOnlyToTheVtepsOfItsNetwork) {
  Bytes frame = broadcast_udp(vm5);
  Wire underlay(peer_name(kUplink));

  EXPECT_EQ(run(vm5, frame).retval, TC_ACT_SHOT);

  auto copies = copies_by_vtep(underlay);
  ASSERT_EQ(copies.size(), 1u);
  ASSERT_TRUE(copies.count(kVtepC.ip));
  expect_vxlan(copies[kVtepC.ip], kVtepC, 1002, frame);
  EXPECT_EQ(counts(), (Counts{{{vm5.device, "forward-flood"}, 1}, {{vm6.device, "delivered"}, 1}}));
  EXPECT_EQ(vtep_counts(), (VtepCounts{{{"C", "egress"}, 1}}));
}

TEST_F(TunnelTest, ArpBroadcastIsReplicatedToTheVtepsWhole) {
  // An address the responder does not know: flooded, not answered.
  Bytes request = arp_request(vm1, ipv4("10.0.0.99"));
  Wire underlay(peer_name(kUplink));

  EXPECT_EQ(run(vm1, request).retval, TC_ACT_SHOT);

  auto copies = copies_by_vtep(underlay);
  ASSERT_EQ(copies.size(), 2u);
  expect_vxlan(copies[kVtepB.ip], kVtepB, 1001, request);
  expect_vxlan(copies[kVtepC.ip], kVtepC, 1001, request);
}

TEST_F(TunnelTest, FloodCopyForUnresolvedVtepIsCountedAndTheOthersStillGo) {
  // A copy cannot wait for the neighbour to resolve (apply pings the VTEPs
  // so that they are).
  set_flood_vteps(kBlue, {kVtepB, kVtepD, kVtepC});
  Wire underlay(peer_name(kUplink));

  EXPECT_EQ(run(vm1, broadcast_udp(vm1)).retval, TC_ACT_SHOT);

  auto copies = copies_by_vtep(underlay);
  EXPECT_EQ(copies.size(), 2u);
  EXPECT_TRUE(copies.count(kVtepB.ip));
  EXPECT_TRUE(copies.count(kVtepC.ip));
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "forward-flood"}, 1},
                              {{vm1.device, "drop-vtep-unresolved"}, 1},
                              {{vm2.device, "delivered"}, 1},
                              {{vm3.device, "delivered"}, 1}}));
  EXPECT_EQ(vtep_counts(), (VtepCounts{{{"B", "egress"}, 1}, {{"C", "egress"}, 1}}));
}

TEST_F(TunnelTest, BroadcastOverTheNetworkMtuIsNotReplicatedToVteps) {
  // Blue's MTU is 1450: encapsulated, this broadcast (IP 1451 bytes) is an
  // outer IP packet of 1501 bytes, over a 1500-byte underlay that would lose
  // it without a word (this veth lets it through on the slack it keeps for
  // a VLAN tag; a NIC or a switch would not). As for unicast, its copies
  // must be counted as drop-mtu rather than sent (DESIGN.md §3.4).
  Bytes frame =
      udp4(vm1.mac, kBroadcastMac, vm1.ip, ipv4("10.0.0.255"), 5000, 5000, Bytes(1451 - 28, 0x11));
  Wire underlay(peer_name(kUplink));

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);

  EXPECT_TRUE(copies_by_vtep(underlay).empty());
  EXPECT_GE(counter(vm1.ifindex, WEFT_DROP_MTU).packets, 1u)
      << "counted: " << ::testing::PrintToString(counts());
  EXPECT_TRUE(vtep_counts().empty())
      << "credited as sent: " << ::testing::PrintToString(vtep_counts());
}

TEST_F(TunnelTest, BroadcastWithOnlyRemotePortsIsStillFlooded) {
  // Every other local port down: the copies for the other nodes are enough.
  vm2.up = false;
  vm3.up = false;
  write_port(vm2);
  write_port(vm3);
  Wire underlay(peer_name(kUplink));

  EXPECT_EQ(run(vm1, broadcast_udp(vm1)).retval, TC_ACT_SHOT);

  EXPECT_EQ(copies_by_vtep(underlay).size(), 2u);
  EXPECT_EQ(counts(), one(vm1, WEFT_FWD_FLOOD));
}

} // namespace
} // namespace weft::test
