// Security groups compiled into sg_l4 and sg_remote: each rule kind, checked
// the way the BPF reads the maps (an LPM lookup of the packet's L4 key, one of
// its remote address, and the intersection of the two rule sets).
#include "loader/fabric/policy.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "loader/fabric/compile.hpp"
#include "loader/inspect/decode.hpp"
#include "loader/model/state.hpp"
#include "maps/encode.hpp"
#include "maps/weft_abi.h"

namespace weft::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Rules = std::vector<std::uint32_t>;

// --- documents ---------------------------------------------------------------

std::string rule(const std::string& id, const std::string& fields) {
  return R"({"id":")" + id + R"(",)" + fields + "}";
}

std::string group(const std::string& id, const std::vector<std::string>& rules,
                  bool stateful = true) {
  std::string out = R"({"id":")" + id + R"(","name":")" + id + R"(","stateful":)" +
                    (stateful ? "true" : "false") + R"(,"security_group_rules":[)";
  for (std::size_t i = 0; i < rules.size(); ++i)
    out += (i ? "," : "") + rules[i];
  return out + "]}";
}

// Port n: id "p<n>000000-…", device "tapp<n>000000-", MAC fa:16:3e:00:00:<n>.
std::string port_id(int n) {
  return "p" + std::to_string(n) + "000000-0000-4000-8000-000000000000";
}

std::string port(int n, const std::string& groups, const std::string& fixed_ips,
                 const std::string& host = "node1", const std::string& extra = "") {
  char mac[18];
  std::snprintf(mac, sizeof(mac), "fa:16:3e:00:00:%02x", n);
  return R"({"id":")" + port_id(n) + R"(","network_id":"net-a","mac_address":")" + mac +
         R"(","fixed_ips":[)" + fixed_ips + R"(],"binding:host_id":")" + host +
         R"(","security_groups":[)" + groups + "]" + extra + "}";
}

std::string ip(const std::string& address) {
  return R"({"ip_address":")" + address + R"("})";
}

std::string document(const std::vector<std::string>& groups,
                     const std::vector<std::string>& ports) {
  std::string doc = R"({"networks":[
    {"id":"net-a","name":"a","provider:network_type":"vxlan","provider:segmentation_id":100}],
   "subnets":[
    {"id":"sub-4","network_id":"net-a","cidr":"10.0.0.0/16"},
    {"id":"sub-6","network_id":"net-a","cidr":"fd00::/64"}],
   "security_groups":[)";
  for (std::size_t i = 0; i < groups.size(); ++i)
    doc += (i ? "," : "") + groups[i];
  doc += R"(],"ports":[)";
  for (std::size_t i = 0; i < ports.size(); ++i)
    doc += (i ? "," : "") + ports[i];
  return doc + "]}";
}

// One group "sg" with `rules`, used by port 1 on node1.
std::string one_group(const std::vector<std::string>& rules) {
  return document({group("sg", rules)}, {port(1, R"("sg")", ip("10.0.0.1"))});
}

Desired compile_for(const State& state, const std::string& node = "node1") {
  auto ifindexes = std::make_shared<std::map<std::string, int>>();
  return compile(state, node, {}, [ifindexes](const std::string& device) {
    auto [it, inserted] = ifindexes->emplace(device, 100 + static_cast<int>(ifindexes->size()));
    return std::optional<int>(it->second);
  });
}

std::optional<weft_port> port_value(const Desired& desired, int n) {
  for (const auto& local : desired.local_ports) {
    if (local.id != port_id(n) || !local.ifindex)
      continue;
    const auto& ports = desired.maps.at(WEFT_MAP_PORTS);
    auto it = ports.find(to_bytes(static_cast<std::uint32_t>(*local.ifindex)));
    if (it != ports.end())
      return from_bytes<weft_port>(it->second);
  }
  return std::nullopt;
}

// --- the datapath's view -----------------------------------------------------

// What a kernel LPM trie returns for `key`: the entry with the longest prefix
// (at most key.prefixlen bits) whose first prefixlen data bits are the key's.
template <class Key>
std::optional<weft_rule_set> lpm_lookup(const std::map<Bytes, Bytes>& map, const Key& key) {
  Bytes wanted = to_bytes(key);
  const Bytes* best = nullptr;
  std::uint32_t best_len = 0;
  for (const auto& [entry_key, value] : map) {
    auto len = from_bytes<std::uint32_t>(entry_key);
    if (len > key.prefixlen || len > (wanted.size() - 4) * 8)
      continue;
    bool same = true;
    for (std::uint32_t bit = 0; bit < len && same; ++bit) {
      std::size_t byte = 4 + bit / 8;
      unsigned mask = 0x80u >> (bit % 8);
      same = (entry_key[byte] & mask) == (wanted[byte] & mask);
    }
    if (same && (best == nullptr || len > best_len)) {
      best = &value;
      best_len = len;
    }
  }
  if (best == nullptr)
    return std::nullopt;
  return from_bytes<weft_rule_set>(*best);
}

struct Flow {
  std::uint32_t policy;
  std::uint8_t direction;
  std::uint8_t family;
  std::uint8_t proto;
  std::uint16_t l4; // destination port, or ICMP type << 8 | code
  std::string remote;
};

// The rules the L4 lookup gives: {proto, value}, on a miss {ANY, 0}.
Rules l4_rules(const Desired& desired, const Flow& flow) {
  const auto& map = desired.maps.at(WEFT_MAP_SG_L4);
  // As the BPF looks up: the full L4 value, then the rules of any protocol.
  auto set = lpm_lookup(
      map, maps::sg_l4_key(flow.policy, flow.direction, flow.family, flow.proto, flow.l4, 16));
  if (!set)
    set = lpm_lookup(
        map, maps::sg_l4_key(flow.policy, flow.direction, flow.family, WEFT_PROTO_ANY, 0, 0));
  return set ? rule_indexes(*set) : Rules{};
}

