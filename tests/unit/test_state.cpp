// The desired-state parser: Neutron's field names, defaults and checks
// (DESIGN.md §3.1, NEUTRON.md).
#include "loader/model/state.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace weft {
namespace {

using json = nlohmann::json;

constexpr const char* kPortId = "3f2a9c1e-77b0-4d6b-9b8e-1c2d3e4f5a6b";

// A valid document using every field, with two of each resource where a pair
// matters (two networks, two ports, two groups).
json good_document() {
  return json::parse(R"({
    "nodes": [{"name": "node1", "tunnel_ip": "172.31.0.1"},
              {"name": "node2", "tunnel_ip": "fd00:31::2"}],
    "networks": [
      {"id": "net-blue", "name": "blue", "project_id": "tenant-a", "admin_state_up": true,
       "provider:network_type": "vxlan", "provider:segmentation_id": 1001,
       "provider:physical_network": null, "mtu": 1450, "port_security_enabled": true},
      {"id": "net-red", "name": "red", "tenant_id": "tenant-b",
       "provider:network_type": "vlan", "provider:segmentation_id": 100,
       "provider:physical_network": "physnet1"}
    ],
    "subnets": [
      {"id": "sub-blue4", "network_id": "net-blue", "ip_version": 4, "cidr": "10.0.0.0/24",
       "gateway_ip": "10.0.0.1", "enable_dhcp": true},
      {"id": "sub-blue6", "network_id": "net-blue", "cidr": "fd00:1::/64", "gateway_ip": null,
       "enable_dhcp": false},
      {"id": "sub-red", "network_id": "net-red", "cidr": "10.0.0.0/24"}
    ],
    "ports": [
      {"id": "3f2a9c1e-77b0-4d6b-9b8e-1c2d3e4f5a6b", "network_id": "net-blue",
       "mac_address": "FA-16-3E-11-22-33",
       "fixed_ips": [{"subnet_id": "sub-blue4", "ip_address": "10.0.0.5"},
                     {"ip_address": "fd00:1::5"}],
       "binding:host_id": "node1", "device_owner": "compute:nova", "admin_state_up": false,
       "security_groups": ["sg-default", "sg-web"], "port_security_enabled": true,
       "allowed_address_pairs": [{"ip_address": "10.0.0.100/32"},
                                 {"ip_address": "10.0.1.7/24", "mac_address": "fa:16:3e:aa:bb:cc"}],
       "binding:profile": {}, "device_id": "vm-1", "an_unknown_field": [1, 2, 3]},
      {"id": "9c8b7a65-4321-4fed-8cba-0123456789ab", "network_id": "net-red",
       "mac_address": "fa:16:3e:11:22:33",
       "fixed_ips": [{"subnet_id": "sub-red", "ip_address": "10.0.0.5"}],
       "binding:host_id": "node2"}
    ],
    "security_groups": [
      {"id": "sg-default", "name": "default", "stateful": true,
       "security_group_rules": [
         {"id": "r-eg4", "security_group_id": "sg-default", "direction": "egress",
          "ethertype": "IPv4", "protocol": null},
         {"id": "r-eg6", "direction": "egress", "ethertype": "IPv6"},
         {"id": "r-in4", "direction": "ingress", "ethertype": "IPv4",
          "remote_group_id": "sg-default"},
         {"id": "r-in6", "direction": "ingress", "ethertype": "ipv6",
          "remote_group_id": "sg-default"}
       ]},
      {"id": "sg-web", "name": "web",
       "security_group_rules": [
         {"id": "r-ssh", "direction": "ingress", "protocol": "tcp", "port_range_min": 22,
          "port_range_max": 22, "remote_ip_prefix": "192.168.7.9/16"},
         {"id": "r-ping6", "direction": "ingress", "ethertype": "IPv6", "protocol": "icmp",
          "port_range_min": 128, "port_range_max": 0},
         {"direction": "ingress", "protocol": "132", "port_range_min": 5000,
          "port_range_max": "5001", "remote_group_id": "sg-other"}
       ]},
      {"id": "sg-other", "stateful": true, "security_group_rules": []}
    ]
  })");
}

State parse(const json& document) {
  return parse_state(document.dump());
}

// The problems of a document that must be refused; a failure if it is not.
std::vector<std::string> problems_of_text(const std::string& text) {
  try {
    parse_state(text);
  } catch (const StateError& error) {
    return error.problems();
  }
  ADD_FAILURE() << "the document was accepted:\n" << text;
  return {};
}

std::vector<std::string> problems_of(const json& document) {
  return problems_of_text(document.dump());
}

std::string listed(const std::vector<std::string>& problems) {
  std::string out;
  for (const auto& problem : problems)
    out += "\n  " + problem;
  return out.empty() ? " (none)" : out;
}

// The document is refused with exactly this problem among its problems.
testing::AssertionResult refused_with(const json& document, const std::string& problem) {
  auto problems = problems_of(document);
  if (std::find(problems.begin(), problems.end(), problem) != problems.end())
    return testing::AssertionSuccess();
  return testing::AssertionFailure()
         << "expected the problem\n  " << problem << "\ngot" << listed(problems);
}

// The document is refused with a problem that starts with `start` and
// contains every one of `parts`.
testing::AssertionResult refused_mentioning(const json& document, const std::string& start,
                                            std::vector<std::string> parts = {}) {
  auto problems = problems_of(document);
  for (const auto& problem : problems) {
    if (!problem.starts_with(start))
      continue;
    if (std::all_of(parts.begin(), parts.end(),
                    [&](const std::string& part) { return problem.find(part) != problem.npos; }))
      return testing::AssertionSuccess();
  }
  std::string wanted = start;
  for (const auto& part : parts)
    wanted += " … " + part;
  return testing::AssertionFailure()
         << "expected a problem like\n  " << wanted << "\ngot" << listed(problems);
}

testing::AssertionResult accepted(const json& document) {
  try {
    parse_state(document.dump());
    return testing::AssertionSuccess();
  } catch (const StateError& error) {
    return testing::AssertionFailure() << "refused:" << listed(error.problems());
  }
}

json& network(json& document, const std::string& id) {
  for (auto& item : document["networks"])
    if (item["id"] == id)
      return item;
  throw std::logic_error("no network " + id);
}

json& port(json& document, std::size_t index) {
  return document["ports"][index];
}
json& group(json& document, std::size_t index) {
  return document["security_groups"][index];
}
json& rule(json& document, std::size_t group_index, std::size_t rule_index) {
  return group(document, group_index)["security_group_rules"][rule_index];
}

// A document with one network and one group, for rule tests.
json rule_document(const json& rule_json) {
  json document = {{"security_groups", json::array()}};
  document["security_groups"].push_back(
      {{"id", "sg1"}, {"security_group_rules", json::array({rule_json})}});
  return document;
}

SecurityGroupRule parsed_rule(const json& rule_json) {
  State state = parse(rule_document(rule_json));
  return state.security_groups.at(0).rules.at(0);
}

// --- the whole document ------------------------------------------------------

