// The integration level: a Neutron-shaped document compiled by the loader
// (loader/fabric/compile.cpp) into the real port program's maps, and frames
// run through it with BPF_PROG_TEST_RUN, as Katran's tester runs fixtures
// after its control plane filled the maps. No namespaces as VMs, no traffic:
// a wrong map encoding (a key layout, a rule set, a flood list) shows here as
// a wrong verdict. Each case is data: who sends what, the verdict, and the
// counter it must move.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "loader/fabric/compile.hpp"
#include "loader/model/state.hpp"
#include "maps/registry.hpp"
#include "maps/weft_abi.h"
#include "tests/prog/packet.hpp"
#include "tests/prog/port_program.hpp"

namespace weft::test {
namespace {

// The document: tenant A's blue (VXLAN) with a1 (SSH from its subnet) and a2
// (the default group, an allowed pair 10.0.0.128/25), tenant B's red (VLAN)
// with b1 reusing a1's IP and MAC, port security off, and a2's neighbour a9
// on another node.
const char* const kDocument = R"({
  "networks": [
    {"id": "net-blue", "provider:network_type": "vxlan", "provider:segmentation_id": 1001},
    {"id": "net-red", "provider:network_type": "vlan", "provider:physical_network": "physnet1",
     "provider:segmentation_id": 101}],
  "subnets": [
    {"id": "sub-blue", "network_id": "net-blue", "cidr": "10.0.0.0/24"},
    {"id": "sub-red", "network_id": "net-red", "cidr": "10.0.0.0/24"}],
  "ports": [
    {"id": "a1000000-0000-4000-8000-000000000001", "network_id": "net-blue",
     "mac_address": "fa:16:3e:00:0a:01", "binding:host_id": "node1",
     "fixed_ips": [{"subnet_id": "sub-blue", "ip_address": "10.0.0.11"}],
     "security_groups": ["sg-ssh"]},
    {"id": "a2000000-0000-4000-8000-000000000002", "network_id": "net-blue",
     "mac_address": "fa:16:3e:00:0a:02", "binding:host_id": "node1",
     "fixed_ips": [{"subnet_id": "sub-blue", "ip_address": "10.0.0.12"}],
     "allowed_address_pairs": [{"ip_address": "10.0.0.128/25"}],
     "security_groups": ["sg-default"]},
    {"id": "a9000000-0000-4000-8000-000000000009", "network_id": "net-blue",
     "mac_address": "fa:16:3e:00:0a:09", "binding:host_id": "node2",
     "fixed_ips": [{"subnet_id": "sub-blue", "ip_address": "10.0.0.19"}],
     "security_groups": ["sg-default"]},
    {"id": "b1000000-0000-4000-8000-000000000001", "network_id": "net-red",
     "mac_address": "fa:16:3e:00:0a:01", "binding:host_id": "node1",
     "fixed_ips": [{"subnet_id": "sub-red", "ip_address": "10.0.0.11"}],
     "port_security_enabled": false, "security_groups": []}],
  "security_groups": [
    {"id": "sg-ssh", "security_group_rules": [
      {"direction": "egress", "ethertype": "IPv4"},
      {"direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
       "remote_ip_prefix": "10.0.0.0/24"}]},
    {"id": "sg-default", "security_group_rules": [
      {"direction": "egress", "ethertype": "IPv4"},
      {"direction": "ingress", "ethertype": "IPv4", "remote_group_id": "sg-default"}]}]
})";

struct Vm {
  std::string device; // tap + the first 11 characters of the port id
  Mac mac;
  Ipv4Address ip;
};

const Vm a1{"tapa1000000-00", mac("fa:16:3e:00:0a:01"), ipv4("10.0.0.11")};
const Vm a2{"tapa2000000-00", mac("fa:16:3e:00:0a:02"), ipv4("10.0.0.12")};
const Vm b1{"tapb1000000-00", mac("fa:16:3e:00:0a:01"), ipv4("10.0.0.11")};
const Mac a9_mac = mac("fa:16:3e:00:0a:09");
const Mac kNoMac{};

