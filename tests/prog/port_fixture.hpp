// The node the port-program tests run on: a private network namespace with
// veth pairs standing for port devices, the port program loaded with private
// maps, and a fixture that writes ports, networks and policies into those
// maps as the loader would, runs the program on built frames through
// BPF_PROG_TEST_RUN and reads the counters back.
//
// The test binary moves into a network namespace of its own and creates the
// veth pairs there (the program keys ports by skb->ifindex, and flooding
// really transmits clones with bpf_clone_redirect). The namespace and its
// devices go away with the process. bpf_redirect is not executed in a test
// run (the program returns TC_ACT_REDIRECT), so where a frame went is read
// from the stats map: the destination port counts `delivered`, the source
// port the verdict reason.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// The ABI first; the skeleton stays inside port_program.cpp.
#include "maps/weft_abi.h"
#include "tests/prog/packet.hpp"
#include "tests/prog/port_program.hpp"
#include "tests/prog/sg_policy.hpp"

namespace weft::test {

// --- the private network namespace -------------------------------------------

// Port devices are the host ends wtp0..wtp9; each has a peer wtp<N>p.
inline constexpr int kDeviceCount = 10;

std::string device_name(int index);
std::string peer_name(const std::string& device);

// Runs a command (ip …) in the namespace; throws std::runtime_error if it fails.
void shell(const std::string& command);

// Set up once for the test binary (registered in port_fixture.cpp).
class PrivateNetwork : public ::testing::Environment {
public:
  void SetUp() override;

  // Not empty when the tests cannot run here (they then fail, never skip).
  static std::string& unavailable_reason();
  static std::string& setup_error();
};

// --- counters ----------------------------------------------------------------

std::string reason_name(std::uint32_t reason);
std::string ifname(std::uint32_t ifindex);

// Packets by (device, reason): compared whole, so a test also says what was
// NOT counted (no delivery to the sender, a down port, another network).
using Counts = std::map<std::pair<std::string, std::string>, std::uint64_t>;

// --- sockets on the peers ----------------------------------------------------

// A frame as an AF_PACKET socket receives it: the kernel takes the outer
// 802.1Q/802.1ad tag off into metadata (PACKET_AUXDATA gives it back).
struct Received {
  Bytes frame;
  std::optional<std::uint16_t> vlan_tci; // the tag in metadata, if any
  std::uint16_t vlan_tpid = 0;
  // The VLAN ids of its tags, outermost first: metadata, then those in the bytes.
  std::vector<std::uint16_t> vlan_ids() const;
};

// An AF_PACKET socket on a device: what a VM behind that port would see, and
// its way to send.
class Wire {
public:
  explicit Wire(const std::string& device);
  ~Wire();
  Wire(const Wire&) = delete;
  Wire& operator=(const Wire&) = delete;

