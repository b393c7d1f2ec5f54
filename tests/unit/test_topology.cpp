// A lab's topology as data (loader/lab/topology.cpp): the embedded demo, VMs
// described by the document or by themselves, and every problem named.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "loader/lab/topology.hpp"
#include "loader/model/state.hpp"

namespace weft::test {
namespace {

using lab::parse_topology;
using lab::Topology;

std::vector<std::string> problems(const std::string& text) {
  try {
    parse_topology(text);
  } catch (const StateError& e) {
    return e.problems();
  }
  return {};
}

bool has(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

TEST(Topology, TheEmbeddedDemoIsOneNodeTwoTenantsFourVms) {
  Topology t = parse_topology(lab::default_topology());
  ASSERT_EQ(t.nodes.size(), 1u);
  EXPECT_EQ(t.nodes[0].name, "lab-node1");
  EXPECT_EQ(t.nodes[0].namespace_, "node1");
  ASSERT_EQ(t.vms.size(), 4u);
  const auto& a1 = t.vms[0];
  EXPECT_EQ(a1.name, "a1");
  EXPECT_EQ(a1.node, "lab-node1");
  EXPECT_EQ(a1.device, "tap3f2a9c1e-a1");
  EXPECT_EQ(a1.mac, "fa:16:3e:00:00:11");
  EXPECT_EQ(a1.addresses, std::vector<std::string>{"10.0.0.11/24"});
  EXPECT_EQ(a1.network_name, "blue");
  EXPECT_EQ(a1.project_id, "tenant-a");
  EXPECT_EQ(a1.mtu, 1450u);
  const auto& b1 = t.vms[2];
  // Another project's VM with a1's very MAC and IP, on a VLAN network.
  EXPECT_EQ(b1.mac, a1.mac);
  EXPECT_EQ(b1.addresses, a1.addresses);
  EXPECT_EQ(b1.network_name, "red");
  EXPECT_NE(b1.network_id, a1.network_id);
  EXPECT_EQ(b1.mtu, 1500u);
  ASSERT_TRUE(t.document.has_value());
  State state = parse_state(*t.document);
  EXPECT_EQ(state.ports.size(), 4u);
  EXPECT_EQ(state.networks.size(), 2u);
  // The device is the one the model gives the port: derived in one place.
  for (const auto& vm : t.vms)
    EXPECT_EQ(vm.device, state.find_port(vm.port_id)->device_name()) << vm.name;
}

TEST(Topology, AVmWithoutADocumentSaysItselfWhatItIs) {
  Topology t = parse_topology(R"({"nodes": [{"name": "n1", "namespace": "node"}],
    "vms": [{"name": "v1", "port_id": "0123456789abcdef", "mac": "FA:16:3E:00:00:01",
             "addresses": ["10.9.0.5/24", "fd00::5/64"], "up": false, "ipv6": true}]})");
  ASSERT_EQ(t.vms.size(), 1u);
  const auto& vm = t.vms[0];
  EXPECT_EQ(vm.node, "n1"); // the only node
  EXPECT_EQ(vm.device, "tap0123456789a");
  EXPECT_EQ(vm.mac, "fa:16:3e:00:00:01");
  EXPECT_EQ(vm.addresses, (std::vector<std::string>{"10.9.0.5/24", "fd00::5/64"}));
  EXPECT_FALSE(vm.up);
  EXPECT_TRUE(vm.ipv6);
  EXPECT_EQ(vm.mtu, 0u); // the kernel's default
  EXPECT_FALSE(t.document.has_value());
}

TEST(Topology, IPv6FixedIpsOfTheDocumentAreTheVmsOnlyWithIPv6On) {
  std::string document = R"("document": {"nodes": [{"name": "n1"}],
    "networks": [{"id": "net-1", "name": "blue", "project_id": "p",
                  "provider:network_type": "vxlan", "provider:segmentation_id": 5}],
    "subnets": [{"id": "s4", "network_id": "net-1", "ip_version": 4, "cidr": "10.1.0.0/16"},
                {"id": "s6", "network_id": "net-1", "ip_version": 6, "cidr": "fd00:1::/64"}],
    "ports": [{"id": "port-1", "network_id": "net-1", "mac_address": "fa:16:3e:00:00:07",
               "binding:host_id": "n1", "device_owner": "compute:nova",
               "fixed_ips": [{"subnet_id": "s4", "ip_address": "10.1.2.3"},
                             {"subnet_id": "s6", "ip_address": "fd00:1::3"}]}]})";
  Topology off = parse_topology(
      R"({"nodes": [{"name": "n1"}], "vms": [{"name": "v", "port_id": "port-1"}], )" + document +
      "}");
  EXPECT_EQ(off.vms[0].addresses, std::vector<std::string>{"10.1.2.3/16"});
  EXPECT_EQ(off.vms[0].mtu, 1450u);
  EXPECT_EQ(off.nodes[0].namespace_, "n1"); // the node's name by default
  Topology on = parse_topology(
      R"({"nodes": [{"name": "n1"}], "vms": [{"name": "v", "port_id": "port-1", "ipv6": true}], )" +
      document + "}");
  EXPECT_EQ(on.vms[0].addresses, (std::vector<std::string>{"10.1.2.3/16", "fd00:1::3/64"}));
}