TEST(StateParse, GoodDocumentRoundTripsIntoTheStructs) {
  State state = parse(good_document());

  ASSERT_EQ(state.nodes.size(), 2u);
  EXPECT_EQ(state.nodes[0].name, "node1");
  ASSERT_TRUE(state.nodes[0].tunnel_ip);
  EXPECT_EQ(state.nodes[0].tunnel_ip->str(), "172.31.0.1");
  EXPECT_TRUE(state.nodes[0].tunnel_ip->is_v4());
  ASSERT_TRUE(state.nodes[1].tunnel_ip);
  EXPECT_EQ(state.nodes[1].tunnel_ip->family, AF_INET6);

  ASSERT_EQ(state.networks.size(), 2u);
  const Network& blue = state.networks[0];
  EXPECT_EQ(blue.id, "net-blue");
  EXPECT_EQ(blue.name, "blue");
  EXPECT_EQ(blue.project_id, "tenant-a");
  EXPECT_EQ(blue.type, NetworkType::Vxlan);
  EXPECT_EQ(blue.segmentation_id, 1001u);
  EXPECT_FALSE(blue.physical_network);
  EXPECT_EQ(blue.mtu, 1450u);
  EXPECT_TRUE(blue.port_security_enabled);
  EXPECT_TRUE(blue.admin_state_up);
  const Network& red = state.networks[1];
  EXPECT_EQ(red.project_id, "tenant-b"); // from tenant_id
  EXPECT_EQ(red.type, NetworkType::Vlan);
  EXPECT_EQ(red.segmentation_id, 100u);
  EXPECT_EQ(red.physical_network, "physnet1");
  EXPECT_EQ(red.mtu, 1500u); // default for vlan

  ASSERT_EQ(state.subnets.size(), 3u);
  const Subnet& blue4 = state.subnets[0];
  EXPECT_EQ(blue4.id, "sub-blue4");
  EXPECT_EQ(blue4.network_id, "net-blue");
  EXPECT_EQ(blue4.ip_version, 4);
  EXPECT_EQ(blue4.cidr.str(), "10.0.0.0/24");
  ASSERT_TRUE(blue4.gateway_ip);
  EXPECT_EQ(blue4.gateway_ip->str(), "10.0.0.1");
  EXPECT_TRUE(blue4.enable_dhcp);
  const Subnet& blue6 = state.subnets[1];
  EXPECT_EQ(blue6.ip_version, 6); // from the cidr
  EXPECT_EQ(blue6.cidr.str(), "fd00:1::/64");
  EXPECT_FALSE(blue6.gateway_ip);
  EXPECT_FALSE(blue6.enable_dhcp);
  EXPECT_TRUE(state.subnets[2].enable_dhcp);

  ASSERT_EQ(state.ports.size(), 2u);
  const Port& vm = state.ports[0];
  EXPECT_EQ(vm.id, kPortId);
  EXPECT_EQ(vm.network_id, "net-blue");
  EXPECT_EQ(vm.mac_address.str(), "fa:16:3e:11:22:33");
  ASSERT_EQ(vm.fixed_ips.size(), 2u);
  EXPECT_EQ(vm.fixed_ips[0].subnet_id, "sub-blue4");
  EXPECT_EQ(vm.fixed_ips[0].ip_address.str(), "10.0.0.5");
  EXPECT_EQ(vm.fixed_ips[1].subnet_id, "sub-blue6"); // found from the address
  EXPECT_EQ(vm.fixed_ips[1].ip_address.str(), "fd00:1::5");
  EXPECT_EQ(vm.host_id, "node1");
  EXPECT_EQ(vm.device_owner, "compute:nova");
  EXPECT_FALSE(vm.admin_state_up);
  EXPECT_EQ(vm.security_groups, (std::vector<std::string>{"sg-default", "sg-web"}));
  EXPECT_TRUE(vm.port_security_enabled);
  ASSERT_EQ(vm.allowed_address_pairs.size(), 2u);
  EXPECT_EQ(vm.allowed_address_pairs[0].ip_address.str(), "10.0.0.100/32");
  EXPECT_EQ(vm.allowed_address_pairs[0].mac_address, vm.mac_address); // the port's by default
  EXPECT_EQ(vm.allowed_address_pairs[1].ip_address.str(), "10.0.1.0/24");
  EXPECT_EQ(vm.allowed_address_pairs[1].mac_address.str(), "fa:16:3e:aa:bb:cc");
  EXPECT_EQ(vm.device_name(), "tap3f2a9c1e-77");
  const Port& other = state.ports[1];
  EXPECT_TRUE(other.admin_state_up);
  EXPECT_TRUE(other.security_groups.empty());
  EXPECT_TRUE(other.allowed_address_pairs.empty());
  EXPECT_EQ(other.device_owner, "");

  ASSERT_EQ(state.security_groups.size(), 3u);
  const SecurityGroup& def = state.security_groups[0];
  EXPECT_EQ(def.id, "sg-default");
  EXPECT_EQ(def.name, "default");
  EXPECT_TRUE(def.stateful);
  ASSERT_EQ(def.rules.size(), 4u);
  EXPECT_EQ(def.rules[0].id, "r-eg4");
  EXPECT_EQ(def.rules[0].direction, Direction::Egress);
  EXPECT_EQ(def.rules[0].ethertype, Ethertype::IPv4);
  EXPECT_FALSE(def.rules[0].protocol);
  EXPECT_FALSE(def.rules[0].port_range_min);
  EXPECT_FALSE(def.rules[0].remote_ip_prefix);
  EXPECT_FALSE(def.rules[0].remote_group_id);
  EXPECT_EQ(def.rules[1].ethertype, Ethertype::IPv6);
  EXPECT_EQ(def.rules[2].direction, Direction::Ingress);
  EXPECT_EQ(def.rules[2].remote_group_id, "sg-default");
  EXPECT_EQ(def.rules[3].ethertype, Ethertype::IPv6); // "ipv6", any case

  const SecurityGroup& web = state.security_groups[1];
  EXPECT_TRUE(web.stateful); // default
  ASSERT_EQ(web.rules.size(), 3u);
  EXPECT_EQ(web.rules[0].protocol, 6);
  EXPECT_EQ(web.rules[0].port_range_min, 22);
  EXPECT_EQ(web.rules[0].port_range_max, 22);
  ASSERT_TRUE(web.rules[0].remote_ip_prefix);
  EXPECT_EQ(web.rules[0].remote_ip_prefix->str(), "192.168.0.0/16"); // host bits cleared
  EXPECT_EQ(web.rules[1].protocol, 58);                              // icmp with IPv6
  EXPECT_EQ(web.rules[1].port_range_min, 128);
  EXPECT_EQ(web.rules[1].port_range_max, 0);
  EXPECT_EQ(web.rules[2].id, ""); // none in the document
  EXPECT_EQ(web.rules[2].protocol, 132);
  EXPECT_EQ(web.rules[2].port_range_min, 5000);
  EXPECT_EQ(web.rules[2].port_range_max, 5001);
  EXPECT_EQ(web.rules[2].remote_group_id, "sg-other"); // a group defined later
  EXPECT_TRUE(state.security_groups[2].rules.empty());
}

TEST(StateParse, EmptyAndNullListsAreEmptyState) {
  State empty = parse_state("{}");
  EXPECT_TRUE(empty.nodes.empty());
  EXPECT_TRUE(empty.networks.empty());
  EXPECT_TRUE(empty.subnets.empty());
  EXPECT_TRUE(empty.ports.empty());
  EXPECT_TRUE(empty.security_groups.empty());

  State nulls = parse_state(R"({"nodes": null, "networks": [], "ports": null, "x": 1})");
  EXPECT_TRUE(nulls.nodes.empty());
  EXPECT_TRUE(nulls.ports.empty());
}

TEST(StateParse, MinimalResourcesGetNeutronDefaults) {
  json document = json::parse(R"({
    "networks": [{"id": "n1", "provider:network_type": "vxlan", "provider:segmentation_id": 7},
                 {"id": "n2", "provider:network_type": "flat",
                  "provider:physical_network": "physnet1", "port_security_enabled": false}],
    "subnets": [{"id": "s1", "network_id": "n1", "cidr": "10.1.0.0/16"}],
    "ports": [{"id": "p1", "network_id": "n1", "mac_address": "fa:16:3e:00:00:01"},
              {"id": "p2", "network_id": "n2", "mac_address": "fa:16:3e:00:00:02"}],
    "security_groups": [{"id": "g1", "security_group_rules": [{"direction": "egress"}]}]
  })");
  State state = parse(document);
  EXPECT_EQ(state.networks[0].mtu, 1450u);
  EXPECT_EQ(state.networks[0].name, "");
  EXPECT_EQ(state.networks[0].project_id, "");
  EXPECT_TRUE(state.networks[0].admin_state_up);
  EXPECT_TRUE(state.networks[0].port_security_enabled);
  EXPECT_EQ(state.networks[1].type, NetworkType::Flat);
  EXPECT_EQ(state.networks[1].segmentation_id, 0u);
  EXPECT_EQ(state.networks[1].mtu, 1500u);
  EXPECT_EQ(state.subnets[0].ip_version, 4);
  EXPECT_FALSE(state.subnets[0].gateway_ip);
  EXPECT_TRUE(state.subnets[0].enable_dhcp);
  EXPECT_EQ(state.ports[0].host_id, "");
  EXPECT_TRUE(state.ports[0].fixed_ips.empty());
  EXPECT_TRUE(state.ports[0].admin_state_up);
  EXPECT_TRUE(state.ports[0].port_security_enabled);
  EXPECT_FALSE(state.ports[1].port_security_enabled); // the network's
  EXPECT_TRUE(state.security_groups[0].stateful);
  EXPECT_EQ(state.security_groups[0].name, "");
  const SecurityGroupRule& egress = state.security_groups[0].rules[0];
  EXPECT_EQ(egress.ethertype, Ethertype::IPv4);
  EXPECT_FALSE(egress.protocol);
  EXPECT_FALSE(egress.remote_address_group_id);
}

TEST(StateParse, PortSecurityOnThePortOverridesTheNetwork) {
  json document = good_document();
  network(document, "net-red")["port_security_enabled"] = false;
  port(document, 1)["port_security_enabled"] = true;
  EXPECT_TRUE(parse(document).ports[1].port_security_enabled);
}

TEST(StateParse, BooleansAcceptNeutronStrings) {
  json document = good_document();
  port(document, 0)["admin_state_up"] = "True";
  network(document, "net-red")["admin_state_up"] = "false";
  State state = parse(document);
  EXPECT_TRUE(state.ports[0].admin_state_up);
  EXPECT_FALSE(state.networks[1].admin_state_up);

  port(document, 0)["admin_state_up"] = "yes";
  EXPECT_TRUE(refused_with(document, std::string("port ") + kPortId +
                                         ": admin_state_up must be true or false, not 'yes'"));
  port(document, 0)["admin_state_up"] = 1;
  EXPECT_TRUE(refused_with(document, std::string("port ") + kPortId +
                                         ": admin_state_up must be true or false, not 1"));
}

TEST(StateParse, UnknownFieldsAreIgnored) {
  json document = good_document();
  document["routers"] = json::array({{{"id", "r1"}}});
  network(document, "net-blue")["router:external"] = false;
  port(document, 1)["qos_policy_id"] = nullptr;
  EXPECT_TRUE(accepted(document));
}

