// Security groups in the port program (bpf/lib/sg.h, policy.h, ct.h), run on
// built frames through BPF_PROG_TEST_RUN on the node of port_fixture.hpp:
// Neutron's fixed traffic for ports without groups, each kind of rule
// (protocol, port range, ICMP type and code, remote prefix, IPv6, any
// protocol), connection tracking for stateful groups (states, replies,
// related ICMP errors, zones, expiry, rule generations), stateless groups,
// floods, and matching with thousands of rules.
//
// Policies are written straight into sg_l4 and sg_remote in the loader's
// form (sg_policy.hpp). A redirect is not executed in a test run, so each
// verdict is read from the return code (TC_ACT_REDIRECT or TC_ACT_SHOT), the
// counters, and the ct map.
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <time.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <ostream>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/prog/port_fixture.hpp"

namespace weft::test {
namespace {

using namespace std::chrono_literals;

// --- the policy helpers themselves (no root needed) ---------------------------

TEST(SgPolicyHelpers, RuleSetHasItsBitsAndSummary) {
  weft_rule_set set = rule_set({0, 63, 64, 4095, 4096, WEFT_SG_MAX_RULES - 1});

  EXPECT_EQ(set.words[0], 0x8000000000000001ull);
  EXPECT_EQ(set.words[1], 1u);
  EXPECT_EQ(set.words[63], 0x8000000000000000ull);
  EXPECT_EQ(set.words[64], 1u);
  EXPECT_EQ(set.words[WEFT_SG_WORDS - 1], 0x8000000000000000ull);
  EXPECT_EQ(set.summary[0], 0x8000000000000003ull); // words 0, 1, 63
  EXPECT_EQ(set.summary[1], 1u);                    // word 64
  EXPECT_EQ(set.summary[WEFT_SG_SUMMARY_WORDS - 1], 0x8000000000000000ull);
  EXPECT_EQ(rules_of(set), (std::vector<std::uint32_t>{0, 63, 64, 4095, 4096, 16383}));
  EXPECT_THROW(rule_set({WEFT_SG_MAX_RULES}), std::invalid_argument);
}

TEST(SgPolicyHelpers, L4KeyIsAPortBlock) {
  weft_sg_l4_key key = sg_l4_key(7, WEFT_DIR_EGRESS, 6, kIpProtoTcp, 80, 14);

  EXPECT_EQ(key.prefixlen, WEFT_SG_L4_FIXED_BITS + 14u);
  EXPECT_EQ(key.policy, 7u);
  EXPECT_EQ(key.direction, WEFT_DIR_EGRESS);
  EXPECT_EQ(key.family, 6);
  EXPECT_EQ(key.proto, kIpProtoTcp);
  EXPECT_EQ(ntohs(key.port), 80);
  EXPECT_EQ(sg_l4_key(7, WEFT_DIR_INGRESS, 4, kIpProtoIcmp, icmp_l4(3, 3), 16).port, htons(0x0303));
  EXPECT_THROW(sg_l4_key(7, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 81, 14), std::invalid_argument);
  EXPECT_THROW(sg_l4_key(7, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 80, 17), std::invalid_argument);
}

TEST(SgPolicyHelpers, RemoteKeyIsAnAddressPrefix) {
  weft_sg_remote_key v4 = sg_remote_key(3, WEFT_DIR_INGRESS, ip_prefix("10.1.0.0/16"));
  weft_sg_remote_key v6 = sg_remote_key(3, WEFT_DIR_INGRESS, ip_prefix("fe80::/64"));

  EXPECT_EQ(v4.prefixlen, WEFT_SG_REMOTE_FIXED_BITS + 16u);
  EXPECT_EQ(v4.family, 4);
  EXPECT_EQ(v4.ip[0], 10);
  EXPECT_EQ(v4.ip[1], 1);
  EXPECT_EQ(v4.ip[4], 0);
  EXPECT_EQ(v6.prefixlen, WEFT_SG_REMOTE_FIXED_BITS + 64u);
  EXPECT_EQ(v6.family, 6);
  EXPECT_EQ(v6.ip[0], 0xfe);
  EXPECT_EQ(v6.ip[1], 0x80);
  EXPECT_EQ(host_prefix(ipv4("10.0.0.5")).length, 32u);
  EXPECT_THROW(ip_prefix("10.0.0.1/24"), std::invalid_argument); // host bits
  EXPECT_THROW(ip_prefix("10.0.0.0/33"), std::invalid_argument);
  EXPECT_THROW(ip_prefix("10.0.0.0"), std::invalid_argument);
}

// --- connections as the tests compare them --------------------------------------

Ipv6Address v4_bytes(Ipv4Address address) {
  Ipv6Address bytes{};
  std::memcpy(bytes.data(), &address, sizeof address);
  return bytes;
}

std::string address_text(std::uint8_t family, const Ipv6Address& bytes) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == 4 ? AF_INET : AF_INET6, bytes.data(), text, sizeof text);
  return text;
}

// weft_ct_key with ports in host order.
struct CtKey {
  std::uint32_t zone = 0;
  std::uint8_t family = 0;
  std::uint8_t proto = 0;
  Ipv6Address addr_a{};
  std::uint16_t port_a = 0;
  Ipv6Address addr_b{};
  std::uint16_t port_b = 0;

  auto operator<=>(const CtKey&) const = default;
};

std::ostream& operator<<(std::ostream& out, const CtKey& key) {
  return out << "{zone " << key.zone << " family " << int(key.family) << " proto " << int(key.proto)
             << " a " << address_text(key.family, key.addr_a) << ":" << key.port_a << " b "
             << address_text(key.family, key.addr_b) << ":" << key.port_b << "}";
}

CtKey ct_key4(std::uint32_t zone, std::uint8_t proto, Ipv4Address a, std::uint16_t port_a,
              Ipv4Address b, std::uint16_t port_b) {
  return {zone, 4, proto, v4_bytes(a), port_a, v4_bytes(b), port_b};
}

CtKey ct_key6(std::uint32_t zone, std::uint8_t proto, const Ipv6Address& a, std::uint16_t port_a,
              const Ipv6Address& b, std::uint16_t port_b) {
  return {zone, 6, proto, a, port_a, b, port_b};
}

CtKey key_of(const weft_ct_key& raw) {
  CtKey key;
  key.zone = raw.zone;
  key.family = raw.family;
  key.proto = raw.proto;
  std::memcpy(key.addr_a.data(), raw.addr_a, 16);
  std::memcpy(key.addr_b.data(), raw.addr_b, 16);
  key.port_a = ntohs(raw.port_a);
  key.port_b = ntohs(raw.port_b);
  return key;
}

// The fields of weft_ct_entry a test can predict (not the timestamps).
struct CtState {
  std::uint8_t state = 0;
  bool orig_is_a = false;
  std::uint32_t orig_ifindex = 0;
  std::uint32_t reply_ifindex = 0;
  std::uint64_t packets_orig = 0;
  std::uint64_t packets_reply = 0;
  std::uint64_t bytes_orig = 0;
  std::uint64_t bytes_reply = 0;
  std::uint8_t flags_orig = 0;
  std::uint8_t flags_reply = 0;
  std::uint16_t l4_key = 0;
  std::uint32_t generation = 0;

  bool operator==(const CtState&) const = default;
};

std::ostream& operator<<(std::ostream& out, const CtState& s) {
  static const char* const kStates[] = {"?", "NEW", "ESTABLISHED", "CLOSING", "CLOSED"};
  return out << "{" << (s.state < 5 ? kStates[s.state] : "?") << " orig_is_a " << s.orig_is_a
             << " orig " << ifname(s.orig_ifindex) << " reply " << ifname(s.reply_ifindex)
             << " packets " << s.packets_orig << "/" << s.packets_reply << " bytes " << s.bytes_orig
             << "/" << s.bytes_reply << " tcp_flags 0x" << std::hex << int(s.flags_orig) << "/0x"
             << int(s.flags_reply) << " l4_key 0x" << s.l4_key << std::dec << " generation "
             << s.generation << "}";
}

CtState state_of(const weft_ct_entry& e) {
  return {e.state,        e.orig_is_a != 0, e.orig_ifindex, e.reply_ifindex,
          e.packets[0],   e.packets[1],     e.bytes[0],     e.bytes[1],
          e.tcp_flags[0], e.tcp_flags[1],   e.l4_key,       e.generation};
}

// CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
std::uint64_t monotonic_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1000000000ull +
         static_cast<std::uint64_t>(now.tv_nsec);
}

