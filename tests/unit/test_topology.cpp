// A lab's topology as data (loader/lab/topology.cpp): the embedded demo, VMs
// described by the document or by themselves, and every problem named.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
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

TEST(Topology, TheEmbeddedDemoIsThreeNodesTwoTenantsAndAPhysicalHost) {
  Topology t = parse_topology(lab::default_topology());
  ASSERT_EQ(t.nodes.size(), 3u);
  EXPECT_EQ(t.nodes[0].name, "lab-node1");
  EXPECT_EQ(t.nodes[0].namespace_, "node1");
  ASSERT_TRUE(t.underlay.has_value());
  EXPECT_EQ(t.underlay->cidr, "172.31.0.0/24");
  for (std::size_t i = 0; i < t.nodes.size(); ++i) {
    EXPECT_EQ(t.nodes[i].tunnel_ip, "172.31.0." + std::to_string(i + 1));
    EXPECT_EQ(t.nodes[i].uplink, lab::kUplinkDevice);
    EXPECT_EQ(t.nodes[i].physical_interface_mappings,
              (std::vector<std::pair<std::string, std::string>>{{"physnet1", "eth-physnet1"},
                                                                {"physnet2", "eth-physnet2"}}));
  }
  ASSERT_EQ(t.vms.size(), 7u);
  const auto& a1 = t.vms[0];
  EXPECT_EQ(a1.name, "a1");
  EXPECT_EQ(a1.node, "lab-node1");
  EXPECT_EQ(a1.device, "tap3f2a9c1e-a1");
  EXPECT_EQ(a1.mac, "fa:16:3e:00:00:11");
  EXPECT_EQ(a1.addresses, std::vector<std::string>{"10.0.0.11/24"});
  EXPECT_EQ(a1.network_name, "blue");
  EXPECT_EQ(a1.project_id, "tenant-a");
  EXPECT_EQ(a1.mtu, 1450u);
  const auto& b1 = t.vms[3];
  // Another project's VM with a1's very MAC and IP, on a VLAN network, on a1's node.
  EXPECT_EQ(b1.name, "b1");
  EXPECT_EQ(b1.mac, a1.mac);
  EXPECT_EQ(b1.addresses, a1.addresses);
  EXPECT_EQ(b1.node, a1.node);
  EXPECT_EQ(b1.network_name, "red");
  EXPECT_NE(b1.network_id, a1.network_id);
  EXPECT_EQ(b1.mtu, 1500u);
  // Each network crosses nodes: blue over the underlay, red and lan over the
  // provider switch, and lan reaches its physical host.
  std::set<std::string> blue, red, lan;
  for (const auto& vm : t.vms)
    (vm.network_name == "blue" ? blue : vm.network_name == "red" ? red : lan).insert(vm.node);
  EXPECT_EQ(blue.size(), 2u);
  EXPECT_EQ(red.size(), 2u);
  EXPECT_EQ(lan.size(), 2u);
  ASSERT_EQ(t.physical_hosts.size(), 1u);
  const auto& ph1 = t.physical_hosts[0];
  EXPECT_EQ(ph1.name, "ph1");
  EXPECT_EQ(ph1.physnet, "physnet2");
  EXPECT_EQ(ph1.network_name, "lan");
  EXPECT_EQ(ph1.network_type, "flat");
  EXPECT_TRUE(t.expect_reachable(t.vms[5], ph1));
  EXPECT_TRUE(t.expect_reachable(ph1, t.vms[6]));
  EXPECT_TRUE(t.expect_reachable(a1, t.vms[2])); // a3, on lab-node2
  EXPECT_FALSE(t.expect_reachable(a1, b1));
  ASSERT_TRUE(t.document.has_value());
  State state = parse_state(*t.document);
  EXPECT_EQ(state.ports.size(), 7u);
  EXPECT_EQ(state.networks.size(), 3u);
  EXPECT_EQ(state.nodes.size(), 3u);
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

// Three nodes on an underlay and a provider switch, two networks over them
// and a host on the flat one: what the multi-node lab is made of.
const char* kMultiNode = R"({
  "underlay": {"cidr": "172.31.9.0/24"},
  "nodes": [{"name": "n1", "physical_interface_mappings": {"physnet2": "eth-p2", "physnet1": "eth-p1"}},
            {"name": "n2", "tunnel_ip": "172.31.9.20",
             "physical_interface_mappings": {"physnet1": "eth-p1"}},
            {"name": "n3"}],
  "vms": [{"name": "v1", "port_id": "port-v1"}, {"name": "v2", "port_id": "port-v2"},
          {"name": "v3", "port_id": "port-v3"}, {"name": "f1", "port_id": "port-f1"},
          {"name": "f3", "port_id": "port-f3"}, {"name": "r1", "port_id": "port-r1"},
          {"name": "r2", "port_id": "port-r2"}, {"name": "r3", "port_id": "port-r3"}],
  "physical_hosts": [{"name": "ph", "physnet": "physnet2", "mac": "52:54:00:00:00:01",
                      "addresses": ["10.2.0.100/24"]}],
  "document": {
    "nodes": [{"name": "n3", "tunnel_ip": "172.31.9.30"}],
    "networks": [{"id": "net-x", "name": "x", "provider:network_type": "vxlan",
                  "provider:segmentation_id": 5},
                 {"id": "net-f", "name": "f", "provider:network_type": "flat",
                  "provider:physical_network": "physnet2"},
                 {"id": "net-r", "name": "r", "provider:network_type": "vlan",
                  "provider:physical_network": "physnet1", "provider:segmentation_id": 7}],
    "subnets": [{"id": "s-x", "network_id": "net-x", "ip_version": 4, "cidr": "10.1.0.0/24"},
                {"id": "s-f", "network_id": "net-f", "ip_version": 4, "cidr": "10.2.0.0/24"},
                {"id": "s-r", "network_id": "net-r", "ip_version": 4, "cidr": "10.3.0.0/24"}],
    "ports": [
      {"id": "port-v1", "network_id": "net-x", "mac_address": "fa:16:3e:00:01:01", "binding:host_id": "n1",
       "fixed_ips": [{"subnet_id": "s-x", "ip_address": "10.1.0.1"}]},
      {"id": "port-v2", "network_id": "net-x", "mac_address": "fa:16:3e:00:01:02", "binding:host_id": "n2",
       "fixed_ips": [{"subnet_id": "s-x", "ip_address": "10.1.0.2"}]},
      {"id": "port-v3", "network_id": "net-x", "mac_address": "fa:16:3e:00:01:03", "binding:host_id": "n1",
       "fixed_ips": [{"subnet_id": "s-x", "ip_address": "10.1.0.3"}]},
      {"id": "port-f1", "network_id": "net-f", "mac_address": "fa:16:3e:00:02:01", "binding:host_id": "n1",
       "fixed_ips": [{"subnet_id": "s-f", "ip_address": "10.2.0.1"}]},
      {"id": "port-f3", "network_id": "net-f", "mac_address": "fa:16:3e:00:02:03", "binding:host_id": "n3",
       "fixed_ips": [{"subnet_id": "s-f", "ip_address": "10.2.0.3"}]},
      {"id": "port-r1", "network_id": "net-r", "mac_address": "fa:16:3e:00:03:01", "binding:host_id": "n1",
       "fixed_ips": [{"subnet_id": "s-r", "ip_address": "10.3.0.1"}]},
      {"id": "port-r2", "network_id": "net-r", "mac_address": "fa:16:3e:00:03:02", "binding:host_id": "n2",
       "fixed_ips": [{"subnet_id": "s-r", "ip_address": "10.3.0.2"}]},
      {"id": "port-r3", "network_id": "net-r", "mac_address": "fa:16:3e:00:03:03", "binding:host_id": "n3",
       "fixed_ips": [{"subnet_id": "s-r", "ip_address": "10.3.0.3"}]}]}})";

