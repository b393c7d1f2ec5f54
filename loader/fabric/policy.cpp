#include "loader/fabric/policy.hpp"

#include "maps/encode.hpp"

#include <arpa/inet.h>
#include <set>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <string_view>
#include <utility>

namespace weft {

namespace {

constexpr std::uint8_t kIcmp = 1;
constexpr std::uint8_t kIcmpV6 = 58;
constexpr std::uint32_t kL4Values = 1u << 16; // 16-bit port, or ICMP type << 8 | code

bool has_ports(std::uint8_t protocol) {
  return protocol == 6 || protocol == 17 || protocol == 132 || protocol == 33 || protocol == 136;
}

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& word : words)
    out += (out.empty() ? "" : ", ") + word;
  return out;
}

// A set of one policy's rules while it is being built, sized to the policy.
class RuleBits {
public:
  explicit RuleBits(std::size_t rules) : words_((rules + 63) / 64) {}
  void set(std::uint32_t rule) { words_[rule / 64] |= std::uint64_t{1} << (rule % 64); }
  void clear(std::uint32_t rule) { words_[rule / 64] &= ~(std::uint64_t{1} << (rule % 64)); }
  void merge(const RuleBits& other) {
    for (std::size_t w = 0; w < words_.size(); ++w)
      words_[w] |= other.words_[w];
  }
  bool empty() const {
    return std::all_of(words_.begin(), words_.end(), [](std::uint64_t w) { return w == 0; });
  }
  Bytes encode() const {
    weft_rule_set set{};
    for (std::size_t w = 0; w < words_.size() && w < WEFT_SG_WORDS; ++w)
      maps::set_rule_word(set, w, words_[w]);
    return to_bytes(set);
  }

private:
  std::vector<std::uint64_t> words_;
};

// Where one map's entries go: counted always, kept while within capacity.
class Sink {
public:
  Sink(std::map<Bytes, Bytes>& out, std::size_t& needed, std::size_t capacity)
      : out_(out), needed_(needed), capacity_(capacity) {}
  // Keys that share one rule set (the blocks of one port interval): the set
  // is encoded once.
  template <class Key> void put(const std::vector<Key>& keys, const RuleBits& rules) {
    needed_ += keys.size();
    if (needed_ > capacity_)
      return;
    Bytes value = rules.encode();
    for (const auto& key : keys)
      out_.emplace(to_bytes(key), value);
  }

private:
  std::map<Bytes, Bytes>& out_;
  std::size_t& needed_;
  std::size_t capacity_;
};

// The rules of one (policy, direction, family): what one key prefix of each
// map holds.
struct Bucket {
  std::uint32_t policy;
  std::uint8_t direction;
  std::uint8_t family;
  std::vector<std::uint32_t> rules;
};

std::uint8_t direction_of(const SecurityGroupRule& rule) {
  return rule.direction == Direction::Ingress ? WEFT_DIR_INGRESS : WEFT_DIR_EGRESS;
}
std::uint8_t family_of(const SecurityGroupRule& rule) {
  return rule.ethertype == Ethertype::IPv4 ? 4 : 6;
}
int address_family(std::uint8_t family) {
  return family == 4 ? AF_INET : AF_INET6;
}

// The L4 values [first, last] a rule of a named protocol covers.
std::pair<std::uint32_t, std::uint32_t> l4_span(const SecurityGroupRule& rule) {
  std::uint8_t protocol = *rule.protocol;
  if (has_ports(protocol) && rule.port_range_min && rule.port_range_max) {
    // Neutron's 1-65535 is "every port"; port 0 is not a real destination.
    if (*rule.port_range_min <= 1 && *rule.port_range_max == 65535)
      return {0, kL4Values - 1};
    return {*rule.port_range_min, *rule.port_range_max};
  }
  if ((protocol == kIcmp || protocol == kIcmpV6) && rule.port_range_min) {
    std::uint32_t type = *rule.port_range_min & 0xff;
    if (!rule.port_range_max)
      return {type << 8, type << 8 | 0xff}; // every code of the type
    std::uint32_t value = type << 8 | (*rule.port_range_max & 0xff);
    return {value, value};
  }
  return {0, kL4Values - 1};
}

