#include "loader/inspect/decode.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "loader/fabric/policy.hpp"
#include "loader/model/state.hpp"
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
          {"admin_up", (flags & WEFT_PORT_UP) != 0},
          {"stateful", (flags & WEFT_PORT_STATEFUL) != 0}};
}

const char* direction_name(std::uint8_t direction) {
  switch (direction) {
  case WEFT_DIR_INGRESS:
    return "ingress";
  case WEFT_DIR_EGRESS:
    return "egress";
  }
  return "unknown";
}

const char* family_name(std::uint8_t family) {
  switch (family) {
  case 4:
    return "IPv4";
  case 6:
    return "IPv6";
  }
  return "unknown";
}

std::string value_range(std::uint32_t first, std::uint32_t last, std::uint32_t all) {
  if (first == 0 && last == all)
    return "any";
  if (first == last)
    return std::to_string(first);
  return std::to_string(first) + "-" + std::to_string(last);
}

// The values of an sg_l4 block: a port range, or for ICMP "type/code" with
// either side a range or "any".
nlohmann::json l4_block(const weft_sg_l4_key& key) {
  std::uint32_t prefix_len = key.prefixlen - WEFT_SG_L4_FIXED_BITS;
  if (key.prefixlen < WEFT_SG_L4_FIXED_BITS || prefix_len > 16)
    return {{"prefixlen", key.prefixlen}};
  std::uint32_t first = ntohs(key.port) & (0xffff0000u >> prefix_len);
  std::uint32_t last = first + (1u << (16 - prefix_len)) - 1;
  if (key.proto != 1 && key.proto != 58)
    return {{"ports", value_range(first, last, 0xffff)}};
  if (prefix_len == 0)
    return {{"icmp", "any"}};
  std::string types = value_range(first >> 8, last >> 8, 0xff);
  std::string codes = value_range(first & 0xff, last & 0xff, 0xff);
  return {{"icmp", types + "/" + codes}};
}

