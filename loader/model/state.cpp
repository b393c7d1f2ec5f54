// Parsing and validating the desired state (DESIGN.md §3.1). Every check that
// Neutron's API makes on these fields is made here, on the whole document, so
// that a refused document lists all its problems and changes nothing.
#include "loader/model/state.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

namespace weft {

namespace {

using json = nlohmann::json;

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

bool all_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Clears every bit after the first `len`.
IpAddr masked(IpAddr ip, int len) {
  for (int byte = 0; byte < 16; ++byte) {
    int keep = std::clamp(len - byte * 8, 0, 8);
    ip.bytes[byte] &= static_cast<std::uint8_t>(0xff00u >> keep);
  }
  return ip;
}

int max_prefix_len(const IpAddr& ip) {
  return ip.is_v4() ? 32 : 128;
}

} // namespace

// --- addresses ---------------------------------------------------------------

std::optional<Mac> Mac::parse(std::string_view text) {
  if (text.size() != 17)
    return std::nullopt;
  char separator = text[2];
  if (separator != ':' && separator != '-')
    return std::nullopt;
  Mac mac;
  for (std::size_t i = 0; i < 6; ++i) {
    std::size_t pos = i * 3;
    if (i > 0 && text[pos - 1] != separator)
      return std::nullopt;
    int high = hex_value(text[pos]);
    int low = hex_value(text[pos + 1]);
    if (high < 0 || low < 0)
      return std::nullopt;
    mac.bytes[i] = static_cast<std::uint8_t>(high * 16 + low);
  }
  return mac;
}

std::string Mac::str() const {
  char text[18];
  std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return text;
}

bool Mac::is_zero() const {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  // inet_pton reads a C string: an embedded NUL would hide a trailing part.
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN || text.find('\0') != text.npos)
    return std::nullopt;
  std::string c_text(text);
  IpAddr ip;
  ip.family = c_text.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  if (inet_pton(ip.family, c_text.c_str(), ip.bytes.data()) != 1)
    return std::nullopt;
  return ip;
}

std::string IpAddr::str() const {
  if (family != AF_INET && family != AF_INET6)
    return "";
  char text[INET6_ADDRSTRLEN];
  if (inet_ntop(family, bytes.data(), text, sizeof(text)) == nullptr)
    return "";
  return text;
}

bool IpAddr::is_v4() const {
  return family == AF_INET;
}

std::uint32_t IpAddr::v4_be() const {
  std::uint32_t be = 0;
  std::memcpy(&be, bytes.data(), sizeof(be));
  return be;
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view text) {
  std::size_t slash = text.find('/');
  auto ip = IpAddr::parse(text.substr(0, slash));
  if (!ip)
    return std::nullopt;
  int len = max_prefix_len(*ip);
  if (slash != text.npos) {
    std::string_view digits = text.substr(slash + 1);
    if (!all_digits(digits) || digits.size() > 3)
      return std::nullopt;
    std::from_chars(digits.data(), digits.data() + digits.size(), len);
    if (len > max_prefix_len(*ip))
      return std::nullopt;
  }
  IpPrefix prefix;
  prefix.addr = masked(*ip, len);
  prefix.len = len;
  return prefix;
}

std::string IpPrefix::str() const {
  return addr.str() + "/" + std::to_string(len);
}

bool IpPrefix::contains(const IpAddr& ip) const {
  return ip.family == addr.family && masked(ip, len) == addr;
}

std::string_view to_string(NetworkType type) {
  switch (type) {
  case NetworkType::Vxlan:
    return "vxlan";
  case NetworkType::Vlan:
    return "vlan";
  case NetworkType::Flat:
    return "flat";
  }
  return "unknown";
}

std::string Port::device_name() const {
  return "tap" + id.substr(0, 11);
}

// --- lookups -----------------------------------------------------------------

namespace {

template <class T, class Key>
const T* find_by(const std::vector<T>& items, std::string_view wanted, Key key) {
  auto it = std::find_if(items.begin(), items.end(),
                         [&](const T& item) { return std::invoke(key, item) == wanted; });
  return it == items.end() ? nullptr : &*it;
}

} // namespace

const Network* State::find_network(std::string_view id) const {
  return find_by(networks, id, &Network::id);
}
const Subnet* State::find_subnet(std::string_view id) const {
  return find_by(subnets, id, &Subnet::id);
}
const Port* State::find_port(std::string_view id) const {
  return find_by(ports, id, &Port::id);
}
const SecurityGroup* State::find_group(std::string_view id) const {
  return find_by(security_groups, id, &SecurityGroup::id);
}
const Node* State::find_node(std::string_view name) const {
  return find_by(nodes, name, &Node::name);
}

// --- protocols ---------------------------------------------------------------

namespace {

struct ProtocolName {
  std::string_view name;
  std::uint8_t number;
};

// neutron-lib's IP_PROTOCOL_MAP, with the legacy "icmpv6" alias.
constexpr ProtocolName kProtocols[] = {
    {"ah", 51},         {"dccp", 33},       {"egp", 8},        {"esp", 50},      {"gre", 47},
    {"hopopt", 0},      {"icmp", 1},        {"igmp", 2},       {"ip", 0},        {"ipip", 4},
    {"ipv6-encap", 41}, {"ipv6-frag", 44},  {"ipv6-icmp", 58}, {"icmpv6", 58},   {"ipv6-nonxt", 59},
    {"ipv6-opts", 60},  {"ipv6-route", 43}, {"ospf", 89},      {"pgm", 113},     {"rsvp", 46},
    {"sctp", 132},      {"tcp", 6},         {"udp", 17},       {"udplite", 136}, {"vrrp", 112},
};

constexpr std::uint8_t kIcmp = 1;
constexpr std::uint8_t kIcmpV6 = 58;

std::uint8_t for_ethertype(std::uint8_t number, Ethertype ethertype) {
  // Neutron rewrites IPv6 rules for "icmp"/1 to ipv6-icmp.
  return ethertype == Ethertype::IPv6 && number == kIcmp ? kIcmpV6 : number;
}

// Protocols whose rules carry ports (Neutron's SG_PORT_PROTO_NUMS).
bool has_ports(std::uint8_t protocol) {
  return protocol == 6 || protocol == 17 || protocol == 132 || protocol == 33 || protocol == 136;
}

// Neutron refuses these with IPv4 (_validate_ethertype_and_protocol).
bool ipv6_only(std::uint8_t protocol) {
  return protocol == 41 || protocol == 43 || protocol == 44 || protocol == 58 || protocol == 59 ||
         protocol == 60;
}

} // namespace