Rules remote_rules(const Desired& desired, const Flow& flow) {
  auto address = IpAddr::parse(flow.remote);
  auto set = lpm_lookup(
      desired.maps.at(WEFT_MAP_SG_REMOTE),
      maps::sg_remote_key(flow.policy, flow.direction, flow.family, address->bytes.data(), 128));
  return set ? rule_indexes(*set) : Rules{};
}

// The rules that admit the flow: what the BPF's intersection finds.
Rules matching(const Desired& desired, const Flow& flow) {
  Rules l4 = l4_rules(desired, flow);
  Rules remote = remote_rules(desired, flow);
  Rules both;
  std::set_intersection(l4.begin(), l4.end(), remote.begin(), remote.end(),
                        std::back_inserter(both));
  return both;
}

constexpr std::uint8_t kIn = WEFT_DIR_INGRESS;
constexpr std::uint8_t kOut = WEFT_DIR_EGRESS;
constexpr std::uint8_t kTcp = 6;
constexpr std::uint8_t kUdp = 17;
constexpr std::uint8_t kIcmp = 1;

// Every stored set is non-empty and its summary has bit w iff words[w] != 0.
void expect_well_formed(const Desired& desired) {
  for (const char* name : {WEFT_MAP_SG_L4, WEFT_MAP_SG_REMOTE}) {
    for (const auto& [key, value] : desired.maps.at(name)) {
      ASSERT_EQ(value.size(), sizeof(weft_rule_set));
      auto set = from_bytes<weft_rule_set>(value);
      EXPECT_FALSE(rule_indexes(set).empty()) << name;
      for (std::uint32_t w = 0; w < WEFT_SG_WORDS; ++w)
        EXPECT_EQ((set.summary[w / 64] >> (w % 64)) & 1, set.words[w] != 0 ? 1u : 0u) << name;
    }
  }
}

std::vector<weft_sg_l4_key> l4_keys(const Desired& desired) {
  std::vector<weft_sg_l4_key> out;
  for (const auto& [key, value] : desired.maps.at(WEFT_MAP_SG_L4))
    out.push_back(from_bytes<weft_sg_l4_key>(key));
  return out;
}

// --- L4 ----------------------------------------------------------------------

// The port entry's allow_all: [direction * 2 + (family == 6)] = rule + 1.
TEST(PolicyFastPath, AnAllowAllRuleThatIsTheLowestOfItsDirectionAndFamilyDecidesAlone) {
  Desired d = compile_for(parse_state(one_group({
      rule("r-ssh", R"("direction":"ingress","protocol":"tcp","port_range_min":22,)"
                    R"("port_range_max":22)"),
      rule("r-in-any", R"("direction":"ingress")"),                  // 1: not the lowest
      rule("r-out-4", R"("direction":"egress","ethertype":"IPv4")"), // 2: decides alone
      rule("r-out-6", R"("direction":"egress","ethertype":"IPv6",)"
                      R"("remote_ip_prefix":"::/0")"), // 3: ::/0 is any remote
  })));
  auto value = port_value(d, 1);
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ(value->allow_all[WEFT_DIR_INGRESS * 2 + 0], 0);
  EXPECT_EQ(value->allow_all[WEFT_DIR_INGRESS * 2 + 1], 0);
  EXPECT_EQ(value->allow_all[WEFT_DIR_EGRESS * 2 + 0], 3);
  EXPECT_EQ(value->allow_all[WEFT_DIR_EGRESS * 2 + 1], 4);
}

TEST(PolicyFastPath, ARuleLimitedByProtocolOrRemoteIsNoAllowAllRule) {
  for (const std::string& fields :
       {std::string(R"("direction":"egress","protocol":"udp")"),
        std::string(R"("direction":"egress","remote_ip_prefix":"10.0.0.0/8")"),
        std::string(R"("direction":"egress","remote_group_id":"sg")")}) {
    Desired d = compile_for(parse_state(one_group({rule("r", fields)})));
    auto value = port_value(d, 1);
    ASSERT_TRUE(value.has_value()) << fields;
    for (auto fast : value->allow_all)
      EXPECT_EQ(fast, 0) << fields;
  }
}

TEST(PolicyL4, AnyProtocolRulesAreOneEntryForEveryProtocol) {
  Desired d = compile_for(parse_state(one_group({
      rule("r-any", R"("direction":"egress")"),
      rule("r-zero", R"("direction":"egress","protocol":"0")"),
  })));
  expect_well_formed(d);
  auto keys = l4_keys(d);
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].prefixlen, static_cast<std::uint32_t>(WEFT_SG_L4_FIXED_BITS));
  EXPECT_EQ(keys[0].proto, WEFT_PROTO_ANY);
  EXPECT_EQ(keys[0].port, 0);
  EXPECT_EQ(keys[0].direction, kOut);
  EXPECT_EQ(keys[0].family, 4);
  EXPECT_EQ(keys[0].policy, 1u);
  EXPECT_THAT(l4_rules(d, {1, kOut, 4, kTcp, 80, "10.9.9.9"}), ElementsAre(0, 1));
  EXPECT_THAT(l4_rules(d, {1, kOut, 4, 47, 0, "10.9.9.9"}), ElementsAre(0, 1));
  EXPECT_THAT(matching(d, {1, kOut, 4, kUdp, 53, "8.8.8.8"}), ElementsAre(0, 1));
  EXPECT_THAT(matching(d, {1, kIn, 4, kUdp, 53, "8.8.8.8"}), IsEmpty());
  EXPECT_THAT(matching(d, {1, kOut, 6, kUdp, 53, "fd00::9"}), IsEmpty());
}