nlohmann::json rule_list(const Bytes& value) {
  return {{"rules", rule_indexes(from_bytes<weft_rule_set>(value))}};
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

bool reason_is_drop(std::uint32_t reason) {
  return reason >= WEFT_REASON_FIRST_DROP;
}

std::string mac_str(const std::uint8_t* mac) {
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return buf;
}

std::string ipv6_str(const std::uint8_t* bytes) {
  char buf[INET6_ADDRSTRLEN];
  ::inet_ntop(AF_INET6, bytes, buf, sizeof(buf));
  return buf;
}

std::string ip_str(std::uint8_t family, const std::uint8_t* bytes) {
  if (family != 4)
    return ipv6_str(bytes);
  std::uint32_t be;
  std::memcpy(&be, bytes, 4);
  return ipv4_str(be);
}

std::string ct_state_name(std::uint8_t state) {
  switch (state) {
  case WEFT_CT_NEW:
    return "new";
  case WEFT_CT_ESTABLISHED:
    return "established";
  case WEFT_CT_CLOSING:
    return "closing";
  case WEFT_CT_CLOSED:
    return "closed";
  }
  return "unknown";
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
         {"attach_mode", (c.flags & WEFT_CONFIG_ATTACH_TC) ? "tc" : "tcx"},
         {"sg_generation", c.sg_generation},
         {"ct_max", c.ct_max},
         {"ct_network_max", c.ct_network_max}};
  } else if (map == WEFT_MAP_PORTS) {
    auto p = from_bytes<weft_port>(value);
    k = {{"ifindex", from_bytes<std::uint32_t>(key)}};
    v = {{"net_id", p.net_id},
         {"mac", mac_str(p.mac)},
         {"flags", port_flags(p.flags)},
         {"policy", p.policy},
         {"stat_slot", p.stat_slot},
         {"network",
          {{"type", net_type_name(p.net.type)},
           {"segmentation_id", p.net.segmentation_id},
           {"mtu", p.net.mtu},
           {"wire_ifindex", p.net.wire_ifindex}}}};
  } else if (map == WEFT_MAP_NETWORKS) {
    auto n = from_bytes<weft_network>(value);
    k = {{"net_id", from_bytes<std::uint32_t>(key)}};
    v = {{"type", net_type_name(n.type)},
         {"segmentation_id", n.segmentation_id},
         {"mtu", n.mtu},
         {"wire_ifindex", n.wire_ifindex}};
  } else if (map == WEFT_MAP_FDB) {
    auto fk = from_bytes<weft_fdb_key>(key);
    auto fv = from_bytes<weft_fdb_entry>(value);
    k = {{"net_id", fk.net_id}, {"mac", mac_str(fk.mac)}};
    v = {{"ifindex", fv.ifindex},
         {"vtep", fv.vtep ? json(ipv4_str(fv.vtep)) : json(nullptr)},
         {"vtep_slot", fv.vtep_slot}};
  } else if (map == WEFT_MAP_ARP) {
    auto ak = from_bytes<weft_arp_key>(key);
    auto av = from_bytes<weft_arp_entry>(value);
    k = {{"net_id", ak.net_id}, {"ip", ipv4_str(ak.ip)}};
    v = {{"mac", mac_str(av.mac)}};
  } else if (map == WEFT_MAP_SG_HITS) {
    auto hk = from_bytes<weft_sg_hit_key>(key);
    k = {{"policy", hk.policy}, {"rule", hk.rule}};
    v = {{"hits", from_bytes<std::uint64_t>(value)}};
  } else if (map == WEFT_MAP_SPOOF_V6) {
    auto sk = from_bytes<weft_spoof_v6_key>(key);
    k = {{"ifindex", sk.ifindex},
         {"mac", mac_str(sk.mac)},
         {"ip_prefix",
          ipv6_str(sk.ip) + "/" + std::to_string(sk.prefixlen - WEFT_SPOOF_V6_FIXED_BITS)}};
    v = "allowed";
  } else if (map == WEFT_MAP_CT || map == WEFT_MAP_CT_NEW) {
    auto ck = from_bytes<weft_ct_key>(key);
    auto e = from_bytes<weft_ct_entry>(value);
    k = {{"zone", ck.zone},
         {"family", ck.family == 4 ? "IPv4" : "IPv6"},
         {"protocol", ck.proto},
         {"a", ip_str(ck.family, ck.addr_a) + " port " + std::to_string(ntohs(ck.port_a))},
         {"b", ip_str(ck.family, ck.addr_b) + " port " + std::to_string(ntohs(ck.port_b))},
         {"ifindex_a", ck.ifindex_a},
         {"ifindex_b", ck.ifindex_b}};
    v = {{"state", ct_state_name(e.state)},
         {"originator", e.orig_is_a ? "a" : "b"},
         {"packets", {e.packets[WEFT_CT_ORIG], e.packets[WEFT_CT_REPLY]}},
         {"bytes", {e.bytes[WEFT_CT_ORIG], e.bytes[WEFT_CT_REPLY]}},
         {"orig_ifindex", e.orig_ifindex},
         {"reply_ifindex", e.reply_ifindex},
         {"generation", e.generation}};
  } else if (map == WEFT_MAP_FRAGS) {
    auto fk = from_bytes<weft_frag_key>(key);
    auto fv = from_bytes<weft_frag_entry>(value);
    k = {{"zone", fk.zone},
         {"family", fk.family == 4 ? "IPv4" : "IPv6"},
         {"protocol", fk.proto},
         {"src", ip_str(fk.family, fk.saddr)},
         {"dst", ip_str(fk.family, fk.daddr)},
         {"id", fk.family == 4 ? ntohs(static_cast<std::uint16_t>(fk.id)) : ntohl(fk.id)}};
    v = {{"sport", ntohs(fv.sport)}, {"dport", ntohs(fv.dport)}, {"l4_key", fv.l4_key}};
  } else if (map == WEFT_MAP_CT_ZONES) {
    k = {{"zone", from_bytes<std::uint32_t>(key)}};
    v = {{"established", from_bytes<weft_ct_zone>(value).established}};
  } else if (map == WEFT_MAP_SPOOF_V4) {
    auto sk = from_bytes<weft_spoof_v4_key>(key);
    k = {{"ifindex", sk.ifindex},
         {"mac", mac_str(sk.mac)},
         {"ip_prefix",
          ipv4_str(sk.ip) + "/" + std::to_string(sk.prefixlen - WEFT_SPOOF_V4_FIXED_BITS)}};
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
    json vteps = json::array();
    for (std::uint32_t i = 0; i < f.vtep_count && i < WEFT_FLOOD_VTEPS_MAX; ++i)
      vteps.push_back(ipv4_str(f.vteps[i]));
    v = {{"ifindexes", members}, {"vteps", vteps}};
  } else if (map == WEFT_MAP_VTEPS) {
    k = {{"vtep", ipv4_str(from_bytes<std::uint32_t>(key))}};
    v = {{"slot", from_bytes<weft_vtep>(value).slot}};
  } else if (map == WEFT_MAP_VNIS) {
    k = {{"vni", from_bytes<std::uint32_t>(key)}};
    v = {{"net_id", from_bytes<std::uint32_t>(value)}};
  } else if (map == WEFT_MAP_SEGMENTS) {
    auto sk = from_bytes<weft_segment_key>(key);
    k = {{"ifindex", sk.ifindex}, {"vlan", sk.vlan ? json(sk.vlan) : json("untagged")}};
    v = {{"net_id", from_bytes<std::uint32_t>(value)}};
  } else if (map == WEFT_MAP_PHYSNETS) {
    auto pk = from_bytes<weft_physnet_key>(key);
    k = {{"physnet", std::string(pk.name, strnlen(pk.name, sizeof(pk.name)))}};
    v = {{"ifindex", from_bytes<weft_physnet>(value).ifindex}};
  } else if (map == WEFT_MAP_VTEP_PATHS) {
    auto p = from_bytes<weft_vtep_path>(value);
    k = {{"slot", from_bytes<std::uint32_t>(key)}};
    v = {{"tx_packets", p.tx.packets},
         {"tx_bytes", p.tx.bytes},
         {"rx_packets", p.rx.packets},
         {"rx_bytes", p.rx.bytes},
         {"route", p.route_ns ? json{{"ifindex", p.ifindex},
                                     {"smac", mac_str(p.smac)},
                                     {"dmac", mac_str(p.dmac)},
                                     {"looked_up_ns", p.route_ns}}
                              : json(nullptr)}};
  } else if (map == WEFT_MAP_PORT_HITS) {
    auto h = from_bytes<weft_port_hits>(value);
    k = {{"stat_slot", from_bytes<std::uint32_t>(key)}};
    v = {{"ingress_ipv4", h.allow_all[0]},
         {"ingress_ipv6", h.allow_all[1]},
         {"egress_ipv4", h.allow_all[2]},
         {"egress_ipv6", h.allow_all[3]}};
  } else if (map == WEFT_MAP_PORT_STATS) {
    auto s = from_bytes<weft_port_stats>(value);
    k = {{"stat_slot", from_bytes<std::uint32_t>(key)}};
    v = json::object();
    for (std::uint32_t reason = 0; reason < WEFT_REASON_FIRST_DROP; ++reason)
      if (s.reason[reason].packets)
        v[reason_name(reason)] = {{"packets", s.reason[reason].packets},
                                  {"bytes", s.reason[reason].bytes}};
  } else if (map == WEFT_MAP_STATS) {
    auto sk = from_bytes<weft_stat_key>(key);
    auto c = from_bytes<weft_counter>(value);
    k = {{"ifindex", sk.ifindex}, {"reason", reason_name(sk.reason)}};
    v = {{"packets", c.packets}, {"bytes", c.bytes}};
  } else if (map == WEFT_MAP_SG_L4) {
    auto lk = from_bytes<weft_sg_l4_key>(key);
    k = {{"policy", lk.policy},
         {"direction", direction_name(lk.direction)},
         {"family", family_name(lk.family)},
         {"protocol", lk.proto == WEFT_PROTO_ANY ? json("any") : json(lk.proto)}};
    k.update(l4_block(lk));
    v = rule_list(value);
  } else if (map == WEFT_MAP_SG_REMOTE) {
    auto rk = from_bytes<weft_sg_remote_key>(key);
    IpPrefix remote;
    remote.addr.family = rk.family == 4 ? AF_INET : AF_INET6;
    std::memcpy(remote.addr.bytes.data(), rk.ip, sizeof(rk.ip));
    remote.len = static_cast<int>(rk.prefixlen) - WEFT_SG_REMOTE_FIXED_BITS;
    k = {{"policy", rk.policy},
         {"direction", direction_name(rk.direction)},
         {"family", family_name(rk.family)},
         {"remote", remote.str()}};
    v = rule_list(value);
  } else {
    k = key;
    v = value;
  }
  return {{"key", k}, {"value", v}};
}

