// Provider networks (DESIGN.md §3.4): a vlan network is carried 802.1Q-tagged
// with its segmentation id on its physnet's device, a flat one untagged on
// its own. Frames for MACs the fabric does not know leave there; frames from
// there reach the local port they are addressed to.
//
// A test run cannot carry a VLAN tag in skb metadata (ctx_in refuses
// vlan_present, ctx_out does not report it) and the kernel never hands tc
// a frame with its outer tag in the bytes, so tagging is checked where the
// kernel really does it: programs attached with tcx, frames sent and read
// with AF_PACKET on the veths' peers (the tag read back from
// PACKET_AUXDATA). Flood copies are transmitted by a test run too.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <vector>

#include "tests/prog/tunnel_fixture.hpp"

namespace weft::test {
namespace {

using namespace std::chrono_literals;

class VlanTest : public TunnelTest {
protected:
  const Ipv4Address router_ip = ipv4("10.3.0.1");

  // A frame on green between the router and `port`.
  Bytes from_router(const VmPort& port) const {
    return udp4(router_mac, port.mac, router_ip, port.ip, 5000, 5000);
  }
  Bytes to_router(const VmPort& port) const {
    return udp4(port.mac, router_mac, port.ip, router_ip, 5000, 5000);
  }
  // `frame` with 802.1Q tags after its MAC addresses, outermost first.
  static Bytes tagged(const Bytes& frame, std::initializer_list<std::uint16_t> vids) {
    Bytes out(frame.begin(), frame.begin() + 12);
    for (std::uint16_t vid : vids) {
      out.insert(out.end(),
                 {0x81, 0x00, static_cast<std::uint8_t>(vid >> 8), static_cast<std::uint8_t>(vid)});
    }
    out.insert(out.end(), frame.begin() + 12, frame.end());
    return out;
  }
};

// --- the test run's view -------------------------------------------------------------

TEST_F(VlanTest, TestRunRefusesVlanMetadataInItsContext) {
  // Why the tagged cases below use the real receive path.
  __sk_buff ctx{};
  ctx.ifindex = vlan_wire_ifindex;
  ctx.ingress_ifindex = vlan_wire_ifindex;
  ctx.vlan_present = 1;
  ctx.vlan_tci = kGreenVlan;
  Bytes frame = from_router(vm8);
  Bytes out(frame.size() + 64);
  bpf_test_run_opts opts{};
  opts.sz = sizeof opts;
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<std::uint32_t>(frame.size());
  opts.data_out = out.data();
  opts.data_size_out = static_cast<std::uint32_t>(out.size());
  opts.ctx_in = &ctx;
  opts.ctx_size_in = sizeof ctx;
  opts.repeat = 1;

  EXPECT_EQ(bpf_prog_test_run_opts(bpf_program__fd(uplink().program()), &opts), -EINVAL);
}

TEST_F(VlanTest, UnknownMacOnVlanNetworkGoesToThePhysnetWithTheTagInMetadata) {
  Bytes frame = to_router(vm7);

  RunResult result = run(vm7, frame);

  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  // bpf_skb_vlan_push puts the tag in metadata: the bytes are the VM's.
  EXPECT_EQ(result.out, frame);
  EXPECT_EQ(counts(), one(vm7, WEFT_FWD_WIRE));
  EXPECT_TRUE(vtep_counts().empty());
}

TEST_F(VlanTest, UnknownMacOnFlatNetworkGoesToThePhysnetUntagged) {
  Bytes frame = udp4(vm9.mac, router_mac, vm9.ip, ipv4("10.4.0.1"), 5000, 5000);

  RunResult result = run(vm9, frame);

  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(result.out, frame);
  EXPECT_EQ(counts(), one(vm9, WEFT_FWD_WIRE));
}

TEST_F(VlanTest, ProviderNetworkWithoutItsPhysnetOnThisNodeKeepsUnknownMacsIn) {
  weft_network green{};
  ASSERT_EQ(bpf_map__lookup_elem(maps().networks, &kGreen, sizeof kGreen, &green, sizeof green, 0),
            0);
  green.wire_ifindex = 0;
  set_network(kGreen, green);

  EXPECT_EQ(run(vm7, to_router(vm7)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm7, WEFT_DROP_NO_PHYSNET));
}

TEST_F(VlanTest, KnownMacOnVlanNetworkStaysOnTheNode) {
  Bytes frame = udp4(vm7.mac, vm8.mac, vm7.ip, vm8.ip, 5000, 5000);

  EXPECT_EQ(run(vm7, frame).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(),
            (Counts{{{vm7.device, "forward-unicast"}, 1}, {{vm8.device, "delivered"}, 1}}));
}

TEST_F(VlanTest, UntaggedFrameOnFlatDeviceIsDeliveredToItsPort) {
  Bytes frame = udp4(router_mac, vm9.mac, ipv4("10.4.0.1"), vm9.ip, 5000, 5000);

  RunResult result = run_uplink(kFlatWire, frame);

  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(result.out, frame);
  EXPECT_EQ(counts(),
            (Counts{{{kFlatWire, "forward-unicast"}, 1}, {{vm9.device, "delivered"}, 1}}));
}

TEST_F(VlanTest, UnknownUnicastOnFlatDeviceIsDropped) {
  Bytes frame = udp4(router_mac, kStrangerMac, ipv4("10.4.0.1"), ipv4("10.4.0.99"), 5000, 5000);

  EXPECT_EQ(run_uplink(kFlatWire, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), (Counts{{{kFlatWire, "drop-unknown-unicast"}, 1}}));
}

TEST_F(VlanTest, UntaggedFrameOnVlanOnlyDeviceIsNotTheFabrics) {
  Bytes frame = from_router(vm8);

  RunResult result = run_uplink(kVlanWire, frame);

  EXPECT_EQ(result.retval, TC_ACT_OK);
  EXPECT_EQ(result.out, frame);
  EXPECT_TRUE(counts().empty());
}

TEST_F(VlanTest, BroadcastOnVlanNetworkReachesLocalPortsAndOneTaggedCopyOnTheWire) {
  Bytes frame = udp4(vm7.mac, kBroadcastMac, vm7.ip, ipv4("10.3.0.255"), 5000, 5000);
  Wire vm8_side(peer_name(vm8.device));
  Wire wire(peer_name(kVlanWire));
  Wire underlay(peer_name(kUplink));

  EXPECT_EQ(run(vm7, frame).retval, TC_ACT_SHOT);

  EXPECT_TRUE(vm8_side.receives(frame, 1s));
  auto on_wire = wire.drain(200ms);
  ASSERT_EQ(on_wire.size(), 1u);
  EXPECT_EQ(on_wire[0].vlan_ids(), std::vector<std::uint16_t>{kGreenVlan});
  EXPECT_EQ(on_wire[0].frame, on_wire[0].vlan_tci ? frame : tagged(frame, {kGreenVlan}));
  EXPECT_TRUE(underlay.drain(100ms).empty()); // no VXLAN for a vlan network
  EXPECT_EQ(counts(), (Counts{{{vm7.device, "forward-flood"}, 1}, {{vm8.device, "delivered"}, 1}}));
}

TEST_F(VlanTest, BroadcastOnFlatNetworkGoesOnTheWireUntagged) {
  // vm9 is lonely's only port here: the copy on the wire is all there is.
  Bytes frame = udp4(vm9.mac, kBroadcastMac, vm9.ip, ipv4("10.4.0.255"), 5000, 5000);
  Wire wire(peer_name(kFlatWire));

  EXPECT_EQ(run(vm9, frame).retval, TC_ACT_SHOT);

  auto on_wire = wire.drain(200ms);
  ASSERT_EQ(on_wire.size(), 1u);
  EXPECT_TRUE(on_wire[0].vlan_ids().empty());
  EXPECT_EQ(on_wire[0].frame, frame);
  EXPECT_EQ(counts(), one(vm9, WEFT_FWD_FLOOD));
}

// --- the real path: tags as the kernel hands them over -------------------------------

TEST_F(VlanTest, FrameToUnknownMacLeavesTaggedWithTheNetworksVlan) {
  TcxIngress attached(program_->program(), vm7.ifindex);
  Wire vm7_side(peer_name(vm7.device));
  Wire wire(peer_name(kVlanWire));
  Bytes frame = to_router(vm7);

  vm7_side.send(frame);

  auto received = wire.next(1s);
  ASSERT_TRUE(received);
  EXPECT_EQ(received->vlan_ids(), std::vector<std::uint16_t>{kGreenVlan});
  EXPECT_EQ(received->frame, received->vlan_tci ? frame : tagged(frame, {kGreenVlan}));
  EXPECT_EQ(wait_for(one(vm7, WEFT_FWD_WIRE)), one(vm7, WEFT_FWD_WIRE));
}

TEST_F(VlanTest, FrameToUnknownMacOnFlatNetworkLeavesUntagged) {
  TcxIngress attached(program_->program(), vm9.ifindex);
  Wire vm9_side(peer_name(vm9.device));
  Wire wire(peer_name(kFlatWire));
  Bytes frame = udp4(vm9.mac, router_mac, vm9.ip, ipv4("10.4.0.1"), 5000, 5000);

  vm9_side.send(frame);

  auto received = wire.next(1s);
  ASSERT_TRUE(received);
  EXPECT_TRUE(received->vlan_ids().empty());
  EXPECT_EQ(received->frame, frame);
}

TEST_F(VlanTest, TaggedFrameFromTheWireIsUntaggedAndDeliveredToItsPort) {
  TcxIngress attached(uplink().program(), vlan_wire_ifindex);
  Wire wire(peer_name(kVlanWire));
  Wire vm8_side(peer_name(vm8.device));
  Bytes frame = from_router(vm8);

  wire.send(tagged(frame, {kGreenVlan}));

  auto received = vm8_side.next(1s);
  ASSERT_TRUE(received);
  EXPECT_EQ(received->frame, frame);
  EXPECT_TRUE(received->vlan_ids().empty()) << "the VM got a tagged frame";
  Counts expected{{{kVlanWire, "forward-unicast"}, 1}, {{vm8.device, "delivered"}, 1}};
  EXPECT_EQ(wait_for(expected), expected);
}

TEST_F(VlanTest, TaggedBroadcastFromTheWireReachesEveryLocalPortOfItsVlan) {
  TcxIngress attached(uplink().program(), vlan_wire_ifindex);
  Wire wire(peer_name(kVlanWire));
  Wire vm7_side(peer_name(vm7.device));
  Wire vm8_side(peer_name(vm8.device));
  Bytes frame = udp4(router_mac, kBroadcastMac, router_ip, ipv4("10.3.0.255"), 5000, 5000);

  wire.send(tagged(frame, {kGreenVlan}));

  EXPECT_TRUE(vm7_side.receives(frame, 1s));
  EXPECT_TRUE(vm8_side.receives(frame, 1s));
  EXPECT_TRUE(wire.drain(100ms).empty()); // nothing back onto the wire
  Counts expected{{{kVlanWire, "forward-flood"}, 1},
                  {{vm7.device, "delivered"}, 1},
                  {{vm8.device, "delivered"}, 1}};
  EXPECT_EQ(wait_for(expected), expected);
}

TEST_F(VlanTest, FrameWithAnUnknownVlanIsDropped) {
  TcxIngress attached(uplink().program(), vlan_wire_ifindex);
  Wire wire(peer_name(kVlanWire));
  Wire vm8_side(peer_name(vm8.device));

  wire.send(tagged(from_router(vm8), {kGreenVlan + 1}));

  Counts expected{{{kVlanWire, "drop-unknown-vlan"}, 1}};
  EXPECT_EQ(wait_for(expected), expected);
  EXPECT_FALSE(vm8_side.next(100ms));
}

TEST_F(VlanTest, TaggedFrameOnFlatDeviceIsDropped) {
  TcxIngress attached(uplink().program(), flat_wire_ifindex);
  Wire wire(peer_name(kFlatWire));
  Wire vm9_side(peer_name(vm9.device));
  Bytes frame = udp4(router_mac, vm9.mac, ipv4("10.4.0.1"), vm9.ip, 5000, 5000);

  wire.send(tagged(frame, {42}));

  Counts expected{{{kFlatWire, "drop-unknown-vlan"}, 1}};
  EXPECT_EQ(wait_for(expected), expected);
  EXPECT_FALSE(vm9_side.next(100ms));
}

TEST_F(VlanTest, DoubleTaggedFrameFromTheWireIsDropped) {
  // The network's tag, and another inside it (802.1Q in 802.1Q): no VM may
  // receive a tagged frame.
  TcxIngress attached(uplink().program(), vlan_wire_ifindex);
  Wire wire(peer_name(kVlanWire));
  Wire vm8_side(peer_name(vm8.device));

  wire.send(tagged(from_router(vm8), {kGreenVlan, 100}));

  Counts expected{{{kVlanWire, "drop-tagged-inside"}, 1}};
  EXPECT_EQ(wait_for(expected), expected);
  auto leaked = vm8_side.next(100ms);
  EXPECT_FALSE(leaked) << "delivered to vm8 with VLAN ids "
                       << ::testing::PrintToString(leaked ? leaked->vlan_ids()
                                                          : std::vector<std::uint16_t>{});
}

} // namespace
} // namespace weft::test