  void send(const Bytes& frame);
  // Whether `frame` arrives (byte for byte, incoming) within `timeout`.
  bool receives(const Bytes& frame, std::chrono::milliseconds timeout);
  // The next incoming frame within `timeout`.
  std::optional<Received> next(std::chrono::milliseconds timeout);
  // Every incoming frame until none came for `quiet`.
  std::vector<Received> drain(std::chrono::milliseconds quiet);

private:
  unsigned ifindex_;
  int fd_ = -1;
};

// A program attached with tcx to a device's ingress for the life of the
// object: the kernel's real receive path, which BPF_PROG_TEST_RUN skips
// (VLAN tags lifted into metadata, redirects executed).
class TcxIngress {
public:
  TcxIngress(const bpf_program* program, std::uint32_t ifindex);
  ~TcxIngress();
  TcxIngress(const TcxIngress&) = delete;
  TcxIngress& operator=(const TcxIngress&) = delete;

private:
  int fd_ = -1;
};

// --- the fixture -------------------------------------------------------------

// The fixture's policy for secured ports: rule 0 admits ingress IPv4, rule 1
// egress IPv4, rule 2 ingress IPv6, rule 3 egress IPv6, each of any protocol
// from or to anyone (like a group with the four "any" rules).
inline constexpr std::uint32_t kOpenPolicy = 1;

struct VmPort {
  std::string device;
  Mac mac;
  Ipv4Address ip;
  std::uint32_t net_id;
  bool security;
  bool up;
  std::uint32_t ifindex = 0;
  // Its groups, as a policy id (0: no groups); only with port security.
  std::uint32_t policy = kOpenPolicy;
  // Its groups are stateful (WEFT_PORT_STATEFUL); only with port security.
  bool stateful = true;
};

// fe80::/64 + modified EUI-64, as a VM derives it from its MAC.
Ipv6Address link_local(const Mac& mac);

inline constexpr std::uint32_t kBlue = 1;   // vm1 vm2 vm3 (vm4 down)
inline constexpr std::uint32_t kRed = 2;    // vm5 (vm1's MAC), vm6 (vm2's IP)
inline constexpr std::uint32_t kGreen = 3;  // vm7 vm8, port security off
inline constexpr std::uint32_t kLonely = 4; // vm9 alone
inline constexpr std::uint32_t kNoFloodList = 5;

inline constexpr Mac kZeroMac = {};
inline const Mac kStrangerMac = mac("fa:16:3e:de:ad:00");

// The loader's smallest conntrack tables (`node install --ct-max 1024`).
inline constexpr std::uint32_t kSmallCtMax = 1024;

class PortProgTest : public ::testing::Test {
protected:
  // The node: four networks, nine VM ports, one device that is not a port.
  VmPort vm1{device_name(0), mac("fa:16:3e:00:01:01"), ipv4("10.0.0.1"), kBlue, true, true};
  VmPort vm2{device_name(1), mac("fa:16:3e:00:01:02"), ipv4("10.0.0.2"), kBlue, true, true};
  VmPort vm3{device_name(2), mac("fa:16:3e:00:01:03"), ipv4("10.0.0.3"), kBlue, true, true};
  VmPort vm4{device_name(3), mac("fa:16:3e:00:01:04"), ipv4("10.0.0.4"), kBlue, true, false};
  // Tenants may reuse MACs and IPs: vm5 has vm1's MAC, vm6 has vm2's IP.
  VmPort vm5{device_name(4), mac("fa:16:3e:00:01:01"), ipv4("10.0.0.5"), kRed, true, true};
  VmPort vm6{device_name(5), mac("fa:16:3e:00:02:06"), ipv4("10.0.0.2"), kRed, true, true};
  VmPort vm7{device_name(6), mac("fa:16:3e:00:03:07"), ipv4("10.3.0.7"), kGreen, false, true};
  VmPort vm8{device_name(7), mac("fa:16:3e:00:03:08"), ipv4("10.3.0.8"), kGreen, false, true};
  VmPort vm9{device_name(8), mac("fa:16:3e:00:04:09"), ipv4("10.4.0.9"), kLonely, true, true};
  std::string stranger = device_name(9);

  // vm6's second fixed IP, known only in the red network.
  const Ipv4Address red_only_ip = ipv4("10.0.0.66");
  // vm1's allowed address pair: 10.0.0.128/25 from its own MAC.
  const Mac pair_mac = mac("fa:16:3e:aa:00:01");
  const Ipv4Address pair_cidr = ipv4("10.0.0.128");
  static constexpr std::uint32_t kPairPrefixLen = 25;

  void SetUp() override;

  const PortMaps& maps() const { return program_->maps(); }

  template <class Key, class Value> void put(bpf_map* map, const Key& key, const Value& value) {
    put_raw(map, &key, sizeof key, &value, sizeof value);
  }

  void add_network(std::uint32_t net_id, weft_net_type type, std::uint32_t segmentation_id);
  // Writes the network's entry, and the copy its ports carry, as apply does.
  void set_network(std::uint32_t net_id, const weft_network& network);
  // The port's entry in the ports map (net, flags, MAC, policy) as it is now.
  void write_port(const VmPort& port);
  // What the loader writes for a Neutron port: the port, its MAC as a
  // source, its place in the segment's FDB and flood list, its fixed IP and
  // its EUI-64 link-local address.
  void add_port(VmPort& port);
  void allow_mac(const VmPort& port, const Mac& mac);
  void allow_source(const VmPort& port, const Mac& mac, Ipv4Address ip, std::uint32_t prefix_len);
  void allow_source6(const VmPort& port, const Mac& mac, const Ipv6Address& ip,
                     std::uint32_t prefix_len);
  void add_fixed_ip(const VmPort& port, Ipv4Address ip);
  void add_address_pair(const VmPort& port, const Mac& mac, Ipv4Address ip,
                        std::uint32_t prefix_len);