TEST(PolicyL4, NamedProtocolWithoutPortsCoversEveryValue) {
  Desired d = compile_for(parse_state(one_group({
      rule("r-gre", R"("direction":"ingress","protocol":47)"),
      rule("r-tcp", R"("direction":"ingress","protocol":"tcp")"),
  })));
  expect_well_formed(d);
  auto keys = l4_keys(d);
  ASSERT_EQ(keys.size(), 2u);
  for (const auto& key : keys)
    EXPECT_EQ(key.prefixlen, static_cast<std::uint32_t>(WEFT_SG_L4_FIXED_BITS));
  EXPECT_THAT(matching(d, {1, kIn, 4, 47, 0, "10.0.0.9"}), ElementsAre(0));
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 65535, "10.0.0.9"}), ElementsAre(1));
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 0, "10.0.0.9"}), ElementsAre(1));
  // No rule names udp and none is of any protocol: no fallback entry.
  EXPECT_THAT(matching(d, {1, kIn, 4, kUdp, 53, "10.0.0.9"}), IsEmpty());
}

TEST(PolicyL4, PortRangesAreSplitIntoPrefixAlignedBlocks) {
  Desired d = compile_for(parse_state(one_group({
      rule("r-80",
           R"("direction":"ingress","protocol":"tcp","port_range_min":80,"port_range_max":83)"),
      rule("r-1000",
           R"("direction":"ingress","protocol":"tcp","port_range_min":1000,"port_range_max":2000)"),
  })));
  expect_well_formed(d);
  auto keys = l4_keys(d);
  // 80-83 is one /14 block; 1000-2000 is 1000-1007, 1008-1023, 1024-1535,
  // 1536-1791, 1792-1919, 1920-1983, 1984-1999 and 2000.
  EXPECT_EQ(keys.size(), 9u);
  bool found_80 = false;
  for (const auto& key : keys) {
    ASSERT_GE(key.prefixlen, static_cast<std::uint32_t>(WEFT_SG_L4_FIXED_BITS));
    ASSERT_LE(key.prefixlen, static_cast<std::uint32_t>(WEFT_SG_L4_FULL_BITS));
    std::uint32_t block = 1u << (WEFT_SG_L4_FULL_BITS - key.prefixlen);
    EXPECT_EQ(ntohs(key.port) % block, 0u) << "block start is aligned";
    EXPECT_EQ(key.proto, kTcp);
    EXPECT_EQ(key.pad, 0);
    EXPECT_EQ(key.pad2[0] | key.pad2[1], 0);
    if (ntohs(key.port) == 80) {
      found_80 = true;
      EXPECT_EQ(key.prefixlen, WEFT_SG_L4_FIXED_BITS + 14u);
      EXPECT_EQ(std::memcmp(&key.port, "\x00\x50", 2), 0) << "network byte order";
    }
  }
  EXPECT_TRUE(found_80);
  const std::pair<std::uint16_t, Rules> cases[] = {
      {79, {}},    {80, {0}},   {83, {0}},   {84, {}},    {999, {}},
      {1000, {1}}, {1023, {1}}, {1500, {1}}, {2000, {1}}, {2001, {}}};
  for (const auto& [port_number, rules] : cases)
    EXPECT_EQ(matching(d, {1, kIn, 4, kTcp, port_number, "10.0.0.9"}), rules) << port_number;
  EXPECT_THAT(matching(d, {1, kIn, 4, kUdp, 80, "10.0.0.9"}), IsEmpty());
}

TEST(PolicyL4, PortRangeOneTo65535IsOneEntry) {
  Desired d = compile_for(parse_state(one_group({
      rule("r-all",
           R"("direction":"ingress","protocol":"udp","port_range_min":1,"port_range_max":65535)"),
  })));
  auto keys = l4_keys(d);
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].prefixlen, static_cast<std::uint32_t>(WEFT_SG_L4_FIXED_BITS));
  EXPECT_EQ(keys[0].proto, kUdp);
  EXPECT_THAT(matching(d, {1, kIn, 4, kUdp, 65535, "10.0.0.9"}), ElementsAre(0));
}

TEST(PolicyL4, AnyProtocolRulesJoinEveryNamedProtocolEntry) {
  Desired d = compile_for(parse_state(one_group({
      rule("r-ssh",
           R"("direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":22)"),
      rule("r-any", R"("direction":"ingress","remote_ip_prefix":"10.0.0.0/16")"),
  })));
  expect_well_formed(d);
  EXPECT_EQ(d.maps.at(WEFT_MAP_SG_L4).size(), 2u);
  EXPECT_THAT(l4_rules(d, {1, kIn, 4, kTcp, 22, "10.0.0.9"}), ElementsAre(0, 1));
  EXPECT_THAT(l4_rules(d, {1, kIn, 4, kTcp, 23, "10.0.0.9"}), ElementsAre(1));
  EXPECT_THAT(l4_rules(d, {1, kIn, 4, kUdp, 22, "10.0.0.9"}), ElementsAre(1));
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 22, "192.168.0.1"}), ElementsAre(0));
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 23, "192.168.0.1"}), IsEmpty());
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 23, "10.0.7.1"}), ElementsAre(1));
}

