#include "loader/inspect.hpp"

#include <map>

#include "loader/decode.hpp"
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

// ifindex → (reason → counter)
std::map<std::uint32_t, std::map<std::uint32_t, weft_counter>> read_stats(Session& session) {
  std::map<std::uint32_t, std::map<std::uint32_t, weft_counter>> out;
  auto& stats = session.map(WEFT_MAP_STATS);
  for (const auto& key : stats.keys()) {
    auto k = from_bytes<weft_stat_key>(key);
    out[k.ifindex][k.reason] = sum_counter(stats, key);
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
    pairs.push_back({{"ip_address", pair.ip_address.str()}, {"mac_address", pair.mac_address.str()}});

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
              {"security_groups_enforced", false}};

  const LocalPort* lp = port.host_id == session.layout().node ? local_port(session, port.id) : nullptr;
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
  else if (!session.installation().attacher().query(dev->name, dev->ifindex))
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
  out["program"] = {{"name", kPortProgram}, {"id", s.prog_id}, {"tag", s.prog_tag}};
  out["maps"] = s.maps;
  json att = json::array();
  for (const auto& a : s.attachments)
    att.push_back({{"device", a.device},
                   {"ifindex", a.ifindex},
                   {"hook", "tc-ingress"},
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
    rows.push_back({{"id", net.id},
                    {"name", net.name},
                    {"project_id", net.project_id},
                    {"type", to_string(net.type)},
                    {"segmentation_id", net.segmentation_id},
                    {"physical_network", net.physical_network ? json(*net.physical_network) : json(nullptr)},
                    {"mtu", net.mtu},
                    {"net_id", net_id != session.record().net_ids.end() ? json(net_id->second) : json(nullptr)},
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

json inspect_fdb(Session& session) {
  const State& state = session.applied();
  std::map<std::uint32_t, const Network*> nets;
  for (const auto& [id, net_id] : session.record().net_ids)
    nets[net_id] = state.find_network(id);
  std::map<std::uint32_t, std::string> port_of_ifindex;
  for (const auto& lp : session.record().local_ports)
    if (lp.ifindex)
      port_of_ifindex[static_cast<std::uint32_t>(*lp.ifindex)] = lp.id;

  json rows = json::array();
  for (const auto& [key, value] : Map<weft_fdb_key, weft_fdb_entry>(session.map(WEFT_MAP_FDB)).entries()) {
    const Network* net = nets.count(key.net_id) ? nets[key.net_id] : nullptr;
    auto dev = value.ifindex ? session.devices().find(static_cast<int>(value.ifindex)) : std::nullopt;
    rows.push_back({{"net_id", key.net_id},
                    {"network", net ? net->name : ""},
                    {"network_id", net ? net->id : ""},
                    {"mac", mac_str(key.mac)},
                    {"port_id", port_of_ifindex.count(value.ifindex) ? port_of_ifindex[value.ifindex] : ""},
                    {"device", dev ? dev->name : ""},
                    {"ifindex", value.ifindex},
                    {"vtep", value.vtep ? json(ipv4_str(value.vtep)) : json(nullptr)}});
  }
  return rows;
}

json inspect_maps(Session& session) {
  session.installation().require_installed();
  json rows = json::array();
  for (const auto& name : list_dir(session.layout().maps_dir())) {
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
  auto& m = session.map(name);
  json rows = json::array();
  if (name == WEFT_MAP_STATS) {
    for (const auto& key : m.keys())
      rows.push_back(decode_entry(name, key, to_bytes(sum_counter(m, key))));
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
                    {"program", kPortProgram},
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
    for (const auto& [reason, c] : reasons)
      rows.push_back({{"port_id", id},
                      {"device", device_of_ifindex.count(ifindex) ? device_of_ifindex[ifindex] : ""},
                      {"ifindex", ifindex},
                      {"reason", reason_name(reason)},
                      {"drop", reason_is_drop(reason)},
                      {"packets", c.packets},
                      {"bytes", c.bytes}});
  }
  return rows;
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
  return {{"entries_added", added},
          {"entries_changed", changed},
          {"entries_removed", removed},
          {"changes", changes},
          {"attach", ports(plan.attach)},
          {"detach", ports(plan.detach)},
          {"waiting", waiting},
          {"stale_counters_removed", plan.stale_stats}};
}

} // namespace weft
