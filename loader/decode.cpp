#include "loader/decode.hpp"

#include <arpa/inet.h>
#include <cstring>

#include "maps/weft_abi.h"

namespace weft {

namespace {

#define WEFT_REASON_NAME(name, text) text,
const char* const kReasonNames[] = {WEFT_REASONS(WEFT_REASON_NAME)};
#undef WEFT_REASON_NAME
static_assert(sizeof(kReasonNames) / sizeof(kReasonNames[0]) == WEFT_REASON_COUNT);

const char* net_type_name(std::uint8_t type) {
  switch (type) {
  case WEFT_NET_VXLAN:
    return "vxlan";
  case WEFT_NET_VLAN:
    return "vlan";
  case WEFT_NET_FLAT:
    return "flat";
  }
  return "unknown";
}

nlohmann::json port_flags(std::uint32_t flags) {
  return {{"port_security", (flags & WEFT_PORT_SECURITY) != 0},
          {"admin_up", (flags & WEFT_PORT_UP) != 0}};
}

} // namespace

std::string reason_name(std::uint32_t reason) {
  if (reason < WEFT_REASON_COUNT)
    return kReasonNames[reason];
  return "reason-" + std::to_string(reason);
}

std::optional<std::uint32_t> reason_from_name(const std::string& name) {
  for (std::uint32_t r = 0; r < WEFT_REASON_COUNT; ++r)
    if (name == kReasonNames[r])
      return r;
  return std::nullopt;
}

bool reason_is_drop(std::uint32_t reason) { return reason >= WEFT_REASON_FIRST_DROP; }

std::string mac_str(const std::uint8_t* mac) {
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return buf;
}

std::string ipv4_str(std::uint32_t be) {
  char buf[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &be, buf, sizeof(buf));
  return buf;
}

nlohmann::json decode_entry(const std::string& map, const Bytes& key, const Bytes& value) {
  using nlohmann::json;
  json k, v;
  if (map == WEFT_MAP_CONFIG) {
    auto c = from_bytes<weft_node_config>(value);
    k = from_bytes<std::uint32_t>(key);
    v = {{"abi_version", c.abi_version},
         {"tunnel_ip", c.tunnel_ip ? json(ipv4_str(c.tunnel_ip)) : json(nullptr)},
         {"uplink_ifindex", c.uplink_ifindex},
         {"attach_mode", (c.flags & WEFT_CONFIG_ATTACH_TC) ? "tc" : "tcx"}};
  } else if (map == WEFT_MAP_PORTS) {
    auto p = from_bytes<weft_port>(value);
    k = {{"ifindex", from_bytes<std::uint32_t>(key)}};
    v = {{"net_id", p.net_id}, {"mac", mac_str(p.mac)}, {"flags", port_flags(p.flags)}};
  } else if (map == WEFT_MAP_NETWORKS) {
    auto n = from_bytes<weft_network>(value);
    k = {{"net_id", from_bytes<std::uint32_t>(key)}};
    v = {{"type", net_type_name(n.type)}, {"segmentation_id", n.segmentation_id}, {"mtu", n.mtu}};
  } else if (map == WEFT_MAP_FDB) {
    auto fk = from_bytes<weft_fdb_key>(key);
    auto fv = from_bytes<weft_fdb_entry>(value);
    k = {{"net_id", fk.net_id}, {"mac", mac_str(fk.mac)}};
    v = {{"ifindex", fv.ifindex}, {"vtep", fv.vtep ? json(ipv4_str(fv.vtep)) : json(nullptr)}};
  } else if (map == WEFT_MAP_ARP) {
    auto ak = from_bytes<weft_arp_key>(key);
    auto av = from_bytes<weft_arp_entry>(value);
    k = {{"net_id", ak.net_id}, {"ip", ipv4_str(ak.ip)}};
    v = {{"mac", mac_str(av.mac)}};
  } else if (map == WEFT_MAP_SPOOF_V4) {
    auto sk = from_bytes<weft_spoof_v4_key>(key);
    k = {{"ifindex", sk.ifindex},
         {"mac", mac_str(sk.mac)},
         {"ip_prefix", ipv4_str(sk.ip) + "/" +
                           std::to_string(sk.prefixlen - WEFT_SPOOF_V4_FIXED_BITS)}};
    v = "allowed";
  } else if (map == WEFT_MAP_PORT_MACS) {
    auto mk = from_bytes<weft_port_mac_key>(key);
    k = {{"ifindex", mk.ifindex}, {"mac", mac_str(mk.mac)}};
    v = "allowed";
  } else if (map == WEFT_MAP_FLOOD) {
    auto f = from_bytes<weft_flood>(value);
    k = {{"net_id", from_bytes<std::uint32_t>(key)}};
    json members = json::array();
    for (std::uint32_t i = 0; i < f.count && i < WEFT_FLOOD_MAX; ++i)
      members.push_back(f.ifindex[i]);
    v = {{"ifindexes", members}};
  } else if (map == WEFT_MAP_STATS) {
    auto sk = from_bytes<weft_stat_key>(key);
    auto c = from_bytes<weft_counter>(value);
    k = {{"ifindex", sk.ifindex}, {"reason", reason_name(sk.reason)}};
    v = {{"packets", c.packets}, {"bytes", c.bytes}};
  } else {
    k = key;
    v = value;
  }
  return {{"key", k}, {"value", v}};
}

} // namespace weft
