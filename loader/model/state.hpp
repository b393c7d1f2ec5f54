// The desired state: Neutron's resource shapes (DESIGN.md §3.1), parsed and
// validated as a whole before anything is written to a map.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "loader/model/address.hpp"

namespace weft {

enum class NetworkType { Vxlan, Vlan, Flat };
std::string_view to_string(NetworkType type);

struct Node {
  std::string name;
  std::optional<IpAddr> tunnel_ip;
};

struct Network {
  std::string id;
  std::string name;
  std::string project_id;
  NetworkType type = NetworkType::Vxlan;
  std::uint32_t segmentation_id = 0; // VNI, VLAN id; 0 for flat
  std::optional<std::string> physical_network;
  std::uint32_t mtu = 1450; // default: 1500 underlay - 50 (vxlan), 1500 otherwise
  bool port_security_enabled = true;
  bool admin_state_up = true;
};

struct Subnet {
  std::string id;
  std::string network_id;
  int ip_version = 4;
  IpPrefix cidr;
  std::optional<IpAddr> gateway_ip;
  bool enable_dhcp = true;
};

struct FixedIp {
  std::string subnet_id;
  IpAddr ip_address;
};

struct AddressPair {
  IpPrefix ip_address;
  Mac mac_address; // the port's MAC when the document gives none
};

struct Port {
  std::string id;
  std::string network_id;
  Mac mac_address;
  std::vector<FixedIp> fixed_ips;
  std::string host_id; // binding:host_id
  std::string device_owner;
  std::vector<std::string> security_groups;
  bool port_security_enabled = true; // default: the network's
  std::vector<AddressPair> allowed_address_pairs;
  bool admin_state_up = true;

  // Nova's libvirt naming: "tap" + the first 11 characters of the id.
  std::string device_name() const;
};

enum class Direction { Ingress, Egress };
enum class Ethertype { IPv4, IPv6 };

struct SecurityGroupRule {
  std::string id;
  Direction direction = Direction::Ingress;
  Ethertype ethertype = Ethertype::IPv4;
  std::optional<std::uint8_t> protocol; // nullopt = any
  // tcp/udp/sctp/dccp/udplite: ports. icmp/ipv6-icmp: min = type, max = code.
  std::optional<std::uint16_t> port_range_min;
  std::optional<std::uint16_t> port_range_max;
  std::optional<IpPrefix> remote_ip_prefix;
  std::optional<std::string> remote_group_id;
  // Address groups are not part of the document: a rule that names one must
  // match nothing rather than be read as "from anywhere".
  std::optional<std::string> remote_address_group_id;
};

struct SecurityGroup {
  std::string id;
  std::string name;
  bool stateful = true;
  std::vector<SecurityGroupRule> rules; // security_group_rules
};

struct State {
  std::vector<Node> nodes;
  std::vector<Network> networks;
  std::vector<Subnet> subnets;
  std::vector<Port> ports;
  std::vector<SecurityGroup> security_groups;

  const Network* find_network(std::string_view id) const;
  const Subnet* find_subnet(std::string_view id) const;
  const Port* find_port(std::string_view id) const;
  const SecurityGroup* find_group(std::string_view id) const;
  const Node* find_node(std::string_view name) const;
};

// Every problem found in a document, each naming the resource and the field:
// "port 3f2a9c1e-77b0-…: mac_address 'zz' is not a MAC address".
class StateError : public std::runtime_error {
public:
  explicit StateError(std::vector<std::string> problems);
  const std::vector<std::string>& problems() const { return problems_; }

private:
  std::vector<std::string> problems_;
};

// Parses and validates a whole document; throws StateError listing every
// problem (malformed JSON is one problem). Unknown fields are ignored.
State parse_state(std::string_view json_text);

// Neutron's protocol names and numbers: "tcp" → 6, "58" → 58; nullopt when
// unknown. `ethertype` maps "icmp"/"icmpv6"/1 to 58 for IPv6.
std::optional<std::uint8_t> protocol_number(std::string_view name, Ethertype ethertype);

} // namespace weft