TEST(StateParse, MalformedJsonIsOneProblem) {
  for (const char* text : {"{", "", "{\"ports\": [}", "nodes: []", "{\"a\": 1,}"}) {
    auto problems = problems_of_text(text);
    ASSERT_EQ(problems.size(), 1u) << text;
    EXPECT_TRUE(problems[0].starts_with("malformed JSON: ")) << problems[0];
    EXPECT_NE(problems[0].find("parse error"), std::string::npos) << problems[0];
  }
}

TEST(StateParse, DocumentMustBeAnObject) {
  auto problems = problems_of_text("[1, 2]");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], "document: must be a JSON object, not a list");
}

TEST(StateParse, TopLevelListsMustBeLists) {
  json document = good_document();
  document["ports"] = json::object();
  document["nodes"] = "node1";
  EXPECT_TRUE(refused_with(document, "ports: must be a list, not an object"));
  EXPECT_TRUE(refused_with(document, "nodes: must be a list, not a string"));
}

TEST(StateParse, ResourcesMustBeObjects) {
  json document = good_document();
  document["subnets"].push_back("sub-x");
  document["security_groups"][0]["security_group_rules"].push_back(3);
  EXPECT_TRUE(refused_with(document, "subnets[3]: must be an object, not a string"));
  EXPECT_TRUE(refused_with(
      document, "security_group_rule sg-default/rules[4]: must be an object, not a number"));
}

TEST(StateParse, SeveralErrorsAreAllReported) {
  json document = good_document();
  network(document, "net-blue")["mtu"] = 20;
  document["subnets"][2]["cidr"] = "10.0.0.9/24";
  port(document, 0)["mac_address"] = "zz";
  port(document, 1).erase("id");
  rule(document, 1, 0)["direction"] = "inbound";

  auto problems = problems_of(document);
  EXPECT_EQ(problems.size(), 5u) << listed(problems);
  std::vector<std::string> expected = {
      "network net-blue: mtu 20 is out of range (68..65535)",
      "subnet sub-red: cidr '10.0.0.9/24' has host bits set; did you mean 10.0.0.0/24?",
      "security_group_rule r-ssh: direction 'inbound' is not ingress or egress",
      std::string("port ") + kPortId + ": mac_address 'zz' is not a MAC address",
      "ports[1]: id is missing",
  };
  for (const auto& problem : expected)
    EXPECT_TRUE(std::find(problems.begin(), problems.end(), problem) != problems.end())
        << "missing: " << problem << listed(problems);

  try {
    parse(document);
    FAIL() << "accepted";
  } catch (const StateError& error) {
    std::string joined;
    for (const auto& problem : error.problems())
      joined += (joined.empty() ? "" : "\n") + problem;
    EXPECT_EQ(std::string(error.what()), joined);
  }
}

TEST(StateParse, WrongJsonTypesAnywhereNeverEscapeAsOtherExceptions) {
  // Replace every value of the good document, one at a time, by values of
  // every JSON type: the result is a State or a StateError, nothing else.
  const json good = good_document();
  const std::vector<json> replacements = {nullptr,
                                          true,
                                          0,
                                          -1,
                                          4294967296LL,
                                          18446744073709551615ULL,
                                          1.5,
                                          "",
                                          "x",
                                          "300",
                                          json::array(),
                                          json::array({1}),
                                          json::object(),
                                          json::object({{"id", 1}})};
  std::vector<json::json_pointer> pointers;
  std::function<void(const json&, const json::json_pointer&)> walk =
      [&](const json& value, const json::json_pointer& pointer) {
        pointers.push_back(pointer);
        if (value.is_object())
          for (auto it = value.begin(); it != value.end(); ++it)
            walk(it.value(), pointer / it.key());
        else if (value.is_array())
          for (std::size_t i = 0; i < value.size(); ++i)
            walk(value[i], pointer / i);
      };
  walk(good, json::json_pointer());
  ASSERT_GT(pointers.size(), 100u);

  std::size_t refused = 0;
  for (const auto& pointer : pointers) {
    for (const json& replacement : replacements) {
      json document = good;
      document[pointer] = replacement;
      try {
        parse(document);
      } catch (const StateError& error) {
        ++refused;
        EXPECT_FALSE(error.problems().empty());
        for (const auto& problem : error.problems())
          EXPECT_EQ(problem.find('\n'), std::string::npos) << problem;
      } catch (const std::exception& error) {
        ADD_FAILURE() << pointer.to_string() << " = " << replacement.dump() << ": " << error.what();
      }
    }
  }
  EXPECT_GT(refused, pointers.size());
}

TEST(StateParse, ValuesInMessagesStayOnOneLine) {
  json document = good_document();
  port(document, 0)["mac_address"] = "zz\nport x: forged";
  auto problems = problems_of(document);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], std::string("port ") + kPortId +
                             ": mac_address 'zz\\x0aport x: forged' is not a MAC address");
}

// --- nodes -------------------------------------------------------------------

TEST(StateNodes, NameIsRequired) {
  json document = good_document();
  document["nodes"][1].erase("name");
  EXPECT_TRUE(refused_with(document, "nodes[1]: name is missing"));
  document["nodes"][1]["name"] = "";
  EXPECT_TRUE(refused_with(document, "nodes[1]: name is empty"));
  document["nodes"][1]["name"] = 7;
  EXPECT_TRUE(refused_with(document, "nodes[1]: name must be a string, not a number"));
}

TEST(StateNodes, DuplicateNamesAreRefused) {
  json document = good_document();
  document["nodes"][1]["name"] = "node1";
  EXPECT_TRUE(refused_with(document, "node node1: name is used twice: nodes[0] and nodes[1]"));
}

TEST(StateNodes, NameMustBeUsableAsAPinDirectory) {
  json document = good_document();
  document["nodes"][1]["name"] = "../etc";
  EXPECT_TRUE(refused_mentioning(document, "node ../etc: name '../etc'"));
  document["nodes"][1]["name"] = "..";
  EXPECT_TRUE(refused_mentioning(document, "node ..: name '..'"));
}

TEST(StateNodes, TunnelIpMustBeAnAddress) {
  json document = good_document();
  document["nodes"][0]["tunnel_ip"] = "172.31.0.300";
  EXPECT_TRUE(refused_with(document, "node node1: tunnel_ip '172.31.0.300' is not an IP address"));
  document["nodes"][0]["tunnel_ip"] = "172.31.0.0/24";
  EXPECT_TRUE(refused_with(document, "node node1: tunnel_ip '172.31.0.0/24' is not an IP address"));
  document["nodes"][0]["tunnel_ip"] = nullptr;
  EXPECT_TRUE(accepted(document));
  EXPECT_FALSE(parse(document).nodes[0].tunnel_ip);
}

TEST(StateNodes, TunnelIpsAreUnique) {
  json document = good_document();
  document["nodes"][1]["tunnel_ip"] = "172.31.0.1";
  EXPECT_TRUE(refused_with(document,
                           "node node2: tunnel_ip 172.31.0.1 is also the tunnel_ip of node node1"));
}

// --- networks ----------------------------------------------------------------

TEST(StateNetworks, IdIsRequiredAndUnique) {
  json document = good_document();
  document["networks"][1].erase("id");
  EXPECT_TRUE(refused_with(document, "networks[1]: id is missing"));
  document["networks"][1]["id"] = "net-blue";
  EXPECT_TRUE(
      refused_with(document, "network net-blue: id is used twice: networks[0] and networks[1]"));
}

TEST(StateNetworks, NetworkTypeIsRequiredAndSupported) {
  json document = good_document();
  network(document, "net-blue").erase("provider:network_type");
  EXPECT_TRUE(refused_with(document, "network net-blue: provider:network_type is missing"));
  network(document, "net-blue")["provider:network_type"] = "geneve";
  EXPECT_TRUE(refused_with(document, "network net-blue: provider:network_type 'geneve' is not "
                                     "supported (vxlan, vlan or flat)"));
}

TEST(StateNetworks, VxlanNeedsAVniInRange) {
  json document = good_document();
  json& blue = network(document, "net-blue");
  blue.erase("provider:segmentation_id");
  EXPECT_TRUE(refused_with(document, "network net-blue: provider:segmentation_id is missing (a "
                                     "vxlan network needs one)"));
  blue["provider:segmentation_id"] = 0;
  EXPECT_TRUE(refused_with(document, "network net-blue: provider:segmentation_id 0 is out of "
                                     "range (1..16777215) for vxlan"));
  blue["provider:segmentation_id"] = 16777216;
  EXPECT_TRUE(refused_mentioning(document, "network net-blue: provider:segmentation_id 16777216"));
  blue["provider:segmentation_id"] = 16777215;
  EXPECT_TRUE(accepted(document));
  blue["provider:segmentation_id"] = "4242"; // Neutron's convert_to_int
  EXPECT_EQ(parse(document).networks[0].segmentation_id, 4242u);
  blue["provider:segmentation_id"] = "42x";
  EXPECT_TRUE(
      refused_with(document, "network net-blue: provider:segmentation_id '42x' is not an integer"));
}