const lab::LabEndpoint& endpoint(const Topology& t, const std::string& name) {
  for (const auto* e : t.endpoints())
    if (e->name == name)
      return *e;
  throw std::logic_error("no endpoint " + name);
}

TEST(Topology, NodesOnAnUnderlayGetTheirTunnelIpsAndTheDocumentNamesThemAll) {
  Topology t = parse_topology(kMultiNode);
  ASSERT_TRUE(t.underlay.has_value());
  EXPECT_EQ(t.underlay->cidr, "172.31.9.0/24");
  EXPECT_EQ(t.underlay->prefixlen, 24);
  ASSERT_EQ(t.nodes.size(), 3u);
  EXPECT_EQ(t.nodes[0].tunnel_ip, "172.31.9.1");  // the underlay's host number 1
  EXPECT_EQ(t.nodes[1].tunnel_ip, "172.31.9.20"); // its own
  EXPECT_EQ(t.nodes[2].tunnel_ip, "172.31.9.30"); // the document's
  for (const auto& node : t.nodes)
    EXPECT_EQ(node.uplink, lab::kUplinkDevice) << node.name;
  // Sorted by physnet, as --physical-interface-mappings lists them.
  using Mapping = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(t.nodes[0].physical_interface_mappings,
            (Mapping{{"physnet1", "eth-p1"}, {"physnet2", "eth-p2"}}));
  EXPECT_TRUE(t.nodes[2].physical_interface_mappings.empty());
  EXPECT_TRUE(t.has_provider());
  // The document every node applies names every VTEP: the entry it had,
  // completed, and the others added.
  State state = parse_state(*t.document);
  ASSERT_EQ(state.nodes.size(), 3u);
  EXPECT_EQ(state.nodes[0].name, "n3");
  EXPECT_EQ(state.nodes[0].tunnel_ip->str(), "172.31.9.30");
  EXPECT_EQ(state.nodes[1].name, "n1");
  EXPECT_EQ(state.nodes[1].tunnel_ip->str(), "172.31.9.1");
  EXPECT_EQ(state.nodes[2].tunnel_ip->str(), "172.31.9.20");
  // VMs know their network's kind; the host is on its physnet's flat network.
  const auto& r1 = t.vms[5];
  EXPECT_EQ(r1.network_type, "vlan");
  EXPECT_EQ(r1.physical_network, "physnet1");
  ASSERT_EQ(t.physical_hosts.size(), 1u);
  const auto& ph = t.physical_hosts[0];
  EXPECT_EQ(ph.physnet, "physnet2");
  EXPECT_EQ(ph.node, "");
  EXPECT_EQ(ph.network_id, "net-f");
  EXPECT_EQ(ph.network_type, "flat");
  EXPECT_EQ(ph.mtu, 1500u);
  EXPECT_EQ(ph.mac, "52:54:00:00:00:01");
  EXPECT_EQ(ph.addresses, std::vector<std::string>{"10.2.0.100/24"});
  EXPECT_EQ(t.endpoints().size(), 9u);
  EXPECT_EQ(t.endpoints().back(), &ph);
}

