// From a validated document to the map contents one node's datapath needs:
// pure, no kernel, so it is unit-tested as it is.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "loader/fabric/map_io.hpp"
#include "loader/fabric/policy.hpp"
#include "loader/model/state.hpp"

namespace weft {

// The maps `weft apply` owns, in the order their additions are written: a
// port's addresses and its policy's rules (sg_l4, sg_remote) exist before its
// entry, and its entry before the FDB and flood entries that send traffic to
// it. Removals go in the reverse order.
const std::vector<std::string>& reconciled_maps();

// Network id → node-local net_id.
using NetIds = std::map<std::string, std::uint32_t>;

struct LocalPort {
  std::string id;
  std::string device;
  std::optional<int> ifindex; // nullopt: the device does not exist yet (waiting)
  std::uint32_t net_id = 0;
  std::uint32_t stat_slot = 0; // its counters in WEFT_MAP_PORT_STATS; 0: none
};

// Port id → its slot in WEFT_MAP_PORT_STATS.
using StatSlots = std::map<std::string, std::uint32_t>;
// Tunnel IPv4 (network order) of another node → its slot in WEFT_MAP_VTEP_PATHS.
using VtepSlots = std::map<std::uint32_t, std::uint32_t>;

// Ids the loader hands out and keeps stable from one apply to the next.
struct Assignments {
  NetIds net_ids;
  PolicyIds policy_ids;
  StatSlots stat_slots;
  VtepSlots vtep_slots; // from the pinned vteps map, which keeps them
};

struct Desired {
  std::map<std::string, std::map<Bytes, Bytes>> maps; // by map name
  NetIds net_ids;
  PolicyIds policy_ids;
  VtepSlots vtep_slots;
  std::vector<LocalPort> local_ports; // ports bound to this node
};

using IfindexOf = std::function<std::optional<int>(const std::string& device)>;

// How the node reaches the others, as `weft node install` set it up.
struct NodeWires {
  std::uint32_t tunnel_ip = 0; // network order; 0: the document's nodes[].tunnel_ip
  std::uint32_t uplink_ifindex = 0;
  std::map<std::string, std::uint32_t> physnets; // physnet name -> device ifindex
};

// `previous` keeps net_ids and ports' counter slots stable across applies;
// new networks and ports take the lowest free one. Throws StateError when
// the node's share of the document exceeds a map's capacity.
Desired compile(const State& state, const std::string& node, const Assignments& previous,
                const IfindexOf& ifindex_of, const NodeWires& wires = {});

// The net_ids the pinned networks map gives the document's networks, matched
// by type and segmentation id where the match is unique on both sides: what
// keeps net_ids stable when the record of the last apply is lost.
NetIds net_ids_in_networks_map(const State& state, const std::map<Bytes, Bytes>& networks);

// The counter slots the pinned ports map gives the node's ports, by their
// devices: what keeps slots (and counters) when the record is lost.
StatSlots stat_slots_in_ports_map(const State& state, const std::string& node,
                                  const std::map<Bytes, Bytes>& ports, const IfindexOf& ifindex_of);

} // namespace weft