TEST(PolicyL4, IcmpTypeAloneCoversItsCodesAndTypeWithCodeIsOneValue) {
  Desired d = compile_for(parse_state(one_group({
      rule("r-echo", R"("direction":"ingress","protocol":"icmp","port_range_min":8)"),
      rule("r-unreach",
           R"("direction":"ingress","protocol":"icmp","port_range_min":3,"port_range_max":4)"),
      rule("r-icmp", R"("direction":"egress","protocol":1)"),
  })));
  expect_well_formed(d);
  bool echo = false, unreach = false;
  for (const auto& key : l4_keys(d)) {
    EXPECT_EQ(key.proto, kIcmp);
    if (key.direction != kIn)
      continue;
    if (ntohs(key.port) == 8 << 8) {
      echo = true;
      EXPECT_EQ(key.prefixlen, WEFT_SG_L4_FIXED_BITS + 8u);
    } else if (ntohs(key.port) == (3 << 8 | 4)) {
      unreach = true;
      EXPECT_EQ(key.prefixlen, static_cast<std::uint32_t>(WEFT_SG_L4_FULL_BITS));
    } else {
      ADD_FAILURE() << "unexpected ingress block " << ntohs(key.port);
    }
  }
  EXPECT_TRUE(echo && unreach);
  EXPECT_EQ(d.maps.at(WEFT_MAP_SG_L4).size(), 3u);
  EXPECT_THAT(matching(d, {1, kIn, 4, kIcmp, 8 << 8 | 0, "10.0.0.9"}), ElementsAre(0));
  EXPECT_THAT(matching(d, {1, kIn, 4, kIcmp, 8 << 8 | 255, "10.0.0.9"}), ElementsAre(0));
  EXPECT_THAT(matching(d, {1, kIn, 4, kIcmp, 0 << 8 | 0, "10.0.0.9"}), IsEmpty());
  EXPECT_THAT(matching(d, {1, kIn, 4, kIcmp, 3 << 8 | 4, "10.0.0.9"}), ElementsAre(1));
  EXPECT_THAT(matching(d, {1, kIn, 4, kIcmp, 3 << 8 | 3, "10.0.0.9"}), IsEmpty());
  EXPECT_THAT(matching(d, {1, kOut, 4, kIcmp, 0, "10.0.0.9"}), ElementsAre(2));
  EXPECT_THAT(matching(d, {1, kOut, 4, kIcmp, 0xffff, "10.0.0.9"}), ElementsAre(2));
}

TEST(PolicyL4, Ipv6IcmpIsProtocol58InFamily6) {
  Desired d = compile_for(parse_state(one_group({
      rule("r-ping6",
           R"("direction":"ingress","ethertype":"IPv6","protocol":"icmp","port_range_min":128)"),
  })));
  expect_well_formed(d);
  auto keys = l4_keys(d);
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].family, 6);
  EXPECT_EQ(keys[0].proto, 58);
  EXPECT_EQ(ntohs(keys[0].port), 128 << 8);
  EXPECT_THAT(matching(d, {1, kIn, 6, 58, 128 << 8, "fd00::9"}), ElementsAre(0));
  EXPECT_THAT(matching(d, {1, kIn, 6, 58, 129 << 8, "fd00::9"}), IsEmpty());
  EXPECT_THAT(matching(d, {1, kIn, 4, kIcmp, 128 << 8, "10.0.0.9"}), IsEmpty());
}

TEST(PolicyL4, OverlappingRulesOfTwoGroupsEachKeepTheirOwnBit) {
  State state = parse_state(document(
      {group(
           "sg-a",
           {rule(
               "ra",
               R"("direction":"ingress","protocol":"tcp","port_range_min":3000,"port_range_max":3000)")}),
       group(
           "sg-b",
           {rule(
               "rb",
               R"("direction":"ingress","protocol":"tcp","port_range_min":3000,"port_range_max":3002)")})},
      {port(1, R"("sg-b","sg-a")", ip("10.0.0.1"))}));
  Policies policies = assign_policies(state, "node1");
  ASSERT_EQ(policies.list.size(), 1u);
  const CompiledPolicy& policy = policies.list[0];
  EXPECT_THAT(policy.groups, ElementsAre("sg-a", "sg-b"));
  ASSERT_EQ(policy.rules.size(), 2u);
  EXPECT_EQ(policy.rules[0]->id, "ra");
  EXPECT_EQ(policy.rules[1]->id, "rb");
  EXPECT_THAT(policy.rule_group, ElementsAre("sg-a", "sg-b"));

  Desired d = compile_for(state);
  expect_well_formed(d);
  // [3000] with both rules, then 3001 and 3002 (two /16 blocks) with rb.
  EXPECT_EQ(d.maps.at(WEFT_MAP_SG_L4).size(), 3u);
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 2999, "10.0.0.9"}), IsEmpty());
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 3000, "10.0.0.9"}), ElementsAre(0, 1));
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 3001, "10.0.0.9"}), ElementsAre(1));
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 3002, "10.0.0.9"}), ElementsAre(1));
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 3003, "10.0.0.9"}), IsEmpty());
}

// --- remote ------------------------------------------------------------------