// Calls block(start, prefix_len) for each prefix-aligned block of [first, last].
template <class F> void for_each_block(std::uint32_t first, std::uint32_t last, F block) {
  while (first <= last) {
    int bits = 0; // the block covers 2^bits values
    while (bits < 16 && (first & ((2u << bits) - 1)) == 0 && first + (2u << bits) - 1 <= last)
      ++bits;
    block(first, 16 - bits);
    first += 1u << bits;
  }
}

weft_sg_l4_key l4_key(const Bucket& bucket, std::uint8_t proto, std::uint32_t start,
                      int prefix_len) {
  return maps::sg_l4_key(bucket.policy, bucket.direction, bucket.family, proto,
                         static_cast<std::uint16_t>(start), static_cast<std::uint32_t>(prefix_len));
}

void write_l4(const CompiledPolicy& policy, const Bucket& bucket, Sink& sink) {
  RuleBits any(policy.rules.size());
  struct Edge {
    std::uint32_t at; // first value where the change applies
    std::uint32_t rule;
    bool starts;
  };
  std::map<std::uint8_t, std::vector<Edge>> edges; // by named protocol
  for (std::uint32_t r : bucket.rules) {
    const SecurityGroupRule& rule = *policy.rules[r];
    if (!rule.protocol || *rule.protocol == 0) {
      any.set(r);
    } else if (*rule.protocol != WEFT_PROTO_ANY) {
      auto [first, last] = l4_span(rule);
      if (first > last)
        continue; // validation refuses min > max
      edges[*rule.protocol].push_back({first, r, true});
      edges[*rule.protocol].push_back({last + 1, r, false});
    }
  }
  if (!any.empty())
    sink.put(std::vector{l4_key(bucket, WEFT_PROTO_ANY, 0, 0)}, any);

  // Per named protocol, sweep the value space: between two consecutive
  // edges the covering rules do not change. A stretch no rule of the
  // protocol covers gets no entry: the lookup misses and the BPF falls back
  // to the any-protocol entry, which holds the same rules.
  for (auto& [proto, list] : edges) {
    std::sort(list.begin(), list.end(), [](const Edge& a, const Edge& b) { return a.at < b.at; });
    RuleBits active(policy.rules.size());
    std::size_t active_count = 0;
    for (std::size_t i = 0; i < list.size();) {
      std::uint32_t at = list[i].at;
      for (; i < list.size() && list[i].at == at; ++i) {
        if (list[i].starts) {
          active.set(list[i].rule);
          ++active_count;
        } else {
          active.clear(list[i].rule);
          --active_count;
        }
      }
      if (active_count == 0 || i == list.size())
        continue;
      std::vector<weft_sg_l4_key> keys;
      const std::uint8_t block_proto = proto; // C++20 lets a lambda capture a binding; clang 14 not
      for_each_block(at, list[i].at - 1, [&](std::uint32_t start, int prefix_len) {
        keys.push_back(l4_key(bucket, block_proto, start, prefix_len));
      });
      RuleBits rules = active;
      rules.merge(any);
      sink.put(keys, rules);
    }
  }
}

bool prefix_contains(const IpPrefix& outer, const IpPrefix& inner) {
  if (outer.len > inner.len)
    return false;
  int whole = outer.len / 8;
  if (!std::equal(outer.addr.bytes.begin(), outer.addr.bytes.begin() + whole,
                  inner.addr.bytes.begin()))
    return false;
  int rest = outer.len % 8;
  if (rest == 0)
    return true;
  auto mask = static_cast<std::uint8_t>(0xff00u >> rest);
  return (outer.addr.bytes[whole] & mask) == (inner.addr.bytes[whole] & mask);
}

IpPrefix whole_space(std::uint8_t family) {
  IpPrefix any;
  any.addr.family = address_family(family);
  return any;
}

// Member addresses of every group: fixed IPs (full-length) and allowed
// address pairs, of every port in the document wherever it is bound.
using Members = std::map<std::string, std::vector<IpPrefix>, std::less<>>;

Members group_members(const State& state) {
  Members members;
  for (const auto& port : state.ports) {
    for (const auto& group : port.security_groups) {
      auto& list = members[group];
      for (const auto& fixed : port.fixed_ips)
        list.push_back({fixed.ip_address, fixed.ip_address.is_v4() ? 32 : 128});
      for (const auto& pair : port.allowed_address_pairs)
        list.push_back(pair.ip_address);
    }
  }
  return members;
}

