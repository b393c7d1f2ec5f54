// Security groups compiled for the datapath, bpf-iptables style: the ports of
// a node that have the same groups share a policy, a policy's rules are
// numbered, and for every L4 value and every remote prefix the loader stores
// the set of rules it satisfies (WEFT_MAP_SG_L4, WEFT_MAP_SG_REMOTE). The BPF
// then decides with two LPM lookups and a bitset intersection, whatever the
// number of rules. Neutron's iptables driver is the reference for what a rule
// matches (DESIGN.md §4, NEUTRON.md).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "loader/fabric/map_io.hpp"
#include "loader/model/state.hpp"
#include "maps/weft_abi.h"

namespace weft {

// The rules of one set of groups, numbered: bit r of a rule set is rules[r].
// The numbering depends only on the groups: their ids in sorted order, each
// group's rules in document order. Points into the State it was made from.
struct CompiledPolicy {
  std::uint32_t id = 0;                        // 1..N
  std::vector<std::string> groups;             // sorted, without repeats
  std::vector<const SecurityGroupRule*> rules; // bit r: rules[r]
  std::vector<std::string> rule_group;         // rule_group[r]: the group of rules[r]
  std::vector<std::string> ports;              // the node's ports that use it, in document order
  bool stateful = true;                        // its groups are stateful (validation refuses a mix)
};

// For each (direction, family) of a policy, index direction * 2 + (family ==
// 6): the lowest-numbered rule there plus one when that rule admits every
// packet of the family in that direction (any protocol, any remote, as
// Neutron's default group's egress rules do), else 0. The datapath then
// looks nothing up: that rule decides every such packet, and its hit is
// counted as the lookups would count it.
std::array<std::uint16_t, 4> allow_all_rules(const CompiledPolicy& policy);

// A policy's groups (sorted, joined by ",") → its id, kept across applies.
using PolicyIds = std::map<std::string, std::uint32_t>;

struct Policies {
  std::vector<CompiledPolicy> list;                 // ordered by id
  std::map<std::string, std::uint32_t> port_policy; // each port bound to the node → its policy

  // 0 for a port with no groups, with port security off, or not on the node:
  // the BPF lets only the fixed infrastructure traffic through policy 0.
  std::uint32_t policy_of(const std::string& port_id) const;
  const CompiledPolicy* find(std::uint32_t id) const; // nullptr for 0 or an unknown id
  // WEFT_PORT_STATEFUL: the port has a policy and its groups are stateful. A
  // port with no groups (or port security off) has no rule that could admit
  // a connection, so there is nothing to track.
  bool is_stateful(const std::string& port_id) const;
  PolicyIds ids() const;
};

// Gives every port bound to `node` its policy. A group list keeps the id it
// had in `previous`; new lists take the lowest free ids, in the order of the
// sorted lists, so the same document always gives the same ids and a new
// group combination does not renumber the others.
// Throws StateError naming each port whose groups have more than
// WEFT_SG_MAX_RULES rules.
Policies assign_policies(const State& state, const std::string& node,
                         const PolicyIds& previous = {});

// The entries of WEFT_MAP_SG_L4 and WEFT_MAP_SG_REMOTE for a node's policies.
// Entries past a map's capacity (WEFT_MAX_SG_L4, WEFT_MAX_SG_REMOTE) are
// counted but not kept, so an oversized document fails its capacity check
// without first building gigabytes of rule sets.
struct SgMaps {
  std::map<Bytes, Bytes> l4;
  std::map<Bytes, Bytes> remote;
  std::size_t l4_needed = 0; // entries the policies need (== l4.size() within capacity)
  std::size_t remote_needed = 0;
};

// What each rule matches (per direction and family):
// * L4: protocol null or 0 = any protocol (key proto WEFT_PROTO_ANY, one
//   entry covering every value). tcp, udp, sctp, dccp, udplite: the
//   destination port range (none, or 1-65535, = every port). icmp and
//   ipv6-icmp: type << 8 | code (a type alone covers its 256 codes). Any
//   other protocol: every value. Protocol 255 is WEFT_PROTO_ANY's key and
//   IANA-reserved: a rule naming it matches nothing.
// * remote: remote_ip_prefix; remote_group_id = each fixed IP and allowed
//   address pair of every port in the document (any node) in that group, of
//   the rule's family (no member: matches nothing); remote_address_group_id
//   matches nothing (address groups are not in the document); none = anyone.
// A rule that matches no remote keeps its bits in sg_l4 (so a change of group
// members rewrites only sg_remote); the intersection never selects it.
SgMaps compile_sg_maps(const State& state, const Policies& policies);

// weft_rule_set <-> rule numbers. Rules past WEFT_SG_MAX_RULES are ignored.
weft_rule_set encode_rule_set(const std::vector<std::uint32_t>& rules);
std::vector<std::uint32_t> rule_indexes(const weft_rule_set& set);

} // namespace weft
