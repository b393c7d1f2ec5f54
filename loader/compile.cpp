#include "loader/compile.hpp"

#include <cstring>
#include <set>

#include "maps/weft_abi.h"

namespace weft {

const std::vector<std::string>& reconciled_maps() {
  static const std::vector<std::string> names = {
      WEFT_MAP_NETWORKS, WEFT_MAP_PORT_MACS, WEFT_MAP_SPOOF_V4, WEFT_MAP_ARP,
      WEFT_MAP_PORTS,    WEFT_MAP_FDB,       WEFT_MAP_FLOOD,
  };
  return names;
}

namespace {

NetIds assign_net_ids(const State& state, const NetIds& previous) {
  NetIds ids;
  std::set<std::uint32_t> used;
  for (const auto& net : state.networks) {
    if (auto it = previous.find(net.id); it != previous.end()) {
      ids[net.id] = it->second;
      used.insert(it->second);
    }
  }
  std::uint32_t next = 1;
  for (const auto& net : state.networks) {
    if (ids.count(net.id))
      continue;
    while (used.count(next))
      ++next;
    ids[net.id] = next;
    used.insert(next);
  }
  return ids;
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

void copy_mac(std::uint8_t* out, const Mac& mac) { std::memcpy(out, mac.bytes.data(), 6); }

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

} // namespace

Desired compile(const State& state, const std::string& node, const NetIds& previous,
                const IfindexOf& ifindex_of) {
  Desired desired;
  Builder out(desired);
  desired.net_ids = assign_net_ids(state, previous);

  for (const auto& net : state.networks) {
    weft_network value{};
    value.segmentation_id = net.segmentation_id;
    value.mtu = net.mtu;
    value.type = net_type(net.type);
    out.put(WEFT_MAP_NETWORKS, desired.net_ids.at(net.id), value);
  }

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
  std::vector<std::string> problems;
  for (const auto& port : state.ports) {
    if (port.host_id != node)
      continue;
    LocalPort local{port.id, port.device_name(), ifindex_of(port.device_name()),
                    desired.net_ids.at(port.network_id)};
    desired.local_ports.push_back(local);
    if (!local.ifindex)
      continue;
    auto ifindex = static_cast<std::uint32_t>(*local.ifindex);

    weft_port value{};
    value.net_id = local.net_id;
    value.flags = (port.port_security_enabled ? WEFT_PORT_SECURITY : 0u) |
                  (port.admin_state_up ? WEFT_PORT_UP : 0u);
    copy_mac(value.mac, port.mac_address);
    out.put(WEFT_MAP_PORTS, ifindex, value);

    weft_fdb_key fdb_key{};
    fdb_key.net_id = local.net_id;
    copy_mac(fdb_key.mac, port.mac_address);
    out.put(WEFT_MAP_FDB, fdb_key, weft_fdb_entry{ifindex, 0});
    for (const auto& pair : port.allowed_address_pairs) {
      copy_mac(fdb_key.mac, pair.mac_address);
      out.put(WEFT_MAP_FDB, fdb_key, weft_fdb_entry{ifindex, 0});
    }
    flood_lists[local.net_id].push_back(ifindex);

    if (!port.port_security_enabled)
      continue;
    std::uint8_t yes = 1;
    weft_port_mac_key mac_key{};
    mac_key.ifindex = ifindex;
    copy_mac(mac_key.mac, port.mac_address);
    out.put(WEFT_MAP_PORT_MACS, mac_key, yes);
    weft_spoof_v4_key spoof{};
    spoof.ifindex = ifindex;
    copy_mac(spoof.mac, port.mac_address);
    for (const auto& fixed : port.fixed_ips) {
      if (!fixed.ip_address.is_v4())
        continue;
      spoof.prefixlen = WEFT_SPOOF_V4_FULL_BITS;
      spoof.ip = fixed.ip_address.v4_be();
      out.put(WEFT_MAP_SPOOF_V4, spoof, yes);
    }
    for (const auto& pair : port.allowed_address_pairs) {
      copy_mac(mac_key.mac, pair.mac_address);
      out.put(WEFT_MAP_PORT_MACS, mac_key, yes);
      if (!pair.ip_address.addr.is_v4())
        continue;
      copy_mac(spoof.mac, pair.mac_address);
      spoof.prefixlen = WEFT_SPOOF_V4_FIXED_BITS + pair.ip_address.len;
      spoof.ip = pair.ip_address.addr.v4_be();
      out.put(WEFT_MAP_SPOOF_V4, spoof, yes);
    }
  }

  for (const auto& [net_id, members] : flood_lists) {
    if (members.size() > WEFT_FLOOD_MAX) {
      problems.push_back("network with net_id " + std::to_string(net_id) + " has " +
                         std::to_string(members.size()) + " ports on node " + node +
                         ", more than the " + std::to_string(WEFT_FLOOD_MAX) + " weft supports");
      continue;
    }
    weft_flood list{};
    list.count = static_cast<std::uint32_t>(members.size());
    for (std::size_t i = 0; i < members.size(); ++i)
      list.ifindex[i] = members[i];
    out.put(WEFT_MAP_FLOOD, net_id, list);
  }

  const std::pair<const char*, std::size_t> capacities[] = {
      {WEFT_MAP_PORTS, WEFT_MAX_PORTS},     {WEFT_MAP_NETWORKS, WEFT_MAX_NETWORKS},
      {WEFT_MAP_FDB, WEFT_MAX_FDB},         {WEFT_MAP_ARP, WEFT_MAX_ARP},
      {WEFT_MAP_SPOOF_V4, WEFT_MAX_SPOOF},  {WEFT_MAP_PORT_MACS, WEFT_MAX_SPOOF},
  };
  for (const auto& [name, capacity] : capacities)
    if (desired.maps[name].size() > capacity)
      problems.push_back(std::string("map ") + name + ": the document needs " +
                         std::to_string(desired.maps[name].size()) + " entries, more than its " +
                         std::to_string(capacity));
  if (!problems.empty())
    throw StateError(problems);
  return desired;
}

} // namespace weft