void write_remote(const CompiledPolicy& policy, const Bucket& bucket, const Members& members,
                  Sink& sink) {
  int family = address_family(bucket.family);
  std::vector<std::pair<IpPrefix, std::uint32_t>> prefixes; // (prefix, rule)
  for (std::uint32_t r : bucket.rules) {
    const SecurityGroupRule& rule = *policy.rules[r];
    if (rule.remote_ip_prefix) {
      if (rule.remote_ip_prefix->addr.family == family)
        prefixes.emplace_back(*rule.remote_ip_prefix, r);
    } else if (rule.remote_group_id) {
      if (auto it = members.find(*rule.remote_group_id); it != members.end())
        for (const auto& member : it->second)
          if (member.addr.family == family)
            prefixes.emplace_back(member, r);
    } else if (!rule.remote_address_group_id) {
      prefixes.emplace_back(whole_space(bucket.family), r); // anyone
    }
  }
  // Sorted by address then length, a prefix comes after every prefix that
  // contains it and before the ones it contains (a trie's pre-order), so a
  // stack of the enclosing prefixes gives each one the rules of all shorter
  // prefixes that contain it: LPM returns only the longest match.
  std::sort(prefixes.begin(), prefixes.end());
  struct Open {
    IpPrefix prefix;
    RuleBits rules;
  };
  std::vector<Open> enclosing;
  for (std::size_t i = 0; i < prefixes.size();) {
    const IpPrefix prefix = prefixes[i].first;
    while (!enclosing.empty() && !prefix_contains(enclosing.back().prefix, prefix))
      enclosing.pop_back();
    RuleBits rules = enclosing.empty() ? RuleBits(policy.rules.size()) : enclosing.back().rules;
    for (; i < prefixes.size() && prefixes[i].first == prefix; ++i)
      rules.set(prefixes[i].second);

    weft_sg_remote_key key =
        maps::sg_remote_key(bucket.policy, bucket.direction, bucket.family,
                            prefix.addr.bytes.data(), static_cast<std::uint32_t>(prefix.len));
    sink.put(std::vector{key}, rules);
    enclosing.push_back({prefix, std::move(rules)});
  }
}

} // namespace

std::uint32_t Policies::policy_of(const std::string& port_id) const {
  auto it = port_policy.find(port_id);
  return it == port_policy.end() ? 0 : it->second;
}

const CompiledPolicy* Policies::find(std::uint32_t id) const {
  for (const auto& policy : list)
    if (policy.id == id)
      return &policy;
  return nullptr;
}

PolicyIds Policies::ids() const {
  PolicyIds out;
  for (const auto& policy : list)
    out[joined(policy.groups)] = policy.id;
  return out;
}

bool Policies::is_stateful(const std::string& port_id) const {
  const CompiledPolicy* policy = find(policy_of(port_id));
  return policy != nullptr && policy->stateful;
}

