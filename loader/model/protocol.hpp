// What the security group rule parser needs to know about IP protocols beyond
// their names (protocol_number, in state.hpp): which carry ports, which are
// IPv6-only, and how Neutron rewrites ICMP for IPv6. Internal to the model.
#pragma once

#include <cstdint>

#include "loader/model/state.hpp"

namespace weft::document {

constexpr std::uint8_t kIcmp = 1;
constexpr std::uint8_t kIcmpV6 = 58;

// The protocol a rule of `ethertype` means by `number`.
std::uint8_t for_ethertype(std::uint8_t number, Ethertype ethertype);

// Protocols whose rules carry ports (Neutron's SG_PORT_PROTO_NUMS).
bool has_ports(std::uint8_t protocol);

// Neutron refuses these with IPv4 (_validate_ethertype_and_protocol).
bool ipv6_only(std::uint8_t protocol);

} // namespace weft::document
