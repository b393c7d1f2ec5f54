// The embedded demo topology (loader/lab/default_topology.json) yields the
// very document `weft lab state` printed when the demo was C++ tables: the
// tables and the loop that made the document are kept here, as the reference.
// When the demo grew to three nodes (the underlay and the provider switch),
// the tables grew with it, on purpose and nothing else: a node per port
// (a1, a2 and b1 stay on lab-node1; b2 moves to lab-node3 so that red crosses
// the provider switch), the nodes' tunnel IPs, a third blue VM on lab-node2,
// and a flat network on physnet2 whose group admits its subnet (its physical
// host is no group member). The four former ports keep their ids, MACs and
// addresses.
#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "loader/lab/topology.hpp"

namespace weft::test {
namespace {

using nlohmann::ordered_json;

struct DemoNetwork {
  const char* id;
  const char* name;
  const char* project_id;
  const char* type;
  std::uint32_t segmentation_id; // 0 for flat: null in the document
  const char* physical_network;  // nullptr for vxlan
  std::uint32_t mtu;
  const char* subnet_id;
  const char* group_id; // the project's "default" security group, or the flat network's own
  const char* cidr;
  const char* gateway_ip;
  const char* group_name;
  // Ingress from this prefix (IPv4 only) instead of from the group's members.
  const char* remote_ip_prefix;
};

struct DemoVm {
  const char* name;
  int network; // index into kNetworks
  const char* port_id;
  const char* mac;
  const char* ip;
  const char* host;
};

const DemoNetwork kNetworks[] = {
    {"5b1c3a2e-0d4f-4e6a-9b7c-1a2b3c4d5e01", "blue", "tenant-a", "vxlan", 1001, nullptr, 1450,
     "6c2d4b3f-1e5a-4f7b-8c8d-2b3c4d5e6f01", "a7e0c1d2-3f4a-4b5c-9d6e-7f8091a2b301", "10.0.0.0/24",
     "10.0.0.1", "default", nullptr},
    {"8d2e4f6a-1b3c-4d5e-8f7a-2b3c4d5e6f02", "red", "tenant-b", "vlan", 101, "physnet1", 1500,
     "9e3f5a7b-2c4d-4e6f-9a8b-3c4d5e6f7a02", "b8f1d2e3-4a5b-4c6d-8e7f-8091a2b3c402", "10.0.0.0/24",
     "10.0.0.1", "default", nullptr},
    {"2f7a9c4e-3d5b-4a6c-8e9f-3c4d5e6f7a03", "lan", "tenant-a", "flat", 0, "physnet2", 1500,
     "4a8b0c2d-3e5f-4a7b-9c8d-4d5e6f7a8b03", "c9a2e3f4-5b6c-4d7e-9f80-91a2b3c4d503", "10.20.0.0/24",
     "10.20.0.1", "lan", "10.20.0.0/24"},
};

const char* const kNodes[][2] = {
    {"lab-node1", "172.31.0.1"}, {"lab-node2", "172.31.0.2"}, {"lab-node3", "172.31.0.3"}};

const DemoVm kVms[] = {
    {"a1", 0, "3f2a9c1e-a101-4d6b-9b8e-1c2d3e4f5a6b", "fa:16:3e:00:00:11", "10.0.0.11",
     "lab-node1"},
    {"a2", 0, "7c41d2b0-a202-4e1f-8a3c-5d6e7f809a1b", "fa:16:3e:0a:00:12", "10.0.0.12",
     "lab-node1"},
    {"a3", 0, "1d6e8f0a-a303-4b2c-8d4e-6f7a8b9c0d1e", "fa:16:3e:0a:00:13", "10.0.0.13",
     "lab-node2"},
    {"b1", 1, "9e5b3a7d-b101-4c2e-9f4a-6b7c8d9e0f1a", "fa:16:3e:00:00:11", "10.0.0.11",
     "lab-node1"},
    {"b2", 1, "c06d8e2f-b202-4a5b-8c9d-0e1f2a3b4c5d", "fa:16:3e:0b:00:22", "10.0.0.22",
     "lab-node3"},
    {"c1", 2, "e4f6a8b0-c101-4d3e-9f5a-7b8c9d0e1f2a", "fa:16:3e:0c:00:21", "10.20.0.21",
     "lab-node2"},
    {"c2", 2, "5a7c9e1f-c202-4e4f-8a6b-8c9d0e1f2a3b", "fa:16:3e:0c:00:22", "10.20.0.22",
     "lab-node3"},
};

ordered_json document_of_the_tables() {
  ordered_json networks = ordered_json::array(), subnets = ordered_json::array(),
               groups = ordered_json::array(), ports = ordered_json::array();
  for (const auto& net : kNetworks) {
    networks.push_back(
        {{"id", net.id},
         {"name", net.name},
         {"project_id", net.project_id},
         {"provider:network_type", net.type},
         {"provider:segmentation_id",
          net.segmentation_id ? ordered_json(net.segmentation_id) : ordered_json(nullptr)},
         {"provider:physical_network",
          net.physical_network ? ordered_json(net.physical_network) : ordered_json(nullptr)},
         {"mtu", net.mtu},
         {"port_security_enabled", true}});
    subnets.push_back({{"id", net.subnet_id},
                       {"network_id", net.id},
                       {"name", std::string(net.name) + "-subnet"},
                       {"project_id", net.project_id},
                       {"ip_version", 4},
                       {"cidr", net.cidr},
                       {"gateway_ip", net.gateway_ip},
                       {"enable_dhcp", false}});
    ordered_json rules = ordered_json::array();
    int n = 0;
    for (const char* direction : {"egress", "ingress"})
      for (const char* ethertype : {"IPv4", "IPv6"}) {
        bool ingress = std::string(direction) == "ingress";
        bool from_prefix = ingress && net.remote_ip_prefix;
        if (from_prefix && std::string(ethertype) == "IPv6")
          continue;
        rules.push_back(
            {{"id", std::string(net.group_id).substr(0, 34) + "0" + std::to_string(++n)},
             {"direction", direction},
             {"ethertype", ethertype},
             {"protocol", nullptr},
             {"port_range_min", nullptr},
             {"port_range_max", nullptr},
             {"remote_ip_prefix",
              from_prefix ? ordered_json(net.remote_ip_prefix) : ordered_json(nullptr)},
             {"remote_group_id",
              ingress && !from_prefix ? ordered_json(net.group_id) : ordered_json(nullptr)}});
      }
    groups.push_back({{"id", net.group_id},
                      {"name", net.group_name},
                      {"project_id", net.project_id},
                      {"stateful", true},
                      {"security_group_rules", rules}});
  }
  for (const auto& vm : kVms) {
    const DemoNetwork& net = kNetworks[vm.network];
    ports.push_back({{"id", vm.port_id},
                     {"name", vm.name},
                     {"network_id", net.id},
                     {"project_id", net.project_id},
                     {"mac_address", vm.mac},
                     {"fixed_ips",
                      ordered_json::array({{{"subnet_id", net.subnet_id}, {"ip_address", vm.ip}}})},
                     {"binding:host_id", vm.host},
                     {"device_owner", "compute:nova"},
                     {"security_groups", ordered_json::array({net.group_id})},
                     {"port_security_enabled", true},
                     {"allowed_address_pairs", ordered_json::array()}});
  }
  ordered_json nodes = ordered_json::array();
  for (const auto& node : kNodes)
    nodes.push_back({{"name", node[0]}, {"tunnel_ip", node[1]}});
  return {{"nodes", nodes},
          {"networks", networks},
          {"subnets", subnets},
          {"security_groups", groups},
          {"ports", ports}};
}

TEST(DefaultTopology, YieldsTheDocumentOfTheFormerTablesKeyForKeyInOrder) {
  lab::Topology topology = lab::parse_topology(lab::default_topology());
  ASSERT_TRUE(topology.document.has_value());
  // `weft lab state` prints the document with dump(2): the same text.
  EXPECT_EQ(ordered_json::parse(*topology.document).dump(2), document_of_the_tables().dump(2));
}

TEST(DefaultTopology, PlugsEachVmOfTheTablesWithItsPortsDeviceMacAndAddress) {
  lab::Topology topology = lab::parse_topology(lab::default_topology());
  ASSERT_EQ(topology.vms.size(), std::size(kVms));
  for (std::size_t i = 0; i < std::size(kVms); ++i) {
    const auto& vm = topology.vms[i];
    EXPECT_EQ(vm.name, kVms[i].name);
    EXPECT_EQ(vm.port_id, kVms[i].port_id);
    EXPECT_EQ(vm.device, "tap" + std::string(kVms[i].port_id).substr(0, 11));
    EXPECT_EQ(vm.mac, kVms[i].mac);
    EXPECT_EQ(vm.addresses, std::vector<std::string>{std::string(kVms[i].ip) + "/24"});
    EXPECT_EQ(vm.node, kVms[i].host);
    EXPECT_EQ(vm.mtu, kNetworks[kVms[i].network].mtu);
    EXPECT_EQ(vm.network_name, kNetworks[kVms[i].network].name);
    EXPECT_TRUE(vm.up);
  }
}

} // namespace
} // namespace weft::test