Bytes join(Bytes head, const Bytes& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

Counts operator+(Counts a, const Counts& b) {
  for (const auto& [what, packets] : b)
    a[what] += packets;
  return a;
}

// --- the fixture --------------------------------------------------------------------

// Policy ids of these tests (kOpenPolicy, 1, is the fixture's).
constexpr std::uint32_t kClientPolicy = 10;
constexpr std::uint32_t kServerPolicy = 11;
constexpr std::uint32_t kOtherPolicy = 12;
constexpr std::uint32_t kGeneration = 7;

class SgTest : public PortProgTest {
protected:
  // The client A, the server B, a third port C, all in blue.
  VmPort& a = vm1;
  VmPort& b = vm2;
  VmPort& c = vm3;

  void SetUp() override {
    PortProgTest::SetUp();
    if (HasFatalFailure())
      return;
    set_sg_generation(kGeneration);
  }

  // The client may open, and the server accept, one kind of connection and
  // nothing else: the client's egress and the server's ingress each have one
  // rule (0), of `proto` and port block (or ICMP type) to or from anyone.
  void allow_one_way(VmPort& client, VmPort& server, std::uint8_t family, std::uint8_t proto,
                     std::uint16_t block_start, std::uint32_t block_prefix_len,
                     bool stateful = true) {
    const char* anyone = family == 4 ? "0.0.0.0/0" : "::/0";
    put_sg_l4(kClientPolicy, WEFT_DIR_EGRESS, family, proto, block_start, block_prefix_len, {0});
    put_sg_remote(kClientPolicy, WEFT_DIR_EGRESS, anyone, {0});
    put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, family, proto, block_start, block_prefix_len, {0});
    put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, anyone, {0});
    set_policy(client, kClientPolicy, stateful);
    set_policy(server, kServerPolicy, stateful);
  }

  // TCP or UDP to one port.
  void allow_one_way(VmPort& client, VmPort& server, std::uint8_t proto, std::uint16_t port,
                     bool stateful = true) {
    allow_one_way(client, server, 4, proto, port, 16, stateful);
  }

  std::map<CtKey, weft_ct_entry> connections() const {
    std::map<CtKey, weft_ct_entry> all;
    for (const auto& [raw, entry] : ct_entries()) {
      EXPECT_EQ(raw.pad[0] | raw.pad[1], 0) << "key padding must be zero";
      all[key_of(raw)] = entry;
    }
    return all;
  }

  // The entry of `key`, failing the test when there is none.
  CtState connection(const CtKey& key) const {
    auto all = connections();
    auto found = all.find(key);
    if (found == all.end()) {
      ADD_FAILURE() << "no connection " << key;
      return {};
    }
    return state_of(found->second);
  }

  static Counts forwarded(const VmPort& from, const VmPort& to, std::uint64_t packets = 1) {
    return {{{from.device, "forward-unicast"}, packets}, {{to.device, "delivered"}, packets}};
  }

  // --- frames ---

  // Between the ports' own addresses, unless `src` or `dst` is given.
  static Bytes tcp(const VmPort& from, const VmPort& to, std::uint16_t sport, std::uint16_t dport,
                   std::uint8_t flags, Ipv4Address src = 0, Ipv4Address dst = 0) {
    return PacketBuilder()
        .eth(to.mac, from.mac)
        .ipv4(src ? src : from.ip, dst ? dst : to.ip)
        .tcp(sport, dport, flags)
        .build();
  }

  static Bytes udp(const VmPort& from, const VmPort& to, std::uint16_t sport, std::uint16_t dport,
                   Ipv4Address src = 0) {
    return udp4(from.mac, to.mac, src ? src : from.ip, to.ip, sport, dport);
  }

  static Bytes echo(const VmPort& from, const VmPort& to, std::uint8_t type, std::uint16_t id,
                    Ipv4Address src = 0) {
    return PacketBuilder()
        .eth(to.mac, from.mac)
        .ipv4(src ? src : from.ip, to.ip)
        .icmp(type, 0, std::uint32_t{id} << 16 | 1)
        .payload(Bytes(56, 0x42))
        .build();
  }

  // ICMP with the 4 bytes after the checksum zero (unused in errors), then `body`.
  static Bytes icmp(const VmPort& from, const VmPort& to, std::uint8_t type, std::uint8_t code,
                    Bytes body = Bytes(8, 0)) {
    return PacketBuilder()
        .eth(to.mac, from.mac)
        .ipv4(from.ip, to.ip)
        .icmp(type, code)
        .payload(std::move(body))
        .build();
  }

  // What an ICMP error quotes of a frame: its IP header and 8 bytes more.
  static Bytes quote(const Bytes& frame, std::size_t ip_header_len) {
    auto ip = frame.begin() + 14;
    return Bytes(ip, ip + static_cast<std::ptrdiff_t>(ip_header_len + 8));
  }

  static Bytes tcp6(const VmPort& from, const VmPort& to, std::uint16_t sport, std::uint16_t dport,
                    std::uint8_t flags) {
    return PacketBuilder()
        .eth(to.mac, from.mac)
        .ipv6(link_local(from.mac), link_local(to.mac))
        .tcp(sport, dport, flags)
        .build();
  }

  static Bytes udp6(const VmPort& from, const VmPort& to, std::uint16_t sport,
                    std::uint16_t dport) {
    return PacketBuilder()
        .eth(to.mac, from.mac)
        .ipv6(link_local(from.mac), link_local(to.mac))
        .udp(sport, dport)
        .payload(Bytes(32, 0xab))
        .build();
  }

  static Bytes icmp6(const VmPort& from, const VmPort& to, std::uint8_t type, std::uint8_t code,
                     Bytes body) {
    return PacketBuilder()
        .eth(to.mac, from.mac)
        .ipv6(link_local(from.mac), link_local(to.mac))
        .icmpv6(type, code, std::move(body))
        .build();
  }

  // Sets the IPv4 header checksum of a frame.
  static Bytes with_ipv4_checksum(Bytes frame) {
    constexpr std::size_t ip = 14;
    std::size_t header_len = (frame.at(ip) & 0x0fu) * std::size_t{4};
    frame.at(ip + 10) = 0;
    frame.at(ip + 11) = 0;
    std::uint16_t sum = static_cast<std::uint16_t>(~checksum_fold(
        checksum_add(0, std::span<const std::uint8_t>(frame.data() + ip, header_len))));
    frame.at(ip + 10) = static_cast<std::uint8_t>(sum >> 8);
    frame.at(ip + 11) = static_cast<std::uint8_t>(sum);
    return frame;
  }

  // The IPv4 frame with its fragment field (flags and offset) replaced.
  // The IPv4 frame with another identification (another datagram).
  static Bytes with_ip_id(Bytes frame, std::uint16_t id) {
    frame.at(14 + 4) = static_cast<std::uint8_t>(id >> 8);
    frame.at(14 + 5) = static_cast<std::uint8_t>(id);
    return with_ipv4_checksum(std::move(frame));
  }

  static Bytes with_fragment_field(Bytes frame, std::uint16_t field) {
    frame.at(14 + 6) = static_cast<std::uint8_t>(field >> 8);
    frame.at(14 + 7) = static_cast<std::uint8_t>(field);
    return with_ipv4_checksum(std::move(frame));
  }

  // The IPv4 frame with 4 bytes of IP options (NOP, NOP, NOP, end of list).
  static Bytes with_ip_options(const Bytes& frame) {
    constexpr std::size_t ip = 14;
    Bytes out(frame.begin(), frame.begin() + ip + 20);
    out.insert(out.end(), {1, 1, 1, 0});
    out.insert(out.end(), frame.begin() + ip + 20, frame.end());
    out.at(ip) = 0x46;
    std::uint16_t total_length = static_cast<std::uint16_t>(out.size() - ip);
    out.at(ip + 2) = static_cast<std::uint8_t>(total_length >> 8);
    out.at(ip + 3) = static_cast<std::uint8_t>(total_length);
    return with_ipv4_checksum(std::move(out));
  }
};

constexpr std::uint16_t kMoreFragments = 0x2000;
constexpr std::uint16_t kOffset1480 = 1480 / 8; // a later fragment, the last one

// --- no groups: Neutron's fixed traffic only ------------------------------------------

TEST_F(SgTest, NoGroupsDropsTcpAndPingAtTheSendersEgress) {
  // The loader marks a port without groups stateless; either way, no rule.
  for (bool stateful : {false, true}) {
    SCOPED_TRACE(stateful ? "stateful" : "stateless");
    set_policy(a, 0, stateful);
    set_policy(b, 0, stateful);
    EXPECT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn)).retval, TC_ACT_SHOT);
    EXPECT_EQ(run(a, echo(a, b, kIcmpEchoRequest, 1)).retval, TC_ACT_SHOT);
  }
  EXPECT_EQ(counts(), one(a, WEFT_DROP_SG_EGRESS, 4));
  EXPECT_TRUE(connections().empty());
}

TEST_F(SgTest, NoGroupsStillPassesDhcp) {
  // c is the network's DHCP port: port security off, like Neutron's.
  set_policy(a, 0, false);
  set_policy(b, 0, false);
  c.security = false;
  write_port(c);
  Bytes discover = udp4(a.mac, kBroadcastMac, ipv4("0.0.0.0"), ipv4("255.255.255.255"), 68, 67,
                        dhcp_discover(a.mac));
  Bytes offer_broadcast =
      udp4(c.mac, kBroadcastMac, c.ip, ipv4("255.255.255.255"), 67, 68, dhcp_offer(a.mac));
  Bytes offer_unicast = udp4(c.mac, b.mac, c.ip, b.ip, 67, 68, dhcp_offer(b.mac));
  Bytes renew = udp4(a.mac, c.mac, a.ip, c.ip, 68, 67, dhcp_discover(a.mac));
  Wire c_side(peer_name(c.device));

  // The client's discovery reaches the DHCP port, not the other VM (its
  // ingress has no rule for a client's traffic).
  EXPECT_EQ(run(a, discover).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), (Counts{{{a.device, "forward-flood"}, 1},
                              {{b.device, "drop-sg-ingress"}, 1},
                              {{c.device, "delivered"}, 1}}));
  EXPECT_TRUE(c_side.receives(discover, 1s));
  // Server replies reach ports without groups, broadcast or unicast.
  EXPECT_EQ(run(c, offer_broadcast).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(c, offer_unicast).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, renew).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(), (Counts{{{a.device, "forward-flood"}, 1},
                              {{b.device, "drop-sg-ingress"}, 1},
                              {{c.device, "delivered"}, 2},
                              {{c.device, "forward-flood"}, 1},
                              {{a.device, "delivered"}, 1},
                              {{b.device, "delivered"}, 2},
                              {{c.device, "forward-unicast"}, 1},
                              {{a.device, "forward-unicast"}, 1}}));
  EXPECT_TRUE(connections().empty());
}

TEST_F(SgTest, NoGroupsStillPassesDhcpv6) {
  set_policy(a, 0, false);
  set_policy(b, 0, false);
  c.security = false;
  write_port(c);
  Bytes solicit = PacketBuilder()
                      .eth(mac("33:33:00:01:00:02"), a.mac)
                      .ipv6(link_local(a.mac), ipv6("ff02::1:2"))
                      .udp(546, 547)
                      .payload({1, 0x12, 0x34, 0x56})
                      .build();
  Bytes advertise = PacketBuilder()
                        .eth(a.mac, c.mac)
                        .ipv6(link_local(c.mac), link_local(a.mac))
                        .udp(547, 546)
                        .payload(dhcpv6_advertise())
                        .build();

  EXPECT_EQ(run(a, solicit).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(c, advertise).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(), (Counts{{{a.device, "forward-flood"}, 1},
                              {{b.device, "drop-sg-ingress"}, 1},
                              {{c.device, "delivered"}, 1}}) +
                          forwarded(c, a));
}

TEST_F(SgTest, NoGroupsStillPassesArp) {
  for (VmPort* port : {&a, &b, &c})
    set_policy(*port, 0, false);
  Bytes unknown_target = arp_request(a, ipv4("10.0.0.99"));
  Bytes reply = PacketBuilder().eth(b.mac, a.mac).arp(kArpReply, a.mac, a.ip, b.mac, b.ip).build();

  EXPECT_EQ(run(a, unknown_target).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(a, reply).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, arp_request(a, b.ip)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(), (Counts{{{a.device, "forward-flood"}, 1},
                              {{b.device, "delivered"}, 2},
                              {{c.device, "delivered"}, 1},
                              {{a.device, "forward-unicast"}, 1},
                              {{a.device, "arp-reply"}, 1}}));
}

TEST_F(SgTest, NoGroupsStillPassesNeighbourDiscoveryButNotOtherIcmpv6In) {
  for (VmPort* port : {&a, &b, &c})
    set_policy(*port, 0, false);
  Bytes solicit_body(4, 0); // reserved, target, source link-layer address
  Ipv6Address target = link_local(b.mac);
  solicit_body.insert(solicit_body.end(), target.begin(), target.end());
  solicit_body.insert(solicit_body.end(), {1, 1});
  solicit_body.insert(solicit_body.end(), a.mac.begin(), a.mac.end());
  Bytes solicit = PacketBuilder()
                      .eth(mac("33:33:ff:00:01:02"), a.mac)
                      .ipv6(link_local(a.mac), ipv6("ff02::1:ff00:102"), 255)
                      .icmpv6(kIcmpv6NeighborSolicit, 0, solicit_body)
                      .build();
  Bytes dad = PacketBuilder()
                  .eth(mac("33:33:ff:00:01:01"), a.mac)
                  .ipv6(ipv6("::"), ipv6("ff02::1:ff00:101"), 255)
                  .icmpv6(kIcmpv6NeighborSolicit, 0, Bytes(20, 0))
                  .build();
  Bytes advert_body = {0x60, 0, 0, 0}; // solicited, override; target; target address
  advert_body.insert(advert_body.end(), target.begin(), target.end());
  advert_body.insert(advert_body.end(), {2, 1});
  advert_body.insert(advert_body.end(), b.mac.begin(), b.mac.end());
  Bytes advert = PacketBuilder()
                     .eth(a.mac, b.mac)
                     .ipv6(link_local(b.mac), link_local(a.mac), 255)
                     .icmpv6(kIcmpv6NeighborAdvert, 0, advert_body)
                     .build();
  Bytes echo_request = icmp6(a, b, kIcmpv6EchoRequest, 0, {0x12, 0x34, 0, 1});

  EXPECT_EQ(run(a, solicit).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(a, dad).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(b, advert).retval, TC_ACT_REDIRECT);
  // Any ICMPv6 but RAs may leave; only ND, MLD queries and RAs come in.
  EXPECT_EQ(run(a, echo_request).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), (Counts{{{a.device, "forward-flood"}, 2},
                              {{b.device, "delivered"}, 2},
                              {{c.device, "delivered"}, 2},
                              {{b.device, "forward-unicast"}, 1},
                              {{a.device, "delivered"}, 1},
                              {{b.device, "drop-sg-ingress"}, 1}}));
}