TEST(StateNetworks, VxlanIgnoresPhysicalNetwork) {
  json document = good_document();
  network(document, "net-blue")["provider:physical_network"] = "physnet9";
  EXPECT_FALSE(parse(document).networks[0].physical_network);
}

TEST(StateNetworks, VlanNeedsAnIdInRangeAndAPhysicalNetwork) {
  json document = good_document();
  json& red = network(document, "net-red");
  red["provider:segmentation_id"] = 4095;
  EXPECT_TRUE(refused_with(document, "network net-red: provider:segmentation_id 4095 is out of "
                                     "range (1..4094) for vlan"));
  red["provider:segmentation_id"] = nullptr;
  EXPECT_TRUE(refused_mentioning(document, "network net-red: provider:segmentation_id is missing"));
  red["provider:segmentation_id"] = 4094;
  red["provider:physical_network"] = nullptr;
  EXPECT_TRUE(refused_with(document, "network net-red: provider:physical_network is missing"));
}

TEST(StateNetworks, FlatHasNoSegmentationIdButAPhysicalNetwork) {
  json document = good_document();
  json& red = network(document, "net-red");
  red["provider:network_type"] = "flat";
  EXPECT_TRUE(refused_with(
      document, "network net-red: provider:segmentation_id must be null for a flat network"));
  red["provider:segmentation_id"] = nullptr;
  EXPECT_TRUE(accepted(document));
  red.erase("provider:physical_network");
  EXPECT_TRUE(refused_with(document, "network net-red: provider:physical_network is missing"));
}

TEST(StateNetworks, SegmentsGiveTheProviderAttributes) {
  json document = good_document();
  json& red = network(document, "net-red");
  red.erase("provider:network_type");
  red.erase("provider:segmentation_id");
  red.erase("provider:physical_network");
  red["segments"] = json::parse(R"([
      {"provider:network_type": "vlan", "provider:segmentation_id": 200,
       "provider:physical_network": "physnet2"},
      {"provider:network_type": "vxlan", "provider:segmentation_id": 99}])");
  State state = parse(document);
  EXPECT_EQ(state.networks[1].type, NetworkType::Vlan);
  EXPECT_EQ(state.networks[1].segmentation_id, 200u);
  EXPECT_EQ(state.networks[1].physical_network, "physnet2");

  network(document, "net-red")["segments"][0]["provider:segmentation_id"] = 5000;
  EXPECT_TRUE(
      refused_mentioning(document, "network net-red: segments[0].provider:segmentation_id 5000"));
  network(document, "net-red")["segments"] = "vlan";
  EXPECT_TRUE(refused_with(document, "network net-red: segments must be a list, not a string"));
}

TEST(StateNetworks, MtuDefaultsByTypeAndIsBounded) {
  json document = good_document();
  json& blue = network(document, "net-blue");
  blue.erase("mtu");
  EXPECT_EQ(parse(document).networks[0].mtu, 1450u);
  blue["mtu"] = 9000;
  EXPECT_EQ(parse(document).networks[0].mtu, 9000u);
  blue["mtu"] = 67;
  EXPECT_TRUE(refused_with(document, "network net-blue: mtu 67 is out of range (68..65535)"));
  blue["mtu"] = 65536;
  EXPECT_TRUE(refused_with(document, "network net-blue: mtu 65536 is out of range (68..65535)"));
  blue["mtu"] = 1450.5;
  EXPECT_TRUE(refused_with(document, "network net-blue: mtu must be an integer, not 1450.5"));
}

TEST(StateNetworks, VniIsUnique) {
  json document = good_document();
  json copy = network(document, "net-blue");
  copy["id"] = "net-green";
  document["networks"].push_back(copy);
  EXPECT_TRUE(refused_with(document, "network net-green: provider:segmentation_id 1001 is "
                                     "already the VNI of network net-blue"));
}

TEST(StateNetworks, VlanIsUniquePerPhysicalNetwork) {
  json document = good_document();
  json copy = network(document, "net-red");
  copy["id"] = "net-green";
  document["networks"].push_back(copy);
  EXPECT_TRUE(refused_with(document, "network net-green: provider:segmentation_id 100 on physical "
                                     "network 'physnet1' is already used by network net-red"));
  document["networks"][2]["provider:physical_network"] = "physnet2";
  EXPECT_TRUE(accepted(document));
  // A VNI and a VLAN id may be equal.
  document["networks"][2]["provider:segmentation_id"] = 1001;
  EXPECT_TRUE(accepted(document));
}

TEST(StateNetworks, OneFlatNetworkPerPhysicalNetwork) {
  json document = good_document();
  document["networks"].push_back({{"id", "flat-a"},
                                  {"provider:network_type", "flat"},
                                  {"provider:physical_network", "physnet1"}});
  EXPECT_TRUE(accepted(document)); // a VLAN network on the same physnet is no conflict
  document["networks"].push_back({{"id", "flat-b"},
                                  {"provider:network_type", "flat"},
                                  {"provider:physical_network", "physnet1"}});
  EXPECT_TRUE(refused_with(document, "network flat-b: provider:physical_network 'physnet1' already "
                                     "has a flat network: flat-a"));
}

TEST(StateNetworks, ProjectAndTenantMustAgree) {
  json document = good_document();
  network(document, "net-blue")["tenant_id"] = "tenant-z";
  EXPECT_TRUE(refused_with(
      document, "network net-blue: project_id 'tenant-a' does not match tenant_id 'tenant-z'"));
}

// --- subnets -----------------------------------------------------------------

TEST(StateSubnets, IdAndNetworkAreRequired) {
  json document = good_document();
  document["subnets"][0].erase("id");
  document["subnets"][1]["network_id"] = "net-nope";
  document["subnets"][2].erase("network_id");
  EXPECT_TRUE(refused_with(document, "subnets[0]: id is missing"));
  EXPECT_TRUE(
      refused_with(document, "subnet sub-blue6: network_id 'net-nope' is not a known network"));
  EXPECT_TRUE(refused_with(document, "subnet sub-red: network_id is missing"));
}

TEST(StateSubnets, IdIsUnique) {
  json document = good_document();
  document["subnets"][2]["id"] = "sub-blue4";
  EXPECT_TRUE(
      refused_with(document, "subnet sub-blue4: id is used twice: subnets[0] and subnets[2]"));
}

TEST(StateSubnets, CidrMustBeAPrefix) {
  json document = good_document();
  document["subnets"][2]["cidr"] = "10.0.0/24";
  EXPECT_TRUE(refused_with(document, "subnet sub-red: cidr '10.0.0/24' is not an IP prefix "
                                     "(address/length)"));
  document["subnets"][2]["cidr"] = "10.0.0.0/33";
  EXPECT_TRUE(
      refused_mentioning(document, "subnet sub-red: cidr '10.0.0.0/33' is not an IP prefix"));
  document["subnets"][2]["cidr"] = "10.0.0.0";
  EXPECT_TRUE(refused_mentioning(document, "subnet sub-red: cidr '10.0.0.0' is not an IP prefix"));
  document["subnets"][2].erase("cidr");
  EXPECT_TRUE(refused_with(document, "subnet sub-red: cidr is missing"));
}

TEST(StateSubnets, HostBitsAreRefusedAsNeutronDoes) {
  json document = good_document();
  document["subnets"][1]["cidr"] = "fd00:1::1/64";
  EXPECT_TRUE(refused_with(
      document,
      "subnet sub-blue6: cidr 'fd00:1::1/64' has host bits set; did you mean fd00:1::/64?"));
}

TEST(StateSubnets, IpVersionMustMatchTheCidr) {
  json document = good_document();
  document["subnets"][1]["ip_version"] = 4;
  EXPECT_TRUE(
      refused_with(document, "subnet sub-blue6: ip_version 4 does not match cidr fd00:1::/64"));
  document["subnets"][1]["ip_version"] = 5;
  EXPECT_TRUE(refused_with(document, "subnet sub-blue6: ip_version 5 is not 4 or 6"));
  document["subnets"][1]["ip_version"] = "6";
  EXPECT_TRUE(accepted(document));
}

TEST(StateSubnets, GatewayMustBeAHostOfTheCidr) {
  json document = good_document();
  json& blue4 = document["subnets"][0];
  blue4["gateway_ip"] = "10.0.1.1";
  EXPECT_TRUE(refused_with(document,
                           "subnet sub-blue4: gateway_ip 10.0.1.1 is not inside cidr 10.0.0.0/24"));
  blue4["gateway_ip"] = "fd00:1::1";
  EXPECT_TRUE(refused_with(
      document, "subnet sub-blue4: gateway_ip fd00:1::1 is not inside cidr 10.0.0.0/24"));
  blue4["gateway_ip"] = "gw";
  EXPECT_TRUE(refused_with(document, "subnet sub-blue4: gateway_ip 'gw' is not an IP address"));
  blue4["gateway_ip"] = "10.0.0.0";
  EXPECT_TRUE(refused_with(
      document, "subnet sub-blue4: gateway_ip 10.0.0.0 is the network address of 10.0.0.0/24"));
  blue4["gateway_ip"] = "10.0.0.255";
  EXPECT_TRUE(refused_with(
      document, "subnet sub-blue4: gateway_ip 10.0.0.255 is the broadcast address of 10.0.0.0/24"));
  blue4["gateway_ip"] = "10.0.0.254";
  EXPECT_TRUE(accepted(document));
}

