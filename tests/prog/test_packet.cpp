// The packet builder itself: lengths, next-protocol fields and checksums, so
// that a port-program test failing means the program, not the frame.
#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>

#include "tests/prog/packet.hpp"

namespace weft::test {
namespace {

const Mac kA = mac("fa:16:3e:00:00:0a");
const Mac kB = mac("fa:16:3e:00:00:0b");

TEST(PacketChecksum, KnownIpv4HeaderSumsToAllOnes) {
  // RFC 1071 style check on a well-known header (checksum 0xb861 included).
  const Bytes header = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                        0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(checksum_fold(checksum_add(0, header)), 0xffff);
}

TEST(PacketParse, MacAndAddressLiterals) {
  EXPECT_EQ(mac("01:23:45:67:89:ab"), (Mac{0x01, 0x23, 0x45, 0x67, 0x89, 0xab}));
  EXPECT_THROW(mac("01:23:45:67:89"), std::invalid_argument);
  EXPECT_THROW(mac("01:23:45:67:89:ab:cd"), std::invalid_argument);
  EXPECT_THROW(mac("01-23-45-67-89-ab"), std::invalid_argument);
  EXPECT_THROW(mac("0g:23:45:67:89:ab"), std::invalid_argument);
  const Bytes loopback = {127, 0, 0, 1};
  Ipv4Address address = ipv4("127.0.0.1");
  EXPECT_EQ(0, std::memcmp(&address, loopback.data(), 4)); // network order
  EXPECT_THROW(ipv4("10.0.0"), std::invalid_argument);
  EXPECT_EQ(ipv6("fe80::1")[0], 0xfe);
  EXPECT_EQ(ipv6("fe80::1")[15], 0x01);
}

TEST(PacketBuilder, Ipv4UdpLengthsAndChecksums) {
  Bytes frame = PacketBuilder()
                    .eth(kB, kA)
                    .ipv4(ipv4("10.0.0.1"), ipv4("10.0.0.2"))
                    .udp(68, 67)
                    .payload(Bytes(11, 0x77))
                    .build();

  ASSERT_EQ(frame.size(), 14u + 20 + 8 + 11);
  FrameView view(frame);
  EXPECT_EQ(view.dst(), kB);
  EXPECT_EQ(view.src(), kA);
  EXPECT_EQ(view.ethertype(), kEthIpv4);
  auto ip = view.ipv4();
  ASSERT_TRUE(ip);
  EXPECT_EQ(ip->total_length, 20 + 8 + 11);
  EXPECT_EQ(ip->protocol, kIpProtoUdp);
  EXPECT_EQ(ip->src, ipv4("10.0.0.1"));
  EXPECT_TRUE(ip->checksum_ok);
  auto udp = view.udp();
  ASSERT_TRUE(udp);
  EXPECT_EQ(udp->sport, 68);
  EXPECT_EQ(udp->dport, 67);
  EXPECT_EQ(udp->length, 8 + 11);
  EXPECT_TRUE(udp->checksum_ok);

  frame.back() ^= 1;
  EXPECT_FALSE(FrameView(frame).udp()->checksum_ok);
}

TEST(PacketBuilder, TcpAndIcmpChecksums) {
  Bytes tcp = PacketBuilder()
                  .eth(kB, kA)
                  .ipv4(ipv4("10.0.0.1"), ipv4("10.0.0.2"))
                  .tcp(40000, 22)
                  .payload({1, 2, 3})
                  .build();
  ASSERT_EQ(tcp.size(), 14u + 20 + 20 + 3);
  EXPECT_EQ(FrameView(tcp).ipv4()->protocol, kIpProtoTcp);
  // Pseudo-header + segment sums to all ones.
  Bytes pseudo = {10, 0, 0, 1, 10, 0, 0, 2, 0, kIpProtoTcp, 0, 23};
  EXPECT_EQ(checksum_fold(checksum_add(checksum_add(0, pseudo),
                                       std::span<const std::uint8_t>(tcp).subspan(34))),
            0xffff);

  Bytes icmp = PacketBuilder()
                   .eth(kB, kA)
                   .ipv4(ipv4("10.0.0.1"), ipv4("10.0.0.2"))
                   .icmp(kIcmpEchoRequest, 0, 0x00010002)
                   .payload(Bytes(5, 0x42))
                   .build();
  EXPECT_EQ(FrameView(icmp).ipv4()->protocol, kIpProtoIcmp);
  EXPECT_EQ(checksum_fold(checksum_add(0, std::span<const std::uint8_t>(icmp).subspan(34))),
            0xffff);
}

TEST(PacketBuilder, Ipv6UdpAndIcmpv6) {
  Bytes udp = PacketBuilder()
                  .eth(kB, kA)
                  .ipv6(ipv6("fe80::1"), ipv6("fe80::2"))
                  .udp(547, 546)
                  .payload(dhcpv6_advertise())
                  .build();
  ASSERT_EQ(udp.size(), 14u + 40 + 8 + 4);
  auto ip6 = FrameView(udp).ipv6();
  ASSERT_TRUE(ip6);
  EXPECT_EQ(ip6->payload_length, 12);
  EXPECT_EQ(ip6->next_header, kIpProtoUdp);
  EXPECT_TRUE(FrameView(udp).udp()->checksum_ok);

  Bytes ra = PacketBuilder()
                 .eth(kIpv6AllNodesMac, kA)
                 .ipv6(ipv6("fe80::1"), ipv6("ff02::1"), 255)
                 .icmpv6(kIcmpv6RouterAdvert, 0, router_advert_body(kA))
                 .build();
  ASSERT_EQ(ra.size(), 14u + 40 + 4 + 20);
  EXPECT_EQ(FrameView(ra).ipv6()->next_header, kIpProtoIcmpv6);
  EXPECT_EQ(ra[54], kIcmpv6RouterAdvert);
  Bytes pseudo(ra.begin() + 22, ra.begin() + 54); // source and destination
  pseudo.insert(pseudo.end(), {0, 0, 0, 24, 0, 0, 0, kIpProtoIcmpv6});
  EXPECT_EQ(checksum_fold(checksum_add(checksum_add(0, pseudo),
                                       std::span<const std::uint8_t>(ra).subspan(54))),
            0xffff);
}

TEST(PacketBuilder, HopByHopHeaderChainsToTheNextLayer) {
  Bytes frame = PacketBuilder()
                    .eth(kIpv6AllNodesMac, kA)
                    .ipv6(ipv6("fe80::1"), ipv6("ff02::1"))
                    .ipv6_hop_by_hop()
                    .icmpv6(kIcmpv6RouterAdvert, 0, router_advert_body(kA))
                    .build();
  ASSERT_EQ(frame.size(), 14u + 40 + 8 + 24);
  EXPECT_EQ(FrameView(frame).ipv6()->next_header, kIpProtoIpv6HopByHop);
  EXPECT_EQ(FrameView(frame).ipv6()->payload_length, 32);
  EXPECT_EQ(frame[54], kIpProtoIcmpv6);
  EXPECT_EQ(frame[62], kIcmpv6RouterAdvert);
}

TEST(PacketBuilder, VlanTagsAndArp) {
  Bytes frame = PacketBuilder()
                    .eth(kBroadcastMac, kA)
                    .vlan(200, kEth8021AD)
                    .vlan(100, kEth8021Q, 5)
                    .arp(kArpRequest, kA, ipv4("10.0.0.1"), {}, ipv4("10.0.0.2"))
                    .build();
  ASSERT_EQ(frame.size(), 14u + 4 + 4 + 28);
  FrameView view(frame);
  EXPECT_EQ(view.vlan_ids(), (std::vector<std::uint16_t>{200, 100}));
  EXPECT_EQ(frame[12], 0x88);
  EXPECT_EQ(frame[13], 0xa8);
  EXPECT_EQ(frame[18] >> 5, 5); // priority of the inner tag
  EXPECT_EQ(view.ethertype(), kEthArp);
  auto arp = view.arp();
  ASSERT_TRUE(arp);
  EXPECT_EQ(arp->op, kArpRequest);
  EXPECT_EQ(arp->sha, kA);
  EXPECT_EQ(arp->spa, ipv4("10.0.0.1"));
  EXPECT_EQ(arp->tpa, ipv4("10.0.0.2"));
}

TEST(PacketBuilder, RawEthertypeNeedsAType) {
  EXPECT_THROW(PacketBuilder().eth(kB, kA).payload({1, 2}).build(), std::logic_error);
  EXPECT_EQ(PacketBuilder().eth(kB, kA, 0x88b5).payload({1, 2}).build().size(), 16u);
  EXPECT_THROW(PacketBuilder().eth(kB, kA).udp(1, 2).build(), std::logic_error);
}

TEST(PacketBuilder, VxlanCarriesTheInnerFrameWithUdpChecksumZero) {
  Bytes inner =
      PacketBuilder().eth(kB, kA).ipv4(ipv4("10.0.0.1"), ipv4("10.0.0.2")).udp(5000, 5000).build();
  Bytes outer = PacketBuilder()
                    .eth(kA, kB)
                    .ipv4(ipv4("192.0.2.2"), ipv4("192.0.2.1"))
                    .udp(50000, kVxlanPort)
                    .vxlan(0xabcdef)
                    .payload(inner)
                    .build();

  ASSERT_EQ(outer.size(), 50 + inner.size());
  FrameView view(outer);
  auto ip = view.ipv4();
  ASSERT_TRUE(ip);
  EXPECT_EQ(ip->total_length, 36 + inner.size());
  EXPECT_EQ(ip->frag_off, 0x4000);
  EXPECT_EQ(ip->ttl, 64);
  auto udp = view.udp();
  ASSERT_TRUE(udp);
  EXPECT_EQ(udp->length, 16 + inner.size());
  EXPECT_EQ(udp->checksum, 0);
  auto vx = view.vxlan();
  ASSERT_TRUE(vx);
  EXPECT_EQ(vx->flags, 0x08000000u);
  EXPECT_EQ(vx->vni_word, 0xabcdef00u);
  EXPECT_EQ(vx->vni(), 0xabcdefu);
  EXPECT_EQ(Bytes(vx->inner.begin(), vx->inner.end()), inner);
  // Not to the VXLAN port: not VXLAN.
  Bytes plain = PacketBuilder()
                    .eth(kA, kB)
                    .ipv4(ipv4("192.0.2.2"), ipv4("192.0.2.1"))
                    .udp(50000, 4790)
                    .payload(Bytes(16, 0))
                    .build();
  EXPECT_FALSE(FrameView(plain).vxlan());
}

TEST(FrameView, ShortFramesHaveNothing) {
  Bytes runt(10, 0);
  FrameView view(runt);
  EXPECT_FALSE(view.dst());
  EXPECT_FALSE(view.ethertype());
  EXPECT_FALSE(view.arp());
  Bytes arp = PacketBuilder()
                  .eth(kBroadcastMac, kA)
                  .arp(kArpRequest, kA, ipv4("10.0.0.1"), {}, ipv4("10.0.0.2"))
                  .build();
  arp.resize(41);
  EXPECT_FALSE(FrameView(arp).arp());
}

} // namespace
} // namespace weft::test