  // --- security groups (see sg_policy.hpp) ---

  // sg_l4: the rules of `policy` a (proto, port block) satisfies; an ICMP
  // block is icmp_l4(type, code) with 8 (a type) or 16 (type and code) bits.
  void put_sg_l4(std::uint32_t policy, weft_direction direction, std::uint8_t family,
                 std::uint8_t proto, std::uint16_t block_start, std::uint32_t block_prefix_len,
                 std::initializer_list<std::uint32_t> rules);
  void erase_sg_l4(std::uint32_t policy, weft_direction direction, std::uint8_t family,
                   std::uint8_t proto, std::uint16_t block_start, std::uint32_t block_prefix_len);
  // sg_remote: the rules of `policy` an address in `prefix` ("10.0.0.0/24")
  // satisfies; the family is the prefix's.
  void put_sg_remote(std::uint32_t policy, weft_direction direction, std::string_view prefix,
                     std::initializer_list<std::uint32_t> rules);
  void erase_sg_remote(std::uint32_t policy, weft_direction direction, std::string_view prefix);
  // The fixture's kOpenPolicy under another id.
  void write_open_policy(std::uint32_t policy);
  // Gives a port its groups: a policy and statefulness.
  void set_policy(VmPort& port, std::uint32_t policy, bool stateful);
  // Reads the node configuration, lets `change` edit it, writes it back.
  void change_config(const std::function<void(weft_node_config&)>& change);
  // weft_node_config.sg_generation, as an apply that changed the groups bumps it.
  void set_sg_generation(std::uint32_t generation);

  // Every connection: established (ct), then pending (ct_new).
  std::vector<std::pair<weft_ct_key, weft_ct_entry>> ct_entries() const;
  // The connections of one table.
  std::vector<std::pair<weft_ct_key, weft_ct_entry>> ct_entries(bpf_map* table) const;
  // weft_node_config.ct_network_max, as `node install --ct-network-max` sets it.
  void set_ct_network_max(std::uint32_t limit);

  // Tests that fill the conntrack tables get tables of kSmallCtMax entries.
  virtual bool small_ct() const { return false; }

  // --- running the program ---

  // Runs the program once on `frame` as if it came in on `device`.
  RunResult run_on(const std::string& device, const Bytes& frame);
  RunResult run(const VmPort& from, const Bytes& frame) { return run_on(from.device, frame); }

  // Every counter, packets summed over the CPUs.
  Counts counts() const;
  // Polls the counters until they are `expected` or a second passed; the
  // last ones read (for frames the kernel handles after a send returns).
  Counts wait_for(const Counts& expected) const;
  weft_counter counter(std::uint32_t ifindex, std::uint32_t reason) const;

  static Counts one(const VmPort& port, weft_reason reason, std::uint64_t packets = 1) {
    return {{{port.device, reason_name(reason)}, packets}};
  }

  // --- frames a VM sends ---

  static Bytes arp_request(const VmPort& from, Ipv4Address target,
                           const Mac& eth_dst = kBroadcastMac);
  static Bytes udp4(const Mac& eth_src, const Mac& eth_dst, Ipv4Address src, Ipv4Address dst,
                    std::uint16_t sport, std::uint16_t dport, Bytes data = Bytes(32, 0xab));
  static Bytes ping(const VmPort& from, const VmPort& to);
  static Bytes broadcast_udp(const VmPort& from);

  // Loaded once for the binary and emptied before each test.
  PortProgram* program_ = nullptr;

private:
  void put_raw(bpf_map* map, const void* key, std::size_t key_size, const void* value,
               std::size_t value_size);
};

} // namespace weft::test