TEST(StateSubnets, Ipv6NeedsAnMtuOf1280) {
  json document = good_document();
  network(document, "net-blue")["mtu"] = 1000;
  EXPECT_TRUE(refused_with(document, "subnet sub-blue6: ip_version 6 needs a network mtu of at "
                                     "least 1280 (network net-blue has 1000)"));
}

TEST(StateSubnets, SubnetsOfOneNetworkDoNotOverlap) {
  json document = good_document();
  document["subnets"].push_back(
      {{"id", "sub-blue4b"}, {"network_id", "net-blue"}, {"cidr", "10.0.0.128/25"}});
  EXPECT_TRUE(refused_with(document, "subnet sub-blue4b: cidr 10.0.0.128/25 overlaps subnet "
                                     "sub-blue4 (10.0.0.0/24) in network net-blue"));
  // The same cidr in another network (sub-red) is fine: tenants overlap.
  document["subnets"][3]["cidr"] = "10.0.1.0/24";
  EXPECT_TRUE(accepted(document));
}

// --- ports -------------------------------------------------------------------

TEST(StatePorts, IdIsRequiredAndNamedByIndexWhenMissing) {
  json document = good_document();
  port(document, 1).erase("id");
  EXPECT_TRUE(refused_with(document, "ports[1]: id is missing"));
  port(document, 1)["id"] = kPortId;
  EXPECT_TRUE(refused_with(document, std::string("port ") + kPortId +
                                         ": id is used twice: ports[0] and ports[1]"));
}

TEST(StatePorts, NetworkMustExist) {
  json document = good_document();
  port(document, 1)["network_id"] = "net-gone";
  EXPECT_TRUE(refused_with(document, "port 9c8b7a65-4321-4fed-8cba-0123456789ab: network_id "
                                     "'net-gone' is not a known network"));
  port(document, 1).erase("network_id");
  EXPECT_TRUE(
      refused_with(document, "port 9c8b7a65-4321-4fed-8cba-0123456789ab: network_id is missing"));
}

TEST(StatePorts, MacAddressMustBeAUnicastMac) {
  json document = good_document();
  const std::string where = std::string("port ") + kPortId + ": ";
  port(document, 0)["mac_address"] = "zz";
  EXPECT_TRUE(refused_with(document, where + "mac_address 'zz' is not a MAC address"));
  port(document, 0)["mac_address"] = "01:00:5e:00:00:01";
  EXPECT_TRUE(
      refused_with(document, where + "mac_address 01:00:5e:00:00:01 is a multicast address"));
  port(document, 0)["mac_address"] = "ff:ff:ff:ff:ff:ff";
  EXPECT_TRUE(
      refused_with(document, where + "mac_address ff:ff:ff:ff:ff:ff is a multicast address"));
  port(document, 0)["mac_address"] = "00:00:00:00:00:00";
  EXPECT_TRUE(refused_with(document, where + "mac_address 00:00:00:00:00:00 is all zeros"));
  port(document, 0).erase("mac_address");
  EXPECT_TRUE(refused_with(document, where + "mac_address is missing"));
}

TEST(StatePorts, MacIsUniqueInANetworkAndBothPortsAreNamed) {
  json document = good_document();
  // The same MAC in two networks is fine (ports 0 and 1 already share it).
  EXPECT_TRUE(accepted(document));
  port(document, 1)["network_id"] = "net-blue";
  port(document, 1)["fixed_ips"] = json::array();
  EXPECT_TRUE(refused_with(document, "port 9c8b7a65-4321-4fed-8cba-0123456789ab: mac_address "
                                     "fa:16:3e:11:22:33 is also the MAC of port " +
                                         std::string(kPortId) + " in network net-blue"));
}

TEST(StatePorts, FixedIpSubnetMustExistAndBelongToThePortsNetwork) {
  json document = good_document();
  const std::string where = std::string("port ") + kPortId + ": ";
  port(document, 0)["fixed_ips"][0]["subnet_id"] = "sub-none";
  EXPECT_TRUE(
      refused_with(document, where + "fixed_ips[0].subnet_id 'sub-none' is not a known subnet"));
  port(document, 0)["fixed_ips"][0]["subnet_id"] = "sub-red";
  EXPECT_TRUE(refused_with(document, where + "fixed_ips[0].subnet_id 'sub-red' belongs to network "
                                             "'net-red', not the port's network 'net-blue'"));
}

TEST(StatePorts, FixedIpMustBeAnAddressInsideTheSubnet) {
  json document = good_document();
  const std::string where = std::string("port ") + kPortId + ": ";
  json& fixed = port(document, 0)["fixed_ips"][0];
  fixed["ip_address"] = "10.0.0.500";
  EXPECT_TRUE(
      refused_with(document, where + "fixed_ips[0].ip_address '10.0.0.500' is not an IP address"));
  fixed["ip_address"] = "10.0.9.5";
  EXPECT_TRUE(refused_with(document, where + "fixed_ips[0].ip_address 10.0.9.5 is not inside "
                                             "subnet sub-blue4 (10.0.0.0/24)"));
  fixed["ip_address"] = "10.0.0.0";
  EXPECT_TRUE(refused_with(document, where + "fixed_ips[0].ip_address 10.0.0.0 is the network "
                                             "address of subnet sub-blue4 (10.0.0.0/24)"));
  fixed["ip_address"] = "10.0.0.255";
  EXPECT_TRUE(refused_mentioning(document, where + "fixed_ips[0].ip_address 10.0.0.255 is the "
                                                   "broadcast address"));
  fixed.erase("ip_address");
  EXPECT_TRUE(refused_with(
      document, where + "fixed_ips[0].ip_address is missing (weft does not allocate addresses)"));
}

TEST(StatePorts, FixedIpWithoutSubnetFindsItsSubnet) {
  json document = good_document();
  const std::string where = std::string("port ") + kPortId + ": ";
  port(document, 0)["fixed_ips"][0].erase("subnet_id");
  EXPECT_EQ(parse(document).ports[0].fixed_ips[0].subnet_id, "sub-blue4");
  port(document, 0)["fixed_ips"][0]["ip_address"] = "192.168.0.5";
  EXPECT_TRUE(refused_with(document,
                           where + "fixed_ips[0].ip_address 192.168.0.5 is in no subnet of network "
                                   "net-blue"));
}

TEST(StatePorts, FixedIpIsUniqueInANetwork) {
  json document = good_document();
  // 10.0.0.5 is used in both networks: tenants may overlap.
  EXPECT_TRUE(accepted(document));
  document["ports"].push_back({{"id", "p3"},
                               {"network_id", "net-blue"},
                               {"mac_address", "fa:16:3e:00:00:03"},
                               {"fixed_ips", {{{"ip_address", "10.0.0.5"}}}}});
  EXPECT_TRUE(refused_with(document, "port p3: fixed_ips[0].ip_address 10.0.0.5 is also a fixed IP "
                                     "of port " +
                                         std::string(kPortId) + " in network net-blue"));
}

TEST(StatePorts, FixedIpsMustBeAListOfObjects) {
  json document = good_document();
  const std::string where = std::string("port ") + kPortId + ": ";
  port(document, 0)["fixed_ips"] = "10.0.0.5";
  EXPECT_TRUE(refused_with(document, where + "fixed_ips must be a list, not a string"));
  port(document, 0)["fixed_ips"] = json::array({"10.0.0.5"});
  EXPECT_TRUE(refused_with(document, where + "fixed_ips[0] must be an object, not a string"));
}

TEST(StatePorts, SecurityGroupsMustExist) {
  json document = good_document();
  const std::string where = std::string("port ") + kPortId + ": ";
  port(document, 0)["security_groups"][1] = "sg-gone";
  EXPECT_TRUE(refused_with(document, where + "security_groups[1] 'sg-gone' is not a known security "
                                             "group"));
  port(document, 0)["security_groups"] = "sg-web";
  EXPECT_TRUE(refused_with(document, where + "security_groups must be a list, not a string"));
}

TEST(StatePorts, RepeatedGroupIsOneGroup) {
  json document = good_document();
  port(document, 0)["security_groups"] = {"sg-web", "sg-web"};
  EXPECT_EQ(parse(document).ports[0].security_groups, std::vector<std::string>{"sg-web"});
}

TEST(StatePorts, PortSecurityOffRequiresNoGroupsAndNoPairs) {
  json document = good_document();
  const std::string where = std::string("port ") + kPortId + ": ";
  port(document, 0)["port_security_enabled"] = false;
  EXPECT_TRUE(refused_with(
      document, where + "security_groups must be empty when port_security_enabled is false"));
  EXPECT_TRUE(refused_with(
      document, where + "allowed_address_pairs must be empty when port_security_enabled is false"));
  port(document, 0)["security_groups"] = json::array();
  port(document, 0)["allowed_address_pairs"] = nullptr;
  EXPECT_TRUE(accepted(document));
}

