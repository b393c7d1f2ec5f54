// Security-group policies written straight into WEFT_MAP_SG_L4 and
// WEFT_MAP_SG_REMOTE, in the form the loader writes them (maps/weft_abi.h):
// a policy's rules are numbered, and each L4 block or remote prefix maps to
// the set of rules it satisfies. Prog tests build these entries by hand, so a
// failing prog test means the program, not the loader's rule compiler.
//
//   // Rule 0 of policy 7: ingress IPv4 tcp 80-83 from 10.0.0.0/24.
//   put_sg_l4(map, sg_l4_key(7, WEFT_DIR_INGRESS, 4, kIpProtoTcp, 80, 14), rule_set({0}));
//   put_sg_remote(map, sg_remote_key(7, WEFT_DIR_INGRESS, ip_prefix("10.0.0.0/24")),
//                 rule_set({0}));
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

#include "maps/weft_abi.h"
#include "tests/prog/packet.hpp"

struct bpf_map;

namespace weft::test {

// The set of the given rule indexes (each below WEFT_SG_MAX_RULES, else
// std::invalid_argument), with its summary bits.
weft_rule_set rule_set(std::initializer_list<std::uint32_t> rules);
weft_rule_set rule_set(const std::vector<std::uint32_t>& rules);
// The rule indexes of a set, ascending (its summary is not consulted).
std::vector<std::uint32_t> rules_of(const weft_rule_set& set);

// An address prefix: family 4 (address in the first 4 bytes) or 6.
struct IpPrefix {
  std::uint8_t family;
  Ipv6Address address;
  std::uint32_t length;
};
// "10.0.0.0/24", "0.0.0.0/0", "fe80::/64"; the host bits must be zero.
// Throws std::invalid_argument.
IpPrefix ip_prefix(std::string_view text);
// An address as a full-length prefix.
IpPrefix host_prefix(Ipv4Address address);
IpPrefix host_prefix(const Ipv6Address& address);

// The L4 value of an ICMP or ICMPv6 message: type << 8 | code.
constexpr std::uint16_t icmp_l4(std::uint8_t type, std::uint8_t code) {
  return static_cast<std::uint16_t>(type << 8 | code);
}

// The sg_l4 key of a port block: the `block_prefix_len` (0..16) high bits of
// `block_start` (host order; its other bits must be zero), for `proto` (or
// WEFT_PROTO_ANY with block 0/0). Throws std::invalid_argument.
weft_sg_l4_key sg_l4_key(std::uint32_t policy, weft_direction direction, std::uint8_t family,
                         std::uint8_t proto, std::uint16_t block_start,
                         std::uint32_t block_prefix_len);
// The sg_remote key of a remote prefix of `remote.family`.
weft_sg_remote_key sg_remote_key(std::uint32_t policy, weft_direction direction,
                                 const IpPrefix& remote);

// Writes or deletes one entry; throws std::runtime_error with the errno.
void put_sg_l4(bpf_map* sg_l4, const weft_sg_l4_key& key, const weft_rule_set& rules);
void put_sg_remote(bpf_map* sg_remote, const weft_sg_remote_key& key, const weft_rule_set& rules);
void erase_sg_l4(bpf_map* sg_l4, const weft_sg_l4_key& key);
void erase_sg_remote(bpf_map* sg_remote, const weft_sg_remote_key& key);

} // namespace weft::test
