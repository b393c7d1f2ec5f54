// Security groups and their rules: direction, ethertype, protocol, port
// range or ICMP type and code, and at most one remote, checked as Neutron's
// API checks them, and no rule repeated within its group.
#include "loader/model/parser.hpp"

#include "loader/model/protocol.hpp"
#include "loader/model/text.hpp"

namespace weft::document {

namespace {

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

} // namespace

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

} // namespace weft::document