TEST(Topology, EveryProblemNamesTheEntryAndTheFieldAndNothingIsKeptHalfway) {
  auto lines = problems(R"({"nodes": [{"name": "n1", "namespace": "Node 1"}, {"name": "n1"}],
    "vms": [{"name": "v1", "port_id": "abc", "mac": "zz", "addresses": ["10.0.0.1"], "color": 1},
            {"name": "v1", "port_id": "abc", "mac": "fa:16:3e:00:00:02", "node": "n9",
             "addresses": []},
            {"port_id": "def", "addresses": [], "mtu": 10}],
    "extra": true})");
  EXPECT_TRUE(has(lines, "topology: extra is not a field of a lab topology")) << lines.size();
  EXPECT_TRUE(has(lines, "nodes[0]: namespace 'Node 1' is not a name of lower-case letters, "
                         "digits, - and _"));
  EXPECT_TRUE(has(lines, "nodes[1]: name 'n1' is given twice"));
  EXPECT_TRUE(has(lines, "vms[0]: color is not a field of a lab VM"));
  EXPECT_TRUE(has(lines, "vms[0] (v1): mac 'zz' is not a MAC address"));
  EXPECT_TRUE(has(lines, "vms[0] (v1): addresses[0] '10.0.0.1' is not an address with a prefix "
                         "length"));
  EXPECT_TRUE(has(lines, "vms[1] (v1): name 'v1' is given twice"));
  EXPECT_TRUE(has(lines, "vms[1] (v1): port_id gives device tapabc, which another VM has"));
  EXPECT_TRUE(has(lines, "vms[1] (v1): node 'n9' is not a node of the topology"));
  EXPECT_TRUE(has(lines, "vms[2]: name is missing"));
  EXPECT_TRUE(has(lines, "vms[2]: mtu 10 is not in (68..65535)"));
  EXPECT_TRUE(has(lines, "vms[2]: mac is missing (the document has no port 'def')"));
  EXPECT_TRUE(has(lines, "vms[0] (v1): node is missing")); // two nodes: which one?
  EXPECT_FALSE(has(lines, "vms[0] (v1): mac is missing (the document has no port 'abc')"));
}

TEST(Topology, AVmMustBeAPortOfTheDocumentWhenThereIsOne) {
  std::string text = std::string(lab::default_topology());
  auto at = text.find("\"port_id\": \"3f2a9c1e");
  text.replace(at, std::string("\"port_id\": \"3f2a9c1e").size(), "\"port_id\": \"0f2a9c1e");
  EXPECT_TRUE(has(problems(text),
                  "vms[0] (a1): port_id '0f2a9c1e-a101-4d6b-9b8e-1c2d3e4f5a6b' is not a port of "
                  "the document"));
  EXPECT_TRUE(has(problems("{\"nodes\": []}"), "topology: nodes must list at least one node"));
  EXPECT_TRUE(has(problems("[1]"), "topology: is not a JSON object"));
}