Policies assign_policies(const State& state, const std::string& node, const PolicyIds& previous) {
  std::map<std::string_view, const SecurityGroup*> groups;
  for (const auto& group : state.security_groups)
    groups.emplace(group.id, &group);

  // Group list → the node's ports with it, ordered by the list: ids follow.
  std::map<std::vector<std::string>, std::vector<std::string>> by_groups;
  Policies out;
  for (const auto& port : state.ports) {
    if (port.host_id != node)
      continue;
    out.port_policy[port.id] = 0;
    if (!port.port_security_enabled || port.security_groups.empty())
      continue;
    std::vector<std::string> list = port.security_groups;
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    by_groups[list].push_back(port.id);
  }

  std::map<std::vector<std::string>, std::uint32_t> ids;
  std::set<std::uint32_t> used;
  for (const auto& [list, ports] : by_groups)
    if (auto it = previous.find(joined(list)); it != previous.end() && it->second) {
      ids[list] = it->second;
      used.insert(it->second);
    }
  std::uint32_t next = 1;
  for (const auto& [list, ports] : by_groups) {
    if (ids.count(list))
      continue;
    while (used.count(next))
      ++next;
    ids[list] = next;
    used.insert(next);
  }

  std::vector<std::string> problems;
  for (auto& [list, ports] : by_groups) {
    CompiledPolicy policy;
    policy.id = ids.at(list);
    policy.groups = list;
    policy.ports = ports;
    for (const auto& group_id : list) {
      auto it = groups.find(group_id);
      if (it == groups.end())
        continue; // validation refuses unknown groups
      policy.stateful = policy.stateful && it->second->stateful;
      for (const auto& rule : it->second->rules) {
        policy.rules.push_back(&rule);
        policy.rule_group.push_back(group_id);
      }
    }
    if (policy.rules.size() > WEFT_SG_MAX_RULES) {
      std::size_t more = ports.size() - 1;
      std::string others = more == 0 ? ""
                                     : " (and " + std::to_string(more) +
                                           (more == 1 ? " other port" : " other ports") +
                                           " with the same groups)";
      problems.push_back("port " + ports.front() + others + ": security groups " + joined(list) +
                         " have " + std::to_string(policy.rules.size()) + " rules, more than the " +
                         std::to_string(WEFT_SG_MAX_RULES) + " weft supports for one port");
    }
    for (const auto& port_id : ports)
      out.port_policy[port_id] = policy.id;
    out.list.push_back(std::move(policy));
  }
  if (!problems.empty())
    throw StateError(problems);
  std::sort(out.list.begin(), out.list.end(),
            [](const CompiledPolicy& a, const CompiledPolicy& b) { return a.id < b.id; });
  return out;
}

SgMaps compile_sg_maps(const State& state, const Policies& policies) {
  SgMaps out;
  Sink l4(out.l4, out.l4_needed, WEFT_MAX_SG_L4);
  Sink remote(out.remote, out.remote_needed, WEFT_MAX_SG_REMOTE);
  Members members = group_members(state);
  for (const auto& policy : policies.list) {
    if (policy.rules.size() > WEFT_SG_MAX_RULES)
      continue; // refused by assign_policies
    // Buckets in key order: direction, then family.
    std::array<Bucket, 4> buckets = {
        Bucket{policy.id, WEFT_DIR_INGRESS, 4, {}}, Bucket{policy.id, WEFT_DIR_INGRESS, 6, {}},
        Bucket{policy.id, WEFT_DIR_EGRESS, 4, {}}, Bucket{policy.id, WEFT_DIR_EGRESS, 6, {}}};
    for (std::uint32_t r = 0; r < policy.rules.size(); ++r) {
      const SecurityGroupRule& rule = *policy.rules[r];
      std::size_t index =
          (direction_of(rule) == WEFT_DIR_EGRESS ? 2 : 0) + (family_of(rule) == 6 ? 1 : 0);
      buckets[index].rules.push_back(r);
    }
    for (const auto& bucket : buckets) {
      if (bucket.rules.empty())
        continue;
      write_l4(policy, bucket, l4);
      write_remote(policy, bucket, members, remote);
    }
  }
  return out;
}

std::array<std::uint16_t, 4> allow_all_rules(const CompiledPolicy& policy) {
  std::array<std::uint16_t, 4> out{};
  std::array<bool, 4> seen{};
  for (std::uint32_t r = 0; r < policy.rules.size() && r < WEFT_SG_MAX_RULES; ++r) {
    const SecurityGroupRule& rule = *policy.rules[r];
    std::size_t index =
        (direction_of(rule) == WEFT_DIR_EGRESS ? 2 : 0) + (family_of(rule) == 6 ? 1 : 0);
    if (seen[index])
      continue;
    seen[index] = true; // only the lowest-numbered rule of the bucket can be the fast one
    bool any_protocol = !rule.protocol || *rule.protocol == 0;
    bool any_remote = !rule.remote_group_id && !rule.remote_address_group_id &&
                      (!rule.remote_ip_prefix || rule.remote_ip_prefix->len == 0);
    if (any_protocol && any_remote && !rule.port_range_min && !rule.port_range_max)
      out[index] = static_cast<std::uint16_t>(r + 1);
  }
  return out;
}

weft_rule_set encode_rule_set(const std::vector<std::uint32_t>& rules) {
  return maps::rule_set(rules);
}

std::vector<std::uint32_t> rule_indexes(const weft_rule_set& set) {
  return maps::rules_in(set);
}

} // namespace weft