Bytes merge_percpu(const std::string& map, const std::vector<Bytes>& cpus) {
  if (map == WEFT_MAP_VTEP_PATHS)
    return to_bytes(merge_vtep_path(cpus));
  Bytes sum;
  for (const auto& cpu : cpus) {
    sum.resize(std::max(sum.size(), cpu.size()), 0);
    for (std::size_t at = 0; at + 8 <= cpu.size(); at += 8) {
      std::uint64_t total = 0, word = 0;
      std::memcpy(&total, sum.data() + at, 8);
      std::memcpy(&word, cpu.data() + at, 8);
      total += word;
      std::memcpy(sum.data() + at, &total, 8);
    }
  }
  return sum;
}

weft_vtep_path merge_vtep_path(const std::vector<Bytes>& cpus) {
  weft_vtep_path out{};
  for (const auto& cpu : cpus) {
    auto p = from_bytes<weft_vtep_path>(cpu);
    out.tx.packets += p.tx.packets;
    out.tx.bytes += p.tx.bytes;
    out.rx.packets += p.rx.packets;
    out.rx.bytes += p.rx.bytes;
    if (p.route_ns > out.route_ns) {
      out.route_ns = p.route_ns;
      out.ifindex = p.ifindex;
      std::memcpy(out.smac, p.smac, sizeof(out.smac));
      std::memcpy(out.dmac, p.dmac, sizeof(out.dmac));
    }
  }
  return out;
}

} // namespace weft