TEST(PolicyRemote, LongerPrefixesCarryTheRulesOfTheShorterOnesContainingThem) {
  Desired d = compile_for(parse_state(one_group({
      rule(
          "r-8",
          R"("direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":22,"remote_ip_prefix":"10.0.0.0/8")"),
      rule(
          "r-16",
          R"("direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":22,"remote_ip_prefix":"10.1.0.0/16")"),
      rule("r-anyone",
           R"("direction":"ingress","protocol":"tcp","port_range_min":80,"port_range_max":80)"),
      rule(
          "r-zero",
          R"("direction":"ingress","protocol":"tcp","port_range_min":443,"port_range_max":443,"remote_ip_prefix":"0.0.0.0/0")"),
  })));
  expect_well_formed(d);
  const auto& remote = d.maps.at(WEFT_MAP_SG_REMOTE);
  ASSERT_EQ(remote.size(), 3u); // /0, /8, /16
  bool found_16 = false;
  for (const auto& [key_bytes, value] : remote) {
    auto key = from_bytes<weft_sg_remote_key>(key_bytes);
    EXPECT_EQ(key.family, 4);
    EXPECT_EQ(key.direction, kIn);
    if (key.prefixlen == WEFT_SG_REMOTE_FIXED_BITS + 16u) {
      found_16 = true;
      const std::uint8_t want[16] = {10, 1};
      EXPECT_EQ(std::memcmp(key.ip, want, 16), 0);
      EXPECT_THAT(rule_indexes(from_bytes<weft_rule_set>(value)), ElementsAre(0, 1, 2, 3));
    }
  }
  EXPECT_TRUE(found_16);
  EXPECT_THAT(remote_rules(d, {1, kIn, 4, kTcp, 22, "10.1.2.3"}), ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(remote_rules(d, {1, kIn, 4, kTcp, 22, "10.2.0.1"}), ElementsAre(0, 2, 3));
  EXPECT_THAT(remote_rules(d, {1, kIn, 4, kTcp, 22, "192.168.0.1"}), ElementsAre(2, 3));
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 22, "10.1.2.3"}), ElementsAre(0, 1));
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 22, "10.2.0.1"}), ElementsAre(0));
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 22, "192.168.0.1"}), IsEmpty());
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 80, "192.168.0.1"}), ElementsAre(2));
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 443, "10.1.2.3"}), ElementsAre(3));
}

TEST(PolicyRemote, WithoutAnAnyoneRuleThereIsNoSlashZeroEntry) {
  Desired d = compile_for(parse_state(one_group({
      rule("r-8", R"("direction":"egress","remote_ip_prefix":"10.0.0.0/8")"),
      rule("r-16", R"("direction":"egress","remote_ip_prefix":"10.1.0.0/16")"),
      rule("r-v6", R"("direction":"egress","ethertype":"IPv6","remote_ip_prefix":"fd00:1::/48")"),
  })));
  expect_well_formed(d);
  EXPECT_EQ(d.maps.at(WEFT_MAP_SG_REMOTE).size(), 3u);
  EXPECT_THAT(matching(d, {1, kOut, 4, kUdp, 53, "10.1.0.1"}), ElementsAre(0, 1));
  EXPECT_THAT(matching(d, {1, kOut, 4, kUdp, 53, "10.200.0.1"}), ElementsAre(0));
  EXPECT_THAT(matching(d, {1, kOut, 4, kUdp, 53, "11.0.0.1"}), IsEmpty());
  EXPECT_THAT(matching(d, {1, kOut, 6, kUdp, 53, "fd00:1:0:5::1"}), ElementsAre(2));
  EXPECT_THAT(matching(d, {1, kOut, 6, kUdp, 53, "fd00:2::1"}), IsEmpty());
}

TEST(PolicyRemote, RemoteGroupIsEveryMemberAddressWhereverTheMemberIsBound) {
  State state = parse_state(document(
      {group("web", {rule("r-in4", R"("direction":"ingress","remote_group_id":"web")"),
                     rule("r-in6",
                          R"("direction":"ingress","ethertype":"IPv6","remote_group_id":"web")")}),
       group("other", {})},
      {port(1, R"("web")", ip("10.0.0.1"), "node1",
            R"(,"allowed_address_pairs":[{"ip_address":"10.0.1.0/25"}])"),
       port(2, R"("web")", ip("10.0.0.2") + "," + ip("fd00::2"), "node2"),
       port(3, R"("other")", ip("10.0.0.3"))}));
  Desired d = compile_for(state);
  expect_well_formed(d);
  std::uint32_t web = assign_policies(state, "node1").policy_of(port_id(1));
  ASSERT_NE(web, 0u);
  std::vector<std::string> remotes;
  for (const auto& [key, value] : d.maps.at(WEFT_MAP_SG_REMOTE)) {
    auto decoded = decode_entry(WEFT_MAP_SG_REMOTE, key, value);
    if (decoded["key"]["policy"] == web)
      remotes.push_back(decoded["key"]["remote"].get<std::string>());
  }
  std::sort(remotes.begin(), remotes.end());
  EXPECT_THAT(remotes, ElementsAre("10.0.0.1/32", "10.0.0.2/32", "10.0.1.0/25", "fd00::2/128"));
  EXPECT_THAT(matching(d, {web, kIn, 4, kTcp, 22, "10.0.0.2"}), ElementsAre(0));
  EXPECT_THAT(matching(d, {web, kIn, 4, kTcp, 22, "10.0.1.77"}), ElementsAre(0));
  EXPECT_THAT(matching(d, {web, kIn, 4, kTcp, 22, "10.0.1.200"}), IsEmpty());
  EXPECT_THAT(matching(d, {web, kIn, 4, kTcp, 22, "10.0.0.3"}), IsEmpty());
  EXPECT_THAT(matching(d, {web, kIn, 6, kTcp, 22, "fd00::2"}), ElementsAre(1));
}