TEST_F(SgTest, RouterAdvertisementFromTheNetworksRouterPassesIngress) {
  // c is the router's port (port security off); a and b have no groups.
  set_policy(a, 0, false);
  set_policy(b, 0, false);
  c.security = false;
  write_port(c);
  Bytes advert = PacketBuilder()
                     .eth(kIpv6AllNodesMac, c.mac)
                     .ipv6(link_local(c.mac), ipv6("ff02::1"), 255)
                     .icmpv6(kIcmpv6RouterAdvert, 0, router_advert_body(c.mac))
                     .build();
  Bytes unicast_advert = PacketBuilder()
                             .eth(a.mac, c.mac)
                             .ipv6(link_local(c.mac), link_local(a.mac), 255)
                             .icmpv6(kIcmpv6RouterAdvert, 0, router_advert_body(c.mac))
                             .build();
  Bytes mld_query = PacketBuilder()
                        .eth(kIpv6AllNodesMac, c.mac)
                        .ipv6(link_local(c.mac), ipv6("ff02::1"), 1)
                        .icmpv6(130, 0, Bytes(20, 0))
                        .build();

  EXPECT_EQ(run(c, advert).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(c, unicast_advert).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(c, mld_query).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), (Counts{{{c.device, "forward-flood"}, 2},
                              {{c.device, "forward-unicast"}, 1},
                              {{a.device, "delivered"}, 3},
                              {{b.device, "delivered"}, 2}}));
}

// --- rules ---------------------------------------------------------------------------

TEST_F(SgTest, ProtocolRuleAdmitsOnlyItsProtocol) {
  // Neutron's "ingress, protocol icmp (or 1)": a may send anything.
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoIcmp, 0, 0, {0});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "0.0.0.0/0", {0});
  set_policy(b, kServerPolicy, true);

  EXPECT_EQ(run(a, echo(a, b, kIcmpEchoRequest, 1)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(a, udp(a, b, 40000, 53)).retval, TC_ACT_SHOT);
  // Charged to the port whose rules refused it.
  EXPECT_EQ(counts(), forwarded(a, b) + one(b, WEFT_DROP_SG_INGRESS, 2));
}

TEST_F(SgTest, SctpRuleGivenByNumberAdmitsItsPort) {
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoSctp, 5000, 16, {0});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "0.0.0.0/0", {0});
  set_policy(b, kServerPolicy, true);
  auto sctp = [&](std::uint16_t dport) {
    // The common header: ports, verification tag, checksum (not checked).
    Bytes header = {0x9c,
                    0x40,
                    static_cast<std::uint8_t>(dport >> 8),
                    static_cast<std::uint8_t>(dport),
                    0,
                    0,
                    0,
                    1,
                    0,
                    0,
                    0,
                    0};
    return PacketBuilder()
        .eth(b.mac, a.mac)
        .ipv4(a.ip, b.ip, 64, kIpProtoSctp)
        .payload(header)
        .build();
  };

  EXPECT_EQ(run(a, sctp(5000)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, sctp(5001)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(a, udp(a, b, 40000, 5000)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b) + one(b, WEFT_DROP_SG_INGRESS, 2));
}

TEST_F(SgTest, PortRangeRuleAdmitsItsRangeOnly) {
  // tcp 80-83: one block, 80/14.
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 80, 14, {0});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "0.0.0.0/0", {0});
  set_policy(b, kServerPolicy, true);

  for (std::uint16_t port : {80, 81, 82, 83}) {
    SCOPED_TRACE(port);
    EXPECT_EQ(run(a, tcp(a, b, 40000, port, kTcpSyn)).retval, TC_ACT_REDIRECT);
  }
  for (std::uint16_t port : {79, 84, 8080}) {
    SCOPED_TRACE(port);
    EXPECT_EQ(run(a, tcp(a, b, 40000, port, kTcpSyn)).retval, TC_ACT_SHOT);
  }
  EXPECT_EQ(run(a, udp(a, b, 40000, 80)).retval, TC_ACT_SHOT); // another protocol
  EXPECT_EQ(counts(), forwarded(a, b, 4) + one(b, WEFT_DROP_SG_INGRESS, 4));
}

// Each admitted first packet counts a hit on the lowest rule that matched it.
TEST_F(SgTest, TheDecidingRuleCountsAHit) {
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 3000, 16, {0, 1});
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 3000, 15, {1});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "10.0.0.1/32", {0});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "10.0.0.3/32", {1});
  set_policy(b, kServerPolicy, true);
  auto hits = [&](std::uint32_t rule) {
    weft_sg_hit_key key{kServerPolicy, rule};
    std::vector<std::uint64_t> per_cpu(static_cast<std::size_t>(libbpf_num_possible_cpus()));
    if (bpf_map__lookup_elem(maps().sg_hits, &key, sizeof key, per_cpu.data(),
                             per_cpu.size() * sizeof(std::uint64_t), 0) != 0)
      return std::uint64_t{0};
    std::uint64_t sum = 0;
    for (auto n : per_cpu)
      sum += n;
    return sum;
  };

  ASSERT_EQ(run(a, tcp(a, b, 40000, 3000, kTcpSyn)).retval, TC_ACT_REDIRECT); // rule 0
  ASSERT_EQ(run(c, tcp(c, b, 40000, 3001, kTcpSyn)).retval, TC_ACT_REDIRECT); // rule 1
  ASSERT_EQ(run(c, tcp(c, b, 40001, 3000, kTcpSyn)).retval, TC_ACT_REDIRECT); // rule 1
  // The established reply decides nothing: conntrack admits it.
  ASSERT_EQ(run(b, tcp(b, a, 3000, 40000, kTcpSyn | kTcpAck)).retval, TC_ACT_REDIRECT);
  ASSERT_EQ(run(a, tcp(a, b, 40000, 3001, kTcpSyn)).retval, TC_ACT_SHOT); // no rule
  EXPECT_EQ(hits(0), 1u);
  EXPECT_EQ(hits(1), 2u);
}

TEST_F(SgTest, OverlappingRulesEachAdmitTheirOwnClients) {
  // Rule 0: tcp 3000 from a; rule 1: tcp 3000-3002 from c (blocks 3000/15
  // and 3002/16). The block 3000/16 satisfies both rules.
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 3000, 16, {0, 1});
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 3000, 15, {1});
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 3002, 16, {1});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "10.0.0.1/32", {0});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "10.0.0.3/32", {1});
  set_policy(b, kServerPolicy, true);

  EXPECT_EQ(run(a, tcp(a, b, 40000, 3000, kTcpSyn)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 3001, kTcpSyn)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 3002, kTcpSyn)).retval, TC_ACT_SHOT);
  for (std::uint16_t port : {3000, 3001, 3002}) {
    SCOPED_TRACE(port);
    EXPECT_EQ(run(c, tcp(c, b, 40000, port, kTcpSyn)).retval, TC_ACT_REDIRECT);
  }
  EXPECT_EQ(run(c, tcp(c, b, 40000, 2999, kTcpSyn)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(c, tcp(c, b, 40000, 3003, kTcpSyn)).retval, TC_ACT_SHOT);
  Counts from_c = {{{c.device, "forward-unicast"}, 3}, {{b.device, "delivered"}, 3}};
  EXPECT_EQ(counts(), forwarded(a, b) + from_c + one(b, WEFT_DROP_SG_INGRESS, 4));
}

TEST_F(SgTest, IcmpTypeRuleAdmitsEveryCodeOfItsTypeOnly) {
  // ingress icmp, port_range_min 8 (echo request), no code: block 0x0800/8.
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoIcmp, icmp_l4(kIcmpEchoRequest, 0), 8, {0});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "0.0.0.0/0", {0});
  set_policy(b, kServerPolicy, true);
  Bytes echo_code_5 = echo(a, b, kIcmpEchoRequest, 2);
  echo_code_5[14 + 20 + 1] = 5; // the checksum is not the program's business

  EXPECT_EQ(run(a, echo(a, b, kIcmpEchoRequest, 1)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, echo_code_5).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, icmp(a, b, kIcmpTimestampRequest, 0, Bytes(16, 0))).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b, 2) + one(b, WEFT_DROP_SG_INGRESS));
}

TEST_F(SgTest, IcmpTypeAndCodeRuleAdmitsOnlyThatCode) {
  // ingress icmp type 3 code 3 (port unreachable): block 0x0303/16. The
  // ports are stateless: no connection the errors could be related to.
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoIcmp,
            icmp_l4(kIcmpDestUnreach, kIcmpPortUnreach), 16, {0});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "0.0.0.0/0", {0});
  set_policy(a, kOpenPolicy, false);
  set_policy(b, kServerPolicy, false);
  // b sent a datagram to a closed port of a's; a reports it.
  Bytes quoted = quote(udp(b, a, 40000, 9), 20);

  EXPECT_EQ(run(a, icmp(a, b, kIcmpDestUnreach, kIcmpPortUnreach, quoted)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, icmp(a, b, kIcmpDestUnreach, kIcmpHostUnreach, quoted)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b) + one(b, WEFT_DROP_SG_INGRESS));
}

TEST_F(SgTest, RemotePrefixRuleAdmitsOnlyItsSources) {
  // Any protocol from 10.0.0.0/24; a also owns 10.0.0.5 and 10.1.0.5.
  add_fixed_ip(a, ipv4("10.0.0.5"));
  add_fixed_ip(a, ipv4("10.1.0.5"));
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, WEFT_PROTO_ANY, 0, 0, {0});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "10.0.0.0/24", {0});
  set_policy(b, kServerPolicy, true);

  EXPECT_EQ(run(a, udp(a, b, 40000, 53, ipv4("10.0.0.5"))).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn)).retval, TC_ACT_REDIRECT); // 10.0.0.1
  EXPECT_EQ(run(a, udp(a, b, 40000, 53, ipv4("10.1.0.5"))).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn, ipv4("10.1.0.5"))).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b, 2) + one(b, WEFT_DROP_SG_INGRESS, 2));
}

TEST_F(SgTest, NestedRemotePrefixesGiveAnAddressEveryRuleThatContainsIt) {
  // Rule 0: tcp 22 from 10.0.0.0/8; rule 1: tcp 80 from 10.0.0.0/24. An
  // address in the /24 satisfies both rules, one only in the /8 just rule 0.
  add_fixed_ip(a, ipv4("10.0.0.5"));
  add_fixed_ip(a, ipv4("10.1.0.5"));
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 22, 16, {0});
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 80, 16, {1});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "10.0.0.0/8", {0});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "10.0.0.0/24", {0, 1});
  set_policy(b, kServerPolicy, true);
  const Ipv4Address inner = ipv4("10.0.0.5");
  const Ipv4Address outer = ipv4("10.1.0.5");

  EXPECT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn, inner)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 80, kTcpSyn, inner)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn, outer)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 80, kTcpSyn, outer)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 443, kTcpSyn, inner)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b, 3) + one(b, WEFT_DROP_SG_INGRESS, 2));
}

TEST_F(SgTest, EgressRemotePrefixIsTheDestination) {
  put_sg_l4(kClientPolicy, WEFT_DIR_EGRESS, 4, WEFT_PROTO_ANY, 0, 0, {0});
  put_sg_remote(kClientPolicy, WEFT_DIR_EGRESS, "10.0.0.2/32", {0});
  set_policy(a, kClientPolicy, true);

  EXPECT_EQ(run(a, udp(a, b, 40000, 53)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, udp(a, c, 40000, 53)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b) + one(a, WEFT_DROP_SG_EGRESS));
}

TEST_F(SgTest, Ipv6RuleMatchesIpv6Only) {
  // ethertype IPv6, tcp 22, from fe80::/64.
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 6, kIpProtoTcp, 22, 16, {0});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "fe80::/64", {0});
  set_policy(b, kServerPolicy, true);
  Bytes syn6 = tcp6(a, b, 40000, 22, kTcpSyn);

  EXPECT_EQ(run(a, syn6).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(a, tcp6(a, b, 40000, 80, kTcpSyn)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(a, icmp6(a, b, kIcmpv6EchoRequest, 0, {0, 1, 0, 1})).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b) + one(b, WEFT_DROP_SG_INGRESS, 3));
  // a's link-local address is the lower one: side a of the key.
  auto all = connections();
  ASSERT_EQ(all.size(), 1u);
  CtKey key = ct_key6(kBlue, kIpProtoTcp, link_local(a.mac), 40000, link_local(b.mac), 22);
  EXPECT_EQ(all.begin()->first, key);
  EXPECT_EQ(connection(key), (CtState{WEFT_CT_NEW, true, a.ifindex, b.ifindex, 1, 0, syn6.size(), 0,
                                      kTcpSyn, 0, 22, kGeneration}));
}