TEST(StatePorts, GroupsMustNotMixStatefulAndStateless) {
  json document = good_document();
  group(document, 1)["stateful"] = false;
  EXPECT_TRUE(refused_with(document, std::string("port ") + kPortId +
                                         ": security_groups mixes stateful group sg-default and "
                                         "stateless group sg-web"));
  port(document, 0)["security_groups"] = {"sg-web"};
  EXPECT_TRUE(accepted(document));
  EXPECT_FALSE(parse(document).security_groups[1].stateful);
}

TEST(StatePorts, AllowedAddressPairsAreCheckedAndLimitedToTen) {
  json document = good_document();
  const std::string where = std::string("port ") + kPortId + ": ";
  json& pairs = port(document, 0)["allowed_address_pairs"];
  pairs[0]["ip_address"] = "10.0.0.300";
  EXPECT_TRUE(refused_with(document, where + "allowed_address_pairs[0].ip_address '10.0.0.300' is "
                                             "not an IP address or prefix"));
  pairs[0].erase("ip_address");
  EXPECT_TRUE(refused_with(document, where + "allowed_address_pairs[0].ip_address is missing"));
  pairs[0]["ip_address"] = "10.0.0.100";
  pairs[1]["mac_address"] = "01:00:00:00:00:01";
  EXPECT_TRUE(refused_with(document, where + "allowed_address_pairs[1].mac_address "
                                             "01:00:00:00:00:01 is a multicast address"));
  pairs[1]["mac_address"] = "fa:16:3e";
  EXPECT_TRUE(
      refused_with(document, where + "allowed_address_pairs[1].mac_address 'fa:16:3e' is not a MAC "
                                     "address"));
  pairs[1]["mac_address"] = nullptr;
  EXPECT_TRUE(accepted(document));

  pairs = json::array();
  for (int i = 0; i < 11; ++i)
    pairs.push_back({{"ip_address", "10.0.2." + std::to_string(i)}});
  EXPECT_TRUE(refused_with(document, where + "allowed_address_pairs has 11 entries; at most 10 are "
                                             "allowed"));
  pairs.erase(10);
  EXPECT_TRUE(accepted(document));
}

TEST(StatePorts, AllowedAddressPairsAreNotRepeated) {
  json document = good_document();
  json& pairs = port(document, 0)["allowed_address_pairs"];
  pairs[1] = {{"ip_address", "10.0.0.100"}, {"mac_address", "fa:16:3e:11:22:33"}};
  EXPECT_TRUE(refused_with(document, std::string("port ") + kPortId +
                                         ": allowed_address_pairs[1].ip_address 10.0.0.100/32 with "
                                         "mac_address fa:16:3e:11:22:33 is listed twice"));
}

TEST(StatePorts, AllowedAddressPairMayNotTakeAnotherPortsMac) {
  json document = good_document();
  json other = port(document, 0);
  other["id"] = "c0ffee00-0000-4000-8000-000000000001";
  other["mac_address"] = "fa:16:3e:00:00:99";
  other["fixed_ips"] = json::array({{{"subnet_id", "sub-blue4"}, {"ip_address", "10.0.0.99"}}});
  other["allowed_address_pairs"] = json::array();
  document["ports"].push_back(other);
  // In the same network: refused, naming both ports, whichever comes first.
  port(document, 0)["allowed_address_pairs"].push_back(
      {{"ip_address", "10.0.0.250"}, {"mac_address", "fa:16:3e:00:00:99"}});
  std::size_t k = port(document, 0)["allowed_address_pairs"].size() - 1;
  EXPECT_TRUE(refused_with(document, std::string("port ") + kPortId + ": allowed_address_pairs[" +
                                         std::to_string(k) +
                                         "].mac_address fa:16:3e:00:00:99 is the MAC of port "
                                         "c0ffee00-0000-4000-8000-000000000001 in network "
                                         "net-blue: a pair may not take over another port's "
                                         "traffic"));
  // Another network's port may have that MAC: no takeover there.
  document["ports"].back()["network_id"] = "net-red";
  document["ports"].back()["fixed_ips"] =
      json::array({{{"subnet_id", "sub-red"}, {"ip_address", "10.0.0.99"}}});
  EXPECT_TRUE(accepted(document));
}

TEST(StatePorts, DeviceNameIsTapAndElevenCharactersOfTheId) {
  Port vm;
  vm.id = kPortId;
  EXPECT_EQ(vm.device_name(), "tap3f2a9c1e-77");
  EXPECT_LE(vm.device_name().size(), 15u); // IFNAMSIZ - 1
  vm.id = "short";
  EXPECT_EQ(vm.device_name(), "tapshort");
}

TEST(StatePorts, DeviceNamesAreUsableAndUniqueOnAHost) {
  json document = good_document();
  port(document, 1)["id"] = "3f2a9c1e-77ff";
  port(document, 1)["binding:host_id"] = "node1";
  EXPECT_TRUE(refused_with(document, "port 3f2a9c1e-77ff: id gives device tap3f2a9c1e-77, also the "
                                     "device of port " +
                                         std::string(kPortId) + " on host node1"));
  port(document, 1)["binding:host_id"] = "node2";
  EXPECT_TRUE(accepted(document));
  port(document, 1)["id"] = "a b";
  EXPECT_TRUE(refused_with(document, "port a b: id 'a b' gives an invalid device name 'tapa b'"));
}

// --- security groups ---------------------------------------------------------

TEST(StateGroups, IdIsRequiredAndUnique) {
  json document = good_document();
  group(document, 2).erase("id");
  EXPECT_TRUE(refused_with(document, "security_groups[2]: id is missing"));
  group(document, 2)["id"] = "sg-web";
  EXPECT_TRUE(refused_with(
      document,
      "security_group sg-web: id is used twice: security_groups[1] and security_groups[2]"));
}

TEST(StateGroups, RulesMustBeAList) {
  json document = good_document();
  group(document, 2)["security_group_rules"] = json::object();
  EXPECT_TRUE(refused_with(
      document, "security_group sg-other: security_group_rules must be a list, not an object"));
}

TEST(StateRules, DirectionIsRequired) {
  EXPECT_TRUE(refused_with(rule_document({{"id", "r1"}}), "security_group_rule r1: direction is "
                                                          "missing"));
  EXPECT_TRUE(refused_with(rule_document({{"direction", "Ingress"}}),
                           "security_group_rule sg1/rules[0]: direction 'Ingress' is not ingress "
                           "or egress"));
}

TEST(StateRules, RuleWithoutIdIsNamedByGroupAndIndex) {
  json document = good_document();
  rule(document, 1, 2)["protocol"] = "bogus";
  EXPECT_TRUE(refused_with(document, "security_group_rule sg-web/rules[2]: protocol 'bogus' is not "
                                     "a protocol name or a number 0..255"));
}

TEST(StateRules, EthertypeIsIPv4OrIPv6InAnyCase) {
  EXPECT_EQ(parsed_rule({{"direction", "egress"}, {"ethertype", "IPV6"}}).ethertype,
            Ethertype::IPv6);
  EXPECT_EQ(parsed_rule({{"direction", "egress"}, {"ethertype", "ipv4"}}).ethertype,
            Ethertype::IPv4);
  EXPECT_TRUE(
      refused_with(rule_document({{"id", "r1"}, {"direction", "egress"}, {"ethertype", "IPv5"}}),
                   "security_group_rule r1: ethertype 'IPv5' is not IPv4 or IPv6"));
}

TEST(StateRules, ProtocolNamesAndNumbers) {
  auto protocol_of = [](const json& protocol, const char* ethertype = "IPv4") {
    return parsed_rule({{"direction", "ingress"}, {"ethertype", ethertype}, {"protocol", protocol}})
        .protocol;
  };
  EXPECT_EQ(protocol_of("tcp"), 6);
  EXPECT_EQ(protocol_of("UDP"), 17);
  EXPECT_EQ(protocol_of(6), 6);
  EXPECT_EQ(protocol_of("6"), 6);
  EXPECT_EQ(protocol_of("0"), 0);
  EXPECT_EQ(protocol_of(255), 255);
  EXPECT_EQ(protocol_of("vrrp"), 112);
  EXPECT_EQ(protocol_of(nullptr), std::nullopt);
  EXPECT_EQ(protocol_of("any"), std::nullopt);
  EXPECT_EQ(protocol_of("icmp"), 1);
  EXPECT_EQ(protocol_of(1), 1);
  // IPv6: "icmp", "icmpv6" and 1 mean ipv6-icmp.
  EXPECT_EQ(protocol_of("icmp", "IPv6"), 58);
  EXPECT_EQ(protocol_of("icmpv6", "IPv6"), 58);
  EXPECT_EQ(protocol_of(1, "IPv6"), 58);
  EXPECT_EQ(protocol_of("1", "IPv6"), 58);
  EXPECT_EQ(protocol_of("ipv6-icmp", "IPv6"), 58);
  EXPECT_EQ(protocol_of("ipv6-frag", "IPv6"), 44);
}

