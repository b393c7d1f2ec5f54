// A small packet builder and reader for BPF_PROG_TEST_RUN tests.
//
// Frames are described outside-in as a stack of layers, like scapy's `/`:
//
//   Bytes frame = PacketBuilder()
//                     .eth(kBroadcastMac, vm_mac)
//                     .ipv4(ipv4("0.0.0.0"), ipv4("255.255.255.255"))
//                     .udp(68, 67)
//                     .payload(dhcp_discover(vm_mac))
//                     .build();
//
// build() fills in every length, the ethertype or protocol of each layer from
// the layer after it, and the checksums (IPv4 header, UDP/TCP/ICMP/ICMPv6,
// with the pseudo-header of the enclosing IP layer). FrameView reads a frame
// back (the program's data_out) with bounds checks.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

namespace weft::test {

using Bytes = std::vector<std::uint8_t>;
using Mac = std::array<std::uint8_t, 6>;
using Ipv6Address = std::array<std::uint8_t, 16>;

// IPv4 addresses are kept in network byte order, as the kernel and the ABI do.
using Ipv4Address = std::uint32_t;

// Parsers for literals in tests; they throw std::invalid_argument on bad text.
Mac mac(std::string_view text);          // "fa:16:3e:00:00:01"
Ipv4Address ipv4(std::string_view text); // "10.0.0.1"
Ipv6Address ipv6(std::string_view text); // "fe80::1"

inline constexpr Mac kBroadcastMac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
// 33:33 + the low 32 bits of ff02::1, the all-nodes group.
inline constexpr Mac kIpv6AllNodesMac = {0x33, 0x33, 0x00, 0x00, 0x00, 0x01};

inline constexpr std::uint16_t kEthIpv4 = 0x0800;
inline constexpr std::uint16_t kEthArp = 0x0806;
inline constexpr std::uint16_t kEthIpv6 = 0x86dd;
inline constexpr std::uint16_t kEth8021Q = 0x8100;
inline constexpr std::uint16_t kEth8021AD = 0x88a8;

inline constexpr std::uint8_t kIpProtoIcmp = 1;
inline constexpr std::uint8_t kIpProtoTcp = 6;
inline constexpr std::uint8_t kIpProtoUdp = 17;
inline constexpr std::uint8_t kIpProtoIpv6HopByHop = 0;
inline constexpr std::uint8_t kIpProtoIpv6Fragment = 44;
inline constexpr std::uint8_t kIpProtoIcmpv6 = 58;
inline constexpr std::uint8_t kIpProtoSctp = 132;

inline constexpr std::uint16_t kArpRequest = 1;
inline constexpr std::uint16_t kArpReply = 2;

inline constexpr std::uint8_t kIcmpEchoReply = 0;
inline constexpr std::uint8_t kIcmpDestUnreach = 3;
inline constexpr std::uint8_t kIcmpEchoRequest = 8;
inline constexpr std::uint8_t kIcmpTimestampRequest = 13;
inline constexpr std::uint8_t kIcmpHostUnreach = 1; // codes of kIcmpDestUnreach
inline constexpr std::uint8_t kIcmpPortUnreach = 3;
inline constexpr std::uint8_t kIcmpv6DestUnreach = 1;
inline constexpr std::uint8_t kIcmpv6PortUnreach = 4; // a code of kIcmpv6DestUnreach
inline constexpr std::uint8_t kIcmpv6EchoRequest = 128;
inline constexpr std::uint8_t kIcmpv6EchoReply = 129;
inline constexpr std::uint8_t kIcmpv6RouterSolicit = 133;
inline constexpr std::uint8_t kIcmpv6RouterAdvert = 134;
inline constexpr std::uint8_t kIcmpv6NeighborSolicit = 135;
inline constexpr std::uint8_t kIcmpv6NeighborAdvert = 136;

// VXLAN (RFC 7348): its UDP port and the I flag (the VNI is valid).
inline constexpr std::uint16_t kVxlanPort = 4789;
inline constexpr std::uint8_t kVxlanFlagVni = 0x08;

inline constexpr std::uint8_t kTcpFin = 0x01;
inline constexpr std::uint8_t kTcpSyn = 0x02;
inline constexpr std::uint8_t kTcpRst = 0x04;
inline constexpr std::uint8_t kTcpPsh = 0x08;
inline constexpr std::uint8_t kTcpAck = 0x10;
inline constexpr std::uint8_t kTcpUrg = 0x20;

class PacketBuilder {
public:
  // Ethernet II. Its type comes from the next layer; give `type` for a payload
  // of another protocol (then add .payload()).
  PacketBuilder& eth(const Mac& dst, const Mac& src, std::optional<std::uint16_t> type = {});
  // An 802.1Q (or, with tpid kEth8021AD, 802.1ad) tag after the MAC addresses.
  PacketBuilder& vlan(std::uint16_t vid, std::uint16_t tpid = kEth8021Q, std::uint8_t pcp = 0);
  // Ethernet/IPv4 ARP (RFC 826).
  PacketBuilder& arp(std::uint16_t op, const Mac& sha, Ipv4Address spa, const Mac& tha,
                     Ipv4Address tpa);
  // Protocol comes from the next layer unless given.
  PacketBuilder& ipv4(Ipv4Address src, Ipv4Address dst, std::uint8_t ttl = 64,
                      std::optional<std::uint8_t> protocol = {});
  PacketBuilder& ipv6(const Ipv6Address& src, const Ipv6Address& dst, std::uint8_t hop_limit = 64,
                      std::optional<std::uint8_t> next_header = {});
  // An IPv6 hop-by-hop options header (padded with PadN) before the next layer.
  PacketBuilder& ipv6_hop_by_hop();
  PacketBuilder& udp(std::uint16_t sport, std::uint16_t dport);
  PacketBuilder& tcp(std::uint16_t sport, std::uint16_t dport, std::uint8_t flags = kTcpSyn);
  // `rest` is the 4 bytes after the checksum (id and sequence for echo).
  PacketBuilder& icmp(std::uint8_t type, std::uint8_t code, std::uint32_t rest = 0);
  // `body` follows the 4-byte type/code/checksum header.
  PacketBuilder& icmpv6(std::uint8_t type, std::uint8_t code, Bytes body = {});
  // A VXLAN header; the layers after it are the inner frame (from its .eth()).
  // The UDP layer before it carries checksum 0, as VXLAN over IPv4 is sent
  // (RFC 7348) by the kernel's vxlan device and by weft.
  PacketBuilder& vxlan(std::uint32_t vni, std::uint8_t flags = kVxlanFlagVni);
  // Bytes after the last header.
  PacketBuilder& payload(Bytes bytes);

