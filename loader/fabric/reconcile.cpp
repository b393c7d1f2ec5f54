#include "loader/fabric/reconcile.hpp"

#include <cstring>
#include <set>

#include "maps/weft_abi.h"

namespace weft {

std::string to_string(MapChange::Kind kind) {
  switch (kind) {
  case MapChange::Kind::Add:
    return "add";
  case MapChange::Kind::Change:
    return "change";
  case MapChange::Kind::Remove:
    return "remove";
  }
  return "?";
}

std::vector<MapChange> diff_map(const std::string& map, const std::map<Bytes, Bytes>& desired,
                                const std::map<Bytes, Bytes>& actual) {
  std::vector<MapChange> out;
  for (const auto& [key, value] : desired) {
    auto it = actual.find(key);
    if (it == actual.end())
      out.push_back({map, MapChange::Kind::Add, key, value});
    else if (it->second != value)
      out.push_back({map, MapChange::Kind::Change, key, value});
  }
  for (const auto& [key, value] : actual)
    if (!desired.count(key))
      out.push_back({map, MapChange::Kind::Remove, key, value});
  return out;
}

MapIo& Fabric::map(const std::string& name) const {
  auto it = maps_.find(name);
  if (it == maps_.end() || !it->second)
    throw std::logic_error("fabric: map " + name + " is not open");
  return *it->second;
}

NodeWires Fabric::node_wires() const {
  NodeWires wires;
  if (auto it = maps_.find(WEFT_MAP_CONFIG); it != maps_.end() && it->second)
    if (auto config = Map<std::uint32_t, weft_node_config>(*it->second).get(0)) {
      wires.tunnel_ip = config->tunnel_ip;
      wires.uplink_ifindex = config->uplink_ifindex;
    }
  if (auto it = maps_.find(WEFT_MAP_PHYSNETS); it != maps_.end() && it->second)
    for (const auto& [key, value] : Map<weft_physnet_key, weft_physnet>(*it->second).entries())
      wires.physnets[std::string(key.name, strnlen(key.name, sizeof(key.name)))] = value.ifindex;
  return wires;
}

Plan Fabric::plan(const State& state) const {
  Plan plan;
  auto record = records_.load();
  Assignments previous;
  if (record) {
    previous = {record->net_ids, record->policy_ids, {}};
    for (const auto& port : record->local_ports)
      if (port.stat_slot)
        previous.stat_slots[port.id] = port.stat_slot;
  } else
    previous.net_ids = net_ids_in_networks_map(state, map(WEFT_MAP_NETWORKS).dump());
  for (const auto& [vtep, value] : Map<std::uint32_t, weft_vtep>(map(WEFT_MAP_VTEPS)).entries())
    previous.vtep_slots[vtep] = value.slot;
  IfindexOf ifindex_of = [this](const std::string& device) {
    auto dev = devices_.find(device);
    return dev ? std::optional<int>(dev->ifindex) : std::nullopt;
  };
  if (!record)
    previous.stat_slots =
        stat_slots_in_ports_map(state, node_, map(WEFT_MAP_PORTS).dump(), ifindex_of);
  NodeWires wires = node_wires();
  plan.desired = compile(state, node_, previous, ifindex_of, wires);

  for (const auto& name : reconciled_maps()) {
    auto changes = diff_map(name, plan.desired.maps.at(name), map(name).dump());
    plan.changes.insert(plan.changes.end(), changes.begin(), changes.end());
  }
  for (const auto& port : plan.desired.local_ports)
    if (auto it = previous.stat_slots.find(port.id);
        port.stat_slot && (it == previous.stat_slots.end() || it->second != port.stat_slot))
      plan.fresh_stat_slots.push_back(port.stat_slot);
  for (const auto& [vtep, slot] : plan.desired.vtep_slots)
    if (auto it = previous.vtep_slots.find(vtep);
        slot && (it == previous.vtep_slots.end() || it->second != slot))
      plan.fresh_vtep_slots.push_back(slot);

  std::set<std::string> wanted;
  for (const auto& port : plan.desired.local_ports) {
    if (!port.ifindex) {
      plan.waiting.push_back(port);
      continue;
    }
    wanted.insert(port.device);
    auto now = attacher_.query(port.device, *port.ifindex);
    if (!now || now->ifindex != *port.ifindex)
      plan.attach.push_back({port.id, port.device, *port.ifindex});
  }

  // Detach what runs the program but is no longer wanted: ports of the last
  // apply, and any port entry whose device is not a wanted one. A wanted
  // device that was re-created is re-attached above, not detached.
  std::set<std::string> seen;
  auto consider = [&](const std::string& id, const std::string& device, int ifindex) {
    if (wanted.count(device) || !seen.insert(device).second)
      return;
    if (attacher_.query(device, ifindex))
      plan.detach.push_back({id, device, ifindex});
  };
  if (record)
    for (const auto& port : record->local_ports)
      if (port.ifindex)
        consider(port.id, port.device, *port.ifindex);
  for (const auto& [key, value] : map(WEFT_MAP_PORTS).dump()) {
    int ifindex = static_cast<int>(from_bytes<std::uint32_t>(key));
    if (auto dev = devices_.find(ifindex))
      consider("", dev->name, ifindex);
  }

  // Counters of the ports, and of the devices the wire comes in on.
  std::set<std::uint32_t> ports = {wires.uplink_ifindex};
  for (const auto& [name, ifindex] : wires.physnets)
    ports.insert(ifindex);
  for (const auto& [key, value] : plan.desired.maps.at(WEFT_MAP_PORTS))
    ports.insert(from_bytes<std::uint32_t>(key));
  for (const auto& key : map(WEFT_MAP_STATS).keys())
    if (!ports.count(from_bytes<weft_stat_key>(key).ifindex))
      ++plan.stale_stats;
  return plan;
}

// Conntrack entries admitted under older rules are checked again once the
// rules that a port uses, or which policy it uses, have changed.
// Rule hits are counted by rule number, and rules are renumbered when they
// change: the counts start again then.
void Fabric::bump_sg_generation_if_needed(const Plan& plan) {
  bool rules_changed = false, policy_changed = false;
  for (const auto& change : plan.changes) {
    rules_changed |= change.map == WEFT_MAP_SG_L4 || change.map == WEFT_MAP_SG_REMOTE;
    policy_changed |= change.map == WEFT_MAP_PORTS;
  }
  if (auto hits = maps_.find(WEFT_MAP_SG_HITS);
      rules_changed && hits != maps_.end() && hits->second)
    for (const auto& key : hits->second->keys())
      hits->second->erase(key);
  if (auto hits = maps_.find(WEFT_MAP_PORT_HITS);
      rules_changed && hits != maps_.end() && hits->second)
    for (const auto& port : plan.desired.local_ports)
      if (port.stat_slot)
        Map<std::uint32_t, weft_port_hits>(*hits->second).put(port.stat_slot, weft_port_hits{});
  auto it = maps_.find(WEFT_MAP_CONFIG);
  if (!(rules_changed || policy_changed) || it == maps_.end() || !it->second)
    return;
  Map<std::uint32_t, weft_node_config> config(*it->second);
  auto node = config.get(0).value_or(weft_node_config{});
  ++node.sg_generation;
  config.put(0, node);
}

void Fabric::execute(const Plan& plan, const std::string& document) {
  // A slot may hold the counters of a port that is gone: they are not the
  // new port's. Zeroed before the port's entry points at it.
  for (std::uint32_t slot : plan.fresh_stat_slots) {
    if (auto it = maps_.find(WEFT_MAP_PORT_STATS); it != maps_.end() && it->second)
      Map<std::uint32_t, weft_port_stats>(*it->second).put(slot, weft_port_stats{});
    if (auto it = maps_.find(WEFT_MAP_PORT_HITS); it != maps_.end() && it->second)
      Map<std::uint32_t, weft_port_hits>(*it->second).put(slot, weft_port_hits{});
  }
  if (auto it = maps_.find(WEFT_MAP_VTEP_PATHS); it != maps_.end() && it->second)
    for (std::uint32_t slot : plan.fresh_vtep_slots)
      Map<std::uint32_t, weft_vtep_path>(*it->second).put(slot, weft_vtep_path{});
  // Additions and changes in map order (addresses before ports, ports before
  // the FDB and flood lists that lead to them), then attachments, then
  // detachments, then removals in reverse map order.
  for (const auto& name : reconciled_maps())
    for (const auto& change : plan.changes)
      if (change.map == name && change.kind != MapChange::Kind::Remove)
        map(name).update(change.key, change.value);
  for (const auto& port : plan.attach)
    attacher_.attach(port.device, port.ifindex);
  for (const auto& port : plan.detach)
    attacher_.detach(port.device, port.ifindex);
  const auto& names = reconciled_maps();
  for (auto name = names.rbegin(); name != names.rend(); ++name)
    for (const auto& change : plan.changes)
      if (change.map == *name && change.kind == MapChange::Kind::Remove)
        map(*name).erase(change.key);

  bump_sg_generation_if_needed(plan);

  if (plan.stale_stats) {
    std::set<std::uint32_t> ports;
    for (const auto& [key, value] : plan.desired.maps.at(WEFT_MAP_PORTS))
      ports.insert(from_bytes<std::uint32_t>(key));
    for (const auto& key : map(WEFT_MAP_STATS).keys())
      if (!ports.count(from_bytes<weft_stat_key>(key).ifindex))
        map(WEFT_MAP_STATS).erase(key);
  }

  records_.save(
      Record{document, plan.desired.net_ids, plan.desired.policy_ids, plan.desired.local_ports});
}

} // namespace weft