TEST(StateRules, InvalidProtocolsAreRefused) {
  auto document = [](const json& protocol) {
    return rule_document({{"id", "r1"}, {"direction", "ingress"}, {"protocol", protocol}});
  };
  EXPECT_TRUE(
      refused_with(document(256), "security_group_rule r1: protocol 256 is out of range (0..255)"));
  EXPECT_TRUE(
      refused_with(document(-1), "security_group_rule r1: protocol -1 is out of range (0..255)"));
  EXPECT_TRUE(refused_with(document("256"), "security_group_rule r1: protocol '256' is not a "
                                            "protocol name or a number 0..255"));
  EXPECT_TRUE(refused_with(document("tcpx"), "security_group_rule r1: protocol 'tcpx' is not a "
                                             "protocol name or a number 0..255"));
  EXPECT_TRUE(refused_with(document(""), "security_group_rule r1: protocol '' is not a protocol "
                                         "name or a number 0..255"));
  EXPECT_TRUE(refused_with(document(6.0), "security_group_rule r1: protocol must be a name or a "
                                          "number, not 6.0"));
  EXPECT_TRUE(
      refused_with(document(json::array({"tcp"})),
                   "security_group_rule r1: protocol must be a name or a number, not a list"));
  // The port range is still read: both problems are reported.
  json both = document("tcpx");
  both["security_groups"][0]["security_group_rules"][0]["port_range_min"] = "22a";
  auto problems = problems_of(both);
  EXPECT_EQ(problems.size(), 2u) << listed(problems);
  EXPECT_TRUE(refused_with(both, "security_group_rule r1: port_range_min '22a' is not an integer"));
}

TEST(StateRules, Ipv6OnlyProtocolsAreRefusedWithIPv4) {
  for (const json& protocol : {json("ipv6-icmp"), json("icmpv6"), json("ipv6-encap"),
                               json("ipv6-frag"), json("ipv6-nonxt"), json("ipv6-opts"),
                               json("ipv6-route"), json(58), json("58"), json(41)}) {
    json document = rule_document({{"id", "r1"}, {"direction", "ingress"}, {"protocol", protocol}});
    std::string shown =
        protocol.is_string() ? "'" + protocol.get<std::string>() + "'" : protocol.dump();
    EXPECT_TRUE(refused_with(document, "security_group_rule r1: protocol " + shown +
                                           " is IPv6-only but ethertype is IPv4"));
    document["security_groups"][0]["security_group_rules"][0]["ethertype"] = "IPv6";
    EXPECT_TRUE(accepted(document)) << protocol.dump();
  }
}

TEST(StateRules, PortRangesForPortProtocols) {
  auto tcp = [](const json& min, const json& max, const char* protocol = "tcp") {
    return rule_document({{"id", "r1"},
                          {"direction", "ingress"},
                          {"protocol", protocol},
                          {"port_range_min", min},
                          {"port_range_max", max}});
  };
  SecurityGroupRule all = parse(tcp(1, 65535)).security_groups[0].rules[0];
  EXPECT_EQ(all.port_range_min, 1);
  EXPECT_EQ(all.port_range_max, 65535);
  for (const char* protocol : {"udp", "sctp", "dccp", "udplite", "17"})
    EXPECT_TRUE(accepted(tcp(80, 83, protocol))) << protocol;

  EXPECT_TRUE(refused_with(tcp(0, 80), "security_group_rule r1: port_range_min 0 is not a port "
                                       "(1..65535)"));
  EXPECT_TRUE(refused_with(tcp(80, 65536), "security_group_rule r1: port_range_max 65536 is not a "
                                           "port (1..65535)"));
  EXPECT_TRUE(refused_with(tcp(90, 80), "security_group_rule r1: port_range_min 90 is greater than "
                                        "port_range_max 80"));
  EXPECT_TRUE(refused_with(tcp(nullptr, 80), "security_group_rule r1: port_range_min is missing "
                                             "(port_range_max is set)"));
  // Neutron's _validate_port_range wants both ends for port protocols.
  EXPECT_TRUE(refused_with(tcp(22, nullptr), "security_group_rule r1: port_range_max is missing "
                                             "(port_range_min is set)"));
  EXPECT_TRUE(refused_with(tcp("x", 80), "security_group_rule r1: port_range_min 'x' is not an "
                                         "integer"));
  EXPECT_EQ(parse(tcp("22", "22")).security_groups[0].rules[0].port_range_max, 22);
}

TEST(StateRules, PortRangesNeedAProtocolThatHasPorts) {
  auto with = [](const json& protocol) {
    return rule_document({{"id", "r1"},
                          {"direction", "ingress"},
                          {"protocol", protocol},
                          {"port_range_min", 22},
                          {"port_range_max", 22}});
  };
  EXPECT_TRUE(refused_mentioning(with(nullptr), "security_group_rule r1: port_range_min needs a "
                                                "protocol"));
  EXPECT_TRUE(refused_mentioning(with("any"), "security_group_rule r1: port_range_min needs a "
                                              "protocol"));
  EXPECT_TRUE(refused_mentioning(with("gre"), "security_group_rule r1: port_range_min is not "
                                              "allowed with protocol 47"));
  EXPECT_TRUE(refused_mentioning(with(0), "security_group_rule r1: port_range_min is not allowed"));
}

TEST(StateRules, IcmpTypeAndCode) {
  auto icmp = [](const json& type, const json& code, const char* ethertype = "IPv4") {
    return rule_document({{"id", "r1"},
                          {"direction", "ingress"},
                          {"ethertype", ethertype},
                          {"protocol", "icmp"},
                          {"port_range_min", type},
                          {"port_range_max", code}});
  };
  SecurityGroupRule echo = parse(icmp(8, 0)).security_groups[0].rules[0];
  EXPECT_EQ(echo.port_range_min, 8);
  EXPECT_EQ(echo.port_range_max, 0);
  SecurityGroupRule any_code = parse(icmp(3, nullptr)).security_groups[0].rules[0];
  EXPECT_EQ(any_code.port_range_min, 3);
  EXPECT_FALSE(any_code.port_range_max);
  EXPECT_TRUE(accepted(icmp(0, 255, "IPv6")));

  EXPECT_TRUE(refused_with(icmp(nullptr, 0), "security_group_rule r1: port_range_max (ICMP code) "
                                             "is set without port_range_min (ICMP type)"));
  EXPECT_TRUE(refused_with(icmp(256, 0), "security_group_rule r1: port_range_min (ICMP type) 256 "
                                         "is out of range (0..255)"));
  EXPECT_TRUE(refused_with(icmp(8, 300, "IPv6"), "security_group_rule r1: port_range_max (ICMP "
                                                 "code) 300 is out of range (0..255)"));
}

TEST(StateRules, RemoteIpPrefixMatchesEthertypeAndIsNormalised) {
  auto with = [](const json& prefix, const char* ethertype = "IPv4") {
    return rule_document({{"id", "r1"},
                          {"direction", "ingress"},
                          {"ethertype", ethertype},
                          {"remote_ip_prefix", prefix}});
  };
  EXPECT_EQ(parse(with("10.1.2.3/8")).security_groups[0].rules[0].remote_ip_prefix->str(),
            "10.0.0.0/8");
  EXPECT_EQ(parse(with("10.1.2.3")).security_groups[0].rules[0].remote_ip_prefix->str(),
            "10.1.2.3/32");
  EXPECT_EQ(parse(with("fd00::1/48", "IPv6")).security_groups[0].rules[0].remote_ip_prefix->str(),
            "fd00::/48");
  EXPECT_TRUE(refused_with(with("fd00::/48"), "security_group_rule r1: remote_ip_prefix fd00::/48 "
                                              "is not IPv4 (the rule's ethertype)"));
  EXPECT_TRUE(refused_with(with("10.0.0.0/8", "IPv6"), "security_group_rule r1: remote_ip_prefix "
                                                       "10.0.0.0/8 is not IPv6 (the rule's "
                                                       "ethertype)"));
  EXPECT_TRUE(refused_with(with("10.0.0.0/40"), "security_group_rule r1: remote_ip_prefix "
                                                "'10.0.0.0/40' is not an IP prefix"));
}

TEST(StateRules, RemoteGroupMustExist) {
  json document = good_document();
  rule(document, 0, 2)["remote_group_id"] = "sg-missing";
  EXPECT_TRUE(refused_with(document, "security_group_rule r-in4: remote_group_id 'sg-missing' is "
                                     "not a known security group"));
}

TEST(StateRules, AtMostOneRemote) {
  json document = good_document();
  rule(document, 0, 2)["remote_ip_prefix"] = "10.0.0.0/8";
  EXPECT_TRUE(refused_mentioning(document, "security_group_rule r-in4: remote_group_id cannot be "
                                           "combined with remote_ip_prefix"));
  rule(document, 0, 2).erase("remote_ip_prefix");
  rule(document, 0, 2)["remote_address_group_id"] = "ag-1";
  EXPECT_TRUE(refused_mentioning(document, "security_group_rule r-in4: remote_address_group_id "
                                           "cannot be combined with remote_group_id"));
}

TEST(StateRules, RemoteAddressGroupIsKept) {
  SecurityGroupRule rule_with_group =
      parsed_rule({{"direction", "ingress"}, {"remote_address_group_id", "ag-1"}});
  EXPECT_EQ(rule_with_group.remote_address_group_id, "ag-1");
  EXPECT_FALSE(rule_with_group.remote_group_id);
  EXPECT_FALSE(rule_with_group.remote_ip_prefix);
}