TEST(Topology, ReachableIsOneNetworkAndSomethingThatCarriesItBetweenTheEnds) {
  Topology t = parse_topology(kMultiNode);
  auto expect = [&](const std::string& from, const std::string& to) {
    return t.expect_reachable(endpoint(t, from), endpoint(t, to));
  };
  EXPECT_TRUE(expect("v1", "v3"));  // one node
  EXPECT_TRUE(expect("v1", "v2"));  // VXLAN over the underlay
  EXPECT_TRUE(expect("r1", "r2"));  // VLAN: both nodes map physnet1
  EXPECT_FALSE(expect("r1", "r3")); // n3 maps no physnet1
  EXPECT_FALSE(expect("f1", "f3")); // nor physnet2
  EXPECT_TRUE(expect("f1", "ph"));  // the flat network's host
  EXPECT_TRUE(expect("ph", "f1"));
  EXPECT_FALSE(expect("f3", "ph"));
  EXPECT_FALSE(expect("v1", "r1")); // another network
  EXPECT_FALSE(expect("v1", "ph"));

  // Without an underlay (the single-node format), VXLAN stays on its node.
  std::string text = kMultiNode;
  text.replace(text.find(R"("underlay": {"cidr": "172.31.9.0/24"},)"),
               std::string(R"("underlay": {"cidr": "172.31.9.0/24"},)").size(), "");
  text.replace(text.find(R"("tunnel_ip": "172.31.9.20",)"),
               std::string(R"("tunnel_ip": "172.31.9.20",)").size(), "");
  Topology plain = parse_topology(text);
  EXPECT_FALSE(plain.underlay.has_value());
  EXPECT_EQ(plain.nodes[0].tunnel_ip, "");
  EXPECT_EQ(plain.nodes[0].uplink, "");
  EXPECT_FALSE(plain.expect_reachable(endpoint(plain, "v1"), endpoint(plain, "v2")));
  EXPECT_TRUE(plain.expect_reachable(endpoint(plain, "v1"), endpoint(plain, "v3")));
  // ... and the document's nodes are as given.
  EXPECT_EQ(parse_state(*plain.document).nodes.size(), 1u);
}