TEST(PolicyRemote, RemoteGroupWithoutMembersMatchesNothing) {
  Desired d = compile_for(parse_state(document(
      {group("sg", {rule("r-lonely", R"("direction":"ingress","remote_group_id":"lonely")")}),
       group("lonely", {})},
      {port(1, R"("sg")", ip("10.0.0.1"))})));
  EXPECT_THAT(d.maps.at(WEFT_MAP_SG_REMOTE), IsEmpty());
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 22, "10.0.0.1"}), IsEmpty());
}

TEST(PolicyRemote, RemoteAddressGroupMatchesNothing) {
  Desired d = compile_for(parse_state(one_group({
      rule("r-ag", R"("direction":"ingress","remote_address_group_id":"ag-1")"),
      rule("r-tcp", R"("direction":"ingress","protocol":"tcp")"),
  })));
  expect_well_formed(d);
  const auto& remote = d.maps.at(WEFT_MAP_SG_REMOTE);
  ASSERT_EQ(remote.size(), 1u); // the /0 of r-tcp
  EXPECT_THAT(rule_indexes(from_bytes<weft_rule_set>(remote.begin()->second)), ElementsAre(1));
  EXPECT_THAT(matching(d, {1, kIn, 4, kUdp, 53, "10.0.0.9"}), IsEmpty());
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 53, "10.0.0.9"}), ElementsAre(1));
}

// --- policies and ports ------------------------------------------------------

TEST(Policy, PortsWithTheSameGroupsShareOnePolicy) {
  std::string rules_a = rule("ra", R"("direction":"egress")");
  std::string rules_b = rule("rb", R"("direction":"ingress","protocol":"tcp")");
  State state = parse_state(
      document({group("b", {rules_b}), group("a", {rules_a})},
               {port(1, R"("b","a")", ip("10.0.0.1")), port(2, R"("a","b","a")", ip("10.0.0.2")),
                port(3, R"("a")", ip("10.0.0.3")), port(4, "", ip("10.0.0.4")),
                port(5, "", ip("10.0.0.5"), "node1", R"(,"port_security_enabled":false)"),
                port(6, R"("a","b")", ip("10.0.0.6"), "node2")}));
  Policies policies = assign_policies(state, "node1");
  ASSERT_EQ(policies.list.size(), 2u);
  EXPECT_THAT(policies.list[0].groups, ElementsAre("a"));
  EXPECT_THAT(policies.list[1].groups, ElementsAre("a", "b"));
  EXPECT_THAT(policies.list[1].ports, ElementsAre(port_id(1), port_id(2)));
  EXPECT_EQ(policies.policy_of(port_id(1)), 2u);
  EXPECT_EQ(policies.policy_of(port_id(2)), 2u);
  EXPECT_EQ(policies.policy_of(port_id(3)), 1u);
  EXPECT_EQ(policies.policy_of(port_id(4)), 0u);
  EXPECT_EQ(policies.policy_of(port_id(5)), 0u);
  EXPECT_EQ(policies.port_policy.count(port_id(6)), 0u);
  EXPECT_EQ(policies.find(2)->rules.size(), 2u);
  EXPECT_EQ(policies.find(0), nullptr);
  EXPECT_EQ(policies.find(3), nullptr);

  Desired d = compile_for(state);
  expect_well_formed(d);
  EXPECT_EQ(port_value(d, 1)->policy, 2u);
  EXPECT_EQ(port_value(d, 2)->policy, 2u);
  EXPECT_EQ(port_value(d, 3)->policy, 1u);
  EXPECT_EQ(port_value(d, 4)->policy, 0u);
  EXPECT_EQ(port_value(d, 5)->policy, 0u);
  EXPECT_FALSE(port_value(d, 6));
  // Policy 1 ("a") has one egress rule; policy 2 has it as rule 0 and "b"'s as 1.
  EXPECT_THAT(matching(d, {1, kOut, 4, kUdp, 53, "8.8.8.8"}), ElementsAre(0));
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 22, "8.8.8.8"}), IsEmpty());
  EXPECT_THAT(matching(d, {2, kIn, 4, kTcp, 22, "8.8.8.8"}), ElementsAre(1));
  // Compiling again gives the same ids and bytes.
  EXPECT_EQ(compile_for(state).maps, d.maps);
}

TEST(Policy, StatefulFlagFollowsThePortsGroups) {
  State state = parse_state(
      document({group("s", {rule("rs", R"("direction":"egress")")}),
                group("n", {rule("rn", R"("direction":"egress")")}, false)},
               {port(1, R"("s")", ip("10.0.0.1")), port(2, R"("n")", ip("10.0.0.2")),
                port(3, "", ip("10.0.0.3")),
                port(4, "", ip("10.0.0.4"), "node1", R"(,"port_security_enabled":false)")}));
  Desired d = compile_for(state);
  EXPECT_EQ(port_value(d, 1)->flags, WEFT_PORT_SECURITY | WEFT_PORT_UP | WEFT_PORT_STATEFUL);
  EXPECT_EQ(port_value(d, 2)->flags, WEFT_PORT_SECURITY | WEFT_PORT_UP);
  EXPECT_EQ(port_value(d, 3)->flags, WEFT_PORT_SECURITY | WEFT_PORT_UP);
  EXPECT_EQ(port_value(d, 4)->flags, static_cast<std::uint32_t>(WEFT_PORT_UP));
  EXPECT_NE(port_value(d, 2)->policy, 0u); // stateless groups are still filtered
  Policies policies = assign_policies(state, "node1");
  EXPECT_TRUE(policies.is_stateful(port_id(1)));
  EXPECT_FALSE(policies.is_stateful(port_id(2)));
  EXPECT_FALSE(policies.is_stateful(port_id(3)));
}