  Bytes build() const;

private:
  struct Eth {
    Mac dst;
    Mac src;
    std::optional<std::uint16_t> type;
  };
  struct Vlan {
    std::uint16_t tci;
    std::uint16_t tpid;
  };
  struct Arp {
    std::uint16_t op;
    Mac sha;
    Ipv4Address spa;
    Mac tha;
    Ipv4Address tpa;
  };
  struct Ipv4 {
    Ipv4Address src;
    Ipv4Address dst;
    std::uint8_t ttl;
    std::optional<std::uint8_t> protocol;
  };
  struct Ipv6 {
    Ipv6Address src;
    Ipv6Address dst;
    std::uint8_t hop_limit;
    std::optional<std::uint8_t> next_header;
  };
  struct Ipv6HopByHop {};
  struct Udp {
    std::uint16_t sport;
    std::uint16_t dport;
  };
  struct Tcp {
    std::uint16_t sport;
    std::uint16_t dport;
    std::uint8_t flags;
  };
  struct Icmp {
    std::uint8_t type;
    std::uint8_t code;
    std::uint32_t rest;
  };
  struct Icmpv6 {
    std::uint8_t type;
    std::uint8_t code;
    Bytes body;
  };
  struct Vxlan {
    std::uint32_t vni;
    std::uint8_t flags;
  };
  struct Payload {
    Bytes bytes;
  };
  using Layer = std::variant<Eth, Vlan, Arp, Ipv4, Ipv6, Ipv6HopByHop, Udp, Tcp, Icmp, Icmpv6,
                             Vxlan, Payload>;

