#include "tests/prog/packet.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <stdexcept>
#include <string>

namespace weft::test {
namespace {

constexpr std::size_t kEthHeaderLen = 14;
constexpr std::size_t kVlanTagLen = 4;
constexpr std::size_t kArpLen = 28;
constexpr std::size_t kIpv4HeaderLen = 20;
constexpr std::size_t kIpv6HeaderLen = 40;
constexpr std::size_t kUdpHeaderLen = 8;
constexpr std::size_t kTcpHeaderLen = 20;
constexpr std::size_t kVxlanHeaderLen = 8;
constexpr std::size_t kL4ChecksumOffsetUdp = 6;
constexpr std::size_t kL4ChecksumOffsetTcp = 16;
constexpr std::size_t kL4ChecksumOffsetIcmp = 2;

void put8(Bytes& out, std::uint8_t value) {
  out.push_back(value);
}

void put16(Bytes& out, std::uint16_t value) {
  out.push_back(static_cast<std::uint8_t>(value >> 8));
  out.push_back(static_cast<std::uint8_t>(value));
}

void put32(Bytes& out, std::uint32_t value) {
  put16(out, static_cast<std::uint16_t>(value >> 16));
  put16(out, static_cast<std::uint16_t>(value));
}

// Already in network order: copy the bytes as they lie in memory.
void put_ipv4(Bytes& out, Ipv4Address address) {
  std::uint8_t raw[4];
  std::memcpy(raw, &address, sizeof raw);
  out.insert(out.end(), raw, raw + sizeof raw);
}

template <std::size_t N> void put_bytes(Bytes& out, const std::array<std::uint8_t, N>& bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

void put_zeros(Bytes& out, std::size_t count) {
  out.insert(out.end(), count, 0);
}

void patch16(Bytes& out, std::size_t offset, std::uint16_t value) {
  out.at(offset) = static_cast<std::uint8_t>(value >> 8);
  out.at(offset + 1) = static_cast<std::uint8_t>(value);
}

std::uint16_t get16(std::span<const std::uint8_t> bytes, std::size_t offset) {
  return static_cast<std::uint16_t>(bytes[offset] << 8 | bytes[offset + 1]);
}

Ipv4Address get_ipv4(std::span<const std::uint8_t> bytes, std::size_t offset) {
  Ipv4Address address;
  std::memcpy(&address, bytes.data() + offset, sizeof address);
  return address;
}

template <std::size_t N>
std::array<std::uint8_t, N> get_array(std::span<const std::uint8_t> bytes, std::size_t offset) {
  std::array<std::uint8_t, N> out;
  std::memcpy(out.data(), bytes.data() + offset, N);
  return out;
}

Bytes concat(Bytes header, const Bytes& inner) {
  header.insert(header.end(), inner.begin(), inner.end());
  return header;
}

std::uint32_t pseudo_header_ipv4(Ipv4Address src, Ipv4Address dst, std::uint8_t protocol,
                                 std::size_t length) {
  Bytes pseudo;
  put_ipv4(pseudo, src);
  put_ipv4(pseudo, dst);
  put8(pseudo, 0);
  put8(pseudo, protocol);
  put16(pseudo, static_cast<std::uint16_t>(length));
  return checksum_add(0, pseudo);
}

std::uint32_t pseudo_header_ipv6(const Ipv6Address& src, const Ipv6Address& dst,
                                 std::uint8_t next_header, std::size_t length) {
  Bytes pseudo;
  put_bytes(pseudo, src);
  put_bytes(pseudo, dst);
  put32(pseudo, static_cast<std::uint32_t>(length));
  put_zeros(pseudo, 3);
  put8(pseudo, next_header);
  return checksum_add(0, pseudo);
}

bool is_vlan_tpid(std::uint16_t type) {
  return type == kEth8021Q || type == kEth8021AD;
}

} // namespace

Mac mac(std::string_view text) {
  Mac out{};
  std::size_t pos = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (i > 0) {
      if (pos >= text.size() || text[pos] != ':')
        throw std::invalid_argument("not a MAC: " + std::string(text));
      ++pos;
    }
    const char* first = text.data() + pos;
    const char* last = text.data() + std::min(text.size(), pos + 2);
    auto [end, err] = std::from_chars(first, last, out[i], 16);
    if (err != std::errc() || end != last)
      throw std::invalid_argument("not a MAC: " + std::string(text));
    pos += 2;
  }
  if (pos != text.size())
    throw std::invalid_argument("not a MAC: " + std::string(text));
  return out;
}

Ipv4Address ipv4(std::string_view text) {
  in_addr address{};
  if (inet_pton(AF_INET, std::string(text).c_str(), &address) != 1)
    throw std::invalid_argument("not an IPv4 address: " + std::string(text));
  return address.s_addr;
}

Ipv6Address ipv6(std::string_view text) {
  Ipv6Address out{};
  if (inet_pton(AF_INET6, std::string(text).c_str(), out.data()) != 1)
    throw std::invalid_argument("not an IPv6 address: " + std::string(text));
  return out;
}

std::uint32_t checksum_add(std::uint32_t sum, std::span<const std::uint8_t> bytes) {
  std::size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2)
    sum += static_cast<std::uint32_t>(bytes[i] << 8 | bytes[i + 1]);
  if (i < bytes.size())
    sum += static_cast<std::uint32_t>(bytes[i] << 8);
  return sum;
}