TEST(StateRules, DuplicateRulesInAGroupAreRefused) {
  json document = good_document();
  json copy = rule(document, 1, 0);
  copy["id"] = "r-ssh-again";
  copy["protocol"] = "6";                          // the same protocol by number
  copy["remote_ip_prefix"] = "192.168.255.255/16"; // the same prefix, host bits set
  group(document, 1)["security_group_rules"].push_back(copy);
  EXPECT_TRUE(refused_with(document, "security_group_rule r-ssh-again: duplicates rule r-ssh"));

  // A /0 prefix is the same as none (Neutron's _rule_to_key).
  json any = good_document();
  rule(any, 0, 0)["remote_ip_prefix"] = "0.0.0.0/0";
  group(any, 0)["security_group_rules"].push_back({{"direction", "egress"}});
  EXPECT_TRUE(refused_with(any, "security_group_rule sg-default/rules[4]: duplicates rule r-eg4"));

  // The same rule in two groups is fine.
  json two_groups = good_document();
  group(two_groups, 2)["security_group_rules"].push_back(rule(two_groups, 1, 0));
  group(two_groups, 2)["security_group_rules"][0]["id"] = "r-ssh-other";
  EXPECT_TRUE(accepted(two_groups));
}

TEST(StateRules, RuleIdsAreUniqueAndMatchTheirGroup) {
  json document = good_document();
  rule(document, 1, 1)["id"] = "r-eg4";
  EXPECT_TRUE(refused_with(document, "security_group_rule r-eg4: id is used twice: "
                                     "sg-default/rules[0] and sg-web/rules[1]"));
  json mismatch = good_document();
  rule(mismatch, 0, 0)["security_group_id"] = "sg-web";
  EXPECT_TRUE(refused_with(mismatch, "security_group_rule r-eg4: security_group_id 'sg-web' is not "
                                     "the rule's group 'sg-default'"));
}

// --- helpers -----------------------------------------------------------------

TEST(StateHelpers, MacParseAndPrint) {
  auto mac = Mac::parse("FA:16:3E:0a:0B:cc");
  ASSERT_TRUE(mac);
  EXPECT_EQ(mac->str(), "fa:16:3e:0a:0b:cc");
  EXPECT_EQ(mac->bytes[0], 0xfa);
  EXPECT_EQ(mac->bytes[5], 0xcc);
  EXPECT_FALSE(mac->is_multicast());
  EXPECT_FALSE(mac->is_zero());
  EXPECT_EQ(Mac::parse("fa-16-3e-0a-0b-cc"), mac);
  EXPECT_TRUE(Mac::parse("00:00:00:00:00:00")->is_zero());
  EXPECT_TRUE(Mac::parse("33:33:00:00:00:01")->is_multicast());
  for (const char* bad :
       {"", "zz", "fa:16:3e:0a:0b", "fa:16:3e:0a:0b:cc:dd", "fa:16-3e:0a:0b:cc",
        "fa:16:3e:0a:0b:cg", "fa163e0a0bcc", "fa:16:3e:0a:0b:c ", " a:16:3e:0a:0b:cc"})
    EXPECT_FALSE(Mac::parse(bad)) << bad;
}

TEST(StateHelpers, IpAddrParseAndPrint) {
  auto v4 = IpAddr::parse("10.0.0.5");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->family, AF_INET);
  EXPECT_TRUE(v4->is_v4());
  EXPECT_EQ(v4->str(), "10.0.0.5");
  EXPECT_EQ(v4->v4_be(), htonl(0x0a000005));
  auto v6 = IpAddr::parse("FD00:0:0::0005");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family, AF_INET6);
  EXPECT_FALSE(v6->is_v4());
  EXPECT_EQ(v6->str(), "fd00::5");
  EXPECT_EQ(IpAddr::parse("::ffff:10.0.0.5")->family, AF_INET6);
  EXPECT_LT(*IpAddr::parse("10.0.0.5"), *IpAddr::parse("10.0.0.6"));
  using namespace std::string_view_literals;
  for (std::string_view bad : {""sv, "10.0.0"sv, "10.0.0.256"sv, "10.0.0.5/32"sv, "fd00::5::1"sv,
                               "10.0.0.5 "sv, "10.0.0.5\0junk"sv, "host"sv})
    EXPECT_FALSE(IpAddr::parse(bad)) << bad;
  EXPECT_EQ(IpAddr().str(), "");
}

TEST(StateHelpers, IpPrefixParseContainsAndPrint) {
  auto net = IpPrefix::parse("10.1.2.3/16");
  ASSERT_TRUE(net);
  EXPECT_EQ(net->len, 16);
  EXPECT_EQ(net->str(), "10.1.0.0/16");
  EXPECT_TRUE(net->contains(*IpAddr::parse("10.1.255.255")));
  EXPECT_FALSE(net->contains(*IpAddr::parse("10.2.0.0")));
  EXPECT_FALSE(net->contains(*IpAddr::parse("::a01:0")));
  EXPECT_EQ(IpPrefix::parse("10.1.2.3")->str(), "10.1.2.3/32");
  EXPECT_EQ(IpPrefix::parse("10.1.2.3/0")->str(), "0.0.0.0/0");
  EXPECT_TRUE(IpPrefix::parse("0.0.0.0/0")->contains(*IpAddr::parse("1.2.3.4")));
  EXPECT_FALSE(IpPrefix::parse("0.0.0.0/0")->contains(*IpAddr::parse("::1")));
  EXPECT_EQ(IpPrefix::parse("10.1.2.3/27")->str(), "10.1.2.0/27");
  EXPECT_EQ(IpPrefix::parse("fd00:1:2:3::9/61")->str(), "fd00:1:2::/61");
  EXPECT_EQ(IpPrefix::parse("fd00::1")->len, 128);
  EXPECT_TRUE(IpPrefix::parse("fd00::/8")->contains(*IpAddr::parse("fdff::1")));
  for (const char* bad : {"10.0.0.0/", "10.0.0.0/33", "fd00::/129", "10.0.0.0/-1", "10.0.0.0/+8",
                          "10.0.0.0/8/8", "/8", "10.0.0.0/ 8", "10.0.0.0/0008"})
    EXPECT_FALSE(IpPrefix::parse(bad)) << bad;
}

TEST(StateHelpers, ProtocolNumber) {
  struct Case {
    const char* name;
    int number;
  };
  for (Case c : {Case{"ah", 51},     {"dccp", 33},       {"egp", 8},         {"esp", 50},
                 {"gre", 47},        {"hopopt", 0},      {"icmp", 1},        {"igmp", 2},
                 {"ipip", 4},        {"ipv6-encap", 41}, {"ipv6-frag", 44},  {"ipv6-icmp", 58},
                 {"ipv6-nonxt", 59}, {"ipv6-opts", 60},  {"ipv6-route", 43}, {"ospf", 89},
                 {"pgm", 113},       {"rsvp", 46},       {"sctp", 132},      {"tcp", 6},
                 {"udp", 17},        {"udplite", 136},   {"vrrp", 112},      {"TCP", 6},
                 {"0", 0},           {"6", 6},           {"006", 6},         {"255", 255}})
    EXPECT_EQ(protocol_number(c.name, Ethertype::IPv4), c.number) << c.name;
  EXPECT_EQ(protocol_number("icmp", Ethertype::IPv6), 58);
  EXPECT_EQ(protocol_number("icmpv6", Ethertype::IPv6), 58);
  EXPECT_EQ(protocol_number("1", Ethertype::IPv6), 58);
  EXPECT_EQ(protocol_number("tcp", Ethertype::IPv6), 6);
  for (const char* bad : {"", "256", "-1", "any", "tcp ", "6a", "99999999999999999999"})
    EXPECT_FALSE(protocol_number(bad, Ethertype::IPv4)) << bad;
}

TEST(StateHelpers, NetworkTypeNames) {
  EXPECT_EQ(to_string(NetworkType::Vxlan), "vxlan");
  EXPECT_EQ(to_string(NetworkType::Vlan), "vlan");
  EXPECT_EQ(to_string(NetworkType::Flat), "flat");
}

TEST(StateHelpers, FindById) {
  State state = parse(good_document());
  ASSERT_NE(state.find_network("net-red"), nullptr);
  EXPECT_EQ(state.find_network("net-red")->segmentation_id, 100u);
  EXPECT_EQ(state.find_subnet("sub-blue6")->ip_version, 6);
  EXPECT_EQ(state.find_port(kPortId)->host_id, "node1");
  EXPECT_EQ(state.find_group("sg-web")->rules.size(), 3u);
  EXPECT_EQ(state.find_node("node2")->name, "node2");
  EXPECT_EQ(state.find_network("net"), nullptr);
  EXPECT_EQ(state.find_subnet(""), nullptr);
  EXPECT_EQ(state.find_port("3f2a9c1e"), nullptr);
  EXPECT_EQ(state.find_group("sg"), nullptr);
  EXPECT_EQ(state.find_node("node3"), nullptr);
}

TEST(StateHelpers, StateErrorJoinsProblems) {
  StateError error({"a: one", "b: two", "c: three"});
  EXPECT_STREQ(error.what(), "a: one\nb: two\nc: three");
  EXPECT_EQ(error.problems().size(), 3u);
  EXPECT_EQ(error.problems()[1], "b: two");
}

} // namespace
} // namespace weft