std::optional<std::uint8_t> protocol_number(std::string_view name, Ethertype ethertype) {
  if (all_digits(name)) {
    unsigned number = 0;
    auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), number);
    if (error != std::errc() || end != name.data() + name.size() || number > 255)
      return std::nullopt;
    return for_ethertype(static_cast<std::uint8_t>(number), ethertype);
  }
  std::string wanted = lower(name);
  for (const ProtocolName& protocol : kProtocols)
    if (protocol.name == wanted)
      return for_ethertype(protocol.number, ethertype);
  return std::nullopt;
}

// --- errors ------------------------------------------------------------------

namespace {

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) {
    if (!out.empty())
      out += '\n';
    out += line;
  }
  return out;
}

} // namespace

StateError::StateError(std::vector<std::string> problems)
    : std::runtime_error(join_lines(problems)), problems_(std::move(problems)) {}

// --- the document parser -----------------------------------------------------

namespace {

constexpr std::size_t kMaxAddressPairs = 10; // Neutron's max_allowed_address_pair
constexpr std::int64_t kMinMtu = 68;
constexpr std::int64_t kMinIpv6Mtu = 1280;

// A document value as it may appear in a message: control characters escaped
// (one problem is one line), long values cut short.
std::string printable(std::string_view text, std::size_t limit = std::string::npos) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (out.size() >= limit && (c & 0xc0) != 0x80) {
      out += "...";
      break;
    }
    if (c < 0x20 || c == 0x7f) {
      char escaped[5];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string in_quotes(std::string_view text) {
  return "'" + printable(text, 64) + "'";
}

std::string kind_of(const json& value) {
  switch (value.type()) {
  case json::value_t::null:
    return "null";
  case json::value_t::boolean:
    return "a boolean";
  case json::value_t::string:
    return "a string";
  case json::value_t::array:
    return "a list";
  case json::value_t::object:
    return "an object";
  case json::value_t::number_integer:
  case json::value_t::number_unsigned:
  case json::value_t::number_float:
    return "a number";
  default:
    return "an unsupported value";
  }
}

// A JSON value as it may appear in a message.
std::string shown(const json& value) {
  if (value.is_string())
    return in_quotes(value.get_ref<const std::string&>());
  if (value.is_number() || value.is_boolean() || value.is_null())
    return value.dump();
  return kind_of(value);
}

std::string range_text(std::int64_t low, std::int64_t high) {
  return "(" + std::to_string(low) + ".." + std::to_string(high) + ")";
}

// Collects problems as "<where>: <field> <what>".
class Problems {
public:
  void add(const std::string& where, const std::string& what) {
    list_.push_back(where + ": " + what);
  }
  std::size_t count() const { return list_.size(); }
  std::vector<std::string>& list() { return list_; }

private:
  std::vector<std::string> list_;
};

// Reads the fields of one JSON object, reporting each problem under `where`
// ("port 3f2a…") with the field's path ("fixed_ips[0].ip_address").
class Fields {
public:
  Fields(const json& object, std::string where, std::string path, Problems& problems)
      : object_(object), where_(std::move(where)), path_(std::move(path)), problems_(problems) {}

  const std::string& where() const { return where_; }
  void set_where(std::string where) { where_ = std::move(where); }
  std::string field(std::string_view key) const { return path_ + std::string(key); }

  void problem(std::string_view key, const std::string& what) {
    problems_.add(where_, field(key) + " " + what);
  }

  // The value of `key`; nullptr when absent or null (Neutron's "not set").
  const json* value(std::string_view key) const {
    auto it = object_.find(std::string(key));
    if (it == object_.end() || it->is_null())
      return nullptr;
    return &*it;
  }

  std::optional<std::string> text(std::string_view key) {
    const json* found = value(key);
    if (found == nullptr)
      return std::nullopt;
    if (!found->is_string()) {
      problem(key, "must be a string, not " + kind_of(*found));
      return std::nullopt;
    }
    return found->get<std::string>();
  }

  // A string that must be present and non-empty.
  std::optional<std::string> required_text(std::string_view key) {
    const json* found = value(key);
    if (found == nullptr) {
      problem(key, "is missing");
      return std::nullopt;
    }
    auto result = text(key);
    if (result && result->empty()) {
      problem(key, "is empty");
      return std::nullopt;
    }
    return result;
  }

  bool flag(std::string_view key, bool fallback) {
    const json* found = value(key);
    if (found == nullptr)
      return fallback;
    if (found->is_boolean())
      return found->get<bool>();
    // Neutron's convert_to_boolean also takes the strings.
    if (found->is_string()) {
      std::string word = lower(found->get_ref<const std::string&>());
      if (word == "true")
        return true;
      if (word == "false")
        return false;
    }
    problem(key, "must be true or false, not " + shown(*found));
    return fallback;
  }

  // An integer, given as a JSON number or a decimal string (Neutron's
  // convert_to_int); nullopt when absent, null or invalid (reported).
  std::optional<std::int64_t> integer(std::string_view key) {
    const json* found = value(key);
    if (found == nullptr)
      return std::nullopt;
    if (found->is_number_unsigned()) {
      auto number = found->get<std::uint64_t>();
      if (number > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        problem(key, found->dump() + " is out of range");
        return std::nullopt;
      }
      return static_cast<std::int64_t>(number);
    }
    if (found->is_number_integer())
      return found->get<std::int64_t>();
    if (found->is_string()) {
      const auto& digits = found->get_ref<const std::string&>();
      std::int64_t number = 0;
      auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
      if (!digits.empty() && error == std::errc() && end == digits.data() + digits.size())
        return number;
      if (error == std::errc::result_out_of_range) {
        problem(key, in_quotes(digits) + " is out of range");
        return std::nullopt;
      }
      problem(key, in_quotes(digits) + " is not an integer");
      return std::nullopt;
    }
    problem(key, "must be an integer, not " + shown(*found));
    return std::nullopt;
  }

  // A list; nullptr when absent or null (an empty list) or not a list
  // (reported).
  const json* list(std::string_view key) {
    const json* found = value(key);
    if (found == nullptr)
      return nullptr;
    if (!found->is_array()) {
      problem(key, "must be a list, not " + kind_of(*found));
      return nullptr;
    }
    return found;
  }

private:
  const json& object_;
  std::string where_;
  std::string path_;
  Problems& problems_;
};

std::string indexed(std::string_view list, std::size_t index) {
  return std::string(list) + "[" + std::to_string(index) + "]";
}

std::string label(std::string_view kind, std::string_view id) {
  return std::string(kind) + " " + printable(id);
}

// Device names are netdev names: no '/', ':' or white space (dev_valid_name).
bool valid_device_name(std::string_view name) {
  return std::none_of(name.begin(), name.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return c == '/' || c == ':' || byte <= 0x20 || byte == 0x7f;
  });
}

// Node names become a directory under the bpffs (<bpffs>/weft/<node>/).
bool valid_node_name(std::string_view name) {
  return name != "." && name != ".." && std::none_of(name.begin(), name.end(), [](char c) {
           auto byte = static_cast<unsigned char>(c);
           return c == '/' || byte < 0x20 || byte == 0x7f;
         });
}

// A subnet's network address, and an IPv4 subnet's broadcast address, are no
// host's (neutron-lib's check_subnet_ip / check_gateway_invalid_in_subnet).
std::optional<std::string> reserved_address(const IpPrefix& cidr, const IpAddr& ip) {
  if (ip == cidr.addr)
    return "the network address";
  if (cidr.addr.is_v4()) {
    IpAddr broadcast = cidr.addr;
    for (int bit = cidr.len; bit < 32; ++bit)
      broadcast.bytes[bit / 8] |= static_cast<std::uint8_t>(0x80u >> (bit % 8));
    if (ip == broadcast)
      return "the broadcast address";
  }
  return std::nullopt;
}

bool overlaps(const IpPrefix& a, const IpPrefix& b) {
  return a.contains(b.addr) || b.contains(a.addr);
}

// What makes two rules of a group the same rule (everything but the id).
using RuleKey = std::tuple<Direction, Ethertype, int, int, int, std::optional<IpPrefix>,
                           std::optional<std::string>, std::optional<std::string>>;

std::string_view ethertype_name(Ethertype ethertype) {
  return ethertype == Ethertype::IPv4 ? "IPv4" : "IPv6";
}

// protocol: null/"any", a number (JSON or string) or a name. Returns false
// when it is invalid (reported).
bool parse_protocol(Fields& fields, SecurityGroupRule& rule) {
  bool protocol_valid = true;
  if (const json* protocol = fields.value("protocol")) {
    if (protocol->is_string()) {
      const auto& name = protocol->get_ref<const std::string&>();
      if (lower(name) != "any") {
        rule.protocol = protocol_number(name, rule.ethertype);
        if (!rule.protocol) {
          fields.problem("protocol",
                         in_quotes(name) + " is not a protocol name or a number 0..255");
          protocol_valid = false;
        }
      }
    } else if (protocol->is_number_integer()) {
      bool in_range = protocol->is_number_unsigned() ? protocol->get<std::uint64_t>() <= 255
                                                     : protocol->get<std::int64_t>() >= 0 &&
                                                           protocol->get<std::int64_t>() <= 255;
      if (in_range)
        rule.protocol =
            for_ethertype(static_cast<std::uint8_t>(protocol->get<std::int64_t>()), rule.ethertype);
      if (!rule.protocol) {
        fields.problem("protocol", protocol->dump() + " is out of range (0..255)");
        protocol_valid = false;
      }
    } else {
      fields.problem("protocol", "must be a name or a number, not " + shown(*protocol));
      protocol_valid = false;
    }
    if (rule.protocol && rule.ethertype == Ethertype::IPv4 && ipv6_only(*rule.protocol))
      fields.problem("protocol", shown(*protocol) + " is IPv6-only but ethertype is IPv4");
  }
  return protocol_valid;
}

// port_range_min/max: ports for the port protocols, type and code for ICMP
// (Neutron's _validate_port_range). Without a valid protocol only their
// syntax is checked.
void parse_port_range(Fields& fields, SecurityGroupRule& rule, bool protocol_valid) {
  auto port_min = fields.integer("port_range_min");
  auto port_max = fields.integer("port_range_max");
  bool min_given = fields.value("port_range_min") != nullptr;
  bool max_given = fields.value("port_range_max") != nullptr;
  struct Bound {
    const char* key;
    const char* icmp_meaning;
    std::optional<std::int64_t> value;
  };
  const Bound bounds[] = {{"port_range_min", "ICMP type", port_min},
                          {"port_range_max", "ICMP code", port_max}};
  if ((min_given || max_given) && protocol_valid) {
    const char* given = min_given ? "port_range_min" : "port_range_max";
    if (!rule.protocol) {
      fields.problem(given, "needs a protocol (tcp, udp, sctp, dccp, udplite, icmp or ipv6-icmp)");
    } else if (has_ports(*rule.protocol)) {
      bool ports_valid = true;
      for (const Bound& bound : bounds)
        if (bound.value && (*bound.value < 1 || *bound.value > 65535)) {
          fields.problem(bound.key,
                         std::to_string(*bound.value) + " is not a port " + range_text(1, 65535));
          ports_valid = false;
        }
      if (!min_given) {
        fields.problem("port_range_min", "is missing (port_range_max is set)");
      } else if (!max_given) {
        fields.problem("port_range_max", "is missing (port_range_min is set)");
      } else if (port_min && port_max && ports_valid) {
        if (*port_min > *port_max)
          fields.problem("port_range_min", std::to_string(*port_min) +
                                               " is greater than port_range_max " +
                                               std::to_string(*port_max));
        rule.port_range_min = static_cast<std::uint16_t>(*port_min);
        rule.port_range_max = static_cast<std::uint16_t>(*port_max);
      }
    } else if (*rule.protocol == kIcmp || *rule.protocol == kIcmpV6) {
      bool icmp_valid = true;
      for (const Bound& bound : bounds)
        if (bound.value && (*bound.value < 0 || *bound.value > 255)) {
          fields.problem(bound.key, "(" + std::string(bound.icmp_meaning) + ") " +
                                        std::to_string(*bound.value) + " is out of range (0..255)");
          icmp_valid = false;
        }
      if (!min_given) {
        fields.problem("port_range_max", "(ICMP code) is set without port_range_min (ICMP type)");
      } else if (icmp_valid) {
        if (port_min)
          rule.port_range_min = static_cast<std::uint16_t>(*port_min);
        if (port_max)
          rule.port_range_max = static_cast<std::uint16_t>(*port_max);
      }
    } else {
      fields.problem(given, "is not allowed with protocol " + std::to_string(*rule.protocol) +
                                " (only tcp, udp, sctp, dccp, udplite, icmp and ipv6-icmp)");
    }
  }
}

// Neutron's _rule_to_key: a /0 prefix is the same as none.
RuleKey rule_key(const SecurityGroupRule& rule) {
  auto number = [](const auto& value) { return value ? static_cast<int>(*value) : -1; };
  std::optional<IpPrefix> prefix = rule.remote_ip_prefix;
  if (prefix && prefix->len == 0)
    prefix.reset();
  return RuleKey{rule.direction,
                 rule.ethertype,
                 number(rule.protocol),
                 number(rule.port_range_min),
                 number(rule.port_range_max),
                 prefix,
                 rule.remote_group_id,
                 rule.remote_address_group_id};
}

class Parser {
public:
  State parse(const json& document);

private:
  const json* top_list(const json& document, const char* key);
  void parse_node(const json& entry, std::size_t index);
  void parse_network(const json& entry, std::size_t index);
  void parse_segment(Fields& fields, Fields& segment, Network& network);
  void parse_subnet(const json& entry, std::size_t index);
  void check_subnet_overlaps();
  void check_pair_macs();
  void collect_group_ids(const json* groups);
  void parse_group(const json& entry, std::size_t index);
  void parse_rule(const json& entry, std::size_t index, const std::string& group_label,
                  const std::optional<std::string>& group_id, SecurityGroup& group,
                  std::map<RuleKey, std::string>& keys);
  void parse_remotes(Fields& fields, SecurityGroupRule& rule);
  void parse_port(const json& entry, std::size_t index);
  void parse_fixed_ip(const json& entry, std::size_t index, Fields& port_fields, Port& port,
                      bool network_known);
  void parse_address_pair(const json& entry, std::size_t index, Fields& port_fields, Port& port);