  static std::uint16_t ethertype_of(const Layer* next);
  static std::uint8_t ip_protocol_of(const Layer* next);
  Bytes encode(std::size_t index, const Bytes& inner) const;
  // Pseudo-header checksum of an upper-layer packet inside layers_[ip_index].
  std::uint16_t l4_checksum(std::size_t ip_index, std::uint8_t protocol,
                            std::span<const std::uint8_t> l4) const;

  std::vector<Layer> layers_;
};

// Message bodies for the fixed infrastructure traffic the port program knows.
Bytes dhcp_discover(const Mac& client);      // BOOTP request + DHCPDISCOVER option
Bytes dhcp_offer(const Mac& client);         // BOOTP reply + DHCPOFFER option
Bytes dhcpv6_advertise();                    // DHCPv6 ADVERTISE, no options
Bytes router_advert_body(const Mac& router); // RA fields + source link-layer option

// The Internet checksum (RFC 1071) of `bytes`, folded, not complemented.
std::uint32_t checksum_add(std::uint32_t sum, std::span<const std::uint8_t> bytes);
std::uint16_t checksum_fold(std::uint32_t sum);

struct ArpMessage {
  std::uint16_t htype;
  std::uint16_t ptype;
  std::uint8_t hlen;
  std::uint8_t plen;
  std::uint16_t op;
  Mac sha;
  Ipv4Address spa;
  Mac tha;
  Ipv4Address tpa;
};

struct Ipv4Header {
  std::uint8_t ihl;
  std::uint8_t tos;
  std::uint16_t total_length;
  std::uint16_t frag_off; // flags (0x4000 DF, 0x2000 MF) and fragment offset
  std::uint8_t ttl;
  std::uint8_t protocol;
  Ipv4Address src;
  Ipv4Address dst;
  bool checksum_ok;
};

struct Ipv6Header {
  std::uint16_t payload_length;
  std::uint8_t next_header;
  Ipv6Address src;
  Ipv6Address dst;
};

struct UdpHeader {
  std::uint16_t sport;
  std::uint16_t dport;
  std::uint16_t length;
  std::uint16_t checksum; // as sent; 0 over IPv4: none
  bool checksum_ok;       // with the enclosing IP's pseudo-header; 0 counts as ok over IPv4
};

// The two 32-bit words of a VXLAN header as they read in network order: the
// flags word is the I flag (0x08000000) and reserved bits, the VNI word the
// VNI << 8 and a reserved byte.
struct VxlanHeader {
  std::uint32_t flags;
  std::uint32_t vni_word;
  std::uint32_t vni() const { return vni_word >> 8; }
  std::span<const std::uint8_t> inner; // the encapsulated frame
};

// Read-only view of a frame: every accessor returns nothing when the frame is
// too short or is not of that kind.
class FrameView {
public:
  explicit FrameView(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

  bool has_ethernet() const { return bytes_.size() >= 14; }
  std::optional<Mac> dst() const;
  std::optional<Mac> src() const;
  // VLAN ids of the 802.1Q/802.1ad tags, outermost first.
  std::vector<std::uint16_t> vlan_ids() const;
  // The ethertype after any tags.
  std::optional<std::uint16_t> ethertype() const;
  // Bytes after the Ethernet header and tags.
  std::span<const std::uint8_t> l3() const;

  std::optional<ArpMessage> arp() const;
  std::optional<Ipv4Header> ipv4() const;
  std::optional<Ipv6Header> ipv6() const;
  std::optional<UdpHeader> udp() const;
  // The VXLAN header of a UDP datagram to kVxlanPort, and the frame inside.
  std::optional<VxlanHeader> vxlan() const;

private:
  std::size_t l3_offset() const;

  std::span<const std::uint8_t> bytes_;
};

} // namespace weft::test