TEST(Policy, RulesAreCompiledBeforeThePortsThatUseThem) {
  const auto& names = reconciled_maps();
  auto at = [&](const char* name) { return std::find(names.begin(), names.end(), name); };
  ASSERT_NE(at(WEFT_MAP_SG_L4), names.end());
  ASSERT_NE(at(WEFT_MAP_SG_REMOTE), names.end());
  EXPECT_LT(at(WEFT_MAP_SG_L4), at(WEFT_MAP_PORTS));
  EXPECT_LT(at(WEFT_MAP_SG_REMOTE), at(WEFT_MAP_PORTS));
}

// --- scale -------------------------------------------------------------------

SecurityGroupRule tcp_rule(std::uint16_t first, std::uint16_t last,
                           std::optional<IpPrefix> remote = std::nullopt,
                           Direction direction = Direction::Ingress) {
  SecurityGroupRule rule;
  rule.id = "r-" + std::to_string(first) + "-" + std::to_string(last);
  rule.direction = direction;
  rule.protocol = kTcp;
  rule.port_range_min = first;
  rule.port_range_max = last;
  rule.remote_ip_prefix = remote;
  return rule;
}

// A document built in code (the parser's duplicate check is not under test):
// port 1 on node1 in `groups`.
State state_with(std::vector<SecurityGroup> groups) {
  State state;
  Network net;
  net.id = "net-a";
  state.networks.push_back(net);
  Port p;
  p.id = port_id(1);
  p.network_id = "net-a";
  p.mac_address = *Mac::parse("fa:16:3e:00:00:01");
  p.fixed_ips.push_back({"sub-4", *IpAddr::parse("10.0.0.1")});
  p.host_id = "node1";
  for (const auto& group : groups)
    p.security_groups.push_back(group.id);
  state.ports.push_back(p);
  state.security_groups = std::move(groups);
  return state;
}

TEST(PolicyScale, TenThousandRulesGiveOneEntryPerPortAndPerPrefix) {
  SecurityGroup big;
  big.id = "big";
  for (std::uint32_t i = 0; i < 10000; ++i) {
    // 10.<i / 256>.<i % 256>.0/24 and tcp port 1000 + i: all distinct.
    auto prefix =
        IpPrefix::parse("10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24");
    auto port_number = static_cast<std::uint16_t>(1000 + i);
    big.rules.push_back(tcp_rule(port_number, port_number, prefix));
  }
  Desired d = compile_for(state_with({big}));
  EXPECT_EQ(d.maps.at(WEFT_MAP_SG_L4).size(), 10000u);
  EXPECT_EQ(d.maps.at(WEFT_MAP_SG_REMOTE).size(), 10000u);
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 1005, "10.0.5.9"}), ElementsAre(5));
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 10999, "10.39.15.1"}), ElementsAre(9999));
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 1005, "10.0.6.9"}), IsEmpty());
  EXPECT_THAT(matching(d, {1, kIn, 4, kTcp, 11000, "10.0.5.9"}), IsEmpty());
  // The last /24 (10.39.15.0) is rule 9999 alone: word 156, summary word 2 bit 28.
  auto set = from_bytes<weft_rule_set>(d.maps.at(WEFT_MAP_SG_REMOTE).rbegin()->second);
  EXPECT_THAT(rule_indexes(set), ElementsAre(9999));
  EXPECT_EQ(set.summary[0] | set.summary[1] | set.summary[3], 0u);
  EXPECT_EQ(set.summary[2], std::uint64_t{1} << 28);
}

TEST(PolicyScale, MoreRulesThanAPortMayHaveAreRefusedNamingThePort) {
  SecurityGroup a, b;
  a.id = "a";
  b.id = "b";
  for (std::uint16_t i = 0; i < 8193; ++i) {
    a.rules.push_back(
        tcp_rule(static_cast<std::uint16_t>(i + 1), static_cast<std::uint16_t>(i + 1)));
    b.rules.push_back(tcp_rule(static_cast<std::uint16_t>(i + 1), static_cast<std::uint16_t>(i + 1),
                               std::nullopt, Direction::Egress));
  }
  State state = state_with({a, b});
  try {
    compile_for(state);
    FAIL() << "expected a StateError";
  } catch (const StateError& error) {
    ASSERT_EQ(error.problems().size(), 1u);
    EXPECT_THAT(error.problems()[0], HasSubstr("port " + port_id(1)));
    EXPECT_THAT(error.problems()[0], HasSubstr("16386 rules"));
    EXPECT_THAT(error.problems()[0], HasSubstr(std::to_string(WEFT_SG_MAX_RULES)));
  }
}

TEST(PolicyScale, MoreL4EntriesThanTheMapHoldsAreCountedNotKept) {
  // Ranges 100i+1 .. 100i+98 take 8 or more blocks each: 4 x 600 x 8 > WEFT_MAX_SG_L4.
  SecurityGroup g;
  g.id = "g";
  for (std::uint8_t proto : {kTcp, kUdp})
    for (Direction direction : {Direction::Ingress, Direction::Egress})
      for (std::uint16_t i = 0; i < 600; ++i) {
        SecurityGroupRule rule =
            tcp_rule(static_cast<std::uint16_t>(100 * i + 1),
                     static_cast<std::uint16_t>(100 * i + 98), std::nullopt, direction);
        rule.protocol = proto;
        g.rules.push_back(rule);
      }
  State state = state_with({g});
  SgMaps maps = compile_sg_maps(state, assign_policies(state, "node1"));
  EXPECT_GT(maps.l4_needed, static_cast<std::size_t>(WEFT_MAX_SG_L4));
  EXPECT_LE(maps.l4.size(), static_cast<std::size_t>(WEFT_MAX_SG_L4));
  try {
    compile_for(state);
    FAIL() << "expected a StateError";
  } catch (const StateError& error) {
    ASSERT_EQ(error.problems().size(), 1u);
    EXPECT_THAT(error.problems()[0], HasSubstr("map sg_l4"));
    EXPECT_THAT(error.problems()[0], HasSubstr(std::to_string(maps.l4_needed) + " entries"));
  }
}

