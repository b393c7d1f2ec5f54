// Ports: a MAC in a known network, fixed IPs in that network's subnets,
// security groups, allowed address pairs and the tap device the port's
// binding gives on its host. That MACs and fixed IPs are unique in a network
// and devices on a host is checked in validate.cpp.
#include "loader/model/parser.hpp"

#include <algorithm>

namespace weft::document {

namespace {

constexpr std::size_t kMaxAddressPairs = 10; // Neutron's max_allowed_address_pair

// Device names are netdev names: no '/', ':' or white space (dev_valid_name).
bool valid_device_name(std::string_view name) {
  return std::none_of(name.begin(), name.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return c == '/' || c == ':' || byte <= 0x20 || byte == 0x7f;
  });
}

// The unicast MAC of field mac_address, or nothing with the problem reported.
std::optional<Mac> unicast_mac(Fields& fields, const std::string& text) {
  auto mac = Mac::parse(text);
  if (!mac)
    fields.problem("mac_address", in_quotes(text) + " is not a MAC address");
  else if (mac->is_zero())
    fields.problem("mac_address", mac->str() + " is all zeros");
  else if (mac->is_multicast())
    fields.problem("mac_address", mac->str() + " is a multicast address");
  else
    return mac;
  return std::nullopt;
}

} // namespace

void Parser::parse_port(const json& entry, std::size_t index) {
  std::string position = indexed("ports", index);
  if (!entry.is_object()) {
    problems_.add(position, "must be an object, not " + kind_of(entry));
    return;
  }
  Fields fields(entry, position, "", problems_);
  Port port;
  PortOrigin origin;
  if (auto id = resource_id(fields, "port", "id", port_ids_, position)) {
    port.id = *id;
    if (!valid_device_name(port.device_name()))
      fields.problem("id", in_quotes(*id) + " gives an invalid device name " +
                               in_quotes(port.device_name()));
  }

  const Network* network = nullptr;
  if (auto network_id = fields.required_text("network_id")) {
    port.network_id = *network_id;
    auto it = network_index_.find(*network_id);
    if (it == network_index_.end())
      fields.problem("network_id", in_quotes(*network_id) + " is not a known network");
    else
      network = &state_.networks[it->second];
  }

  if (auto mac_text = fields.required_text("mac_address"))
    if (auto mac = unicast_mac(fields, *mac_text))
      port.mac_address = *mac; // only a valid MAC is kept: validate.cpp relies on it

  port.admin_state_up = fields.flag("admin_state_up", true);
  port.host_id = fields.text("binding:host_id").value_or("");
  port.device_owner = fields.text("device_owner").value_or("");
  bool network_security = network == nullptr || network->port_security_enabled;
  port.port_security_enabled = fields.flag("port_security_enabled", network_security);

  if (const json* fixed_ips = fields.list("fixed_ips"))
    for (std::size_t i = 0; i < fixed_ips->size(); ++i)
      parse_fixed_ip((*fixed_ips)[i], i, fields, port, origin, network != nullptr);

  std::vector<const SecurityGroup*> groups;
  if (const json* group_ids = fields.list("security_groups")) {
    for (std::size_t i = 0; i < group_ids->size(); ++i) {
      const json& group_id = (*group_ids)[i];
      std::string key = indexed("security_groups", i);
      if (!group_id.is_string()) {
        fields.problem(key, "must be a string, not " + kind_of(group_id));
        continue;
      }
      const auto& id = group_id.get_ref<const std::string&>();
      auto it = group_index_.find(id);
      if (it == group_index_.end()) {
        fields.problem(key, in_quotes(id) + " is not a known security group");
        continue;
      }
      // Neutron keeps a set of groups: a repeated id is the same group.
      if (std::find(port.security_groups.begin(), port.security_groups.end(), id) ==
          port.security_groups.end()) {
        port.security_groups.push_back(id);
        groups.push_back(&state_.security_groups[it->second]);
      }
    }
  }

  if (const json* pairs = fields.list("allowed_address_pairs")) {
    if (pairs->size() > kMaxAddressPairs)
      fields.problem("allowed_address_pairs",
                     "has " + std::to_string(pairs->size()) + " entries; at most " +
                         std::to_string(kMaxAddressPairs) + " are allowed");
    for (std::size_t i = 0; i < pairs->size(); ++i)
      parse_address_pair((*pairs)[i], i, fields, port);
  }

  if (!port.port_security_enabled) {
    if (!port.security_groups.empty())
      fields.problem("security_groups", "must be empty when port_security_enabled is false");
    if (!port.allowed_address_pairs.empty())
      fields.problem("allowed_address_pairs", "must be empty when port_security_enabled is false");
  }

  auto stateful = std::find_if(groups.begin(), groups.end(), [](auto* g) { return g->stateful; });
  auto stateless = std::find_if(groups.begin(), groups.end(), [](auto* g) { return !g->stateful; });
  if (stateful != groups.end() && stateless != groups.end())
    fields.problem("security_groups", "mixes stateful group " + printable((*stateful)->id) +
                                          " and stateless group " + printable((*stateless)->id));

  origin.where = fields.where();
  origins_.ports.push_back(std::move(origin));
  state_.ports.push_back(std::move(port));
}