TEST(Topology, UnderlayProviderAndHostProblemsNameTheEntryAndTheField) {
  auto lines = problems(R"({"underlay": {"cidr": "172.31.0.0/24", "mtu": 9000},
    "nodes": [{"name": "n1", "tunnel_ip": "10.0.0.1",
               "physical_interface_mappings": {"physnet1": "eth-underlay", "physnet2": "tapx",
                                               "a:b": "eth1", "physnet3": "a-very-long-device",
                                               "physnet4": "eth4", "physnet5": "eth4",
                                               "physnet6": 7}},
              {"name": "n2", "namespace": "provider", "tunnel_ip": "172.31.0.255"},
              {"name": "n3", "tunnel_ip": "172.31.0.1", "physical_interface_mappings": []},
              {"name": "n4", "tunnel_ip": "172.31.0.1"},
              {"name": "n5", "tunnel_ip": "fd00::1"}],
    "physical_hosts": [{"name": "h1", "physnet": "physnet9", "mac": "01:00:5e:00:00:01",
                        "addresses": ["fd00::1/64", "10.2.0.1"], "vlan": 5},
                       {"name": "n1", "physnet": "physnet4"},
                       {"name": "h1", "physnet": "physnet4", "mac": "52:54:00:00:00:02"},
                       7]})");
  // Each problem once, in the order of the entries and their fields.
  ASSERT_EQ(lines.size(), 22u);
  EXPECT_EQ(lines.at(0), "underlay: mtu is not a field of the underlay");
  EXPECT_EQ(lines.at(1),
            "nodes[0]: physical_interface_mappings 'a:b' is not a physnet name (no ':', ',' "
            "or blanks)");
  EXPECT_EQ(lines.at(2),
            "nodes[0]: physical_interface_mappings.physnet1 'eth-underlay' is the uplink; the "
            "lab gives each physnet a device of its own");
  EXPECT_EQ(lines.at(3),
            "nodes[0]: physical_interface_mappings.physnet2 'tapx' is a name of the ports' "
            "kind (tap…) or lo; take another");
  EXPECT_EQ(lines.at(4),
            "nodes[0]: physical_interface_mappings.physnet3 'a-very-long-device' is not a "
            "device name (1 to 15 characters, no '/', ':', ',' or blanks)");
  EXPECT_EQ(lines.at(5),
            "nodes[0]: physical_interface_mappings.physnet5 'eth4' is the device of 'physnet4' "
            "too");
  EXPECT_EQ(lines.at(6),
            "nodes[0]: physical_interface_mappings.physnet6 must be a string, not a number");
  EXPECT_EQ(lines.at(7),
            "nodes[1]: namespace 'provider' is the namespace of the provider switch already");
  EXPECT_EQ(lines.at(8), "nodes[2]: physical_interface_mappings is a list, not an object");
  EXPECT_EQ(lines.at(9), "nodes[4]: tunnel_ip 'fd00::1' is not an IPv4 address");
  EXPECT_EQ(lines.at(10), "nodes[0]: tunnel_ip '10.0.0.1' is not in the underlay 172.31.0.0/24");
  EXPECT_EQ(lines.at(11), "nodes[1]: tunnel_ip '172.31.0.255' is the underlay's broadcast address");
  EXPECT_EQ(lines.at(12), "nodes[3]: tunnel_ip '172.31.0.1' is nodes[2]'s too");
  EXPECT_EQ(lines.at(13), "physical_hosts[0]: vlan is not a field of a physical host");
  EXPECT_EQ(lines.at(14), "physical_hosts[0] (h1): physnet 'physnet9' is mapped by no node "
                          "(nodes[].physical_interface_mappings): the host would be alone on it");
  EXPECT_EQ(lines.at(15),
            "physical_hosts[0] (h1): mac '01:00:5e:00:00:01' is not a unicast MAC address");
  EXPECT_EQ(lines.at(16),
            "physical_hosts[0] (h1): addresses[0] 'fd00::1/64' is not IPv4 (IPv6 is off in "
            "the namespace)");
  EXPECT_EQ(lines.at(17),
            "physical_hosts[0] (h1): addresses[1] '10.2.0.1' is not an address with a "
            "prefix length");
  EXPECT_EQ(lines.at(18), "physical_hosts[1] (n1): name 'n1' is the namespace of nodes[0] already");
  EXPECT_EQ(lines.at(19), "physical_hosts[1] (n1): mac is missing");
  EXPECT_EQ(lines.at(20), "physical_hosts[2] (h1): name 'h1' is given twice");
  EXPECT_EQ(lines.at(21), "physical_hosts[3]: is a number, not an object");
}

