// The document parser: one Parser reads a whole document, resource kind by
// resource kind, into a State and a list of problems, then validate() checks
// what no single resource can (uniqueness across resources, overlaps). Each
// kind's parse functions live in their own file (parse_node.cpp,
// parse_network.cpp, ...), the checks across resources in validate.cpp, and
// the order in which kinds are read in state.cpp. Internal to the model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "loader/model/fields.hpp"
#include "loader/model/state.hpp"

namespace weft::document {

// A subnet's network address, and an IPv4 subnet's broadcast address, are no
// host's (neutron-lib's check_subnet_ip / check_gateway_invalid_in_subnet).
// Defined in parse_subnet.cpp; fixed IPs are checked the same way.
std::optional<std::string> reserved_address(const IpPrefix& cidr, const IpAddr& ip);

// What makes two rules of a group the same rule (everything but the id).
using RuleKey = std::tuple<Direction, Ethertype, int, int, int, std::optional<IpPrefix>,
                           std::optional<std::string>, std::optional<std::string>>;

// What the checks across resources need to know that a State does not keep,
// each vector parallel to the State's. An entry without an id is named by its
// place in the document ("ports[2]"), which is not its place in the State once
// an entry that is not an object has been skipped; and an attribute that
// failed to parse (reported already) is not checked again, or one mistake
// would be reported twice. Everything else validate() reads from the State.
struct NetworkOrigin {
  std::string where;          // "network net-blue", or "networks[1]" without an id
  std::string segment_path;   // "segments[0]." when the provider attributes came from there
  bool segment_valid = false; // type, segmentation id and physical network all parsed
};

struct PortOrigin {
  std::string where; // "port 3f2a…", or "ports[1]" without an id
  // Each kept fixed IP's index in the document's fixed_ips (parallel to
  // Port::fixed_ips, which leaves out the ones that failed to parse).
  std::vector<std::size_t> fixed_ip_index;
};

struct Origins {
  std::vector<std::string> nodes; // "node node1", or "nodes[0]" without a name
  std::vector<NetworkOrigin> networks;
  std::vector<bool> subnet_cidr_valid; // cidr parsed and matches ip_version
  std::vector<PortOrigin> ports;
};

// The checks across resources (validate.cpp), once every resource is parsed:
// uniqueness of tunnel IPs, VNIs, (physical network, VLAN), flat physical
// networks, MACs and fixed IPs in a network and devices on a host; subnet
// overlaps; pairs that take over another port's MAC.
void validate(const State& state, const Origins& origins, Problems& problems);

class Parser {
public:
  State parse(const json& document); // state.cpp

private:
  const json* top_list(const json& document, const char* key); // state.cpp

  // parse_node.cpp
  void parse_node(const json& entry, std::size_t index);

  // parse_network.cpp
  void parse_network(const json& entry, std::size_t index);
  // Returns whether the segment is complete (validate() checks only those).
  bool parse_segment(Fields& segment, Network& network);

  // parse_subnet.cpp
  void parse_subnet(const json& entry, std::size_t index);

  // parse_group.cpp
  void collect_group_ids(const json* groups);
  void parse_group(const json& entry, std::size_t index);
  void parse_rule(const json& entry, std::size_t index, const std::string& group_label,
                  const std::optional<std::string>& group_id, SecurityGroup& group,
                  std::map<RuleKey, std::string>& keys);
  void parse_remotes(Fields& fields, SecurityGroupRule& rule);

  // parse_port.cpp
  void parse_port(const json& entry, std::size_t index);
  void parse_fixed_ip(const json& entry, std::size_t index, Fields& port_fields, Port& port,
                      PortOrigin& origin, bool network_known);
  void parse_address_pair(const json& entry, std::size_t index, Fields& port_fields, Port& port);

  // Returns the id of a resource (reporting problems with it) and points
  // `fields` at "<kind> <id>" when it has one. In state.cpp.
  std::optional<std::string> resource_id(Fields& fields, std::string_view kind,
                                         std::string_view id_key,
                                         std::map<std::string, std::string, std::less<>>& seen,
                                         const std::string& position);

  Problems problems_;
  State state_;
  Origins origins_;

  std::map<std::string, std::string, std::less<>> node_names_;    // name → position
  std::map<std::string, std::string, std::less<>> network_ids_;   // id → position
  std::map<std::string, std::string, std::less<>> subnet_ids_;    // id → position
  std::map<std::string, std::string, std::less<>> group_ids_;     // id → position
  std::map<std::string, std::string, std::less<>> rule_ids_;      // id → label
  std::map<std::string, std::string, std::less<>> port_ids_;      // id → position
  std::map<std::string, std::size_t, std::less<>> network_index_; // id → networks[i]
  std::map<std::string, std::size_t, std::less<>> subnet_index_;  // id → subnets[i]
  std::map<std::string, std::size_t, std::less<>> group_index_;   // id → security_groups[i]
  std::set<std::string, std::less<>> known_group_ids_;            // before groups are parsed
  std::vector<bool> network_mtu_valid_;                           // parallel to state_.networks
};

} // namespace weft::document
