#include "loader/inspect/inspect.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cstring>
#include <ctime>
#include <map>
#include <set>

#include "loader/inspect/decode.hpp"
#include "maps/registry.hpp"
#include "maps/weft_abi.h"

namespace weft {

using nlohmann::json;

namespace {

// Counters of one map key, summed over CPUs.
weft_counter sum_counter(KernelMap& stats, const Bytes& key) {
  weft_counter total{};
  for (const auto& cpu : stats.lookup_percpu(key)) {
    auto c = from_bytes<weft_counter>(cpu);
    total.packets += c.packets;
    total.bytes += c.bytes;
  }
  return total;
}

// ifindex → (reason → counter): drops and devices' counters by device, and
// what each port forwarded from its slot.
std::map<std::uint32_t, std::map<std::uint32_t, weft_counter>> read_stats(Session& session) {
  std::map<std::uint32_t, std::map<std::uint32_t, weft_counter>> out;
  auto& stats = session.map(WEFT_MAP_STATS);
  for (const auto& key : stats.keys()) {
    auto k = from_bytes<weft_stat_key>(key);
    out[k.ifindex][k.reason] = sum_counter(stats, key);
  }
  auto& slots = session.map(WEFT_MAP_PORT_STATS);
  for (const auto& [ifindex, port] :
       Map<std::uint32_t, weft_port>(session.map(WEFT_MAP_PORTS)).entries()) {
    if (!port.stat_slot)
      continue;
    for (const auto& cpu : slots.lookup_percpu(to_bytes(port.stat_slot))) {
      auto s = from_bytes<weft_port_stats>(cpu);
      for (std::uint32_t reason = 0; reason < WEFT_REASON_FIRST_DROP; ++reason)
        if (s.reason[reason].packets) {
          auto& c = out[ifindex][reason];
          c.packets += s.reason[reason].packets;
          c.bytes += s.reason[reason].bytes;
        }
    }
  }
  return out;
}

const LocalPort* local_port(Session& session, const std::string& id) {
  for (const auto& lp : session.record().local_ports)
    if (lp.id == id)
      return &lp;
  return nullptr;
}

std::string network_name(const State& state, const std::string& id) {
  const Network* net = state.find_network(id);
  return net ? net->name : "";
}

json port_row(Session& session, const Port& port,
              const std::map<std::uint32_t, std::map<std::uint32_t, weft_counter>>& stats) {
  const State& state = session.applied();
  json ips = json::array();
  for (const auto& fixed : port.fixed_ips)
    ips.push_back(fixed.ip_address.str());
  json pairs = json::array();
  for (const auto& pair : port.allowed_address_pairs)
    pairs.push_back(
        {{"ip_address", pair.ip_address.str()}, {"mac_address", pair.mac_address.str()}});

  json row = {{"id", port.id},
              {"network_id", port.network_id},
              {"network", network_name(state, port.network_id)},
              {"mac_address", port.mac_address.str()},
              {"fixed_ips", ips},
              {"allowed_address_pairs", pairs},
              {"host", port.host_id},
              {"device", port.device_name()},
              {"port_security_enabled", port.port_security_enabled},
              {"admin_state_up", port.admin_state_up},
              {"security_groups", port.security_groups},
              {"security_groups_enforced", port.port_security_enabled}};

  const LocalPort* lp =
      port.host_id == session.layout().node ? local_port(session, port.id) : nullptr;
  if (!lp) {
    row["state"] = port.host_id == session.layout().node ? "pending-apply" : "remote";
    row["ifindex"] = nullptr;
    row["net_id"] = nullptr;
    return row;
  }
  row["net_id"] = lp->net_id;
  auto dev = session.devices().find(port.device_name());
  row["ifindex"] = dev ? json(dev->ifindex) : json(nullptr);
  std::string st;
  if (!dev)
    st = "waiting";
  else if (!lp->ifindex || *lp->ifindex != dev->ifindex)
    st = "stale";
  else if (!session.installation().attacher()->query(dev->name, dev->ifindex))
    st = "detached";
  else
    st = port.admin_state_up ? "attached" : "admin-down";
  row["state"] = st;

  json counters = json::object();
  std::uint64_t forwarded = 0, dropped = 0, delivered = 0;
  if (dev)
    if (auto it = stats.find(static_cast<std::uint32_t>(dev->ifindex)); it != stats.end())
      for (const auto& [reason, c] : it->second) {
        counters[reason_name(reason)] = {{"packets", c.packets}, {"bytes", c.bytes}};
        if (reason == WEFT_DELIVERED)
          delivered += c.packets;
        else if (reason_is_drop(reason))
          dropped += c.packets;
        else if (reason != WEFT_NONE)
          forwarded += c.packets;
      }
  row["counters"] = counters;
  row["sent"] = forwarded;
  row["received"] = delivered;
  row["dropped"] = dropped;
  return row;
}

} // namespace

json inspect_node(Session& session) {
  auto s = session.installation().status();
  json out = {{"node", session.layout().node},
              {"installed", s.installed},
              {"pin_dir", session.layout().root()}};
  if (!s.installed)
    return out;
  out["abi_version"] = s.abi_version;
  out["attach_mode"] = to_string(s.attach_mode);
  out["tunnel_ip"] = s.tunnel_ip ? json(s.tunnel_ip->str()) : json(nullptr);
  out["uplink"] = s.uplink.empty() ? json(nullptr) : json(s.uplink);
  out["loopback_forwarding_set"] = s.set_loopback_forwarding;
  json physnets = json::array();
  for (const auto& p : s.physnets)
    physnets.push_back({{"physnet", p.name}, {"device", p.device}, {"ifindex", p.ifindex}});
  out["physical_interface_mappings"] = physnets;
  out["program"] = {{"name", kPortProgram}, {"id", s.prog_id}, {"tag", s.prog_tag}};
  out["maps"] = s.maps;
  out["ct_max"] = s.ct_max;
  out["ct_network_max"] = s.ct_network_max;
  out["sg_generation"] = s.sg_generation;
  json att = json::array();
  for (const auto& a : s.attachments)
    att.push_back({{"device", a.device},
                   {"ifindex", a.ifindex},
                   {"hook", "tc-ingress"},
                   {"program", a.program},
                   {"mode", to_string(a.mode)},
                   {"prog_id", a.prog_id}});
  out["attachments"] = att;
  return out;
}

json inspect_networks(Session& session) {
  const State& state = session.applied();
  json rows = json::array();
  for (const auto& net : state.networks) {
    int local = 0, total = 0;
    for (const auto& port : state.ports)
      if (port.network_id == net.id) {
        ++total;
        local += port.host_id == session.layout().node;
      }
    auto net_id = session.record().net_ids.find(net.id);
    rows.push_back(
        {{"id", net.id},
         {"name", net.name},
         {"project_id", net.project_id},
         {"type", to_string(net.type)},
         {"segmentation_id", net.segmentation_id},
         {"physical_network", net.physical_network ? json(*net.physical_network) : json(nullptr)},
         {"mtu", net.mtu},
         {"net_id",
          net_id != session.record().net_ids.end() ? json(net_id->second) : json(nullptr)},
         {"local_ports", local},
         {"ports", total}});
  }
  return rows;
}

json inspect_ports(Session& session) {
  auto stats = read_stats(session);
  json rows = json::array();
  for (const auto& port : session.applied().ports)
    rows.push_back(port_row(session, port, stats));
  return rows;
}

json inspect_port(Session& session, const std::string& id) {
  const Port* found = nullptr;
  for (const auto& port : session.applied().ports) {
    if (port.id == id) {
      found = &port;
      break;
    }
    if (port.id.rfind(id, 0) == 0) {
      if (found)
        throw std::runtime_error("port " + id + ": more than one port id starts with it");
      found = &port;
    }
  }
  if (!found)
    throw std::runtime_error("port " + id + ": no such port in the applied state of node " +
                             session.layout().node);
  return port_row(session, *found, read_stats(session));
}

namespace {

// Node names by VTEP (network order), from the applied document.
std::map<std::uint32_t, std::string> node_of_vtep(const State& state) {
  std::map<std::uint32_t, std::string> out;
  for (const auto& n : state.nodes)
    if (n.tunnel_ip && n.tunnel_ip->is_v4())
      out[n.tunnel_ip->v4_be()] = n.name;
  return out;
}

std::map<std::uint32_t, const Network*> networks_by_net_id(Session& session) {
  std::map<std::uint32_t, const Network*> out;
  for (const auto& [id, net_id] : session.record().net_ids)
    out[net_id] = session.applied().find_network(id);
  return out;
}

} // namespace

json inspect_vteps(Session& session) {
  auto nodes = node_of_vtep(session.applied());
  auto nets = networks_by_net_id(session);
  auto& paths = session.map(WEFT_MAP_VTEP_PATHS);
  std::map<std::uint32_t, std::set<std::string>> flooded;
  for (const auto& [net_id, list] :
       Map<std::uint32_t, weft_flood>(session.map(WEFT_MAP_FLOOD)).entries())
    for (std::uint32_t i = 0; i < list.vtep_count && i < WEFT_FLOOD_VTEPS_MAX; ++i)
      flooded[list.vteps[i]].insert(nets.count(net_id) && nets[net_id] ? nets[net_id]->name
                                                                       : std::to_string(net_id));
  std::map<std::uint32_t, int> macs;
  for (const auto& [key, value] :
       Map<weft_fdb_key, weft_fdb_entry>(session.map(WEFT_MAP_FDB)).entries())
    if (value.vtep)
      ++macs[value.vtep];

  json rows = json::array();
  for (const auto& [vtep, entry] :
       Map<std::uint32_t, weft_vtep>(session.map(WEFT_MAP_VTEPS)).entries()) {
    json networks = json::array();
    for (const auto& name : flooded[vtep])
      networks.push_back(name);
    // Counters in its slot, summed over CPUs.
    auto counted = merge_vtep_path(paths.lookup_percpu(to_bytes(entry.slot)));
    auto tx = counted.tx;
    auto rx = counted.rx;
    rows.push_back({{"vtep", ipv4_str(vtep)},
                    {"node", nodes.count(vtep) ? nodes[vtep] : ""},
                    {"networks", networks},
                    {"macs", macs[vtep]},
                    {"tx_packets", tx.packets},
                    {"tx_bytes", tx.bytes},
                    {"rx_packets", rx.packets},
                    {"rx_bytes", rx.bytes}});
  }
  return rows;
}

json inspect_network(Session& session, const std::string& id) {
  const State& state = session.applied();
  const Network* found = nullptr;
  for (const auto& net : state.networks)
    if (net.id == id || net.name == id || (id.size() >= 4 && net.id.rfind(id, 0) == 0)) {
      if (found)
        throw std::runtime_error("network " + id + ": more than one network matches");
      found = &net;
    }
  if (!found)
    throw std::runtime_error("network " + id + ": no such network in the applied state of node " +
                             session.layout().node);
  json out;
  for (const auto& row : inspect_networks(session))
    if (row["id"] == found->id)
      out = row;
  auto net_id = session.record().net_ids.find(found->id);
  if (net_id == session.record().net_ids.end())
    return out;
  std::uint32_t nid = net_id->second;
  auto segment = Map<std::uint32_t, weft_network>(session.map(WEFT_MAP_NETWORKS)).get(nid);
  if (segment && segment->wire_ifindex) {
    auto dev = session.devices().find(static_cast<int>(segment->wire_ifindex));
    out["wire_device"] = dev ? dev->name : std::to_string(segment->wire_ifindex);
  } else {
    out["wire_device"] = nullptr;
  }
  if (found->type == NetworkType::Vxlan)
    out["accepts_vxlan"] = Map<std::uint32_t, std::uint32_t>(session.map(WEFT_MAP_VNIS))
                               .get(found->segmentation_id)
                               .has_value();

  std::map<std::uint32_t, std::string> port_of_ifindex, device_of_ifindex;
  json ports = json::array();
  for (const auto& lp : session.record().local_ports)
    if (lp.net_id == nid) {
      ports.push_back({{"port_id", lp.id},
                       {"device", lp.device},
                       {"ifindex", lp.ifindex ? json(*lp.ifindex) : json(nullptr)}});
      if (lp.ifindex)
        port_of_ifindex[static_cast<std::uint32_t>(*lp.ifindex)] = lp.id;
    }
  out["ports_here"] = ports;
  auto nodes = node_of_vtep(state);
  json flood = json::array();
  if (auto list = Map<std::uint32_t, weft_flood>(session.map(WEFT_MAP_FLOOD)).get(nid)) {
    for (std::uint32_t i = 0; i < list->count && i < WEFT_FLOOD_MAX; ++i)
      flood.push_back(
          {{"to", "port"},
           {"port_id",
            port_of_ifindex.count(list->ifindex[i]) ? port_of_ifindex[list->ifindex[i]] : ""},
           {"ifindex", list->ifindex[i]}});
    for (std::uint32_t i = 0; i < list->vtep_count && i < WEFT_FLOOD_VTEPS_MAX; ++i)
      flood.push_back({{"to", "vtep"},
                       {"vtep", ipv4_str(list->vteps[i])},
                       {"node", nodes.count(list->vteps[i]) ? nodes[list->vteps[i]] : ""}});
  }
  if (segment && segment->wire_ifindex && found->type != NetworkType::Vxlan)
    flood.push_back({{"to", "wire"}, {"device", out["wire_device"]}});
  out["flood"] = flood;
  return out;
}

json inspect_fdb(Session& session) {
  const State& state = session.applied();
  auto nodes = node_of_vtep(state);
  std::map<std::uint32_t, const Network*> nets;
  for (const auto& [id, net_id] : session.record().net_ids)
    nets[net_id] = state.find_network(id);
  std::map<std::uint32_t, std::string> port_of_ifindex;
  for (const auto& lp : session.record().local_ports)
    if (lp.ifindex)
      port_of_ifindex[static_cast<std::uint32_t>(*lp.ifindex)] = lp.id;
  // A remote MAC's port, by network and MAC (its own or an allowed pair's).
  std::map<std::pair<std::string, std::string>, std::string> port_of_mac;
  for (const auto& port : state.ports) {
    port_of_mac[{port.network_id, port.mac_address.str()}] = port.id;
    for (const auto& pair : port.allowed_address_pairs)
      port_of_mac.emplace(std::make_pair(port.network_id, pair.mac_address.str()), port.id);
  }

  json rows = json::array();
  for (const auto& [key, value] :
       Map<weft_fdb_key, weft_fdb_entry>(session.map(WEFT_MAP_FDB)).entries()) {
    const Network* net = nets.count(key.net_id) ? nets[key.net_id] : nullptr;
    auto dev =
        value.ifindex ? session.devices().find(static_cast<int>(value.ifindex)) : std::nullopt;
    std::string port_id =
        port_of_ifindex.count(value.ifindex) ? port_of_ifindex[value.ifindex] : "";
    if (value.vtep && net)
      if (auto it = port_of_mac.find({net->id, mac_str(key.mac)}); it != port_of_mac.end())
        port_id = it->second;
    rows.push_back({{"net_id", key.net_id},
                    {"network", net ? net->name : ""},
                    {"network_id", net ? net->id : ""},
                    {"mac", mac_str(key.mac)},
                    {"port_id", port_id},
                    {"device", dev ? dev->name : ""},
                    {"ifindex", value.ifindex},
                    {"vtep", value.vtep ? json(ipv4_str(value.vtep)) : json(nullptr)},
                    {"node", value.vtep ? json(nodes.count(value.vtep) ? nodes[value.vtep] : "")
                                        : json(session.layout().node)},
                    {"where", value.vtep ? "remote" : "local"}});
  }
  return rows;
}

json inspect_maps(Session& session) {
  session.installation().require_installed();
  json rows = json::array();
  for (const auto& spec : maps::kMaps) {
    std::string name(spec.name);
    auto& m = session.map(name);
    const auto& info = m.info();
    rows.push_back({{"name", name},
                    {"type", map_type_name(info.type)},
                    {"id", info.id},
                    {"key_size", info.key_size},
                    {"value_size", info.value_size},
                    {"entries", m.keys().size()},
                    {"max_entries", info.max_entries}});
  }
  return rows;
}

json dump_map(Session& session, const std::string& name) {
  auto spec = maps::find(name);
  if (!spec)
    throw std::runtime_error("no map " + name + " (weft map list shows them)");
  auto& m = session.map(name);
  json rows = json::array();
  // Per-CPU values are shown merged over the CPUs; an array's untouched
  // slots (all zero) are left out.
  if (spec->per_cpu()) {
    for (const auto& key : m.keys()) {
      Bytes merged = merge_percpu(name, m.lookup_percpu(key));
      if (spec->type == BPF_MAP_TYPE_PERCPU_ARRAY &&
          std::all_of(merged.begin(), merged.end(), [](std::uint8_t b) { return b == 0; }))
        continue;
      rows.push_back(decode_entry(name, key, merged));
    }
    return rows;
  }
  for (const auto& [key, value] : m.dump())
    rows.push_back(decode_entry(name, key, value));
  return rows;
}

json inspect_progs(Session& session) {
  json rows = json::array();
  for (const auto& a : session.installation().status().attachments) {
    std::string port_id;
    for (const auto& lp : session.record().local_ports)
      if (lp.device == a.device)
        port_id = lp.id;
    rows.push_back({{"device", a.device},
                    {"ifindex", a.ifindex},
                    {"port_id", port_id},
                    {"hook", "tc-ingress"},
                    {"program", a.program},
                    {"prog_id", a.prog_id},
                    {"mode", to_string(a.mode)}});
  }
  return rows;
}

json inspect_stats(Session& session, const std::string& port_id) {
  std::map<std::uint32_t, std::string> port_of_ifindex, device_of_ifindex;
  for (const auto& lp : session.record().local_ports)
    if (lp.ifindex) {
      port_of_ifindex[static_cast<std::uint32_t>(*lp.ifindex)] = lp.id;
      device_of_ifindex[static_cast<std::uint32_t>(*lp.ifindex)] = lp.device;
    }
  json rows = json::array();
  for (const auto& [ifindex, reasons] : read_stats(session)) {
    std::string id = port_of_ifindex.count(ifindex) ? port_of_ifindex[ifindex] : "";
    if (!port_id.empty() && id.rfind(port_id, 0) != 0)
      continue;
    // Not a port: the uplink or a physnet's device, counting what the wire brought.
    std::string device = device_of_ifindex.count(ifindex) ? device_of_ifindex[ifindex] : "";
    if (device.empty())
      if (auto dev = session.devices().find(static_cast<int>(ifindex)))
        device = dev->name;
    for (const auto& [reason, c] : reasons)
      rows.push_back({{"port_id", id},
                      {"device", device},
                      {"ifindex", ifindex},
                      {"reason", reason_name(reason)},
                      {"drop", reason_is_drop(reason)},
                      {"packets", c.packets},
                      {"bytes", c.bytes}});
  }
  return rows;
}

namespace {

std::string protocol_text(const std::optional<std::uint8_t>& protocol) {
  if (!protocol)
    return "any";
  switch (*protocol) {
  case 1:
    return "icmp";
  case 6:
    return "tcp";
  case 17:
    return "udp";
  case 58:
    return "ipv6-icmp";
  case 132:
    return "sctp";
  default:
    return std::to_string(*protocol);
  }
}

json rule_row(const SecurityGroupRule& rule) {
  json row = {
      {"id", rule.id},
      {"direction", rule.direction == Direction::Ingress ? "ingress" : "egress"},
      {"ethertype", rule.ethertype == Ethertype::IPv4 ? "IPv4" : "IPv6"},
      {"protocol", protocol_text(rule.protocol)},
      {"port_range_min", rule.port_range_min ? json(*rule.port_range_min) : json(nullptr)},
      {"port_range_max", rule.port_range_max ? json(*rule.port_range_max) : json(nullptr)},
      {"remote_ip_prefix",
       rule.remote_ip_prefix ? json(rule.remote_ip_prefix->str()) : json(nullptr)},
      {"remote_group_id", rule.remote_group_id ? json(*rule.remote_group_id) : json(nullptr)}};
  std::string ports = "any";
  bool icmp = rule.protocol && (*rule.protocol == 1 || *rule.protocol == 58);
  if (rule.port_range_min) {
    if (icmp)
      ports = "type " + std::to_string(*rule.port_range_min) +
              (rule.port_range_max ? " code " + std::to_string(*rule.port_range_max) : "");
    else
      ports = std::to_string(*rule.port_range_min) + "-" +
              std::to_string(rule.port_range_max.value_or(*rule.port_range_min));
  }
  row["ports"] = ports;
  row["remote"] = rule.remote_group_id    ? "group " + *rule.remote_group_id
                  : rule.remote_ip_prefix ? rule.remote_ip_prefix->str()
                                          : std::string("any");
  return row;
}

// Hits of each rule of `group` (by its position in the group), summed over
// the node's policies that include the group and over CPUs.
std::vector<std::uint64_t> rule_hits(Session& session, const SecurityGroup& group) {
  std::vector<std::uint64_t> hits(group.rules.size(), 0);
  const State& state = session.applied();
  auto policies = assign_policies(state, session.layout().node, session.record().policy_ids);
  auto& map = session.map(WEFT_MAP_SG_HITS);
  for (const auto& policy : policies.list)
    for (std::uint32_t r = 0; r < policy.rules.size(); ++r) {
      if (policy.rule_group[r] != group.id)
        continue;
      auto position = static_cast<std::size_t>(policy.rules[r] - group.rules.data());
      if (position >= hits.size())
        continue;
      for (const auto& cpu : map.lookup_percpu(to_bytes(weft_sg_hit_key{policy.id, r})))
        hits[position] += from_bytes<std::uint64_t>(cpu);
    }
  // The hits a port's allow-all rules (weft_port.allow_all) count in its slot.
  std::map<std::uint32_t, const CompiledPolicy*> by_id;
  for (const auto& policy : policies.list)
    by_id[policy.id] = &policy;
  auto& fast = session.map(WEFT_MAP_PORT_HITS);
  for (const auto& [ifindex, port] :
       Map<std::uint32_t, weft_port>(session.map(WEFT_MAP_PORTS)).entries()) {
    auto policy = by_id.find(port.policy);
    if (!port.stat_slot || policy == by_id.end())
      continue;
    for (const auto& cpu : fast.lookup_percpu(to_bytes(port.stat_slot))) {
      auto counted = from_bytes<weft_port_hits>(cpu);
      for (std::size_t i = 0; i < 4; ++i) {
        std::uint32_t r = port.allow_all[i] ? port.allow_all[i] - 1u : 0u;
        if (!port.allow_all[i] || r >= policy->second->rules.size() ||
            policy->second->rule_group[r] != group.id)
          continue;
        auto position = static_cast<std::size_t>(policy->second->rules[r] - group.rules.data());
        if (position < hits.size())
          hits[position] += counted.allow_all[i];
      }
    }
  }
  return hits;
}

json group_row(Session& session, const SecurityGroup& group) {
  json users = json::array();
  for (const auto& port : session.applied().ports)
    for (const auto& id : port.security_groups)
      if (id == group.id)
        users.push_back(port.id);
  json rules = json::array();
  auto hits = rule_hits(session, group);
  for (std::size_t i = 0; i < group.rules.size(); ++i) {
    json row = rule_row(group.rules[i]);
    row["hits"] = hits[i];
    rules.push_back(row);
  }
  return {{"id", group.id},
          {"name", group.name},
          {"stateful", group.stateful},
          {"rules", rules},
          {"rule_count", group.rules.size()},
          {"ports", users},
          {"port_count", users.size()}};
}

std::uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

// The ifindex of a port of the applied document on this node (0 if none).
std::uint32_t ifindex_of_port(Session& session, const std::string& id) {
  for (const auto& lp : session.record().local_ports)
    if (lp.ifindex && (lp.id == id || lp.id.rfind(id, 0) == 0))
      return static_cast<std::uint32_t>(*lp.ifindex);
  return 0;
}

} // namespace

json inspect_groups(Session& session) {
  json rows = json::array();
  for (const auto& group : session.applied().security_groups)
    rows.push_back(group_row(session, group));
  return rows;
}

json inspect_group(Session& session, const std::string& id) {
  for (const auto& group : session.applied().security_groups)
    if (group.id == id || group.id.rfind(id, 0) == 0 || group.name == id)
      return group_row(session, group);
  throw std::runtime_error("security group " + id +
                           ": no such group in the applied state of node " + session.layout().node);
}

namespace {

// Both conntrack tables: established connections, then those waiting for a reply.
constexpr const char* kCtTables[] = {WEFT_MAP_CT, WEFT_MAP_CT_NEW};

// Does the connection run to or from the port on device `ifindex`?
bool ct_touches(const weft_ct_key& key, std::uint32_t ifindex) {
  return key.ifindex_a == ifindex || key.ifindex_b == ifindex;
}

} // namespace

json inspect_ct(Session& session, const std::string& port_id, const std::string& network_id) {
  std::map<std::uint32_t, std::string> port_of_ifindex;
  for (const auto& lp : session.record().local_ports)
    if (lp.ifindex)
      port_of_ifindex[static_cast<std::uint32_t>(*lp.ifindex)] = lp.id;
  std::map<std::uint32_t, std::string> network_of_zone;
  for (const auto& [id, net_id] : session.record().net_ids)
    network_of_zone[net_id] = id;
  std::uint32_t port_ifindex = port_id.empty() ? 0 : ifindex_of_port(session, port_id);
  if (!port_id.empty() && !port_ifindex)
    throw std::runtime_error("port " + port_id + ": no attached port of node " +
                             session.layout().node + " has this id");

  std::uint64_t now = monotonic_ns();
  json rows = json::array();
  for (const char* table : kCtTables) {
    bool confirmed = std::string(table) == WEFT_MAP_CT;
    for (const auto& [kb, vb] : session.map(table).dump()) {
      auto key = from_bytes<weft_ct_key>(kb);
      auto e = from_bytes<weft_ct_entry>(vb);
      std::string network = network_of_zone.count(key.zone) ? network_of_zone[key.zone] : "";
      if (!network_id.empty() && network.rfind(network_id, 0) != 0)
        continue;
      if (port_ifindex && !ct_touches(key, port_ifindex))
        continue;
      bool a_first = e.orig_is_a != 0;
      const std::uint8_t* src = a_first ? key.addr_a : key.addr_b;
      const std::uint8_t* dst = a_first ? key.addr_b : key.addr_a;
      std::uint16_t sport = ntohs(a_first ? key.port_a : key.port_b);
      std::uint16_t dport = ntohs(a_first ? key.port_b : key.port_a);
      std::uint32_t src_ifindex = a_first ? key.ifindex_a : key.ifindex_b;
      std::uint32_t dst_ifindex = a_first ? key.ifindex_b : key.ifindex_a;
      double idle = now > e.last_seen_ns ? (now - e.last_seen_ns) / 1e9 : 0;
      std::uint64_t timeout = weft_ct_timeout(e.state, key.proto);
      std::uint64_t idle_s = static_cast<std::uint64_t>(idle);
      if (idle_s > timeout)
        continue; // expired: the datapath no longer uses it and reclaims it
      auto port_of = [&](std::uint32_t ifindex) {
        return port_of_ifindex.count(ifindex) ? port_of_ifindex[ifindex] : "";
      };
      rows.push_back({{"network_id", network},
                      {"net_id", key.zone},
                      {"family", key.family == 4 ? "IPv4" : "IPv6"},
                      {"protocol", protocol_text(key.proto)},
                      {"src", ip_str(key.family, src)},
                      {"dst", ip_str(key.family, dst)},
                      {"sport", sport},
                      {"dport", dport},
                      {"src_port", port_of(src_ifindex)},
                      {"dst_port", port_of(dst_ifindex)},
                      {"state", ct_state_name(e.state)},
                      {"confirmed", confirmed},
                      {"idle_seconds", idle_s},
                      {"expires_in_seconds", timeout - idle_s},
                      {"packets_orig", e.packets[WEFT_CT_ORIG]},
                      {"packets_reply", e.packets[WEFT_CT_REPLY]},
                      {"bytes_orig", e.bytes[WEFT_CT_ORIG]},
                      {"bytes_reply", e.bytes[WEFT_CT_REPLY]},
                      {"orig_port", port_of(e.orig_ifindex)},
                      {"reply_port", port_of(e.reply_ifindex)},
                      {"generation", e.generation}});
    }
  }
  return rows;
}

std::size_t flush_ct(Session& session, const std::string& port_id) {
  std::uint32_t port_ifindex = port_id.empty() ? 0 : ifindex_of_port(session, port_id);
  if (!port_id.empty() && !port_ifindex)
    throw std::runtime_error("port " + port_id + ": no attached port of node " +
                             session.layout().node + " has this id");
  std::size_t removed = 0;
  std::map<std::uint32_t, std::uint32_t> forgotten; // established entries removed, by zone
  for (const char* table : kCtTables) {
    auto& ct = session.map(table);
    bool confirmed = std::string(table) == WEFT_MAP_CT;
    for (const auto& [kb, vb] : ct.dump()) {
      (void)vb;
      auto key = from_bytes<weft_ct_key>(kb);
      if (port_ifindex && !ct_touches(key, port_ifindex))
        continue;
      ct.erase(kb);
      ++removed;
      if (confirmed)
        ++forgotten[key.zone];
    }
  }
  // The datapath counts each network's established connections against its
  // share of the table: give back what was removed.
  auto& zones = session.map(WEFT_MAP_CT_ZONES);
  for (const auto& [zone, count] : forgotten) {
    auto value = zones.lookup(to_bytes(zone));
    if (!value)
      continue;
    auto z = from_bytes<weft_ct_zone>(*value);
    z.established = z.established > count ? z.established - count : 0;
    zones.update(to_bytes(zone), to_bytes(z));
  }
  return removed;
}

json describe_plan(const Plan& plan) {
  json changes = json::array();
  int added = 0, changed = 0, removed = 0;
  for (const auto& c : plan.changes) {
    json entry = decode_entry(c.map, c.key, c.value);
    entry["op"] = to_string(c.kind);
    entry["map"] = c.map;
    changes.push_back(entry);
    added += c.kind == MapChange::Kind::Add;
    changed += c.kind == MapChange::Kind::Change;
    removed += c.kind == MapChange::Kind::Remove;
  }
  auto ports = [](const std::vector<PortAttachment>& list) {
    json out = json::array();
    for (const auto& p : list)
      out.push_back({{"port_id", p.port_id}, {"device", p.device}, {"ifindex", p.ifindex}});
    return out;
  };
  json waiting = json::array();
  for (const auto& w : plan.waiting)
    waiting.push_back({{"port_id", w.id}, {"device", w.device}});
  return {{"entries_added", added},       {"entries_changed", changed},
          {"entries_removed", removed},   {"changes", changes},
          {"attach", ports(plan.attach)}, {"detach", ports(plan.detach)},
          {"waiting", waiting},           {"stale_counters_removed", plan.stale_stats}};
}

} // namespace weft