  // Returns the id of a resource (reporting problems with it) and points
  // `fields` at "<kind> <id>" when it has one.
  std::optional<std::string> resource_id(Fields& fields, std::string_view kind,
                                         std::string_view id_key,
                                         std::map<std::string, std::string, std::less<>>& seen,
                                         const std::string& position);

  Problems problems_;
  State state_;

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
  std::vector<bool> subnet_cidr_valid_;                           // parallel to state_.subnets
  std::vector<bool> network_mtu_valid_;                           // parallel to state_.networks
  std::map<IpAddr, std::string> tunnel_ips_;                      // → node name
  std::map<std::uint32_t, std::string> vnis_;                     // → network id
  std::map<std::pair<std::string, std::uint32_t>, std::string> vlans_; // (physnet, vlan)
  std::map<std::string, std::string> flats_;                           // physnet → network id
  std::map<std::pair<std::string, Mac>, std::string> macs_;            // (network, MAC) → port
  std::map<std::pair<std::string, IpAddr>, std::string> ips_;          // (network, IP) → port
  std::map<std::pair<std::string, std::string>, std::string> devices_; // (host, tap) → port
};

const json* Parser::top_list(const json& document, const char* key) {
  auto it = document.find(key);
  if (it == document.end() || it->is_null())
    return nullptr;
  if (!it->is_array()) {
    problems_.add(key, "must be a list, not " + kind_of(*it));
    return nullptr;
  }
  return &*it;
}

std::optional<std::string>
Parser::resource_id(Fields& fields, std::string_view kind, std::string_view id_key,
                    std::map<std::string, std::string, std::less<>>& seen,
                    const std::string& position) {
  auto id = fields.required_text(id_key);
  if (!id)
    return std::nullopt;
  fields.set_where(label(kind, *id));
  auto [it, inserted] = seen.emplace(*id, position);
  if (!inserted)
    fields.problem(id_key, "is used twice: " + it->second + " and " + position);
  return id;
}

State Parser::parse(const json& document) {
  if (!document.is_object()) {
    problems_.add("document", "must be a JSON object, not " + kind_of(document));
    throw StateError(std::move(problems_.list()));
  }
  const json* nodes = top_list(document, "nodes");
  const json* networks = top_list(document, "networks");
  const json* subnets = top_list(document, "subnets");
  const json* ports = top_list(document, "ports");
  const json* groups = top_list(document, "security_groups");

  // Each kind refers only to kinds parsed before it, except that rules may
  // name any group: their ids are collected first.
  if (nodes != nullptr)
    for (std::size_t i = 0; i < nodes->size(); ++i)
      parse_node((*nodes)[i], i);
  if (networks != nullptr)
    for (std::size_t i = 0; i < networks->size(); ++i)
      parse_network((*networks)[i], i);
  if (subnets != nullptr)
    for (std::size_t i = 0; i < subnets->size(); ++i)
      parse_subnet((*subnets)[i], i);
  check_subnet_overlaps();
  collect_group_ids(groups);
  if (groups != nullptr)
    for (std::size_t i = 0; i < groups->size(); ++i)
      parse_group((*groups)[i], i);
  if (ports != nullptr)
    for (std::size_t i = 0; i < ports->size(); ++i)
      parse_port((*ports)[i], i);
  check_pair_macs();

  if (problems_.count() > 0)
    throw StateError(std::move(problems_.list()));
  return std::move(state_);
}

// --- nodes -------------------------------------------------------------------

void Parser::parse_node(const json& entry, std::size_t index) {
  std::string position = indexed("nodes", index);
  if (!entry.is_object()) {
    problems_.add(position, "must be an object, not " + kind_of(entry));
    return;
  }
  Fields fields(entry, position, "", problems_);
  Node node;
  if (auto name = resource_id(fields, "node", "name", node_names_, position)) {
    node.name = *name;
    if (!valid_node_name(*name))
      fields.problem("name", in_quotes(*name) + " is not usable as a directory name");
  }
  if (auto tunnel_ip = fields.text("tunnel_ip")) {
    node.tunnel_ip = IpAddr::parse(*tunnel_ip);
    if (!node.tunnel_ip) {
      fields.problem("tunnel_ip", in_quotes(*tunnel_ip) + " is not an IP address");
    } else {
      auto [it, inserted] = tunnel_ips_.emplace(*node.tunnel_ip, node.name);
      if (!inserted)
        fields.problem("tunnel_ip", node.tunnel_ip->str() + " is also the tunnel_ip of node " +
                                        printable(it->second));
    }
  }
  state_.nodes.push_back(std::move(node));
}

// --- networks ----------------------------------------------------------------

void Parser::parse_network(const json& entry, std::size_t index) {
  std::string position = indexed("networks", index);
  if (!entry.is_object()) {
    problems_.add(position, "must be an object, not " + kind_of(entry));
    return;
  }
  Fields fields(entry, position, "", problems_);
  Network network;
  auto id = resource_id(fields, "network", "id", network_ids_, position);
  if (id)
    network.id = *id;
  network.name = fields.text("name").value_or("");
  auto project_id = fields.text("project_id");
  auto tenant_id = fields.text("tenant_id");
  if (project_id && tenant_id && *project_id != *tenant_id)
    fields.problem("project_id",
                   in_quotes(*project_id) + " does not match tenant_id " + in_quotes(*tenant_id));
  network.project_id = project_id ? *project_id : tenant_id.value_or("");
  network.admin_state_up = fields.flag("admin_state_up", true);
  network.port_security_enabled = fields.flag("port_security_enabled", true);

  // A multi-segment network carries its provider attributes in `segments`;
  // weft uses the first segment.
  const json* segment_object = &entry;
  std::string segment_path;
  if (fields.value("provider:network_type") == nullptr) {
    const json* segments = fields.list("segments");
    if (segments != nullptr && !segments->empty()) {
      if ((*segments)[0].is_object()) {
        segment_object = &(*segments)[0];
        segment_path = "segments[0].";
      } else {
        fields.problem("segments[0]", "must be an object, not " + kind_of((*segments)[0]));
      }
    }
  }
  Fields segment(*segment_object, fields.where(), segment_path, problems_);
  parse_segment(fields, segment, network);

  bool mtu_valid = true;
  network.mtu = network.type == NetworkType::Vxlan ? 1450 : 1500;
  if (auto mtu = fields.integer("mtu")) {
    if (*mtu < kMinMtu || *mtu > 65535) {
      fields.problem("mtu",
                     std::to_string(*mtu) + " is out of range " + range_text(kMinMtu, 65535));
      mtu_valid = false;
    } else {
      network.mtu = static_cast<std::uint32_t>(*mtu);
    }
  } else if (fields.value("mtu") != nullptr) {
    mtu_valid = false;
  }

  if (id && !network_index_.contains(*id))
    network_index_.emplace(*id, state_.networks.size());
  network_mtu_valid_.push_back(mtu_valid);
  state_.networks.push_back(std::move(network));
}

void Parser::parse_segment(Fields& fields, Fields& segment, Network& network) {
  auto type_name = segment.required_text("provider:network_type");
  if (!type_name)
    return;
  if (*type_name == "vxlan") {
    network.type = NetworkType::Vxlan;
  } else if (*type_name == "vlan") {
    network.type = NetworkType::Vlan;
  } else if (*type_name == "flat") {
    network.type = NetworkType::Flat;
  } else {
    segment.problem("provider:network_type",
                    in_quotes(*type_name) + " is not supported (vxlan, vlan or flat)");
    return;
  }

  const char* kSegmentationId = "provider:segmentation_id";
  const char* kPhysicalNetwork = "provider:physical_network";
  auto segmentation_id = segment.integer(kSegmentationId);
  bool segmentation_id_given = segment.value(kSegmentationId) != nullptr;
  bool segment_valid = true;

  if (network.type == NetworkType::Flat) {
    if (segmentation_id_given) {
      segment.problem(kSegmentationId, "must be null for a flat network");
      segment_valid = false;
    }
  } else {
    std::int64_t max = network.type == NetworkType::Vxlan ? 16777215 : 4094;
    if (!segmentation_id_given) {
      segment.problem(kSegmentationId, "is missing (a " + *type_name + " network needs one)");
      segment_valid = false;
    } else if (!segmentation_id) {
      segment_valid = false;
    } else if (*segmentation_id < 1 || *segmentation_id > max) {
      segment.problem(kSegmentationId, std::to_string(*segmentation_id) + " is out of range " +
                                           range_text(1, max) + " for " + *type_name);
      segment_valid = false;
    } else {
      network.segmentation_id = static_cast<std::uint32_t>(*segmentation_id);
    }
  }

  if (network.type == NetworkType::Vxlan) {
    network.physical_network.reset(); // tunnels have none
  } else {
    auto physical_network = segment.required_text(kPhysicalNetwork);
    if (physical_network)
      network.physical_network = *physical_network;
    else
      segment_valid = false;
  }

  if (!segment_valid)
    return;
  std::string self = network.id.empty() ? fields.where() : network.id;
  switch (network.type) {
  case NetworkType::Vxlan: {
    auto [it, inserted] = vnis_.emplace(network.segmentation_id, self);
    if (!inserted)
      segment.problem(kSegmentationId, std::to_string(network.segmentation_id) +
                                           " is already the VNI of network " +
                                           printable(it->second));
    break;
  }
  case NetworkType::Vlan: {
    auto [it, inserted] =
        vlans_.emplace(std::make_pair(*network.physical_network, network.segmentation_id), self);
    if (!inserted)
      segment.problem(kSegmentationId, std::to_string(network.segmentation_id) +
                                           " on physical network " +
                                           in_quotes(*network.physical_network) +
                                           " is already used by network " + printable(it->second));
    break;
  }
  case NetworkType::Flat: {
    auto [it, inserted] = flats_.emplace(*network.physical_network, self);
    if (!inserted)
      segment.problem(kPhysicalNetwork,
                      in_quotes(*network.physical_network) +
                          " already has a flat network: " + printable(it->second));
    break;
  }
  }
}

// --- subnets -----------------------------------------------------------------

void Parser::parse_subnet(const json& entry, std::size_t index) {
  std::string position = indexed("subnets", index);
  if (!entry.is_object()) {
    problems_.add(position, "must be an object, not " + kind_of(entry));
    return;
  }
  Fields fields(entry, position, "", problems_);
  Subnet subnet;
  auto id = resource_id(fields, "subnet", "id", subnet_ids_, position);
  if (id)
    subnet.id = *id;

  const Network* network = nullptr;
  bool network_mtu_valid = false;
  if (auto network_id = fields.required_text("network_id")) {
    subnet.network_id = *network_id;
    auto it = network_index_.find(*network_id);
    if (it == network_index_.end()) {
      fields.problem("network_id", in_quotes(*network_id) + " is not a known network");
    } else {
      network = &state_.networks[it->second];
      network_mtu_valid = network_mtu_valid_[it->second];
    }
  }

  bool cidr_valid = false;
  if (auto cidr = fields.required_text("cidr")) {
    auto prefix = IpPrefix::parse(*cidr);
    if (!prefix || cidr->find('/') == std::string::npos) {
      fields.problem("cidr", in_quotes(*cidr) + " is not an IP prefix (address/length)");
    } else if (IpAddr::parse(std::string_view(*cidr).substr(0, cidr->find('/'))) != prefix->addr) {
      fields.problem("cidr",
                     in_quotes(*cidr) + " has host bits set; did you mean " + prefix->str() + "?");
    } else {
      subnet.cidr = *prefix;
      cidr_valid = true;
    }
  }

  auto ip_version = fields.integer("ip_version");
  if (ip_version && *ip_version != 4 && *ip_version != 6) {
    fields.problem("ip_version", std::to_string(*ip_version) + " is not 4 or 6");
  } else if (cidr_valid) {
    int cidr_version = subnet.cidr.addr.is_v4() ? 4 : 6;
    if (ip_version && *ip_version != cidr_version) {
      fields.problem("ip_version",
                     std::to_string(*ip_version) + " does not match cidr " + subnet.cidr.str());
      cidr_valid = false;
    }
    subnet.ip_version = cidr_version;
  } else if (ip_version) {
    subnet.ip_version = static_cast<int>(*ip_version);
  }

  if (auto gateway = fields.text("gateway_ip")) {
    subnet.gateway_ip = IpAddr::parse(*gateway);
    if (!subnet.gateway_ip) {
      fields.problem("gateway_ip", in_quotes(*gateway) + " is not an IP address");
    } else if (cidr_valid) {
      if (!subnet.cidr.contains(*subnet.gateway_ip))
        fields.problem("gateway_ip",
                       subnet.gateway_ip->str() + " is not inside cidr " + subnet.cidr.str());
      else if (auto reserved = reserved_address(subnet.cidr, *subnet.gateway_ip))
        fields.problem("gateway_ip",
                       subnet.gateway_ip->str() + " is " + *reserved + " of " + subnet.cidr.str());
    }
  }
  subnet.enable_dhcp = fields.flag("enable_dhcp", true);

  // Neutron refuses IPv6 subnets on networks that cannot carry IPv6.
  if (network != nullptr && network_mtu_valid && cidr_valid && subnet.ip_version == 6 &&
      network->mtu < kMinIpv6Mtu)
    fields.problem("ip_version", "6 needs a network mtu of at least " +
                                     std::to_string(kMinIpv6Mtu) + " (network " +
                                     printable(network->id) + " has " +
                                     std::to_string(network->mtu) + ")");

  if (id && !subnet_index_.contains(*id))
    subnet_index_.emplace(*id, state_.subnets.size());
  subnet_cidr_valid_.push_back(cidr_valid);
  state_.subnets.push_back(std::move(subnet));
}

void Parser::check_subnet_overlaps() {
  const auto& subnets = state_.subnets;
  for (std::size_t later = 0; later < subnets.size(); ++later) {
    if (!subnet_cidr_valid_[later] || subnets[later].network_id.empty())
      continue;
    for (std::size_t earlier = 0; earlier < later; ++earlier) {
      if (!subnet_cidr_valid_[earlier] || subnets[earlier].network_id != subnets[later].network_id)
        continue;
      if (overlaps(subnets[earlier].cidr, subnets[later].cidr)) {
        std::string where = subnets[later].id.empty() ? indexed("subnets", later)
                                                      : label("subnet", subnets[later].id);
        problems_.add(where, "cidr " + subnets[later].cidr.str() + " overlaps subnet " +
                                 printable(subnets[earlier].id) + " (" +
                                 subnets[earlier].cidr.str() + ") in network " +
                                 printable(subnets[later].network_id));
        break;
      }
    }
  }
}

// An allowed pair may widen what a port sends from, never take over what
// another port of its network receives: the forwarding table would send that
// port's unicast to whichever of the two came last in the document.
void Parser::check_pair_macs() {
  for (std::size_t i = 0; i < state_.ports.size(); ++i) {
    const Port& port = state_.ports[i];
    for (std::size_t k = 0; k < port.allowed_address_pairs.size(); ++k) {
      const Mac& mac = port.allowed_address_pairs[k].mac_address;
      if (mac == port.mac_address)
        continue;
      auto owner = macs_.find(std::make_pair(port.network_id, mac));
      if (owner == macs_.end())
        continue;
      std::string where = port.id.empty() ? indexed("ports", i) : label("port", port.id);
      problems_.add(where, indexed("allowed_address_pairs", k) + ".mac_address " + mac.str() +
                               " is the MAC of " + owner->second + " in network " +
                               printable(port.network_id) +
                               ": a pair may not take over another port's traffic");
    }
  }
}

// --- security groups ---------------------------------------------------------

void Parser::collect_group_ids(const json* groups) {
  if (groups == nullptr)
    return;
  for (const json& group : *groups) {
    if (!group.is_object())
      continue;
    auto id = group.find("id");
    if (id != group.end() && id->is_string() && !id->get_ref<const std::string&>().empty())
      known_group_ids_.insert(id->get<std::string>());
  }
}

void Parser::parse_group(const json& entry, std::size_t index) {
  std::string position = indexed("security_groups", index);
  if (!entry.is_object()) {
    problems_.add(position, "must be an object, not " + kind_of(entry));
    return;
  }
  Fields fields(entry, position, "", problems_);
  SecurityGroup group;
  auto id = resource_id(fields, "security_group", "id", group_ids_, position);
  if (id)
    group.id = *id;
  group.name = fields.text("name").value_or("");
  group.stateful = fields.flag("stateful", true);

  std::string group_label = id ? printable(*id) : position;
  // A rule's key for Neutron's duplicate check (_rule_to_key), with the label
  // of the rule that first had it.
  std::map<RuleKey, std::string> keys;
  if (const json* rules = fields.list("security_group_rules"))
    for (std::size_t i = 0; i < rules->size(); ++i)
      parse_rule((*rules)[i], i, group_label, id, group, keys);

  if (id && !group_index_.contains(*id))
    group_index_.emplace(*id, state_.security_groups.size());
  state_.security_groups.push_back(std::move(group));
}

void Parser::parse_rule(const json& entry, std::size_t index, const std::string& group_label,
                        const std::optional<std::string>& group_id, SecurityGroup& group,
                        std::map<RuleKey, std::string>& keys) {
  std::string position = group_label + "/rules[" + std::to_string(index) + "]";
  std::string where = "security_group_rule " + position;
  if (!entry.is_object()) {
    problems_.add(where, "must be an object, not " + kind_of(entry));
    return;
  }
  std::size_t problems_before = problems_.count();
  Fields fields(entry, where, "", problems_);
  SecurityGroupRule rule;
  if (auto id = fields.text("id"); id && !id->empty()) {
    rule.id = *id;
    fields.set_where(label("security_group_rule", *id));
    auto [it, inserted] = rule_ids_.emplace(*id, position);
    if (!inserted)
      fields.problem("id", "is used twice: " + it->second + " and " + position);
  }
  if (auto owner = fields.text("security_group_id"); owner && group_id && *owner != *group_id)
    fields.problem("security_group_id",
                   in_quotes(*owner) + " is not the rule's group " + in_quotes(*group_id));

  if (auto direction = fields.required_text("direction")) {
    if (*direction == "ingress")
      rule.direction = Direction::Ingress;
    else if (*direction == "egress")
      rule.direction = Direction::Egress;
    else
      fields.problem("direction", in_quotes(*direction) + " is not ingress or egress");
  }

  if (auto ethertype = fields.text("ethertype")) {
    std::string word = lower(*ethertype);
    if (word == "ipv4")
      rule.ethertype = Ethertype::IPv4;
    else if (word == "ipv6")
      rule.ethertype = Ethertype::IPv6;
    else
      fields.problem("ethertype", in_quotes(*ethertype) + " is not IPv4 or IPv6");
  }

  bool protocol_valid = parse_protocol(fields, rule);
  parse_port_range(fields, rule, protocol_valid);
  parse_remotes(fields, rule);

  if (problems_.count() == problems_before) {
    RuleKey key = rule_key(rule);
    auto duplicate = keys.find(key);
    if (duplicate != keys.end())
      problems_.add(fields.where(), "duplicates rule " + duplicate->second);
    else
      keys.emplace(key, rule.id.empty() ? position : printable(rule.id));
  }
  group.rules.push_back(std::move(rule));
}

void Parser::parse_remotes(Fields& fields, SecurityGroupRule& rule) {
  // At most one remote: an IP prefix, a group, or an address group.
  std::vector<std::string> remotes;
  if (auto prefix_text = fields.text("remote_ip_prefix")) {
    remotes.push_back("remote_ip_prefix");
    rule.remote_ip_prefix = IpPrefix::parse(*prefix_text);
    if (!rule.remote_ip_prefix) {
      fields.problem("remote_ip_prefix", in_quotes(*prefix_text) + " is not an IP prefix");
    } else if (rule.remote_ip_prefix->addr.is_v4() != (rule.ethertype == Ethertype::IPv4)) {
      fields.problem("remote_ip_prefix", rule.remote_ip_prefix->str() + " is not " +
                                             std::string(ethertype_name(rule.ethertype)) +
                                             " (the rule's ethertype)");
    }
  }
  if (auto remote_group = fields.text("remote_group_id")) {
    remotes.push_back("remote_group_id");
    rule.remote_group_id = *remote_group;
    if (!known_group_ids_.contains(*remote_group))
      fields.problem("remote_group_id",
                     in_quotes(*remote_group) + " is not a known security group");
  }
  if (auto address_group = fields.text("remote_address_group_id")) {
    remotes.push_back("remote_address_group_id");
    rule.remote_address_group_id = *address_group;
  }
  if (remotes.size() > 1)
    fields.problem(remotes[1], "cannot be combined with " + remotes[0] +
                                   " (at most one of remote_ip_prefix, remote_group_id and "
                                   "remote_address_group_id)");
}

// --- ports -------------------------------------------------------------------

void Parser::parse_port(const json& entry, std::size_t index) {
  std::string position = indexed("ports", index);
  if (!entry.is_object()) {
    problems_.add(position, "must be an object, not " + kind_of(entry));
    return;
  }
  Fields fields(entry, position, "", problems_);
  Port port;
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

  bool mac_valid = false;
  if (auto mac_text = fields.required_text("mac_address")) {
    auto mac = Mac::parse(*mac_text);
    if (!mac)
      fields.problem("mac_address", in_quotes(*mac_text) + " is not a MAC address");
    else if (mac->is_zero())
      fields.problem("mac_address", mac->str() + " is all zeros");
    else if (mac->is_multicast())
      fields.problem("mac_address", mac->str() + " is a multicast address");
    else
      mac_valid = true;
    if (mac_valid)
      port.mac_address = *mac;
  }

  port.admin_state_up = fields.flag("admin_state_up", true);
  port.host_id = fields.text("binding:host_id").value_or("");
  port.device_owner = fields.text("device_owner").value_or("");
  bool network_security = network == nullptr || network->port_security_enabled;
  port.port_security_enabled = fields.flag("port_security_enabled", network_security);

  if (const json* fixed_ips = fields.list("fixed_ips"))
    for (std::size_t i = 0; i < fixed_ips->size(); ++i)
      parse_fixed_ip((*fixed_ips)[i], i, fields, port, network != nullptr);

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

  // One MAC per network; one tap per host.
  if (mac_valid && network != nullptr) {
    auto [it, inserted] =
        macs_.emplace(std::make_pair(port.network_id, port.mac_address), fields.where());
    if (!inserted)
      fields.problem("mac_address", port.mac_address.str() + " is also the MAC of " + it->second +
                                        " in network " + printable(port.network_id));
  }
  bool first_with_id = !port.id.empty() && port_ids_.find(port.id)->second == position;
  if (first_with_id && !port.host_id.empty()) {
    auto [it, inserted] =
        devices_.emplace(std::make_pair(port.host_id, port.device_name()), fields.where());
    if (!inserted)
      fields.problem("id", "gives device " + printable(port.device_name()) +
                               ", also the device of " + it->second + " on host " +
                               printable(port.host_id));
  }
  state_.ports.push_back(std::move(port));
}

void Parser::parse_fixed_ip(const json& entry, std::size_t index, Fields& port_fields, Port& port,
                            bool network_known) {
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
    cidr_valid = subnet_cidr_valid_[it->second];
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
      if (subnet_cidr_valid_[i] && candidate.network_id == port.network_id &&
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

  if (network_known) {
    auto [it, inserted] = ips_.emplace(std::make_pair(port.network_id, *ip), port_fields.where());
    if (!inserted) {
      fields.problem("ip_address", ip->str() + " is also a fixed IP of " + it->second +
                                       " in network " + printable(port.network_id));
      return;
    }
  }
  FixedIp fixed_ip;
  fixed_ip.subnet_id = subnet->id;
  fixed_ip.ip_address = *ip;
  port.fixed_ips.push_back(std::move(fixed_ip));
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
    auto mac = Mac::parse(*mac_text);
    if (!mac)
      fields.problem("mac_address", in_quotes(*mac_text) + " is not a MAC address");
    else if (mac->is_zero())
      fields.problem("mac_address", mac->str() + " is all zeros");
    else if (mac->is_multicast())
      fields.problem("mac_address", mac->str() + " is a multicast address");
    else
      pair.mac_address = *mac;
    valid = valid && mac && !mac->is_zero() && !mac->is_multicast();
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

} // namespace

State parse_state(std::string_view json_text) {
  json document;
  try {
    document = json::parse(json_text.begin(), json_text.end());
  } catch (const json::exception& error) {
    // nlohmann prefixes its messages with "[json.exception.parse_error.101] ".
    std::string_view what = error.what();
    if (what.starts_with("[json.exception.")) {
      auto end = what.find("] ");
      if (end != what.npos)
        what.remove_prefix(end + 2);
    }
    throw StateError({"malformed JSON: " + std::string(what)});
  }
  try {
    return Parser().parse(document);
  } catch (const json::exception& error) {
    // Every access is type-checked first; this is a last line of defence.
    throw StateError({std::string("unexpected JSON value: ") + error.what()});
  }
}

} // namespace weft
