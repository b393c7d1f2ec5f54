#include "loader/fabric/compile.hpp"

#include <cstdint>
#include <cstring>
#include <netinet/in.h>
#include <set>

#include "loader/fabric/policy.hpp"
#include "maps/registry.hpp"
#include "maps/weft_abi.h"

namespace weft {

const std::vector<std::string>& reconciled_maps() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& spec : maps::applied_in_order())
      out.emplace_back(spec.name);
    return out;
  }();
  return names;
}

namespace {

// Ids handed out from 1 up and kept from one apply to the next: each key
// keeps its previous id while that is below `limit` and no other key has it;
// the others take the lowest free one, or 0 (none) when none is left.
template <class Key>
std::map<Key, std::uint32_t> keep_or_assign(const std::vector<Key>& keys,
                                            const std::map<Key, std::uint32_t>& previous,
                                            std::uint32_t limit) {
  std::map<Key, std::uint32_t> ids;
  std::set<std::uint32_t> used;
  for (const auto& key : keys)
    if (auto it = previous.find(key); it != previous.end() && it->second > 0 &&
                                      it->second < limit && used.insert(it->second).second)
      ids[key] = it->second;
  std::uint32_t next = 1;
  for (const auto& key : keys) {
    if (ids.count(key))
      continue;
    while (used.count(next))
      ++next;
    ids[key] = next < limit ? next : 0;
    used.insert(next);
  }
  return ids;
}

NetIds assign_net_ids(const State& state, const NetIds& previous) {
  std::vector<std::string> ids;
  for (const auto& net : state.networks)
    ids.push_back(net.id);
  return keep_or_assign(ids, previous, UINT32_MAX);
}

// Local ports keep their slot; new ones take the lowest free one, and none
// (0: counted by device instead) when all are taken.
StatSlots assign_stat_slots(const State& state, const std::string& node,
                            const StatSlots& previous) {
  std::vector<std::string> local;
  for (const auto& port : state.ports)
    if (port.host_id == node)
      local.push_back(port.id);
  return keep_or_assign(local, previous, WEFT_MAX_PORTS);
}

// The other nodes' VTEPs keep their slot; new ones take the lowest free one
// (capacity is checked with the vteps map's).
VtepSlots assign_vtep_slots(const std::map<std::string, std::uint32_t>& vtep_of_host,
                            const VtepSlots& previous) {
  std::vector<std::uint32_t> vteps;
  for (const auto& [host, vtep] : vtep_of_host)
    vteps.push_back(vtep);
  return keep_or_assign(vteps, previous, WEFT_MAX_VTEPS);
}

std::uint8_t net_type(NetworkType type) {
  switch (type) {
  case NetworkType::Vxlan:
    return WEFT_NET_VXLAN;
  case NetworkType::Vlan:
    return WEFT_NET_VLAN;
  case NetworkType::Flat:
    return WEFT_NET_FLAT;
  }
  return 0;
}

void copy_mac(std::uint8_t* out, const Mac& mac) {
  std::memcpy(out, mac.bytes.data(), 6);
}

class Builder {
public:
  explicit Builder(Desired& desired) : desired_(desired) {
    for (const auto& name : reconciled_maps())
      desired_.maps[name];
  }
  template <class K, class V> void put(const std::string& map, const K& key, const V& value) {
    desired_.maps[map][to_bytes(key)] = to_bytes(value);
  }

private:
  Desired& desired_;
};

// The EUI-64 link-local address of a MAC (RFC 4291 appendix A).
IpPrefix link_local(const Mac& mac) {
  IpPrefix p;
  p.addr.family = AF_INET6;
  p.addr.bytes = {0xfe,
                  0x80,
                  0,
                  0,
                  0,
                  0,
                  0,
                  0,
                  static_cast<std::uint8_t>(mac.bytes[0] ^ 2),
                  mac.bytes[1],
                  mac.bytes[2],
                  0xff,
                  0xfe,
                  mac.bytes[3],
                  mac.bytes[4],
                  mac.bytes[5]};
  p.len = 128;
  return p;
}

// The (MAC, source prefix) pairs a port with port security may send from:
// its fixed IPs with its MAC, its allowed pairs, and the EUI-64 link-local
// address of each of those MACs (Neutron's IPv6 anti-spoofing).
void write_anti_spoofing(Builder& out, const Port& port, std::uint32_t ifindex) {
  const std::uint8_t yes = 1;
  std::vector<std::pair<Mac, IpPrefix>> sources;
  std::set<Mac> macs = {port.mac_address};
  for (const auto& fixed : port.fixed_ips)
    sources.emplace_back(port.mac_address,
                         IpPrefix{fixed.ip_address, fixed.ip_address.is_v4() ? 32 : 128});
  for (const auto& pair : port.allowed_address_pairs) {
    sources.emplace_back(pair.mac_address, pair.ip_address);
    macs.insert(pair.mac_address);
  }
  for (const auto& mac : macs) {
    weft_port_mac_key key{};
    key.ifindex = ifindex;
    copy_mac(key.mac, mac);
    out.put(WEFT_MAP_PORT_MACS, key, yes);
    sources.emplace_back(mac, link_local(mac));
  }
  for (const auto& [mac, prefix] : sources) {
    if (prefix.addr.is_v4()) {
      weft_spoof_v4_key key{};
      key.prefixlen = WEFT_SPOOF_V4_FIXED_BITS + prefix.len;
      key.ifindex = ifindex;
      copy_mac(key.mac, mac);
      key.ip = prefix.addr.v4_be();
      out.put(WEFT_MAP_SPOOF_V4, key, yes);
    } else {
      weft_spoof_v6_key key{};
      key.prefixlen = WEFT_SPOOF_V6_FIXED_BITS + prefix.len;
      key.ifindex = ifindex;
      copy_mac(key.mac, mac);
      std::memcpy(key.ip, prefix.addr.bytes.data(), 16);
      out.put(WEFT_MAP_SPOOF_V6, key, yes);
    }
  }
}

} // namespace