TEST_F(SgTest, AnyProtocolRuleWithRemotePrefix) {
  // Rule 0: any protocol from 10.0.0.5; rule 1: tcp 22 from anyone. The
  // loader puts rule 0 into the tcp entry too: a named protocol's entries
  // hold the rules of any protocol.
  add_fixed_ip(a, ipv4("10.0.0.5"));
  add_fixed_ip(a, ipv4("10.1.0.5"));
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, WEFT_PROTO_ANY, 0, 0, {0});
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 22, 16, {0, 1});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "0.0.0.0/0", {1});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "10.0.0.5/32", {0, 1});
  set_policy(b, kServerPolicy, true);
  const Ipv4Address member = ipv4("10.0.0.5");
  const Ipv4Address other = ipv4("10.1.0.5");

  EXPECT_EQ(run(a, udp(a, b, 40000, 53, member)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 80, kTcpSyn, member)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn, member)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, echo(a, b, kIcmpEchoRequest, 1, member)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn, other)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, udp(a, b, 40000, 53, other)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 80, kTcpSyn, other)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(a, echo(a, b, kIcmpEchoRequest, 1, other)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b, 5) + one(b, WEFT_DROP_SG_INGRESS, 3));
}

// --- connection tracking ------------------------------------------------------------

TEST_F(SgTest, TcpConnectionIsTrackedThroughItsStates) {
  allow_one_way(a, b, kIpProtoTcp, 22);
  const CtKey key = ct_key4(kBlue, kIpProtoTcp, a.ip, 40000, b.ip, 22);
  Bytes syn = tcp(a, b, 40000, 22, kTcpSyn);
  Bytes syn_ack = tcp(b, a, 22, 40000, kTcpSyn | kTcpAck);
  Bytes ack = tcp(a, b, 40000, 22, kTcpAck);
  Bytes fin = tcp(a, b, 40000, 22, kTcpFin | kTcpAck);
  Bytes ack_back = tcp(b, a, 22, 40000, kTcpAck);
  Bytes rst = tcp(b, a, 22, 40000, kTcpRst);

  ASSERT_EQ(run(a, syn).retval, TC_ACT_REDIRECT);
  auto all = connections();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all.begin()->first, key);
  EXPECT_EQ(state_of(all.begin()->second), (CtState{WEFT_CT_NEW, true, a.ifindex, b.ifindex, 1, 0,
                                                    syn.size(), 0, kTcpSyn, 0, 22, kGeneration}));
  EXPECT_GT(all.begin()->second.created_ns, 0u);
  EXPECT_EQ(all.begin()->second.last_seen_ns, all.begin()->second.created_ns);

  // The reply passes with no egress rule on b and no ingress rule on a.
  ASSERT_EQ(run(b, syn_ack).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key),
            (CtState{WEFT_CT_ESTABLISHED, true, a.ifindex, b.ifindex, 1, 1, syn.size(),
                     syn_ack.size(), kTcpSyn, kTcpSyn | kTcpAck, 22, kGeneration}));

  ASSERT_EQ(run(a, ack).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key).state, WEFT_CT_ESTABLISHED);
  EXPECT_EQ(connection(key).packets_orig, 2u);

  ASSERT_EQ(run(a, fin).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key).state, WEFT_CT_CLOSING);
  ASSERT_EQ(run(b, ack_back).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key).state, WEFT_CT_CLOSING);

  ASSERT_EQ(run(b, rst).retval, TC_ACT_REDIRECT);
  CtState closed = connection(key);
  EXPECT_EQ(
      closed,
      (CtState{WEFT_CT_CLOSED, true, a.ifindex, b.ifindex, 3, 3,
               syn.size() + ack.size() + fin.size(), syn_ack.size() + ack_back.size() + rst.size(),
               kTcpSyn | kTcpAck | kTcpFin, kTcpSyn | kTcpAck | kTcpRst, 22, kGeneration}));
  all = connections();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_GE(all.begin()->second.last_seen_ns, all.begin()->second.created_ns);
  EXPECT_EQ(counts(), forwarded(a, b, 3) + forwarded(b, a, 3));
}

TEST_F(SgTest, TcpFinBothWaysClosesTheConnection) {
  allow_one_way(a, b, kIpProtoTcp, 22);
  const CtKey key = ct_key4(kBlue, kIpProtoTcp, a.ip, 40000, b.ip, 22);

  ASSERT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn)).retval, TC_ACT_REDIRECT);
  ASSERT_EQ(run(b, tcp(b, a, 22, 40000, kTcpSyn | kTcpAck)).retval, TC_ACT_REDIRECT);
  ASSERT_EQ(run(b, tcp(b, a, 22, 40000, kTcpFin | kTcpAck)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key).state, WEFT_CT_CLOSING);
  ASSERT_EQ(run(a, tcp(a, b, 40000, 22, kTcpFin | kTcpAck)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key).state, WEFT_CT_CLOSED);
  EXPECT_EQ(counts(), forwarded(a, b, 2) + forwarded(b, a, 2));
}

TEST_F(SgTest, OnlyRepliesPassWithoutRules) {
  allow_one_way(a, b, kIpProtoTcp, 22);

  ASSERT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(b, tcp(b, a, 22, 40000, kTcpSyn | kTcpAck)).retval, TC_ACT_REDIRECT);
  // Not replies: another client port, another server port, b opening its own.
  EXPECT_EQ(run(b, tcp(b, a, 22, 40001, kTcpSyn | kTcpAck)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(b, tcp(b, a, 23, 40000, kTcpSyn | kTcpAck)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(b, tcp(b, a, 40000, 22, kTcpSyn)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b) + forwarded(b, a) + one(b, WEFT_DROP_SG_EGRESS, 3));
  EXPECT_EQ(connections().size(), 1u);
}

TEST_F(SgTest, RstWithoutConnectionIsInvalid) {
  allow_one_way(a, b, kIpProtoTcp, 22);

  EXPECT_EQ(run(a, tcp(a, b, 40000, 22, kTcpRst)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 22, kTcpRst | kTcpAck)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(b, tcp(b, a, 22, 40000, kTcpRst | kTcpAck)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(a, WEFT_DROP_CT_INVALID, 2) + one(b, WEFT_DROP_CT_INVALID));
  EXPECT_TRUE(connections().empty());
}

TEST_F(SgTest, MidStreamPacketIsPickedUpAsEstablished) {
  // A session that predates the rule (or the fabric): its next segment opens
  // an established connection, as Linux conntrack's loose pickup does.
  allow_one_way(a, b, kIpProtoTcp, 22);
  const CtKey key = ct_key4(kBlue, kIpProtoTcp, a.ip, 40000, b.ip, 22);
  Bytes ack = tcp(a, b, 40000, 22, kTcpAck | kTcpPsh);
  Bytes ack_back = tcp(b, a, 22, 40000, kTcpAck);

  ASSERT_EQ(run(a, ack).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key), (CtState{WEFT_CT_ESTABLISHED, true, a.ifindex, b.ifindex, 1, 0,
                                      ack.size(), 0, kTcpAck | kTcpPsh, 0, 22, kGeneration}));
  ASSERT_EQ(run(b, ack_back).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key),
            (CtState{WEFT_CT_ESTABLISHED, true, a.ifindex, b.ifindex, 1, 1, ack.size(),
                     ack_back.size(), kTcpAck | kTcpPsh, kTcpAck, 22, kGeneration}));
  // Only where the rules admit it: b's side of another session is not.
  EXPECT_EQ(run(b, tcp(b, a, 22, 40001, kTcpAck)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b) + forwarded(b, a) + one(b, WEFT_DROP_SG_EGRESS));
  EXPECT_EQ(connections().size(), 1u);
}

TEST_F(SgTest, UdpRequestAndResponseAreTracked) {
  allow_one_way(a, b, kIpProtoUdp, 53);
  const CtKey key = ct_key4(kBlue, kIpProtoUdp, a.ip, 40000, b.ip, 53);
  Bytes request = udp(a, b, 40000, 53);
  Bytes response = udp(b, a, 53, 40000);

  ASSERT_EQ(run(a, request).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key), (CtState{WEFT_CT_NEW, true, a.ifindex, b.ifindex, 1, 0, request.size(),
                                      0, 0, 0, 53, kGeneration}));
  ASSERT_EQ(run(b, response).retval, TC_ACT_REDIRECT);
  ASSERT_EQ(run(a, request).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key), (CtState{WEFT_CT_ESTABLISHED, true, a.ifindex, b.ifindex, 2, 1,
                                      2 * request.size(), response.size(), 0, 0, 53, kGeneration}));
  // From another port of b's: not the response.
  EXPECT_EQ(run(b, udp(b, a, 54, 40000)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b, 2) + forwarded(b, a) + one(b, WEFT_DROP_SG_EGRESS));
  EXPECT_EQ(connections().size(), 1u);
}

TEST_F(SgTest, IcmpEchoIsTrackedByItsIdentifier) {
  allow_one_way(a, b, 4, kIpProtoIcmp, icmp_l4(kIcmpEchoRequest, 0), 8);
  // An echo is keyed as request: identifier -> 0 (and the reply back).
  const CtKey key = ct_key4(kBlue, kIpProtoIcmp, a.ip, 0x1234, b.ip, 0);
  Bytes request = echo(a, b, kIcmpEchoRequest, 0x1234);
  Bytes reply = echo(b, a, kIcmpEchoReply, 0x1234);

  ASSERT_EQ(run(a, request).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key), (CtState{WEFT_CT_NEW, true, a.ifindex, b.ifindex, 1, 0, request.size(),
                                      0, 0, 0, 0x0800, kGeneration}));
  ASSERT_EQ(run(b, reply).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key), (CtState{WEFT_CT_ESTABLISHED, true, a.ifindex, b.ifindex, 1, 1,
                                      request.size(), reply.size(), 0, 0, 0x0800, kGeneration}));
  // A reply to another ping is not this ping's reply.
  EXPECT_EQ(run(b, echo(b, a, kIcmpEchoReply, 0x9999)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b) + forwarded(b, a) + one(b, WEFT_DROP_SG_EGRESS));
  EXPECT_EQ(connections().size(), 1u);
}

// Linux conntrack keys ICMP by type as well as identifier: an echo request
// from the side that was pinged is a new connection of its own, which b's
// rules (no egress) do not admit.
TEST_F(SgTest, EchoRequestFromThePingedSideIsNotAReply) {
  allow_one_way(a, b, 4, kIpProtoIcmp, icmp_l4(kIcmpEchoRequest, 0), 8);

  ASSERT_EQ(run(a, echo(a, b, kIcmpEchoRequest, 0x1234)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(b, echo(b, a, kIcmpEchoRequest, 0x1234)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b) + one(b, WEFT_DROP_SG_EGRESS));
}

TEST_F(SgTest, RelatedIcmpErrorPassesWithoutAnIcmpRule) {
  allow_one_way(a, b, kIpProtoUdp, 53);
  Bytes request = udp(a, b, 40000, 53);
  Bytes untracked = udp(a, b, 40000, 54);

  ASSERT_EQ(run(a, request).retval, TC_ACT_REDIRECT);
  // b answers "port unreachable", quoting a's datagram.
  EXPECT_EQ(run(b, icmp(b, a, kIcmpDestUnreach, kIcmpPortUnreach, quote(request, 20))).retval,
            TC_ACT_REDIRECT);
  // About a datagram that was never admitted: nothing to relate it to.
  EXPECT_EQ(run(b, icmp(b, a, kIcmpDestUnreach, kIcmpPortUnreach, quote(untracked, 20))).retval,
            TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b) + forwarded(b, a) + one(b, WEFT_DROP_SG_EGRESS));
  // The error is not a connection of its own.
  auto all = connections();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all.begin()->first, ct_key4(kBlue, kIpProtoUdp, a.ip, 40000, b.ip, 53));
}