void Parser::parse_fixed_ip(const json& entry, std::size_t index, Fields& port_fields, Port& port,
                            PortOrigin& origin, bool network_known) {
  std::string path = indexed("fixed_ips", index);
  if (!entry.is_object()) {
    port_fields.problem(path, "must be an object, not " + kind_of(entry));
    return;
  }
  Fields fields(entry, port_fields.where(), path + ".", problems_);
  auto subnet_id = fields.text("subnet_id");
  auto ip_text = fields.text("ip_address");
  if (!subnet_id && fields.value("subnet_id") != nullptr)
    return; // not a string: reported
  if (!ip_text) {
    if (fields.value("ip_address") == nullptr)
      fields.problem("ip_address", "is missing (weft does not allocate addresses)");
    return;
  }
  auto ip = IpAddr::parse(*ip_text);
  if (!ip) {
    fields.problem("ip_address", in_quotes(*ip_text) + " is not an IP address");
    return;
  }

  const Subnet* subnet = nullptr;
  bool cidr_valid = false;
  if (subnet_id) {
    auto it = subnet_index_.find(*subnet_id);
    if (it == subnet_index_.end()) {
      fields.problem("subnet_id", in_quotes(*subnet_id) + " is not a known subnet");
      return;
    }
    subnet = &state_.subnets[it->second];
    cidr_valid = origins_.subnet_cidr_valid[it->second];
    if (network_known && subnet->network_id != port.network_id) {
      fields.problem("subnet_id", in_quotes(*subnet_id) + " belongs to network " +
                                      in_quotes(subnet->network_id) + ", not the port's network " +
                                      in_quotes(port.network_id));
      return;
    }
    if (cidr_valid && !subnet->cidr.contains(*ip)) {
      fields.problem("ip_address", ip->str() + " is not inside subnet " + printable(subnet->id) +
                                       " (" + subnet->cidr.str() + ")");
      return;
    }
  } else {
    if (!network_known)
      return;
    for (std::size_t i = 0; i < state_.subnets.size(); ++i) {
      const Subnet& candidate = state_.subnets[i];
      if (origins_.subnet_cidr_valid[i] && candidate.network_id == port.network_id &&
          candidate.cidr.contains(*ip)) {
        subnet = &candidate;
        cidr_valid = true;
        break;
      }
    }
    if (subnet == nullptr) {
      fields.problem("ip_address",
                     ip->str() + " is in no subnet of network " + printable(port.network_id));
      return;
    }
  }

  // neutron-lib's check_subnet_ip: routers and DHCP may take an IPv6
  // subnet's anycast (network) address; nobody takes IPv4's reserved ones.
  if (cidr_valid) {
    auto reserved = reserved_address(subnet->cidr, *ip);
    bool infrastructure = port.device_owner.starts_with("network:");
    if (reserved && (ip->is_v4() || !infrastructure)) {
      fields.problem("ip_address", ip->str() + " is " + *reserved + " of subnet " +
                                       printable(subnet->id) + " (" + subnet->cidr.str() + ")");
      return;
    }
  }

  FixedIp fixed_ip;
  fixed_ip.subnet_id = subnet->id;
  fixed_ip.ip_address = *ip;
  port.fixed_ips.push_back(std::move(fixed_ip));
  origin.fixed_ip_index.push_back(index);
}

void Parser::parse_address_pair(const json& entry, std::size_t index, Fields& port_fields,
                                Port& port) {
  std::string path = indexed("allowed_address_pairs", index);
  if (!entry.is_object()) {
    port_fields.problem(path, "must be an object, not " + kind_of(entry));
    return;
  }
  Fields fields(entry, port_fields.where(), path + ".", problems_);
  AddressPair pair;
  bool valid = true;
  if (auto ip_text = fields.required_text("ip_address")) {
    auto prefix = IpPrefix::parse(*ip_text);
    if (!prefix) {
      fields.problem("ip_address", in_quotes(*ip_text) + " is not an IP address or prefix");
      valid = false;
    } else {
      pair.ip_address = *prefix;
    }
  } else {
    valid = false;
  }
  pair.mac_address = port.mac_address;
  if (auto mac_text = fields.text("mac_address")) {
    auto mac = unicast_mac(fields, *mac_text);
    if (mac)
      pair.mac_address = *mac;
    valid = valid && mac;
  }
  if (!valid)
    return;
  auto same = [&](const AddressPair& other) {
    return other.ip_address == pair.ip_address && other.mac_address == pair.mac_address;
  };
  auto duplicate =
      std::find_if(port.allowed_address_pairs.begin(), port.allowed_address_pairs.end(), same);
  if (duplicate != port.allowed_address_pairs.end()) {
    fields.problem("ip_address", pair.ip_address.str() + " with mac_address " +
                                     pair.mac_address.str() + " is listed twice");
    return;
  }
  port.allowed_address_pairs.push_back(pair);
}

} // namespace weft::document