namespace {

// The other nodes' VTEPs (DESIGN.md §3.4): every node of the document with a
// tunnel_ip; only they may send this node VXLAN, and a remote port of a
// vxlan network lives behind its node's.
struct Underlay {
  std::uint32_t own = 0;                             // this node's tunnel IP
  std::map<std::string, std::uint32_t> vtep_of_host; // other nodes only
};

Underlay underlay_of(const State& state, const std::string& node, const NodeWires& wires) {
  Underlay u;
  u.own = wires.tunnel_ip;
  for (const auto& n : state.nodes)
    if (n.name == node && n.tunnel_ip && n.tunnel_ip->is_v4() && !u.own)
      u.own = n.tunnel_ip->v4_be();
  for (const auto& n : state.nodes)
    if (n.name != node && n.tunnel_ip && n.tunnel_ip->is_v4() && n.tunnel_ip->v4_be() != u.own)
      u.vtep_of_host[n.name] = n.tunnel_ip->v4_be();
  return u;
}

} // namespace

Desired compile(const State& state, const std::string& node, const Assignments& previous,
                const IfindexOf& ifindex_of, const NodeWires& wires) {
  // Too many rules for a port is refused before anything else is computed.
  Policies policies = assign_policies(state, node, previous.policy_ids);
  Desired desired;
  Builder out(desired);
  desired.net_ids = assign_net_ids(state, previous.net_ids);
  desired.policy_ids = policies.ids();
  StatSlots stat_slots = assign_stat_slots(state, node, previous.stat_slots);

  Underlay underlay = underlay_of(state, node, wires);
  std::set<std::string> hosted; // networks with ports on this node
  for (const auto& port : state.ports)
    if (port.host_id == node)
      hosted.insert(port.network_id);

  std::vector<std::string> problems;
  std::map<std::pair<std::uint32_t, std::uint16_t>, std::string> segment_owner;
  std::map<std::uint32_t, weft_network> network_of_id;
  for (const auto& net : state.networks) {
    std::uint32_t net_id = desired.net_ids.at(net.id);
    weft_network value{};
    value.segmentation_id = net.segmentation_id;
    value.mtu = net.mtu;
    value.type = net_type(net.type);
    if (net.type != NetworkType::Vxlan && net.physical_network)
      if (auto it = wires.physnets.find(*net.physical_network); it != wires.physnets.end())
        value.wire_ifindex = it->second;
    out.put(WEFT_MAP_NETWORKS, net_id, value);
    network_of_id[net_id] = value;
    if (!hosted.count(net.id))
      continue;
    // What the wire may bring in: only for networks with ports here.
    if (net.type == NetworkType::Vxlan) {
      out.put(WEFT_MAP_VNIS, net.segmentation_id, net_id);
    } else if (value.wire_ifindex) {
      auto vlan =
          static_cast<std::uint16_t>(net.type == NetworkType::Vlan ? net.segmentation_id : 0);
      auto [it, fresh] = segment_owner.emplace(std::make_pair(value.wire_ifindex, vlan), net.id);
      if (!fresh)
        problems.push_back("networks[" + net.id + "]: provider:physical_network " +
                           *net.physical_network + " carries network " + it->second +
                           (vlan ? " on the same VLAN" : " untagged") + " already");
      weft_segment_key key{};
      key.ifindex = value.wire_ifindex;
      key.vlan = vlan;
      out.put(WEFT_MAP_SEGMENTS, key, net_id);
    }
  }
  desired.vtep_slots = assign_vtep_slots(underlay.vtep_of_host, previous.vtep_slots);
  for (const auto& [vtep, slot] : desired.vtep_slots)
    out.put(WEFT_MAP_VTEPS, vtep, weft_vtep{slot});

  // The ARP responder knows every port of every network, wherever it is bound.
  for (const auto& port : state.ports) {
    std::uint32_t net_id = desired.net_ids.at(port.network_id);
    weft_arp_entry entry{};
    copy_mac(entry.mac, port.mac_address);
    for (const auto& fixed : port.fixed_ips)
      if (fixed.ip_address.is_v4())
        out.put(WEFT_MAP_ARP, weft_arp_key{net_id, fixed.ip_address.v4_be()}, entry);
    for (const auto& pair : port.allowed_address_pairs) {
      if (!pair.ip_address.addr.is_v4() || pair.ip_address.len != 32)
        continue;
      weft_arp_entry pair_entry{};
      copy_mac(pair_entry.mac, pair.mac_address);
      out.put(WEFT_MAP_ARP, weft_arp_key{net_id, pair.ip_address.addr.v4_be()}, pair_entry);
    }
  }

  std::map<std::uint32_t, std::vector<std::uint32_t>> flood_lists;
  std::map<std::uint32_t, std::set<std::uint32_t>> flood_vteps;
  for (const auto& net : state.networks)
    if (hosted.count(net.id))
      flood_lists[desired.net_ids.at(net.id)];
  for (const auto& port : state.ports) {
    if (port.host_id != node)
      continue;
    LocalPort local{port.id, port.device_name(), ifindex_of(port.device_name()),
                    desired.net_ids.at(port.network_id), stat_slots.at(port.id)};
    desired.local_ports.push_back(local);
    if (!local.ifindex)
      continue;
    auto ifindex = static_cast<std::uint32_t>(*local.ifindex);

    weft_port value{};
    value.net_id = local.net_id;
    value.flags = (port.port_security_enabled ? WEFT_PORT_SECURITY : 0u) |
                  (port.admin_state_up ? WEFT_PORT_UP : 0u) |
                  (policies.is_stateful(port.id) ? WEFT_PORT_STATEFUL : 0u);
    copy_mac(value.mac, port.mac_address);
    value.policy = policies.policy_of(port.id);
    value.stat_slot = local.stat_slot;
    value.net = network_of_id.at(local.net_id);
    for (const auto& fixed : port.fixed_ips)
      if (fixed.ip_address.is_v4() && !value.ip4)
        value.ip4 = fixed.ip_address.v4_be();
    if (const CompiledPolicy* policy = policies.find(value.policy)) {
      auto fast = allow_all_rules(*policy);
      std::copy(fast.begin(), fast.end(), value.allow_all);
    }
    out.put(WEFT_MAP_PORTS, ifindex, value);

    weft_fdb_key fdb_key{};
    fdb_key.net_id = local.net_id;
    copy_mac(fdb_key.mac, port.mac_address);
    out.put(WEFT_MAP_FDB, fdb_key, weft_fdb_entry{ifindex, 0, 0});
    for (const auto& pair : port.allowed_address_pairs) {
      copy_mac(fdb_key.mac, pair.mac_address);
      out.put(WEFT_MAP_FDB, fdb_key, weft_fdb_entry{ifindex, 0, 0});
    }
    flood_lists[local.net_id].push_back(ifindex);

    if (!port.port_security_enabled)
      continue;
    write_anti_spoofing(out, port, ifindex);
  }

  // Remote ports of vxlan networks live behind their node's VTEP (l2pop);
  // a local port's MAC stays local. vlan and flat networks reach theirs on
  // the wire, where an unknown MAC goes anyway.
  std::map<std::string, const Network*> network_of;
  for (const auto& net : state.networks)
    network_of[net.id] = &net;
  for (const auto& port : state.ports) {
    auto vtep = underlay.vtep_of_host.find(port.host_id);
    const Network* net = network_of.at(port.network_id);
    if (port.host_id == node || vtep == underlay.vtep_of_host.end() ||
        net->type != NetworkType::Vxlan)
      continue;
    std::uint32_t net_id = desired.net_ids.at(port.network_id);
    std::vector<Mac> macs = {port.mac_address};
    for (const auto& pair : port.allowed_address_pairs)
      macs.push_back(pair.mac_address);
    for (const auto& mac : macs) {
      weft_fdb_key key{};
      key.net_id = net_id;
      copy_mac(key.mac, mac);
      auto& fdb = desired.maps[WEFT_MAP_FDB];
      fdb.emplace(to_bytes(key),
                  to_bytes(weft_fdb_entry{0, vtep->second, desired.vtep_slots.at(vtep->second)}));
    }
    if (hosted.count(port.network_id))
      flood_vteps[net_id].insert(vtep->second);
  }

  for (const auto& [net_id, members] : flood_lists) {
    const auto& vteps = flood_vteps[net_id];
    if (members.size() > WEFT_FLOOD_MAX || vteps.size() > WEFT_FLOOD_VTEPS_MAX) {
      problems.push_back("network with net_id " + std::to_string(net_id) + " has " +
                         std::to_string(members.size()) + " ports on node " + node + " and " +
                         std::to_string(vteps.size()) + " other nodes, more than the " +
                         std::to_string(WEFT_FLOOD_MAX) + " and " +
                         std::to_string(WEFT_FLOOD_VTEPS_MAX) + " weft supports");
      continue;
    }
    weft_flood list{};
    list.count = static_cast<std::uint32_t>(members.size());
    for (std::size_t i = 0; i < members.size(); ++i)
      list.ifindex[i] = members[i];
    list.vtep_count = static_cast<std::uint32_t>(vteps.size());
    std::size_t i = 0;
    for (auto vtep : vteps) {
      list.vtep_slots[i] = desired.vtep_slots.at(vtep);
      list.vteps[i++] = vtep;
    }
    out.put(WEFT_MAP_FLOOD, net_id, list);
  }

  // Rules of the policies of every local port, also those still waiting for
  // their device: a policy's entries exist before a port points at it.
  SgMaps sg = compile_sg_maps(state, policies);
  desired.maps[WEFT_MAP_SG_L4] = std::move(sg.l4);
  desired.maps[WEFT_MAP_SG_REMOTE] = std::move(sg.remote);

  auto check = [&](std::string_view name, std::size_t needed) {
    std::size_t capacity = maps::find(name)->capacity;
    if (needed > capacity)
      problems.push_back("map " + std::string(name) + ": the document needs " +
                         std::to_string(needed) + " entries, more than its " +
                         std::to_string(capacity));
  };
  for (const auto& spec : maps::applied_in_order()) {
    // The rule maps stop filling at their capacity: what they need is counted apart.
    if (spec.name == WEFT_MAP_SG_L4 || spec.name == WEFT_MAP_SG_REMOTE)
      continue;
    check(spec.name, desired.maps[std::string(spec.name)].size());
  }
  check(WEFT_MAP_SG_L4, sg.l4_needed);
  check(WEFT_MAP_SG_REMOTE, sg.remote_needed);
  if (!problems.empty())
    throw StateError(problems);
  return desired;
}