TEST_F(SgTest, RelatedIcmpv6ErrorPassesWithoutAnIcmpRule) {
  // ICMPv6 always leaves; a's ingress (no rules) is what must relate it.
  allow_one_way(a, b, 6, kIpProtoUdp, 53, 16);
  Bytes request = udp6(a, b, 40000, 53);
  Bytes untracked = udp6(a, b, 40000, 54);
  Bytes unused(4, 0);

  ASSERT_EQ(run(a, request).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(
      run(b, icmp6(b, a, kIcmpv6DestUnreach, kIcmpv6PortUnreach, join(unused, quote(request, 40))))
          .retval,
      TC_ACT_REDIRECT);
  EXPECT_EQ(run(b, icmp6(b, a, kIcmpv6DestUnreach, kIcmpv6PortUnreach,
                         join(unused, quote(untracked, 40))))
                .retval,
            TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b) + forwarded(b, a) + one(a, WEFT_DROP_SG_INGRESS));
  auto all = connections();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all.begin()->first,
            ct_key6(kBlue, kIpProtoUdp, link_local(a.mac), 40000, link_local(b.mac), 53));
}

TEST_F(SgTest, IcmpErrorAboutATrackedPingIsRelated) {
  allow_one_way(a, b, 4, kIpProtoIcmp, icmp_l4(kIcmpEchoRequest, 0), 8);
  Bytes request = echo(a, b, kIcmpEchoRequest, 0x1234);

  ASSERT_EQ(run(a, request).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(b, icmp(b, a, kIcmpDestUnreach, kIcmpHostUnreach, quote(request, 20))).retval,
            TC_ACT_REDIRECT);
  // About another ping: not related.
  EXPECT_EQ(run(b, icmp(b, a, kIcmpDestUnreach, kIcmpHostUnreach,
                        quote(echo(a, b, kIcmpEchoRequest, 0x4321), 20)))
                .retval,
            TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b) + forwarded(b, a) + one(b, WEFT_DROP_SG_EGRESS));
  EXPECT_EQ(connections().size(), 1u);
}

// RFC 792: an error quotes the internet header, options included, and 64
// bits of data. Linux conntrack finds the connection behind any header length.
TEST_F(SgTest, RelatedIcmpErrorQuotingIpOptionsPasses) {
  allow_one_way(a, b, kIpProtoUdp, 53);
  Bytes request = with_ip_options(udp(a, b, 40000, 53));

  ASSERT_EQ(run(a, request).retval, TC_ACT_REDIRECT);
  ASSERT_EQ(connections().size(), 1u);
  EXPECT_EQ(run(b, icmp(b, a, kIcmpDestUnreach, kIcmpPortUnreach, quote(request, 24))).retval,
            TC_ACT_REDIRECT);
  EXPECT_EQ(counts(), forwarded(a, b) + forwarded(b, a));
}

// Without port security nothing is filtered, so nothing needs parsing past
// the Ethernet header: what security groups could not read still goes.
TEST_F(SgTest, PortSecurityOffForwardsIpThatGroupsCouldNotParse) {
  Bytes options_quoted = PacketBuilder()
                             .eth(vm8.mac, vm7.mac)
                             .ipv4(vm7.ip, vm8.ip)
                             .icmp(kIcmpDestUnreach, kIcmpPortUnreach)
                             .payload(quote(with_ip_options(udp(vm8, vm7, 40000, 53)), 24))
                             .build();
  Bytes short_tcp = PacketBuilder()
                        .eth(vm8.mac, vm7.mac)
                        .ipv4(vm7.ip, vm8.ip, 64, kIpProtoTcp)
                        .payload({0x9c, 0x40})
                        .build();

  EXPECT_EQ(run(vm7, options_quoted).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(vm7, short_tcp).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(), forwarded(vm7, vm8, 2));
}

TEST_F(SgTest, Icmpv6EchoReplyNeedsNoRuleOnThePinger) {
  // ICMPv6 always leaves a port, so only b's ingress rule is checked, and
  // the connection remembers only b; a has no ingress rule.
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 6, kIpProtoIcmpv6, icmp_l4(kIcmpv6EchoRequest, 0), 8,
            {0});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "::/0", {0});
  set_policy(a, kClientPolicy, true);
  set_policy(b, kServerPolicy, true);
  Bytes request = icmp6(a, b, kIcmpv6EchoRequest, 0, {0x12, 0x34, 0, 1});
  Bytes reply = icmp6(b, a, kIcmpv6EchoReply, 0, {0x12, 0x34, 0, 1});
  const CtKey key = ct_key6(kBlue, kIpProtoIcmpv6, link_local(a.mac), 0x1234, link_local(b.mac), 0);

  ASSERT_EQ(run(a, request).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key), (CtState{WEFT_CT_NEW, true, 0, b.ifindex, 1, 0, request.size(), 0, 0,
                                      0, icmp_l4(kIcmpv6EchoRequest, 0), kGeneration}));
  EXPECT_EQ(run(b, reply).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key).state, WEFT_CT_ESTABLISHED);
  // Another identifier is not this ping's reply.
  EXPECT_EQ(run(b, icmp6(b, a, kIcmpv6EchoReply, 0, {0x99, 0x99, 0, 1})).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b) + forwarded(b, a) + one(a, WEFT_DROP_SG_INGRESS));
}

TEST_F(SgTest, BothDirectionsFindTheConnectionWhateverTheAddressOrder) {
  // 10.0.0.1 and 10.0.1.0 order differently as bytes and as host-order
  // words: whichever order the key uses, it must be the same both ways.
  const Ipv4Address server_ip = ipv4("10.0.1.0");
  add_fixed_ip(b, server_ip);
  allow_one_way(a, b, kIpProtoUdp, 53);
  Bytes request = udp4(a.mac, b.mac, a.ip, server_ip, 40000, 53);
  Bytes response = udp4(b.mac, a.mac, server_ip, a.ip, 53, 40000);

  ASSERT_EQ(run(a, request).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(b, response).retval, TC_ACT_REDIRECT);
  auto all = connections();
  ASSERT_EQ(all.size(), 1u);
  const auto& [key, entry] = *all.begin();
  const CtKey as_a = ct_key4(kBlue, kIpProtoUdp, a.ip, 40000, server_ip, 53);
  const CtKey as_b = ct_key4(kBlue, kIpProtoUdp, server_ip, 53, a.ip, 40000);
  EXPECT_TRUE(key == as_a || key == as_b) << key;
  EXPECT_EQ(entry.orig_is_a != 0, key == as_a);
  EXPECT_EQ(state_of(entry).state, WEFT_CT_ESTABLISHED);
  EXPECT_EQ(counts(), forwarded(a, b) + forwarded(b, a));
}

// An ICMP error is related to a connection or it is nothing: Linux conntrack
// never opens a connection for one. One admitted by a rule must not let
// other ICMP messages between the two addresses pass as its "replies".
TEST_F(SgTest, IcmpErrorAdmittedByARuleOpensNoConnection) {
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoIcmp,
            icmp_l4(kIcmpDestUnreach, kIcmpPortUnreach), 16, {0});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "0.0.0.0/0", {0});
  set_policy(b, kServerPolicy, true);
  Bytes quoted = quote(udp(b, a, 40000, 9), 20);

  EXPECT_EQ(run(a, icmp(a, b, kIcmpDestUnreach, kIcmpPortUnreach, quoted)).retval, TC_ACT_REDIRECT);
  EXPECT_TRUE(connections().empty());
  EXPECT_EQ(run(a, icmp(a, b, kIcmpDestUnreach, kIcmpHostUnreach, quoted)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b) + one(b, WEFT_DROP_SG_INGRESS));
}

TEST_F(SgTest, ConnectionsAreZonedPerNetwork) {
  // Red repeats blue's addresses: vm5 also has 10.0.0.1 and vm6 is 10.0.0.2.
  VmPort& red_a = vm5;
  VmPort& red_b = vm6;
  add_fixed_ip(red_a, a.ip);
  allow_one_way(a, b, kIpProtoTcp, 22);
  set_policy(red_a, kClientPolicy, true);
  set_policy(red_b, 0, false);
  const CtKey blue_key = ct_key4(kBlue, kIpProtoTcp, a.ip, 40000, b.ip, 22);
  const CtKey red_key = ct_key4(kRed, kIpProtoTcp, a.ip, 40000, b.ip, 22);

  ASSERT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn)).retval, TC_ACT_REDIRECT);
  // The same 5-tuple in red is checked against red's ports, and refused.
  EXPECT_EQ(run(red_a, tcp(red_a, red_b, 40000, 22, kTcpSyn, a.ip)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(red_b, tcp(red_b, red_a, 22, 40000, kTcpSyn | kTcpAck, 0, a.ip)).retval,
            TC_ACT_SHOT);
  EXPECT_EQ(counts(),
            forwarded(a, b) + one(red_b, WEFT_DROP_SG_INGRESS) + one(red_b, WEFT_DROP_SG_EGRESS));
  ASSERT_EQ(connections().size(), 1u);

  // Admitted in red too: a second connection, in red's zone.
  set_policy(red_b, kServerPolicy, true);
  ASSERT_EQ(run(red_a, tcp(red_a, red_b, 40000, 22, kTcpSyn, a.ip)).retval, TC_ACT_REDIRECT);
  ASSERT_EQ(run(b, tcp(b, a, 22, 40000, kTcpSyn | kTcpAck)).retval, TC_ACT_REDIRECT);
  ASSERT_EQ(connections().size(), 2u);
  EXPECT_EQ(connection(blue_key).state, WEFT_CT_ESTABLISHED);
  EXPECT_EQ(connection(red_key), (CtState{WEFT_CT_NEW, true, red_a.ifindex, red_b.ifindex, 1, 0,
                                          tcp(red_a, red_b, 40000, 22, kTcpSyn, a.ip).size(), 0,
                                          kTcpSyn, 0, 22, kGeneration}));
  EXPECT_EQ(counts(), forwarded(a, b) + forwarded(b, a) + forwarded(red_a, red_b) +
                          one(red_b, WEFT_DROP_SG_INGRESS) + one(red_b, WEFT_DROP_SG_EGRESS));
}

TEST_F(SgTest, ConnectionFromAPortWithoutSecurityIsTrackedForTheOtherEnd) {
  c.security = false;
  write_port(c);
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 22, 16, {0});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "0.0.0.0/0", {0});
  set_policy(b, kServerPolicy, true);
  // c (10.0.0.3) is side b of the key: the originator is not always side a.
  const CtKey key = ct_key4(kBlue, kIpProtoTcp, b.ip, 22, c.ip, 40000);
  Bytes syn = tcp(c, b, 40000, 22, kTcpSyn);

  ASSERT_EQ(run(c, syn).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key), (CtState{WEFT_CT_NEW, false, 0, b.ifindex, 1, 0, syn.size(), 0,
                                      kTcpSyn, 0, 22, kGeneration}));
  EXPECT_EQ(run(b, tcp(b, c, 22, 40000, kTcpSyn | kTcpAck)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key).state, WEFT_CT_ESTABLISHED);
  EXPECT_EQ(counts(), forwarded(c, b) + forwarded(b, c));
}

TEST_F(SgTest, ExpiredConnectionHasNoReplies) {
  allow_one_way(a, b, kIpProtoTcp, 22);
  const CtKey key = ct_key4(kBlue, kIpProtoTcp, a.ip, 40000, b.ip, 22);
  ASSERT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn)).retval, TC_ACT_REDIRECT);

  // An unanswered SYN lives 120 s (Linux's syn_sent timeout).
  auto raw = ct_entries();
  ASSERT_EQ(raw.size(), 1u);
  std::uint64_t now = monotonic_ns();
  ASSERT_GT(now, 200'000'000'000ull) << "the machine must be up for more than 200 s";
  raw[0].second.last_seen_ns = now - 121'000'000'000ull;
  put(maps().ct_new, raw[0].first, raw[0].second);

  EXPECT_EQ(run(b, tcp(b, a, 22, 40000, kTcpSyn | kTcpAck)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b) + one(b, WEFT_DROP_SG_EGRESS));
  EXPECT_EQ(connection(key).packets_reply, 0u);
}