// --- encoding and decoding ---------------------------------------------------

TEST(PolicyDecode, RuleSetsRoundTrip) {
  Rules rules = {0, 63, 64, 4095, 4096, WEFT_SG_MAX_RULES - 1};
  weft_rule_set set = encode_rule_set(rules);
  EXPECT_EQ(rule_indexes(set), rules);
  // Words 0, 1 and 63 (rule 4095), 64 (rule 4096) and 255 (the last rule).
  EXPECT_EQ(set.summary[0], 1ull | 2ull | 1ull << 63);
  EXPECT_EQ(set.summary[1], 1ull);
  EXPECT_EQ(set.summary[3], 1ull << 63);
}

TEST(PolicyDecode, EntriesReadAsRulesInWords) {
  Desired d = compile_for(parse_state(one_group({
      rule(
          "r-80",
          R"("direction":"ingress","protocol":"tcp","port_range_min":80,"port_range_max":83,"remote_ip_prefix":"10.1.0.0/16")"),
      rule("r-echo", R"("direction":"ingress","protocol":"icmp","port_range_min":8)"),
      rule("r-unreach",
           R"("direction":"ingress","protocol":"icmp","port_range_min":3,"port_range_max":4)"),
      rule("r-any", R"("direction":"egress","ethertype":"IPv6")"),
  })));
  std::vector<nlohmann::json> l4, remote;
  for (const auto& [key, value] : d.maps.at(WEFT_MAP_SG_L4))
    l4.push_back(decode_entry(WEFT_MAP_SG_L4, key, value));
  for (const auto& [key, value] : d.maps.at(WEFT_MAP_SG_REMOTE))
    remote.push_back(decode_entry(WEFT_MAP_SG_REMOTE, key, value));
  auto has = [](const std::vector<nlohmann::json>& entries, const nlohmann::json& want) {
    return std::find(entries.begin(), entries.end(), want) != entries.end();
  };
  using nlohmann::json;
  EXPECT_TRUE(has(l4, json::parse(R"({"key":{"policy":1,"direction":"ingress","family":"IPv4",
      "protocol":6,"ports":"80-83"},"value":{"rules":[0]}})")));
  EXPECT_TRUE(has(l4, json::parse(R"({"key":{"policy":1,"direction":"ingress","family":"IPv4",
      "protocol":1,"icmp":"8/any"},"value":{"rules":[1]}})")));
  EXPECT_TRUE(has(l4, json::parse(R"({"key":{"policy":1,"direction":"ingress","family":"IPv4",
      "protocol":1,"icmp":"3/4"},"value":{"rules":[2]}})")));
  EXPECT_TRUE(has(l4, json::parse(R"({"key":{"policy":1,"direction":"egress","family":"IPv6",
      "protocol":"any","ports":"any"},"value":{"rules":[3]}})")));
  // The /16 holds the rules of the /0 that contains it (the ICMP rules have no remote).
  EXPECT_TRUE(has(remote, json::parse(R"({"key":{"policy":1,"direction":"ingress","family":"IPv4",
      "remote":"10.1.0.0/16"},"value":{"rules":[0,1,2]}})")));
  EXPECT_TRUE(has(remote, json::parse(R"({"key":{"policy":1,"direction":"ingress","family":"IPv4",
      "remote":"0.0.0.0/0"},"value":{"rules":[1,2]}})")));
  EXPECT_TRUE(has(remote, json::parse(R"({"key":{"policy":1,"direction":"egress","family":"IPv6",
      "remote":"::/0"},"value":{"rules":[3]}})")));
  EXPECT_EQ(l4.size(), 4u);
  EXPECT_EQ(remote.size(), 3u);
}

} // namespace
} // namespace weft::test

namespace weft::test {
namespace {

// A new combination of groups takes a free id; the others keep theirs, so an
// apply rewrites only what the new combination needs.
TEST(PolicyIds, ANewGroupCombinationDoesNotRenumberTheOthers) {
  auto egress = [](const char* id) { return rule(id, R"("direction":"egress")"); };
  State before =
      parse_state(document({group("b", {egress("eb")}), group("c", {egress("ec")})},
                           {port(1, R"("b")", ip("10.0.0.1")), port(2, R"("c")", ip("10.0.0.2"))}));
  Policies first = assign_policies(before, "node1");
  // "a" sorts first: without the previous ids it would take id 1.
  State after = parse_state(
      document({group("a", {egress("ea")}), group("b", {egress("eb")}), group("c", {egress("ec")})},
               {port(1, R"("b")", ip("10.0.0.1")), port(2, R"("c")", ip("10.0.0.2")),
                port(3, R"("a")", ip("10.0.0.3"))}));
  Policies second = assign_policies(after, "node1", first.ids());
  EXPECT_EQ(second.policy_of(port_id(1)), first.policy_of(port_id(1)));
  EXPECT_EQ(second.policy_of(port_id(2)), first.policy_of(port_id(2)));
  EXPECT_EQ(second.policy_of(port_id(3)), 3u);
  EXPECT_EQ(assign_policies(after, "node1").policy_of(port_id(3)), 1u);
}

} // namespace
} // namespace weft::test