TEST(Topology, TunnelIpsNeedAnUnderlayAndAgreeWithTheDocument) {
  EXPECT_EQ(problems(R"({"nodes": [{"name": "n1", "tunnel_ip": "172.31.0.1"}]})"),
            std::vector<std::string>{
                "nodes[0]: tunnel_ip needs an underlay (underlay.cidr) to be addressed on"});
  EXPECT_EQ(problems(R"({"underlay": {"cidr": "172.31.0.0/24"},
    "nodes": [{"name": "n1", "tunnel_ip": "172.31.0.1"}],
    "document": {"nodes": [{"name": "n1", "tunnel_ip": "172.31.0.2"}]}})"),
            std::vector<std::string>{
                "nodes[0]: tunnel_ip '172.31.0.1' is not the document's '172.31.0.2' for node "
                "'n1'"});
  EXPECT_EQ(problems(R"({"underlay": {"cidr": "fd00::/64"}, "nodes": [{"name": "n1"}]})"),
            std::vector<std::string>{"underlay: cidr 'fd00::/64' is not an IPv4 network with "
                                     "room for hosts (prefix length 1..30)"});
  EXPECT_EQ(problems(R"({"underlay": {"cidr": "172.31.0.0/30"},
    "nodes": [{"name": "n1"}, {"name": "n2"}, {"name": "n3"}]})"),
            std::vector<std::string>{"nodes[2]: tunnel_ip is missing and the underlay "
                                     "172.31.0.0/30 has no host number 3 to give"});
  // A VM may not take a namespace the lab's switches or nodes have.
  EXPECT_EQ(problems(R"({"nodes": [{"name": "n1", "namespace": "node"}],
    "vms": [{"name": "underlay", "port_id": "p1", "mac": "fa:16:3e:00:00:01"},
            {"name": "node", "port_id": "p2", "mac": "fa:16:3e:00:00:02"}]})"),
            (std::vector<std::string>{
                "vms[0] (underlay): name 'underlay' is the namespace of the underlay switch "
                "already",
                "vms[1] (node): name 'node' is the namespace of nodes[0] already"}));
}

} // namespace
} // namespace weft::test