// --- rule changes: generations ----------------------------------------------------------

class SgGenerationTest : public SgTest {
protected:
  // a has a connection to b's port 22, established under kGeneration.
  void SetUp() override {
    SgTest::SetUp();
    if (HasFatalFailure())
      return;
    allow_one_way(a, b, kIpProtoTcp, 22);
    ASSERT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn)).retval, TC_ACT_REDIRECT);
    ASSERT_EQ(run(b, tcp(b, a, 22, 40000, kTcpSyn | kTcpAck)).retval, TC_ACT_REDIRECT);
    ASSERT_EQ(connection(key).state, WEFT_CT_ESTABLISHED);
  }

  void remove_server_rule() {
    erase_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 22, 16);
    erase_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "0.0.0.0/0");
  }
  void restore_server_rule() {
    put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 22, 16, {0});
    put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "0.0.0.0/0", {0});
  }

  const CtKey key = ct_key4(kBlue, kIpProtoTcp, a.ip, 40000, b.ip, 22);
  const Bytes ack = tcp(a, b, 40000, 22, kTcpAck);
  const Bytes ack_back = tcp(b, a, 22, 40000, kTcpAck);
};

TEST_F(SgGenerationTest, RemovedServerRuleCutsTheConnectionAtTheNextReply) {
  remove_server_rule();
  set_sg_generation(kGeneration + 1);

  EXPECT_EQ(run(b, ack_back).retval, TC_ACT_SHOT);
  EXPECT_TRUE(connections().empty());
  EXPECT_EQ(run(a, ack).retval, TC_ACT_SHOT);
  EXPECT_TRUE(connections().empty());
  EXPECT_EQ(counts(), forwarded(a, b) + forwarded(b, a) + one(b, WEFT_DROP_SG_EGRESS) +
                          one(b, WEFT_DROP_SG_INGRESS));
}

TEST_F(SgGenerationTest, RemovedClientRuleCutsTheConnectionAtTheNextRequest) {
  erase_sg_l4(kClientPolicy, WEFT_DIR_EGRESS, 4, kIpProtoTcp, 22, 16);
  set_sg_generation(kGeneration + 1);

  EXPECT_EQ(run(a, ack).retval, TC_ACT_SHOT);
  EXPECT_TRUE(connections().empty());
  EXPECT_EQ(run(b, ack_back).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b) + forwarded(b, a) + one(a, WEFT_DROP_SG_EGRESS) +
                          one(b, WEFT_DROP_SG_EGRESS));
}

TEST_F(SgGenerationTest, RemovedRuleWithoutNewGenerationLeavesTheConnection) {
  // The apply that removes a rule bumps the generation; until it does,
  // tracked connections keep passing (and new ones are refused).
  remove_server_rule();

  EXPECT_EQ(run(a, ack).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, tcp(a, b, 40001, 22, kTcpSyn)).retval, TC_ACT_SHOT);
  EXPECT_EQ(connection(key).generation, kGeneration);
  EXPECT_EQ(counts(), forwarded(a, b, 2) + forwarded(b, a) + one(b, WEFT_DROP_SG_INGRESS));
}

TEST_F(SgGenerationTest, RestoredRuleAdmitsTheSessionAgainMidStream) {
  remove_server_rule();
  set_sg_generation(kGeneration + 1);
  ASSERT_EQ(run(a, ack).retval, TC_ACT_SHOT);
  ASSERT_TRUE(connections().empty());

  restore_server_rule();
  set_sg_generation(kGeneration + 2);
  EXPECT_EQ(run(a, ack).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(b, ack_back).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key),
            (CtState{WEFT_CT_ESTABLISHED, true, a.ifindex, b.ifindex, 1, 1, ack.size(),
                     ack_back.size(), kTcpAck, kTcpAck, 22, kGeneration + 2}));
  EXPECT_EQ(counts(), forwarded(a, b, 2) + forwarded(b, a, 2) + one(b, WEFT_DROP_SG_INGRESS));
}

TEST_F(SgGenerationTest, NewGenerationWithTheRuleKeptRevalidatesTheConnection) {
  set_sg_generation(kGeneration + 1);

  EXPECT_EQ(run(b, ack_back).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key).generation, kGeneration + 1);
  EXPECT_EQ(run(a, ack).retval, TC_ACT_REDIRECT);
  CtState state = connection(key);
  EXPECT_EQ(state.state, WEFT_CT_ESTABLISHED);
  EXPECT_EQ(state.packets_orig, 2u);
  EXPECT_EQ(state.packets_reply, 2u);
  EXPECT_EQ(state.generation, kGeneration + 1);
  EXPECT_EQ(counts(), forwarded(a, b, 2) + forwarded(b, a, 2));
}

// Neutron deletes a cut connection's conntrack entry at once; an error about
// it is then related to nothing, even before the next packet of the
// connection would have found it cut.
TEST_F(SgTest, IcmpErrorAboutACutConnectionIsNotRelated) {
  allow_one_way(a, b, kIpProtoUdp, 53);
  Bytes request = udp(a, b, 40000, 53);
  ASSERT_EQ(run(a, request).retval, TC_ACT_REDIRECT);

  erase_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoUdp, 53, 16);
  set_sg_generation(kGeneration + 1);
  EXPECT_EQ(run(b, icmp(b, a, kIcmpDestUnreach, kIcmpPortUnreach, quote(request, 20))).retval,
            TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b) + one(b, WEFT_DROP_SG_EGRESS));
}

TEST_F(SgTest, RevalidationUsesTheOriginatorsAddresses) {
  // c (10.0.0.3) opens to b (10.0.0.2): the originator is side b of the key.
  // Both rules name the other end's address, so swapping them would cut.
  put_sg_l4(kClientPolicy, WEFT_DIR_EGRESS, 4, kIpProtoTcp, 22, 16, {0});
  put_sg_remote(kClientPolicy, WEFT_DIR_EGRESS, "10.0.0.2/32", {0});
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 22, 16, {0});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "10.0.0.3/32", {0});
  set_policy(c, kClientPolicy, true);
  set_policy(b, kServerPolicy, true);
  const CtKey key = ct_key4(kBlue, kIpProtoTcp, b.ip, 22, c.ip, 40000);
  ASSERT_EQ(run(c, tcp(c, b, 40000, 22, kTcpSyn)).retval, TC_ACT_REDIRECT);
  ASSERT_EQ(run(b, tcp(b, c, 22, 40000, kTcpSyn | kTcpAck)).retval, TC_ACT_REDIRECT);
  ASSERT_FALSE(connection(key).orig_is_a);

  set_sg_generation(kGeneration + 1);
  EXPECT_EQ(run(c, tcp(c, b, 40000, 22, kTcpAck)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key).generation, kGeneration + 1);

  // And it does cut when b's rule names someone else.
  erase_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "10.0.0.3/32");
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "10.0.0.1/32", {0});
  set_sg_generation(kGeneration + 2);
  EXPECT_EQ(run(b, tcp(b, c, 22, 40000, kTcpAck)).retval, TC_ACT_SHOT);
  EXPECT_TRUE(connections().empty());
  EXPECT_EQ(counts(), forwarded(c, b, 2) + forwarded(b, c) + one(b, WEFT_DROP_SG_EGRESS));
}

// --- stateless groups ---------------------------------------------------------------------

TEST_F(SgTest, StatelessReplyNeedsRulesInBothDirections) {
  allow_one_way(a, b, kIpProtoTcp, 22, /*stateful=*/false);
  Bytes syn_ack = tcp(b, a, 22, 40000, kTcpSyn | kTcpAck);

  EXPECT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(b, syn_ack).retval, TC_ACT_SHOT);
  // b may send tcp to any port: still a's ingress refuses it.
  put_sg_l4(kServerPolicy, WEFT_DIR_EGRESS, 4, kIpProtoTcp, 0, 0, {1});
  put_sg_remote(kServerPolicy, WEFT_DIR_EGRESS, "0.0.0.0/0", {1});
  EXPECT_EQ(run(b, syn_ack).retval, TC_ACT_SHOT);
  // And a accepts tcp from b.
  put_sg_l4(kClientPolicy, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 0, 0, {1});
  put_sg_remote(kClientPolicy, WEFT_DIR_INGRESS, "10.0.0.2/32", {1});
  EXPECT_EQ(run(b, syn_ack).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(), forwarded(a, b) + forwarded(b, a) + one(b, WEFT_DROP_SG_EGRESS) +
                          one(a, WEFT_DROP_SG_INGRESS));
  EXPECT_TRUE(connections().empty());
}

TEST_F(SgTest, StatelessPassesAnyTcpFlagsTheRulesAllow) {
  allow_one_way(a, b, kIpProtoTcp, 22, /*stateful=*/false);
  const std::vector<std::uint8_t> flag_sets = {kTcpSyn | kTcpFin,
                                               kTcpSyn | kTcpRst,
                                               kTcpFin | kTcpPsh | kTcpUrg,
                                               0,
                                               kTcpRst,
                                               kTcpRst | kTcpAck,
                                               kTcpFin | kTcpAck,
                                               kTcpSyn | kTcpFin | kTcpRst | kTcpPsh | kTcpAck |
                                                   kTcpUrg};

  for (std::uint8_t flags : flag_sets) {
    SCOPED_TRACE(int(flags));
    EXPECT_EQ(run(a, tcp(a, b, 40000, 22, flags)).retval, TC_ACT_REDIRECT);
  }
  EXPECT_EQ(run(a, tcp(a, b, 40000, 23, kTcpRst)).retval, TC_ACT_SHOT); // not a's port 22
  EXPECT_EQ(counts(), forwarded(a, b, flag_sets.size()) + one(a, WEFT_DROP_SG_EGRESS));
  EXPECT_TRUE(connections().empty());
}

TEST_F(SgTest, StatelessLaterFragmentMatchesOnlyRulesOfAnyPort) {
  set_policy(a, kOpenPolicy, false);
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoUdp, 0, 0, {0}); // udp, any port
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "0.0.0.0/0", {0});
  set_policy(b, kServerPolicy, false);
  Bytes first = with_fragment_field(udp(a, b, 40000, 5000), kMoreFragments);
  Bytes later = with_fragment_field(udp(a, b, 40000, 5000), kOffset1480);
  // A later fragment of a datagram whose first fragment was never seen.
  Bytes orphan = with_ip_id(later, 0x4242);

  EXPECT_EQ(run(a, first).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, later).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, orphan).retval, TC_ACT_REDIRECT);

  // udp 5000 only: a later fragment takes its first fragment's ports, as
  // iptables sees reassembled datagrams; an orphan has no port to show.
  erase_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoUdp, 0, 0);
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoUdp, 5000, 16, {0});
  EXPECT_EQ(run(a, first).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, later).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, orphan).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b, 5) + one(b, WEFT_DROP_SG_INGRESS));
  EXPECT_TRUE(connections().empty());
}

// iptables' --icmp-type never matches a later fragment (it has no ICMP
// header); its L4 value must not pass for type 0 code 0, echo reply.
TEST_F(SgTest, StatelessLaterIcmpFragmentIsNotAnEchoReply) {
  set_policy(a, kOpenPolicy, false);
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoIcmp, icmp_l4(kIcmpEchoReply, 0), 8, {0});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "0.0.0.0/0", {0});
  set_policy(b, kServerPolicy, false);
  Bytes reply = echo(a, b, kIcmpEchoReply, 0x1234);
  Bytes later = with_fragment_field(echo(a, b, kIcmpEchoRequest, 0x1234), kOffset1480);

  EXPECT_EQ(run(a, reply).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, later).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b) + one(b, WEFT_DROP_SG_INGRESS));
}