Mac mac_at(const Bytes& frame, std::size_t offset) {
  Mac out{};
  std::copy(frame.begin() + static_cast<std::ptrdiff_t>(offset),
            frame.begin() + static_cast<std::ptrdiff_t>(offset + out.size()), out.begin());
  return out;
}
const Ipv4Address a9_ip = ipv4("10.0.0.19");

void shell(const std::string& command) {
  if (std::system((command + " >/dev/null 2>&1").c_str()) != 0)
    throw std::runtime_error("failed: " + command);
}

// The node: its own network namespace with one veth per local port, named as
// the loader names a port's device.
class Node : public ::testing::Environment {
public:
  void SetUp() override {
    if (geteuid() != 0) {
      error() = "the integration tests need root (BPF_PROG_TEST_RUN, a network namespace)";
      return;
    }
    try {
      if (unshare(CLONE_NEWNET) != 0)
        throw std::runtime_error(std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno));
      shell("ip link set lo up");
      for (const Vm* vm : {&a1, &a2, &b1}) {
        shell("ip link add " + vm->device + " type veth peer name p" + vm->device.substr(3));
        shell("ip link set " + vm->device + " up");
      }
    } catch (const std::exception& e) {
      error() = e.what();
    }
  }
  static std::string& error() {
    static std::string text;
    return text;
  }
};

[[maybe_unused]] ::testing::Environment* const kNode =
    ::testing::AddGlobalTestEnvironment(new Node);

class CompiledTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_EQ(Node::error(), "");
    static PortProgram program;
    program_ = &program;
    program_->reset();
    State state = parse_state(kDocument);
    Desired desired = compile(state, "node1", {}, [](const std::string& device) {
      unsigned ifindex = if_nametoindex(device.c_str());
      return ifindex ? std::optional<int>(static_cast<int>(ifindex)) : std::nullopt;
    });
    // What reconcile would write, written as it is.
    for (const auto& [name, entries] : desired.maps) {
      bpf_map* map = bpf_object__find_map_by_name(program_->object(), name.c_str());
      ASSERT_NE(map, nullptr) << name;
      for (const auto& [key, value] : entries)
        ASSERT_EQ(
            bpf_map__update_elem(map, key.data(), key.size(), value.data(), value.size(), BPF_ANY),
            0)
            << "map " << name << " refused a compiled entry";
    }
    weft_node_config config{};
    config.abi_version = WEFT_ABI_VERSION;
    config.ct_max = bpf_map__max_entries(program_->maps().ct);
    config.ct_network_max = config.ct_max / 2;
    config.sg_generation = 1;
    std::uint32_t zero = 0;
    ASSERT_EQ(bpf_map__update_elem(program_->maps().config, &zero, sizeof zero, &config,
                                   sizeof config, BPF_ANY),
              0);
  }

  RunResult run(const Vm& from, const Bytes& frame) {
    return run_once(program_->program(), if_nametoindex(from.device.c_str()), frame);
  }

  // Packets counted on `vm`'s device under `reason`, over every CPU.
  std::uint64_t counted(const Vm& vm, weft_reason reason) const {
    auto all = read_counters(program_->maps());
    auto it = all.find({if_nametoindex(vm.device.c_str()), static_cast<std::uint32_t>(reason)});
    return it == all.end() ? 0 : it->second.packets;
  }

  PortProgram* program_ = nullptr;
};

Bytes tcp_syn(const Vm& from, const Mac& to_mac, Ipv4Address to_ip, std::uint16_t dport,
              Ipv4Address src = 0) {
  return PacketBuilder()
      .eth(to_mac, from.mac)
      .ipv4(src ? src : from.ip, to_ip)
      .tcp(40000, dport, kTcpSyn)
      .build();
}

Bytes ping(const Vm& from, const Mac& to_mac, Ipv4Address to_ip) {
  return PacketBuilder()
      .eth(to_mac, from.mac)
      .ipv4(from.ip, to_ip)
      .icmp(kIcmpEchoRequest, 0, 0x12340001)
      .payload(Bytes(16, 0))
      .build();
}

// One fixture: the frame a VM sends, the verdict, and the counter it moves.
struct Case {
  const char* what;
  const Vm* from;
  Bytes frame;
  std::uint32_t verdict;
  const Vm* counted_on;
  weft_reason reason;
};

