// Neutron's IP protocol names and numbers, as its API accepts them in a
// security group rule: the table is neutron-lib's, so that a rule Neutron
// accepts is read the same way here.
#include "loader/model/protocol.hpp"

#include <charconv>
#include <string>
#include <string_view>
#include <system_error>

#include "loader/model/text.hpp"

namespace weft::document {

std::uint8_t for_ethertype(std::uint8_t number, Ethertype ethertype) {
  // Neutron rewrites IPv6 rules for "icmp"/1 to ipv6-icmp.
  return ethertype == Ethertype::IPv6 && number == kIcmp ? kIcmpV6 : number;
}

bool has_ports(std::uint8_t protocol) {
  return protocol == 6 || protocol == 17 || protocol == 132 || protocol == 33 || protocol == 136;
}

bool ipv6_only(std::uint8_t protocol) {
  return protocol == 41 || protocol == 43 || protocol == 44 || protocol == 58 || protocol == 59 ||
         protocol == 60;
}

} // namespace weft::document

namespace weft {

using document::all_digits;
using document::for_ethertype;
using document::lower;

namespace {

struct ProtocolName {
  std::string_view name;
  std::uint8_t number;
};

// neutron-lib's IP_PROTOCOL_MAP, with the legacy "icmpv6" alias.
constexpr ProtocolName kProtocols[] = {
    {"ah", 51},         {"dccp", 33},       {"egp", 8},        {"esp", 50},      {"gre", 47},
    {"hopopt", 0},      {"icmp", 1},        {"igmp", 2},       {"ip", 0},        {"ipip", 4},
    {"ipv6-encap", 41}, {"ipv6-frag", 44},  {"ipv6-icmp", 58}, {"icmpv6", 58},   {"ipv6-nonxt", 59},
    {"ipv6-opts", 60},  {"ipv6-route", 43}, {"ospf", 89},      {"pgm", 113},     {"rsvp", 46},
    {"sctp", 132},      {"tcp", 6},         {"udp", 17},       {"udplite", 136}, {"vrrp", 112},
};

} // namespace

std::optional<std::uint8_t> protocol_number(std::string_view name, Ethertype ethertype) {
  if (all_digits(name)) {
    unsigned number = 0;
    auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), number);
    if (error != std::errc() || end != name.data() + name.size() || number > 255)
      return std::nullopt;
    return for_ethertype(static_cast<std::uint8_t>(number), ethertype);
  }
  std::string wanted = lower(name);
  for (const ProtocolName& protocol : kProtocols)
    if (protocol.name == wanted)
      return for_ethertype(protocol.number, ethertype);
  return std::nullopt;
}

} // namespace weft