NetIds net_ids_in_networks_map(const State& state, const std::map<Bytes, Bytes>& networks) {
  using Segment = std::pair<std::uint8_t, std::uint32_t>; // type, segmentation id
  std::map<Segment, std::vector<std::uint32_t>> pinned;
  for (const auto& [key, value] : networks) {
    auto net = from_bytes<weft_network>(value);
    pinned[{net.type, net.segmentation_id}].push_back(from_bytes<std::uint32_t>(key));
  }
  std::map<Segment, std::vector<std::string>> wanted;
  for (const auto& net : state.networks)
    wanted[{net_type(net.type), net.segmentation_id}].push_back(net.id);
  NetIds ids;
  for (const auto& [segment, ids_in_document] : wanted) {
    auto it = pinned.find(segment);
    if (ids_in_document.size() == 1 && it != pinned.end() && it->second.size() == 1)
      ids[ids_in_document.front()] = it->second.front();
  }
  return ids;
}

StatSlots stat_slots_in_ports_map(const State& state, const std::string& node,
                                  const std::map<Bytes, Bytes>& ports,
                                  const IfindexOf& ifindex_of) {
  StatSlots slots;
  for (const auto& port : state.ports) {
    if (port.host_id != node)
      continue;
    auto ifindex = ifindex_of(port.device_name());
    if (!ifindex)
      continue;
    auto it = ports.find(to_bytes(static_cast<std::uint32_t>(*ifindex)));
    if (it != ports.end())
      if (auto slot = from_bytes<weft_port>(it->second).stat_slot)
        slots[port.id] = slot;
  }
  return slots;
}

} // namespace weft