TEST_F(CompiledTest, EachFrameMeetsTheVerdictTheDocumentGivesIt) {
  const Case cases[] = {
      {"SSH from the subnet reaches a1", &a2, tcp_syn(a2, a1.mac, a1.ip, 22), TC_ACT_REDIRECT, &a1,
       WEFT_DELIVERED},
      {"another port of a1 is closed", &a2, tcp_syn(a2, a1.mac, a1.ip, 23), TC_ACT_SHOT, &a1,
       WEFT_DROP_SG_INGRESS},
      {"a2 may send from its allowed pair", &a2, tcp_syn(a2, a1.mac, a1.ip, 22, ipv4("10.0.0.200")),
       TC_ACT_REDIRECT, &a2, WEFT_FWD_UNICAST},
      {"but not from outside it", &a2, tcp_syn(a2, a1.mac, a1.ip, 22, ipv4("10.0.0.100")),
       TC_ACT_SHOT, &a2, WEFT_DROP_SPOOF_IP},
      {"a1 is not in a2's default group", &a1, ping(a1, a2.mac, a2.ip), TC_ACT_SHOT, &a2,
       WEFT_DROP_SG_INGRESS},
      // red is a vlan network: a MAC it does not know would be outside the
      // fabric, on its physnet, which this node does not map.
      {"red's b1 cannot reach blue's a2", &b1, ping(b1, a2.mac, a2.ip), TC_ACT_SHOT, &b1,
       WEFT_DROP_NO_PHYSNET},
      {"a port of another node has no local device", &a1, ping(a1, a9_mac, a9_ip), TC_ACT_SHOT, &a1,
       WEFT_DROP_UNKNOWN_UNICAST},
  };
  for (const auto& c : cases) {
    std::uint64_t before = counted(*c.counted_on, c.reason);
    EXPECT_EQ(run(*c.from, c.frame).retval, c.verdict) << c.what;
    EXPECT_EQ(counted(*c.counted_on, c.reason), before + 1) << c.what;
  }
}

TEST_F(CompiledTest, TheArpResponderAnswersForEveryPortOfTheNetworkWhereverItIs) {
  Bytes request = PacketBuilder()
                      .eth(kBroadcastMac, a1.mac)
                      .arp(kArpRequest, a1.mac, a1.ip, kNoMac, a9_ip)
                      .build();
  RunResult reply = run(a1, request);
  EXPECT_EQ(reply.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counted(a1, WEFT_ARP_REPLY), 1u);
  ASSERT_GE(reply.out.size(), 42u);
  // The reply is a9's MAC for 10.0.0.19, to a1 (Ethernet, then ARP sha/spa).
  EXPECT_EQ(mac_at(reply.out, 6), a9_mac);
  EXPECT_EQ(mac_at(reply.out, 22), a9_mac);
  // red has no a9: b1's request is not answered.
  EXPECT_NE(run(b1, PacketBuilder()
                        .eth(kBroadcastMac, b1.mac)
                        .arp(kArpRequest, b1.mac, b1.ip, kNoMac, a9_ip)
                        .build())
                .retval,
            static_cast<std::uint32_t>(TC_ACT_REDIRECT));
}

TEST_F(CompiledTest, ABroadcastFloodsItsOwnSegmentOnly) {
  Bytes broadcast = PacketBuilder()
                        .eth(kBroadcastMac, b1.mac)
                        .ipv4(b1.ip, ipv4("255.255.255.255"))
                        .udp(5000, 5000)
                        .payload(Bytes(8, 0))
                        .build();
  // b1 is red's only local port: nobody to flood to, and nothing reaches blue.
  EXPECT_EQ(run(b1, broadcast).retval, static_cast<std::uint32_t>(TC_ACT_SHOT));
  EXPECT_EQ(counted(b1, WEFT_DROP_NO_FLOOD_TARGET), 1u);
  EXPECT_EQ(counted(a1, WEFT_DELIVERED) + counted(a2, WEFT_DELIVERED), 0u);
}

} // namespace
} // namespace weft::test