std::uint16_t checksum_fold(std::uint32_t sum) {
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

// --- PacketBuilder ----------------------------------------------------------

PacketBuilder& PacketBuilder::eth(const Mac& dst, const Mac& src,
                                  std::optional<std::uint16_t> type) {
  layers_.emplace_back(Eth{dst, src, type});
  return *this;
}

PacketBuilder& PacketBuilder::vlan(std::uint16_t vid, std::uint16_t tpid, std::uint8_t pcp) {
  layers_.emplace_back(Vlan{static_cast<std::uint16_t>((pcp & 0x7) << 13 | (vid & 0x0fff)), tpid});
  return *this;
}

PacketBuilder& PacketBuilder::arp(std::uint16_t op, const Mac& sha, Ipv4Address spa, const Mac& tha,
                                  Ipv4Address tpa) {
  layers_.emplace_back(Arp{op, sha, spa, tha, tpa});
  return *this;
}

PacketBuilder& PacketBuilder::ipv4(Ipv4Address src, Ipv4Address dst, std::uint8_t ttl,
                                   std::optional<std::uint8_t> protocol) {
  layers_.emplace_back(Ipv4{src, dst, ttl, protocol});
  return *this;
}

PacketBuilder& PacketBuilder::ipv6(const Ipv6Address& src, const Ipv6Address& dst,
                                   std::uint8_t hop_limit,
                                   std::optional<std::uint8_t> next_header) {
  layers_.emplace_back(Ipv6{src, dst, hop_limit, next_header});
  return *this;
}

PacketBuilder& PacketBuilder::ipv6_hop_by_hop() {
  layers_.emplace_back(Ipv6HopByHop{});
  return *this;
}

PacketBuilder& PacketBuilder::udp(std::uint16_t sport, std::uint16_t dport) {
  layers_.emplace_back(Udp{sport, dport});
  return *this;
}

PacketBuilder& PacketBuilder::tcp(std::uint16_t sport, std::uint16_t dport, std::uint8_t flags) {
  layers_.emplace_back(Tcp{sport, dport, flags});
  return *this;
}

PacketBuilder& PacketBuilder::icmp(std::uint8_t type, std::uint8_t code, std::uint32_t rest) {
  layers_.emplace_back(Icmp{type, code, rest});
  return *this;
}

PacketBuilder& PacketBuilder::icmpv6(std::uint8_t type, std::uint8_t code, Bytes body) {
  layers_.emplace_back(Icmpv6{type, code, std::move(body)});
  return *this;
}

PacketBuilder& PacketBuilder::vxlan(std::uint32_t vni, std::uint8_t flags) {
  layers_.emplace_back(Vxlan{vni, flags});
  return *this;
}

PacketBuilder& PacketBuilder::payload(Bytes bytes) {
  layers_.emplace_back(Payload{std::move(bytes)});
  return *this;
}

std::uint16_t PacketBuilder::ethertype_of(const Layer* next) {
  if (next) {
    if (const auto* tag = std::get_if<Vlan>(next))
      return tag->tpid;
    if (std::holds_alternative<Arp>(*next))
      return kEthArp;
    if (std::holds_alternative<Ipv4>(*next))
      return kEthIpv4;
    if (std::holds_alternative<Ipv6>(*next))
      return kEthIpv6;
  }
  throw std::logic_error("PacketBuilder: give the ethertype of a raw or missing payload");
}

std::uint8_t PacketBuilder::ip_protocol_of(const Layer* next) {
  if (next) {
    if (std::holds_alternative<Udp>(*next))
      return kIpProtoUdp;
    if (std::holds_alternative<Tcp>(*next))
      return kIpProtoTcp;
    if (std::holds_alternative<Icmp>(*next))
      return kIpProtoIcmp;
    if (std::holds_alternative<Icmpv6>(*next))
      return kIpProtoIcmpv6;
    if (std::holds_alternative<Ipv6HopByHop>(*next))
      return kIpProtoIpv6HopByHop;
  }
  throw std::logic_error("PacketBuilder: give the IP protocol of a raw or missing payload");
}

std::uint16_t PacketBuilder::l4_checksum(std::size_t ip_index, std::uint8_t protocol,
                                         std::span<const std::uint8_t> l4) const {
  std::uint32_t sum = 0;
  if (const auto* ip = std::get_if<Ipv4>(&layers_[ip_index]))
    sum = pseudo_header_ipv4(ip->src, ip->dst, protocol, l4.size());
  else if (const auto* ip6 = std::get_if<Ipv6>(&layers_[ip_index]))
    sum = pseudo_header_ipv6(ip6->src, ip6->dst, protocol, l4.size());
  else
    throw std::logic_error("PacketBuilder: a transport header needs an IP layer before it");
  return static_cast<std::uint16_t>(~checksum_fold(checksum_add(sum, l4)));
}

Bytes PacketBuilder::encode(std::size_t index, const Bytes& inner) const {
  const Layer* next = index + 1 < layers_.size() ? &layers_[index + 1] : nullptr;
  // The nearest IP layer before this one: its addresses go in the pseudo-header.
  auto enclosing_ip = [&]() -> std::size_t {
    for (std::size_t i = index; i-- > 0;)
      if (std::holds_alternative<Ipv4>(layers_[i]) || std::holds_alternative<Ipv6>(layers_[i]))
        return i;
    throw std::logic_error("PacketBuilder: a transport header needs an IP layer before it");
  };
  Bytes out;
  const Layer& layer = layers_[index];

  if (const auto* eth = std::get_if<Eth>(&layer)) {
    put_bytes(out, eth->dst);
    put_bytes(out, eth->src);
    put16(out, eth->type ? *eth->type : ethertype_of(next));
    return concat(std::move(out), inner);
  }
  if (const auto* tag = std::get_if<Vlan>(&layer)) {
    put16(out, tag->tci);
    put16(out, ethertype_of(next));
    return concat(std::move(out), inner);
  }
  if (const auto* msg = std::get_if<Arp>(&layer)) {
    put16(out, 1); // Ethernet
    put16(out, kEthIpv4);
    put8(out, 6);
    put8(out, 4);
    put16(out, msg->op);
    put_bytes(out, msg->sha);
    put_ipv4(out, msg->spa);
    put_bytes(out, msg->tha);
    put_ipv4(out, msg->tpa);
    return concat(std::move(out), inner);
  }
  if (const auto* ip = std::get_if<Ipv4>(&layer)) {
    put8(out, 0x45); // version 4, 5 words
    put8(out, 0);
    put16(out, static_cast<std::uint16_t>(kIpv4HeaderLen + inner.size()));
    put16(out, 0x1234); // identification
    put16(out, 0x4000); // DF, first and only fragment
    put8(out, ip->ttl);
    put8(out, ip->protocol ? *ip->protocol : ip_protocol_of(next));
    put16(out, 0);
    put_ipv4(out, ip->src);
    put_ipv4(out, ip->dst);
    patch16(out, 10, static_cast<std::uint16_t>(~checksum_fold(checksum_add(0, out))));
    return concat(std::move(out), inner);
  }
  if (const auto* ip6 = std::get_if<Ipv6>(&layer)) {
    put32(out, 0x60000000); // version 6, no traffic class, no flow label
    put16(out, static_cast<std::uint16_t>(inner.size()));
    put8(out, ip6->next_header ? *ip6->next_header : ip_protocol_of(next));
    put8(out, ip6->hop_limit);
    put_bytes(out, ip6->src);
    put_bytes(out, ip6->dst);
    return concat(std::move(out), inner);
  }
  if (std::holds_alternative<Ipv6HopByHop>(layer)) {
    put8(out, ip_protocol_of(next));
    put8(out, 0); // 8 bytes long
    put8(out, 1); // PadN over the remaining 6 bytes
    put8(out, 4);
    put_zeros(out, 4);
    return concat(std::move(out), inner);
  }
  if (const auto* udp = std::get_if<Udp>(&layer)) {
    put16(out, udp->sport);
    put16(out, udp->dport);
    put16(out, static_cast<std::uint16_t>(kUdpHeaderLen + inner.size()));
    put16(out, 0);
    out = concat(std::move(out), inner);
    if (next && std::holds_alternative<Vxlan>(*next))
      return out;
    std::uint16_t sum = l4_checksum(enclosing_ip(), kIpProtoUdp, out);
    patch16(out, kL4ChecksumOffsetUdp, sum == 0 ? 0xffff : sum); // 0 means "none"
    return out;
  }
  if (const auto* tcp = std::get_if<Tcp>(&layer)) {
    put16(out, tcp->sport);
    put16(out, tcp->dport);
    put32(out, 1); // sequence
    put32(out, (tcp->flags & kTcpAck) ? 1 : 0);
    put8(out, (kTcpHeaderLen / 4) << 4);
    put8(out, tcp->flags);
    put16(out, 65535); // window
    put16(out, 0);
    put16(out, 0); // urgent pointer
    out = concat(std::move(out), inner);
    patch16(out, kL4ChecksumOffsetTcp, l4_checksum(enclosing_ip(), kIpProtoTcp, out));
    return out;
  }
  if (const auto* icmp = std::get_if<Icmp>(&layer)) {
    put8(out, icmp->type);
    put8(out, icmp->code);
    put16(out, 0);
    put32(out, icmp->rest);
    out = concat(std::move(out), inner);
    patch16(out, kL4ChecksumOffsetIcmp,
            static_cast<std::uint16_t>(~checksum_fold(checksum_add(0, out))));
    return out;
  }
  if (const auto* icmp6 = std::get_if<Icmpv6>(&layer)) {
    put8(out, icmp6->type);
    put8(out, icmp6->code);
    put16(out, 0);
    out.insert(out.end(), icmp6->body.begin(), icmp6->body.end());
    out = concat(std::move(out), inner);
    patch16(out, kL4ChecksumOffsetIcmp, l4_checksum(enclosing_ip(), kIpProtoIcmpv6, out));
    return out;
  }
  if (const auto* vx = std::get_if<Vxlan>(&layer)) {
    put8(out, vx->flags);
    put_zeros(out, 3);
    put32(out, vx->vni << 8);
    return concat(std::move(out), inner);
  }
  const auto& raw = std::get<Payload>(layer);
  return concat(raw.bytes, inner);
}

Bytes PacketBuilder::build() const {
  Bytes frame;
  for (std::size_t i = layers_.size(); i-- > 0;)
    frame = encode(i, frame);
  return frame;
}

// --- message bodies -----------------------------------------------------------

namespace {

Bytes bootp(std::uint8_t op, const Mac& client, Ipv4Address yiaddr, std::uint8_t dhcp_type) {
  Bytes out;
  put8(out, op);
  put8(out, 1); // Ethernet
  put8(out, 6);
  put8(out, 0);           // hops
  put32(out, 0x3903f326); // xid
  put16(out, 0);          // secs
  put16(out, 0x8000);     // broadcast flag
  put_ipv4(out, 0);       // ciaddr
  put_ipv4(out, yiaddr);
  put_ipv4(out, 0); // siaddr
  put_ipv4(out, 0); // giaddr
  put_bytes(out, client);
  put_zeros(out, 10);       // rest of chaddr
  put_zeros(out, 64 + 128); // sname, file
  put32(out, 0x63825363);   // magic cookie
  put8(out, 53);            // DHCP message type
  put8(out, 1);
  put8(out, dhcp_type);
  put8(out, 255); // end
  return out;
}

} // namespace

Bytes dhcp_discover(const Mac& client) {
  return bootp(1, client, 0, 1);
}

Bytes dhcp_offer(const Mac& client) {
  return bootp(2, client, ipv4("10.0.0.42"), 2);
}

Bytes dhcpv6_advertise() {
  Bytes out;
  put8(out, 2);    // ADVERTISE
  put8(out, 0x12); // transaction id
  put16(out, 0x3456);
  return out;
}

Bytes router_advert_body(const Mac& router) {
  Bytes out;
  put8(out, 64);    // current hop limit
  put8(out, 0);     // flags
  put16(out, 1800); // router lifetime
  put32(out, 0);    // reachable time
  put32(out, 0);    // retransmission timer
  put8(out, 1);     // option: source link-layer address
  put8(out, 1);     // in units of 8 bytes
  put_bytes(out, router);
  return out;
}

// --- FrameView ----------------------------------------------------------------

std::optional<Mac> FrameView::dst() const {
  if (!has_ethernet())
    return std::nullopt;
  return get_array<6>(bytes_, 0);
}

std::optional<Mac> FrameView::src() const {
  if (!has_ethernet())
    return std::nullopt;
  return get_array<6>(bytes_, 6);
}

std::vector<std::uint16_t> FrameView::vlan_ids() const {
  std::vector<std::uint16_t> ids;
  std::size_t type_offset = 12;
  while (type_offset + 2 + kVlanTagLen <= bytes_.size() &&
         is_vlan_tpid(get16(bytes_, type_offset))) {
    ids.push_back(get16(bytes_, type_offset + 2) & 0x0fff);
    type_offset += kVlanTagLen;
  }
  return ids;
}

std::size_t FrameView::l3_offset() const {
  return kEthHeaderLen + vlan_ids().size() * kVlanTagLen;
}

std::optional<std::uint16_t> FrameView::ethertype() const {
  std::size_t offset = l3_offset();
  if (offset > bytes_.size())
    return std::nullopt;
  return get16(bytes_, offset - 2);
}

std::span<const std::uint8_t> FrameView::l3() const {
  std::size_t offset = l3_offset();
  if (offset > bytes_.size())
    return {};
  return bytes_.subspan(offset);
}

std::optional<ArpMessage> FrameView::arp() const {
  auto l3 = this->l3();
  if (ethertype() != kEthArp || l3.size() < kArpLen)
    return std::nullopt;
  ArpMessage msg;
  msg.htype = get16(l3, 0);
  msg.ptype = get16(l3, 2);
  msg.hlen = l3[4];
  msg.plen = l3[5];
  msg.op = get16(l3, 6);
  msg.sha = get_array<6>(l3, 8);
  msg.spa = get_ipv4(l3, 14);
  msg.tha = get_array<6>(l3, 18);
  msg.tpa = get_ipv4(l3, 24);
  return msg;
}

std::optional<Ipv4Header> FrameView::ipv4() const {
  auto l3 = this->l3();
  if (ethertype() != kEthIpv4 || l3.size() < kIpv4HeaderLen || (l3[0] >> 4) != 4)
    return std::nullopt;
  Ipv4Header ip;
  ip.ihl = l3[0] & 0x0f;
  if (ip.ihl < 5 || l3.size() < ip.ihl * std::size_t{4})
    return std::nullopt;
  ip.tos = l3[1];
  ip.total_length = get16(l3, 2);
  ip.frag_off = get16(l3, 6);
  ip.ttl = l3[8];
  ip.protocol = l3[9];
  ip.src = get_ipv4(l3, 12);
  ip.dst = get_ipv4(l3, 16);
  ip.checksum_ok = checksum_fold(checksum_add(0, l3.first(ip.ihl * std::size_t{4}))) == 0xffff;
  return ip;
}

std::optional<Ipv6Header> FrameView::ipv6() const {
  auto l3 = this->l3();
  if (ethertype() != kEthIpv6 || l3.size() < kIpv6HeaderLen || (l3[0] >> 4) != 6)
    return std::nullopt;
  Ipv6Header ip6;
  ip6.payload_length = get16(l3, 4);
  ip6.next_header = l3[6];
  ip6.src = get_array<16>(l3, 8);
  ip6.dst = get_array<16>(l3, 24);
  return ip6;
}

std::optional<UdpHeader> FrameView::udp() const {
  auto l3 = this->l3();
  std::span<const std::uint8_t> l4;
  std::uint32_t pseudo = 0;
  bool zero_is_none = false;
  if (auto ip = ipv4()) {
    if (ip->protocol != kIpProtoUdp)
      return std::nullopt;
    l4 = l3.subspan(ip->ihl * std::size_t{4});
    zero_is_none = true;
    if (l4.size() >= kUdpHeaderLen)
      pseudo = pseudo_header_ipv4(ip->src, ip->dst, kIpProtoUdp, get16(l4, 4));
  } else if (auto ip6 = ipv6()) {
    if (ip6->next_header != kIpProtoUdp)
      return std::nullopt;
    l4 = l3.subspan(kIpv6HeaderLen);
    if (l4.size() >= kUdpHeaderLen)
      pseudo = pseudo_header_ipv6(ip6->src, ip6->dst, kIpProtoUdp, get16(l4, 4));
  } else {
    return std::nullopt;
  }
  if (l4.size() < kUdpHeaderLen)
    return std::nullopt;
  UdpHeader udp;
  udp.sport = get16(l4, 0);
  udp.dport = get16(l4, 2);
  udp.length = get16(l4, 4);
  udp.checksum = get16(l4, 6);
  if (udp.length < kUdpHeaderLen || udp.length > l4.size())
    udp.checksum_ok = false;
  else if (zero_is_none && get16(l4, 6) == 0)
    udp.checksum_ok = true;
  else
    udp.checksum_ok = checksum_fold(checksum_add(pseudo, l4.first(udp.length))) == 0xffff;
  return udp;
}

std::optional<VxlanHeader> FrameView::vxlan() const {
  auto ip = ipv4();
  auto udp = this->udp();
  if (!ip || !udp || udp->dport != kVxlanPort)
    return std::nullopt;
  auto l4 = l3().subspan(ip->ihl * std::size_t{4});
  if (l4.size() < kUdpHeaderLen + kVxlanHeaderLen)
    return std::nullopt;
  auto header = l4.subspan(kUdpHeaderLen);
  VxlanHeader vx;
  vx.flags = static_cast<std::uint32_t>(get16(header, 0)) << 16 | get16(header, 2);
  vx.vni_word = static_cast<std::uint32_t>(get16(header, 4)) << 16 | get16(header, 6);
  vx.inner = header.subspan(kVxlanHeaderLen);
  return vx;
}

} // namespace weft::test