// ip6tables finds a later fragment's protocol in its fragment header (it is
// `-p udp` with no ports), as iptables does from the IPv4 header.
TEST_F(SgTest, StatelessLaterIpv6FragmentMatchesItsProtocol) {
  set_policy(a, kOpenPolicy, false);
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 6, kIpProtoUdp, 0, 0, {0});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "::/0", {0});
  set_policy(b, kServerPolicy, false);
  Bytes later_fragment = {kIpProtoUdp,
                          0,
                          static_cast<std::uint8_t>((kOffset1480 << 3) >> 8),
                          static_cast<std::uint8_t>(kOffset1480 << 3),
                          0,
                          0,
                          0x12,
                          0x34};
  later_fragment.insert(later_fragment.end(), 64, 0xab);
  Bytes later = PacketBuilder()
                    .eth(b.mac, a.mac)
                    .ipv6(link_local(a.mac), link_local(b.mac), 64, kIpProtoIpv6Fragment)
                    .payload(later_fragment)
                    .build();

  EXPECT_EQ(run(a, later).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(), forwarded(a, b));
}

// Linux conntrack reassembles before it tracks, so every fragment of an
// admitted datagram is part of the connection; the BPF sees fragments one
// by one, and must not refuse the later ones of a tracked flow.
TEST_F(SgTest, LaterFragmentsOfATrackedFlowPass) {
  allow_one_way(a, b, kIpProtoUdp, 53);
  ASSERT_EQ(run(a, with_fragment_field(udp(a, b, 40000, 53), kMoreFragments)).retval,
            TC_ACT_REDIRECT);

  EXPECT_EQ(run(a, with_fragment_field(udp(a, b, 40000, 53), kOffset1480)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(b, with_fragment_field(udp(b, a, 53, 40000), kMoreFragments)).retval,
            TC_ACT_REDIRECT);
  EXPECT_EQ(run(b, with_fragment_field(udp(b, a, 53, 40000), kOffset1480)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(), forwarded(a, b, 2) + forwarded(b, a, 2));
}

// --- floods -----------------------------------------------------------------------------------

TEST_F(SgTest, BroadcastReachesOnlyReceiversWhoseRulesAdmitIt) {
  put_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoUdp, 5000, 16, {0});
  put_sg_remote(kServerPolicy, WEFT_DIR_INGRESS, "0.0.0.0/0", {0});
  set_policy(b, kServerPolicy, true);
  put_sg_l4(kOtherPolicy, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 22, 16, {0});
  put_sg_remote(kOtherPolicy, WEFT_DIR_INGRESS, "0.0.0.0/0", {0});
  set_policy(c, kOtherPolicy, true);
  Bytes frame = broadcast_udp(a);
  Wire b_side(peer_name(b.device));
  Wire c_side(peer_name(c.device));

  EXPECT_EQ(run(a, frame).retval, TC_ACT_SHOT); // the original; a clone went to b
  EXPECT_EQ(counts(), (Counts{{{a.device, "forward-flood"}, 1},
                              {{b.device, "delivered"}, 1},
                              {{c.device, "drop-sg-ingress"}, 1}}));
  EXPECT_TRUE(b_side.receives(frame, 1s));
  EXPECT_FALSE(c_side.receives(frame, 100ms));
  // Floods open no connections, even between stateful ports.
  EXPECT_TRUE(connections().empty());
  // So a unicast answer is a new connection, which b's rules do not admit.
  EXPECT_EQ(run(b, udp(b, a, 5000, 5000)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counter(b.ifindex, WEFT_DROP_SG_EGRESS).packets, 1u);
}

TEST_F(SgTest, BroadcastRefusedByTheSendersEgressGoesNowhere) {
  put_sg_l4(kClientPolicy, WEFT_DIR_EGRESS, 4, kIpProtoTcp, 0, 0, {0});
  put_sg_remote(kClientPolicy, WEFT_DIR_EGRESS, "0.0.0.0/0", {0});
  set_policy(a, kClientPolicy, true);

  EXPECT_EQ(run(a, broadcast_udp(a)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(a, WEFT_DROP_SG_EGRESS));
}

TEST_F(SgTest, BroadcastRefusedByEveryReceiverHasNoTarget) {
  set_policy(b, 0, false);
  set_policy(c, 0, false);

  EXPECT_EQ(run(a, broadcast_udp(a)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), (Counts{{{a.device, "drop-no-flood-target"}, 1},
                              {{b.device, "drop-sg-ingress"}, 1},
                              {{c.device, "drop-sg-ingress"}, 1}}));
}

// --- matching cost -------------------------------------------------------------------------

class SgManyRulesTest : public SgTest {
protected:
  void SetUp() override {
    SgTest::SetUp();
    if (HasFatalFailure())
      return;
    // Stateless, so that every packet is matched against the rules.
    set_policy(a, kOpenPolicy, false);
    set_policy(b, kServerPolicy, false);
  }

  // b's ingress: the L4 entry of every packet and the remote entry of every
  // source hold these sets.
  void write_sets(const weft_rule_set& by_l4, const weft_rule_set& by_remote) {
    test::put_sg_l4(maps().sg_l4,
                    sg_l4_key(kServerPolicy, WEFT_DIR_INGRESS, 4, WEFT_PROTO_ANY, 0, 0), by_l4);
    test::put_sg_remote(maps().sg_remote,
                        sg_remote_key(kServerPolicy, WEFT_DIR_INGRESS, ip_prefix("0.0.0.0/0")),
                        by_remote);
  }

  static std::vector<std::uint32_t> every_other(std::uint32_t first, std::uint32_t end) {
    std::vector<std::uint32_t> rules;
    for (std::uint32_t rule = first; rule < end; rule += 2)
      rules.push_back(rule);
    return rules;
  }
};

TEST_F(SgManyRulesTest, TenThousandRulesMeetingOnlyAtTheLastStillMatch) {
  std::vector<std::uint32_t> even = every_other(0, 10000);
  even.push_back(9999);
  write_sets(rule_set(even), rule_set(every_other(1, 10000)));

  EXPECT_EQ(run(a, udp(a, b, 40000, 53)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(), forwarded(a, b));
}

TEST_F(SgManyRulesTest, TenThousandRulesThatNeverMeetDrop) {
  write_sets(rule_set(every_other(0, 10000)), rule_set(every_other(1, 10000)));

  EXPECT_EQ(run(a, udp(a, b, 40000, 53)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(b, WEFT_DROP_SG_INGRESS));
}

TEST_F(SgManyRulesTest, ARuleIsFoundAtEveryBitPosition) {
  const Bytes frame = udp(a, b, 40000, 53);
  std::uint64_t passed = 0;
  std::uint64_t dropped = 0;
  for (std::uint32_t word : {0u, 1u, 63u, 64u, 100u, 191u, 192u, WEFT_SG_WORDS - 1u}) {
    for (std::uint32_t bit = 0; bit < 64; ++bit) {
      std::uint32_t rule = word * 64 + bit;
      SCOPED_TRACE(rule);
      write_sets(rule_set({rule}), rule_set({rule}));
      EXPECT_EQ(run(a, frame).retval, TC_ACT_REDIRECT);
      ++passed;
      // Its neighbour in the same word is another rule.
      write_sets(rule_set({rule}), rule_set({rule ^ 1}));
      EXPECT_EQ(run(a, frame).retval, TC_ACT_SHOT);
      ++dropped;
    }
  }
  EXPECT_EQ(counts(), forwarded(a, b, passed) + one(b, WEFT_DROP_SG_INGRESS, dropped));
}

// --- lengths, DHCP replies and extension headers ----------------------------------------

TEST_F(SgTest, TransportPortsAreReadWithinTheIpTotalLength) {
  // A header-only IPv4 packet whose Ethernet padding looks like a SYN to 22:
  // there is no TCP header in it, whatever the padding says.
  allow_one_way(a, b, kIpProtoTcp, 22);
  Bytes padded = tcp(a, b, 40000, 22, kTcpSyn);
  padded.at(14 + 2) = 0;
  padded.at(14 + 3) = 20;
  EXPECT_EQ(run(a, with_ipv4_checksum(padded)).retval, TC_ACT_SHOT);
  // Ports inside, but not the whole TCP header (its flags) ...
  padded.at(14 + 3) = 20 + 8;
  EXPECT_EQ(run(a, with_ipv4_checksum(padded)).retval, TC_ACT_SHOT);
  // ... nor an ICMP header (an echo's identifier is in the padding).
  allow_one_way(a, b, 4, kIpProtoIcmp, icmp_l4(kIcmpEchoRequest, 0), 8);
  Bytes short_echo = echo(a, b, kIcmpEchoRequest, 0x1234);
  short_echo.at(14 + 2) = 0;
  short_echo.at(14 + 3) = 20 + 4;
  EXPECT_EQ(run(a, with_ipv4_checksum(short_echo)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(a, WEFT_DROP_MALFORMED, 3));
  EXPECT_TRUE(connections().empty());
}

TEST_F(SgTest, Ipv6TransportPortsAreReadWithinThePayloadLength) {
  allow_one_way(a, b, 6, kIpProtoUdp, 53, 16);
  Bytes padded = udp6(a, b, 40000, 53);
  padded.at(14 + 4) = 0;
  padded.at(14 + 5) = 2; // not even its ports
  EXPECT_EQ(run(a, padded).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(a, WEFT_DROP_MALFORMED));
}

TEST_F(SgTest, DhcpReplyToAnotherPortsAddressIsNoInfrastructureTraffic) {
  // c is the DHCP port (port security off); b has no groups. An offer framed
  // to b but addressed to a's IP is not b's: Neutron admits server replies
  // only to the port's own addresses and broadcast.
  set_policy(a, 0, false);
  set_policy(b, 0, false);
  c.security = false;
  write_port(c);
  EXPECT_EQ(run(c, udp4(c.mac, b.mac, c.ip, a.ip, 67, 68, dhcp_offer(b.mac))).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(c, udp4(c.mac, b.mac, c.ip, b.ip, 67, 68, dhcp_offer(b.mac))).retval,
            TC_ACT_REDIRECT);
  Bytes advertise_elsewhere = PacketBuilder()
                                  .eth(a.mac, c.mac)
                                  .ipv6(link_local(c.mac), ipv6("2001:db8::99"))
                                  .udp(547, 546)
                                  .payload(dhcpv6_advertise())
                                  .build();
  EXPECT_EQ(run(c, advertise_elsewhere).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(),
            one(b, WEFT_DROP_SG_INGRESS) + one(a, WEFT_DROP_SG_INGRESS) + forwarded(c, b));
}

TEST_F(SgTest, LawfulIpv6WithFiveExtensionHeadersPassesAndNineAreRefused) {
  allow_one_way(a, b, 6, kIpProtoUdp, 53, 16);
  auto with_headers = [&](int count) {
    PacketBuilder frame;
    frame.eth(b.mac, a.mac).ipv6(link_local(a.mac), link_local(b.mac));
    for (int i = 0; i < count; ++i)
      frame.ipv6_hop_by_hop();
    return frame.udp(40000, 53).payload(Bytes(8, 1)).build();
  };
  EXPECT_EQ(run(a, with_headers(5)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, with_headers(8)).retval, TC_ACT_REDIRECT);
  // Past the walk's limit (8), the chain could hide anything: refused.
  EXPECT_EQ(run(a, with_headers(9)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, b, 2) + one(a, WEFT_DROP_MALFORMED));
}

// --- a hostile tenant against conntrack (issue: bypasses through conntrack) -----------

namespace hostile {

// The same TCP segment as `tcp(from, victim, …)`, but framed to `via`'s MAC:
// the IP header names the victim, the switch takes it to `via`.
Bytes tcp_via(const VmPort& from, const VmPort& via, const VmPort& victim, std::uint16_t sport,
              std::uint16_t dport, std::uint8_t flags) {
  return PacketBuilder()
      .eth(via.mac, from.mac)
      .ipv4(from.ip, victim.ip)
      .tcp(sport, dport, flags)
      .build();
}

} // namespace hostile

TEST_F(SgTest, ConnectionOpenedTowardsAPermissivePortDoesNotAdmitThatTupleToAnother) {
  // c accepts SSH from anyone; the victim b accepts nothing. a opens an entry
  // for the tuple a:40000 -> b:22 by framing its SYN to c's MAC, then sends
  // the same tuple to b: b's rules must still decide, and refuse it.
  allow_one_way(a, c, kIpProtoTcp, 22);
  set_policy(b, kOtherPolicy, true);
  ASSERT_EQ(run(a, hostile::tcp_via(a, c, b, 40000, 22, kTcpSyn)).retval, TC_ACT_REDIRECT);
  auto opened = ct_entries();
  ASSERT_EQ(opened.size(), 1u);
  const weft_ct_key& key = opened[0].first;
  EXPECT_EQ(std::set<std::uint32_t>({key.ifindex_a, key.ifindex_b}),
            (std::set<std::uint32_t>{a.ifindex, c.ifindex}))
      << "an entry is bound to the two ports it was made between";

  EXPECT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 22, kTcpAck)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), forwarded(a, c) + one(b, WEFT_DROP_SG_INGRESS, 2));
  // Nor does the victim's own answer pass as a reply to a.
  set_policy(b, kClientPolicy, true); // egress tcp 22 only: not from port 22
  EXPECT_EQ(run(b, tcp(b, a, 22, 40000, kTcpSyn | kTcpAck)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counter(b.ifindex, WEFT_DROP_SG_EGRESS).packets, 1u);
}

// a has a live UDP flow to b; c, a third port, may send anything.
class SgForgedErrorTest : public SgTest {
protected:
  void SetUp() override {
    SgTest::SetUp();
    if (HasFatalFailure())
      return;
    allow_one_way(a, b, kIpProtoUdp, 53);
    write_open_policy(kOtherPolicy);
    set_policy(c, kOtherPolicy, true);
    ASSERT_EQ(run(a, request).retval, TC_ACT_REDIRECT);
  }

  const Bytes request = udp(a, b, 40000, 53);
};

TEST_F(SgForgedErrorTest, IcmpErrorToAnotherHostThanTheQuotedSenderIsNotRelated) {
  // c forges "port unreachable" quoting a's datagram and sends it to the
  // victim b, which has no ICMP rule: not related, dropped.
  EXPECT_EQ(run(c, icmp(c, b, kIcmpDestUnreach, kIcmpPortUnreach, quote(request, 20))).retval,
            TC_ACT_SHOT);
  EXPECT_EQ(counter(b.ifindex, WEFT_DROP_SG_INGRESS).packets, 1u);
}

TEST_F(SgForgedErrorTest, IcmpErrorFromAPortOffTheConnectionsPathIsNotRelated) {
  // The right destination (a, the quoted sender), but from c, which the
  // quoted packet never went to: a third port cannot speak for b.
  EXPECT_EQ(run(c, icmp(c, a, kIcmpDestUnreach, kIcmpPortUnreach, quote(request, 20))).retval,
            TC_ACT_SHOT);
  EXPECT_EQ(counter(a.ifindex, WEFT_DROP_SG_INGRESS).packets, 1u);
  // b, on the path, can; but only back to the quoted sender: framed to a,
  // addressed to c, it is b's own ICMP, which b's rules do not let out.
  Bytes misaddressed = PacketBuilder()
                           .eth(a.mac, b.mac)
                           .ipv4(b.ip, c.ip)
                           .icmp(kIcmpDestUnreach, kIcmpPortUnreach)
                           .payload(quote(request, 20))
                           .build();
  EXPECT_EQ(run(b, misaddressed).retval, TC_ACT_SHOT);
  EXPECT_EQ(counter(b.ifindex, WEFT_DROP_SG_EGRESS).packets, 1u);
  EXPECT_EQ(run(b, icmp(b, a, kIcmpDestUnreach, kIcmpPortUnreach, quote(request, 20))).retval,
            TC_ACT_REDIRECT);
}

TEST_F(SgTest, SynOnAClosedConnectionIsMatchedAsNew) {
  allow_one_way(a, b, kIpProtoTcp, 22);
  const CtKey key = ct_key4(kBlue, kIpProtoTcp, a.ip, 40000, b.ip, 22);
  ASSERT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn)).retval, TC_ACT_REDIRECT);
  ASSERT_EQ(run(b, tcp(b, a, 22, 40000, kTcpSyn | kTcpAck)).retval, TC_ACT_REDIRECT);
  ASSERT_EQ(run(b, tcp(b, a, 22, 40000, kTcpRst)).retval, TC_ACT_REDIRECT);
  ASSERT_EQ(connection(key).state, WEFT_CT_CLOSED);

  // The client reuses its port: a new connection, with fresh counters.
  Bytes syn = tcp(a, b, 40000, 22, kTcpSyn);
  ASSERT_EQ(run(a, syn).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(connection(key), (CtState{WEFT_CT_NEW, true, a.ifindex, b.ifindex, 1, 0, syn.size(), 0,
                                      kTcpSyn, 0, 22, kGeneration}));
  EXPECT_EQ(ct_entries(maps().ct_new).size(), 1u);
  EXPECT_TRUE(ct_entries(maps().ct).empty());
}

TEST_F(SgTest, SynOnAClosingConnectionMeetsTodaysRules) {
  allow_one_way(a, b, kIpProtoTcp, 22);
  ASSERT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn)).retval, TC_ACT_REDIRECT);
  ASSERT_EQ(run(b, tcp(b, a, 22, 40000, kTcpSyn | kTcpAck)).retval, TC_ACT_REDIRECT);
  ASSERT_EQ(run(a, tcp(a, b, 40000, 22, kTcpFin | kTcpAck)).retval, TC_ACT_REDIRECT);

  // The rule is gone (no new generation, so the old entry alone would have
  // admitted it): the new SYN is judged as new, and refused.
  erase_sg_l4(kServerPolicy, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 22, 16);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counter(b.ifindex, WEFT_DROP_SG_INGRESS).packets, 1u);
  EXPECT_TRUE(ct_entries().empty());
}

