// `weft apply`: reconcile, not reload. The desired map contents are computed
// in memory, compared with what is pinned, and only the difference is
// written, in an order that never sends a packet to a half-written port.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "loader/fabric/compile.hpp"
#include "loader/fabric/datapath.hpp"
#include "loader/fabric/map_io.hpp"
#include "loader/fabric/record.hpp"
#include "loader/model/state.hpp"

namespace weft {

struct MapChange {
  enum class Kind { Add, Change, Remove };
  std::string map;
  Kind kind = Kind::Add;
  Bytes key;
  Bytes value; // the new value (Add, Change) or the old one (Remove)
};
std::string to_string(MapChange::Kind kind);

std::vector<MapChange> diff_map(const std::string& map, const std::map<Bytes, Bytes>& desired,
                                const std::map<Bytes, Bytes>& actual);

struct PortAttachment {
  std::string port_id; // empty when only the device is known
  std::string device;
  int ifindex = 0;
};

struct Plan {
  Desired desired;
  std::vector<MapChange> changes;
  std::vector<PortAttachment> attach; // not attached yet (or to an older device)
  std::vector<PortAttachment> detach;
  std::vector<LocalPort> waiting; // bound here, but no device yet
  std::size_t stale_stats = 0;    // counters of ports that are gone
  // Counter slots given to a port that did not have them: zeroed first.
  std::vector<std::uint32_t> fresh_stat_slots;
  std::vector<std::uint32_t> fresh_vtep_slots; // the same for other nodes' VTEPs
  bool empty() const {
    return changes.empty() && attach.empty() && detach.empty() && stale_stats == 0 &&
           fresh_stat_slots.empty() && fresh_vtep_slots.empty();
  }
};

// The maps a Fabric works on, by name: every name of reconciled_maps(),
// WEFT_MAP_STATS, WEFT_MAP_CONFIG and WEFT_MAP_SG_HITS.
using MapSet = std::map<std::string, MapIo*>;

class Fabric {
public:
  Fabric(MapSet maps, Attacher& attacher, const Devices& devices, RecordStore& records,
         std::string node)
      : maps_(std::move(maps)), attacher_(attacher), devices_(devices), records_(records),
        node_(std::move(node)) {}

  // What applying `state` would change; touches nothing.
  Plan plan(const State& state) const;
  // Carries out a plan made by plan(), then records `document`.
  void execute(const Plan& plan, const std::string& document);

private:
  // The node's tunnel IP, uplink and physnets, from its installed configuration.
  NodeWires node_wires() const;
  MapIo& map(const std::string& name) const;
  void bump_sg_generation_if_needed(const Plan& plan);

  MapSet maps_;
  Attacher& attacher_;
  const Devices& devices_;
  RecordStore& records_;
  std::string node_;
};

} // namespace weft