TEST(Topology, AVmOfAnInlinePortTakesItsDeviceMacAddressesAndNodeFromIt) {
  // The e2e harness plugs VMs of ports it has not applied yet.
  Topology t = parse_topology(R"({"nodes": [{"name": "n1", "namespace": "node"}, {"name": "n2"}],
    "vms": [{"name": "c1", "node": "n2", "prefixlen": 16, "ipv6": true,
             "port": {"id": "5e7f0a1b-c2d3-4e5f-8a9b-0c1d2e3f4a5b", "network_id": "net-x",
                      "mac_address": "FA:16:3E:00:00:31", "binding:host_id": "n1",
                      "fixed_ips": [{"subnet_id": "s4", "ip_address": "10.3.0.31"},
                                    {"subnet_id": "s6", "ip_address": "fd00:3::31"}]}},
            {"name": "c2", "up": false,
             "port": {"id": "6f8a1b2c-d3e4-4f5a-9b0c-1d2e3f4a5b6c", "binding:host_id": "n1",
                      "mac_address": "fa:16:3e:00:00:32",
                      "fixed_ips": [{"ip_address": "10.3.0.32"}, {"ip_address": "fd00:3::32"}]}}]})");
  ASSERT_EQ(t.vms.size(), 2u);
  const auto& c1 = t.vms[0];
  EXPECT_EQ(c1.port_id, "5e7f0a1b-c2d3-4e5f-8a9b-0c1d2e3f4a5b");
  EXPECT_EQ(c1.device, "tap5e7f0a1b-c2");
  Port port;
  port.id = c1.port_id;
  EXPECT_EQ(c1.device, port.device_name());
  EXPECT_EQ(c1.mac, "fa:16:3e:00:00:31");
  EXPECT_EQ(c1.node, "n2"); // node overrides binding:host_id
  EXPECT_EQ(c1.network_id, "net-x");
  EXPECT_EQ(c1.addresses, (std::vector<std::string>{"10.3.0.31/16", "fd00:3::31/64"}));
  EXPECT_EQ(c1.mtu, 0u); // no network known: the kernel's default
  EXPECT_TRUE(c1.up);
  const auto& c2 = t.vms[1];
  EXPECT_EQ(c2.node, "n1");                                          // the port's binding
  EXPECT_EQ(c2.addresses, std::vector<std::string>{"10.3.0.32/24"}); // IPv6 off: v4 only, /24
  EXPECT_FALSE(c2.up);
  EXPECT_FALSE(c2.ipv6);
}

TEST(Topology, PrefixlenReplacesTheSubnetsIPv4LengthOfADocumentPort) {
  std::string text(lab::default_topology());
  auto at = text.find("\"name\": \"a1\"");
  ASSERT_NE(at, std::string::npos);
  text.insert(at, "\"prefixlen\": 28, ");
  Topology t = parse_topology(text);
  EXPECT_EQ(t.vms[0].addresses, std::vector<std::string>{"10.0.0.11/28"});
  EXPECT_EQ(t.vms[1].addresses, std::vector<std::string>{"10.0.0.12/24"});
}

TEST(Topology, AnInlinePortsProblemsNameTheVmAndThePortsField) {
  auto lines = problems(R"({"nodes": [{"name": "n1"}],
    "vms": [{"name": "v1", "port_id": "other", "prefixlen": 33,
             "port": {"id": "abc", "mac_address": "zz",
                      "fixed_ips": [{"ip_address": "10.0.0.300"}, 7, {}]}},
            {"name": "v2", "port": {"mac_address": "fa:16:3e:00:00:02"}},
            {"name": "v3", "port": "abc"}]})");
  // Each problem once, in the order of the entries and their fields.
  EXPECT_EQ(lines,
            (std::vector<std::string>{
                "vms[0] (v1): port_id 'other' is not the port's id 'abc'",
                "vms[0] (v1): prefixlen 33 is not in (0..32)",
                "vms[0] (v1): port.mac_address 'zz' is not a MAC address",
                "vms[0] (v1): port.fixed_ips[0].ip_address '10.0.0.300' is not an IP address",
                "vms[0] (v1): port.fixed_ips[1] is a number, not an object",
                "vms[0] (v1): port.fixed_ips[2].ip_address is missing",
                "vms[1] (v2): port.id is missing",
                "vms[2] (v3): port is a string, not an object",
            }));
}

} // namespace
} // namespace weft::test