TEST_F(SgTest, AConnectionMovesToTheEstablishedTableAtItsFirstReply) {
  allow_one_way(a, b, kIpProtoTcp, 22);
  ASSERT_EQ(run(a, tcp(a, b, 40000, 22, kTcpSyn)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(ct_entries(maps().ct_new).size(), 1u);
  EXPECT_TRUE(ct_entries(maps().ct).empty());
  ASSERT_EQ(run(b, tcp(b, a, 22, 40000, kTcpSyn | kTcpAck)).retval, TC_ACT_REDIRECT);
  EXPECT_TRUE(ct_entries(maps().ct_new).empty());
  ASSERT_EQ(ct_entries(maps().ct).size(), 1u);
  weft_ct_zone zone{};
  ASSERT_EQ(bpf_map__lookup_elem(maps().ct_zones, &kBlue, sizeof kBlue, &zone, sizeof zone, 0), 0);
  EXPECT_EQ(zone.established, 1u);
}

// Conntrack tables of the loader's smallest size, to be flooded.
class SgFloodTest : public SgTest {
protected:
  bool small_ct() const override { return true; }

  // a -> b:22 established (b has no egress rule: only replies leave it).
  void establish(VmPort& client, VmPort& server, std::uint16_t sport) {
    ASSERT_EQ(run(client, tcp(client, server, sport, 22, kTcpSyn)).retval, TC_ACT_REDIRECT);
    ASSERT_EQ(run(server, tcp(server, client, 22, sport, kTcpSyn | kTcpAck)).retval,
              TC_ACT_REDIRECT);
  }

  std::uint32_t established_in(std::uint32_t zone) const {
    weft_ct_zone z{};
    bpf_map__lookup_elem(maps().ct_zones, &zone, sizeof zone, &z, sizeof z, 0);
    return z.established;
  }

  void age_established_entries(std::uint64_t seconds) {
    std::uint64_t now = monotonic_ns();
    ASSERT_GT(now, (seconds + 10) * 1'000'000'000ull) << "the machine must be up long enough";
    for (auto [key, entry] : ct_entries(maps().ct)) {
      entry.last_seen_ns = now - seconds * 1'000'000'000ull;
      put(maps().ct, key, entry);
    }
  }
};

TEST_F(SgFloodTest, EstablishedConnectionsSurviveAFloodOfNewFlows) {
  allow_one_way(a, b, kIpProtoTcp, 22);
  establish(a, b, 40000);
  // a floods c with twelve times the table's size of new UDP flows, each
  // flow twice: an LRU's reference bit then no longer spares the one
  // established session that a flood of single packets would pass over.
  put_sg_l4(kClientPolicy, WEFT_DIR_EGRESS, 4, kIpProtoUdp, 0, 0, {1});
  put_sg_remote(kClientPolicy, WEFT_DIR_EGRESS, "0.0.0.0/0", {0, 1});
  write_open_policy(kOtherPolicy);
  set_policy(c, kOtherPolicy, true);
  for (std::uint32_t i = 0; i < 12 * kSmallCtMax; ++i) {
    Bytes flow = udp(a, c, static_cast<std::uint16_t>(1024 + i % 60000),
                     static_cast<std::uint16_t>(1 + i / 60000));
    ASSERT_EQ(run(a, flow).retval, TC_ACT_REDIRECT);
    ASSERT_EQ(run(a, flow).retval, TC_ACT_REDIRECT);
  }

  // b's data on the established session still reaches a, which admits no
  // TCP at all but replies.
  EXPECT_EQ(run(b, tcp(b, a, 22, 40000, kTcpAck)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(a, tcp(a, b, 40000, 22, kTcpAck)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(ct_entries(maps().ct).size(), 1u) << "the flood confirmed nothing";
  EXPECT_LE(ct_entries(maps().ct_new).size(), kSmallCtMax);
}

TEST_F(SgFloodTest, ANetworkBeyondItsShareIsRefusedCountedAndOthersAreNot) {
  set_ct_network_max(4);
  allow_one_way(a, b, kIpProtoTcp, 22);
  for (std::uint16_t port = 40000; port < 40004; ++port)
    establish(a, b, port);
  ASSERT_EQ(established_in(kBlue), 4u);

  // The fifth is opened but its reply refused, counted, and the attempt forgotten.
  ASSERT_EQ(run(a, tcp(a, b, 40004, 22, kTcpSyn)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(b, tcp(b, a, 22, 40004, kTcpSyn | kTcpAck)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counter(b.ifindex, WEFT_DROP_CT_FULL).packets, 1u);
  EXPECT_EQ(established_in(kBlue), 4u);
  EXPECT_TRUE(ct_entries(maps().ct_new).empty());
  // The four keep working.
  for (std::uint16_t port = 40000; port < 40004; ++port)
    EXPECT_EQ(run(b, tcp(b, a, 22, port, kTcpAck)).retval, TC_ACT_REDIRECT);

  // Another tenant's network has its own share: red's ports connect.
  allow_one_way(vm5, vm6, kIpProtoTcp, 22);
  establish(vm5, vm6, 40000);
  EXPECT_EQ(established_in(kRed), 1u);
}

TEST_F(SgFloodTest, ExpiredEstablishedEntriesAreReclaimedWhenTheShareIsFull) {
  set_ct_network_max(4);
  allow_one_way(a, b, kIpProtoUdp, 53);
  for (std::uint16_t port = 40000; port < 40004; ++port) {
    ASSERT_EQ(run(a, udp(a, b, port, 53)).retval, TC_ACT_REDIRECT);
    ASSERT_EQ(run(b, udp(b, a, 53, port)).retval, TC_ACT_REDIRECT);
  }
  ASSERT_EQ(established_in(kBlue), 4u);
  // Idle past the UDP stream timeout (180 s), and never looked up again.
  age_established_entries(200);

  ASSERT_EQ(run(a, udp(a, b, 40004, 53)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(b, udp(b, a, 53, 40004)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(established_in(kBlue), 1u);
  auto left = ct_entries(maps().ct);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_TRUE(ntohs(left[0].first.port_a) == 40004 || ntohs(left[0].first.port_b) == 40004);
}
} // namespace
} // namespace weft::test
