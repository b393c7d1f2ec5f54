// The port program (bpf/port.bpf.c) run on built frames through
// BPF_PROG_TEST_RUN, on the real kernel: verdict, output bytes and counters.
//
// The test binary moves into a network namespace of its own and creates veth
// pairs there to stand for port devices (the program keys ports by
// skb->ifindex, and flooding really transmits clones with
// bpf_clone_redirect). The namespace and its devices go away with the process.
// bpf_redirect is not executed in a test run (the program returns
// TC_ACT_REDIRECT), so where a frame went is read from the stats map: the
// destination port counts `delivered`, the source port the verdict reason.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/magic.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

// The ABI first; the skeleton stays inside port_program.cpp.
#include "maps/weft_abi.h"
#include "tests/prog/packet.hpp"
#include "tests/prog/port_program.hpp"

namespace weft::test {
namespace {

using namespace std::chrono_literals;

// --- the private network namespace -------------------------------------------

// Port devices are the host ends wtp0..wtp9; each has a peer wtp<N>p.
constexpr int kDeviceCount = 10;

std::string device_name(int index) {
  return "wtp" + std::to_string(index);
}
std::string peer_name(const std::string& device) {
  return device + "p";
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream file(path);
  file << text;
  if (!file.flush())
    throw std::runtime_error("cannot write " + path);
}

void shell(const std::string& command) {
  int status = std::system((command + " >/dev/null 2>&1").c_str());
  if (status != 0)
    throw std::runtime_error("failed (" + std::to_string(status) + "): " + command);
}

class PrivateNetwork : public ::testing::Environment {
public:
  void SetUp() override {
    if (geteuid() != 0) {
      unavailable_reason() = "BPF_PROG_TEST_RUN tests need root";
      return;
    }
    try {
      mount_bpffs();
      // Only this thread (gtest runs tests on it) and the children of
      // system() live in the new namespace; everything in it dies with us.
      if (unshare(CLONE_NEWNET) != 0)
        throw std::runtime_error(std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno));
      // No IPv6 autoconfiguration chatter on the devices: peers then only see
      // the frames the program sends them.
      write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
      write_file("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
      shell("ip link set lo up");
      for (int i = 0; i < kDeviceCount; ++i) {
        std::string device = device_name(i);
        shell("ip link add " + device + " type veth peer name " + peer_name(device));
        shell("ip link set " + device + " up");
        shell("ip link set " + peer_name(device) + " up");
      }
    } catch (const std::exception& e) {
      setup_error() = e.what();
    }
  }

  static std::string& unavailable_reason() {
    static std::string reason;
    return reason;
  }
  static std::string& setup_error() {
    static std::string error;
    return error;
  }

private:
  // Nothing is pinned by these tests, but bpffs is where weft lives: mount it
  // as weft does when a fresh machine lacks it.
  static void mount_bpffs() {
    struct statfs fs {};
    if (statfs("/sys/fs/bpf", &fs) == 0 && fs.f_type == BPF_FS_MAGIC)
      return;
    if (mount("bpf", "/sys/fs/bpf", "bpf", 0, nullptr) != 0)
      throw std::runtime_error(std::string("mount bpffs: ") + std::strerror(errno));
  }
};

[[maybe_unused]] ::testing::Environment* const kPrivateNetwork =
    ::testing::AddGlobalTestEnvironment(new PrivateNetwork);

// --- counters ------------------------------------------------------------------

#define WEFT_REASON_TEXT(name, text) text,
constexpr const char* kReasonNames[] = {WEFT_REASONS(WEFT_REASON_TEXT)};
#undef WEFT_REASON_TEXT

std::string reason_name(std::uint32_t reason) {
  return reason < WEFT_REASON_COUNT ? kReasonNames[reason] : "reason-" + std::to_string(reason);
}

std::string ifname(std::uint32_t ifindex) {
  char name[IF_NAMESIZE] = {};
  return if_indextoname(ifindex, name) ? name : "if" + std::to_string(ifindex);
}

// Packets by (device, reason): compared whole, so a test also says what was
// NOT counted (no delivery to the sender, a down port, another network).
using Counts = std::map<std::pair<std::string, std::string>, std::uint64_t>;

// --- sockets on the peers --------------------------------------------------------

// An AF_PACKET socket on a device: what a VM behind that port would see, and
// its way to send.
class Wire {
public:
  explicit Wire(const std::string& device) : ifindex_(if_nametoindex(device.c_str())) {
    fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd_ < 0)
      throw std::runtime_error("AF_PACKET socket: " + std::string(std::strerror(errno)));
    sockaddr_ll address{};
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(ETH_P_ALL);
    address.sll_ifindex = static_cast<int>(ifindex_);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      int err = errno;
      close(fd_);
      throw std::runtime_error("bind AF_PACKET to " + device + ": " + std::strerror(err));
    }
  }
  ~Wire() { close(fd_); }
  Wire(const Wire&) = delete;
  Wire& operator=(const Wire&) = delete;

  void send(const Bytes& frame) {
    sockaddr_ll address{};
    address.sll_family = AF_PACKET;
    address.sll_ifindex = static_cast<int>(ifindex_);
    address.sll_halen = 6;
    std::memcpy(address.sll_addr, frame.data(), 6);
    if (sendto(fd_, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&address),
               sizeof address) != static_cast<ssize_t>(frame.size()))
      throw std::runtime_error("AF_PACKET send: " + std::string(std::strerror(errno)));
  }

  // Whether `frame` arrives (byte for byte, incoming) within `timeout`.
  bool receives(const Bytes& frame, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd pfd{fd_, POLLIN, 0};
      if (poll(&pfd, 1, static_cast<int>(std::max<long>(left.count(), 0))) <= 0)
        return false;
      Bytes buffer(65536);
      sockaddr_ll from{};
      socklen_t from_len = sizeof from;
      ssize_t n = recvfrom(fd_, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&from),
                           &from_len);
      if (n < 0)
        continue;
      buffer.resize(static_cast<std::size_t>(n));
      if (from.sll_pkttype != PACKET_OUTGOING && buffer == frame)
        return true;
    }
  }

private:
  unsigned ifindex_;
  int fd_ = -1;
};

// --- the fixture ------------------------------------------------------------------

struct VmPort {
  std::string device;
  Mac mac;
  Ipv4Address ip;
  std::uint32_t net_id;
  bool security;
  bool up;
  std::uint32_t ifindex = 0;
};

struct RunResult {
  std::uint32_t retval;
  Bytes out;
};

// fe80::/64 + modified EUI-64, as a VM derives it from its MAC.
Ipv6Address link_local(const Mac& mac) {
  Ipv6Address address = ipv6("fe80::");
  address[8] = mac[0] ^ 0x02;
  address[9] = mac[1];
  address[10] = mac[2];
  address[11] = 0xff;
  address[12] = 0xfe;
  address[13] = mac[3];
  address[14] = mac[4];
  address[15] = mac[5];
  return address;
}

constexpr std::uint32_t kBlue = 1;   // vm1 vm2 vm3 (vm4 down)
constexpr std::uint32_t kRed = 2;    // vm5 (vm1's MAC), vm6 (vm2's IP)
constexpr std::uint32_t kGreen = 3;  // vm7 vm8, port security off
constexpr std::uint32_t kLonely = 4; // vm9 alone
constexpr std::uint32_t kNoFloodList = 5;

constexpr Mac kZeroMac = {};
const Mac kStrangerMac = mac("fa:16:3e:de:ad:00");

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

  void SetUp() override {
    // Without root these tests fail: a skip would read as a pass in CI.
    ASSERT_TRUE(PrivateNetwork::unavailable_reason().empty()) << PrivateNetwork::unavailable_reason();
    ASSERT_EQ(PrivateNetwork::setup_error(), "");
    program_ = std::make_unique<PortProgram>();

    weft_node_config config{};
    config.abi_version = WEFT_ABI_VERSION;
    put(maps().config, std::uint32_t{0}, config);
    add_network(kBlue, WEFT_NET_VXLAN, 1001);
    add_network(kRed, WEFT_NET_VXLAN, 1002);
    add_network(kGreen, WEFT_NET_VLAN, 300);
    add_network(kLonely, WEFT_NET_FLAT, 0);
    add_network(kNoFloodList, WEFT_NET_VXLAN, 1005);

    for (VmPort* port : {&vm1, &vm2, &vm3, &vm4, &vm5, &vm6, &vm7, &vm8, &vm9})
      add_port(*port);
    add_fixed_ip(vm6, red_only_ip);
    add_address_pair(vm1, pair_mac, pair_cidr, kPairPrefixLen);
  }

  const PortMaps& maps() const { return program_->maps(); }

  template <class Key, class Value> void put(bpf_map* map, const Key& key, const Value& value) {
    if (int err = bpf_map__update_elem(map, &key, sizeof key, &value, sizeof value, BPF_ANY))
      throw std::runtime_error(std::string("update ") + bpf_map__name(map) + ": " +
                               std::strerror(-err));
  }

  void add_network(std::uint32_t net_id, weft_net_type type, std::uint32_t segmentation_id) {
    weft_network network{};
    network.segmentation_id = segmentation_id;
    network.mtu = type == WEFT_NET_VXLAN ? 1450 : 1500;
    network.type = static_cast<std::uint8_t>(type);
    put(maps().networks, net_id, network);
  }

  void write_port(const VmPort& port) {
    weft_port value{};
    value.net_id = port.net_id;
    value.flags = (port.security ? WEFT_PORT_SECURITY : 0) | (port.up ? WEFT_PORT_UP : 0);
    std::memcpy(value.mac, port.mac.data(), WEFT_ETH_ALEN);
    put(maps().ports, port.ifindex, value);
  }

  // What the loader writes for a Neutron port: the port, its MAC as a
  // source, its place in the segment's FDB and flood list, its fixed IP.
  void add_port(VmPort& port) {
    port.ifindex = if_nametoindex(port.device.c_str());
    if (port.ifindex == 0)
      throw std::runtime_error("no device " + port.device);
    write_port(port);
    allow_mac(port, port.mac);

    weft_fdb_key fdb_key{};
    fdb_key.net_id = port.net_id;
    std::memcpy(fdb_key.mac, port.mac.data(), WEFT_ETH_ALEN);
    weft_fdb_entry fdb_entry{};
    fdb_entry.ifindex = port.ifindex;
    put(maps().fdb, fdb_key, fdb_entry);

    weft_flood list{};
    bpf_map__lookup_elem(maps().flood, &port.net_id, sizeof port.net_id, &list, sizeof list, 0);
    list.ifindex[list.count++] = port.ifindex;
    put(maps().flood, port.net_id, list);

    add_fixed_ip(port, port.ip);
  }

  void allow_mac(const VmPort& port, const Mac& mac) {
    weft_port_mac_key key{};
    key.ifindex = port.ifindex;
    std::memcpy(key.mac, mac.data(), WEFT_ETH_ALEN);
    put(maps().port_macs, key, std::uint8_t{1});
  }

  void allow_source(const VmPort& port, const Mac& mac, Ipv4Address ip, std::uint32_t prefix_len) {
    weft_spoof_v4_key key{};
    key.prefixlen = WEFT_SPOOF_V4_FIXED_BITS + prefix_len;
    key.ifindex = port.ifindex;
    std::memcpy(key.mac, mac.data(), WEFT_ETH_ALEN);
    key.ip = ip;
    put(maps().spoof_v4, key, std::uint8_t{1});
  }

  void add_fixed_ip(const VmPort& port, Ipv4Address ip) {
    allow_source(port, port.mac, ip, 32);
    weft_arp_key key{};
    key.net_id = port.net_id;
    key.ip = ip;
    weft_arp_entry entry{};
    std::memcpy(entry.mac, port.mac.data(), WEFT_ETH_ALEN);
    put(maps().arp, key, entry);
  }

  void add_address_pair(const VmPort& port, const Mac& mac, Ipv4Address ip,
                        std::uint32_t prefix_len) {
    allow_mac(port, mac);
    allow_source(port, mac, ip, prefix_len);
  }

  // Runs the program once on `frame` as if it came in on `device`.
  RunResult run_on(const std::string& device, const Bytes& frame) {
    std::uint32_t ifindex = if_nametoindex(device.c_str());
    if (ifindex == 0)
      throw std::runtime_error("no device " + device);
    __sk_buff ctx{};
    ctx.ingress_ifindex = ifindex;
    ctx.ifindex = ifindex;
    RunResult result{0, Bytes(frame.size() + 256)};

    bpf_test_run_opts opts{};
    opts.sz = sizeof opts;
    opts.data_in = frame.data();
    opts.data_out = result.out.data();
    opts.data_size_in = static_cast<std::uint32_t>(frame.size());
    opts.data_size_out = static_cast<std::uint32_t>(result.out.size());
    opts.ctx_in = &ctx;
    opts.ctx_size_in = sizeof ctx;
    opts.repeat = 1;
    int err = bpf_prog_test_run_opts(bpf_program__fd(program_->program()), &opts);
    if (err)
      throw std::runtime_error("BPF_PROG_TEST_RUN on " + device + ": " + std::strerror(-err));
    result.retval = opts.retval;
    result.out.resize(opts.data_size_out);
    return result;
  }

  RunResult run(const VmPort& from, const Bytes& frame) { return run_on(from.device, frame); }

  // Every counter, packets summed over the CPUs.
  Counts counts() const {
    Counts all;
    weft_stat_key key{};
    weft_stat_key next{};
    const weft_stat_key* previous = nullptr;
    while (bpf_map__get_next_key(maps().stats, previous, &next, sizeof next) == 0) {
      key = next;
      previous = &key;
      all[{ifname(key.ifindex), reason_name(key.reason)}] =
          counter(key.ifindex, key.reason).packets;
    }
    return all;
  }

  weft_counter counter(std::uint32_t ifindex, std::uint32_t reason) const {
    weft_stat_key key{};
    key.ifindex = ifindex;
    key.reason = reason;
    std::vector<weft_counter> per_cpu(static_cast<std::size_t>(libbpf_num_possible_cpus()));
    weft_counter total{};
    if (bpf_map__lookup_elem(maps().stats, &key, sizeof key, per_cpu.data(),
                             per_cpu.size() * sizeof(weft_counter), 0) != 0)
      return total;
    for (const weft_counter& cpu : per_cpu) {
      total.packets += cpu.packets;
      total.bytes += cpu.bytes;
    }
    return total;
  }

  static Counts one(const VmPort& port, weft_reason reason, std::uint64_t packets = 1) {
    return {{{port.device, reason_name(reason)}, packets}};
  }

  // --- frames a VM sends ---

  static Bytes arp_request(const VmPort& from, Ipv4Address target,
                           const Mac& eth_dst = kBroadcastMac) {
    return PacketBuilder()
        .eth(eth_dst, from.mac)
        .arp(kArpRequest, from.mac, from.ip, kZeroMac, target)
        .build();
  }

  static Bytes udp4(const Mac& eth_src, const Mac& eth_dst, Ipv4Address src, Ipv4Address dst,
                    std::uint16_t sport, std::uint16_t dport, Bytes data = Bytes(32, 0xab)) {
    return PacketBuilder()
        .eth(eth_dst, eth_src)
        .ipv4(src, dst)
        .udp(sport, dport)
        .payload(std::move(data))
        .build();
  }

  static Bytes ping(const VmPort& from, const VmPort& to) {
    return PacketBuilder()
        .eth(to.mac, from.mac)
        .ipv4(from.ip, to.ip)
        .icmp(kIcmpEchoRequest, 0, 0x00010001)
        .payload(Bytes(56, 0x42))
        .build();
  }

  static Bytes broadcast_udp(const VmPort& from) {
    return udp4(from.mac, kBroadcastMac, from.ip, ipv4("10.0.0.255"), 5000, 5000);
  }

  std::unique_ptr<PortProgram> program_;
};

// --- drops before switching --------------------------------------------------------

TEST_F(PortProgTest, DeviceThatIsNotAPortDropsEverything) {
  RunResult result = run_on(stranger, broadcast_udp(vm1));

  EXPECT_EQ(result.retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), (Counts{{{stranger, "drop-not-a-port"}, 1}}));
}

TEST_F(PortProgTest, AdminDownSourcePortDropsWhatItsVmSends) {
  RunResult result = run(vm4, ping(vm4, vm1));

  EXPECT_EQ(result.retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm4, WEFT_DROP_PORT_DOWN));
}

TEST_F(PortProgTest, AdminDownSourcePortDropsEvenArpItCouldBeAnswered) {
  EXPECT_EQ(run(vm4, arp_request(vm4, vm1.ip)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm4, WEFT_DROP_PORT_DOWN));
}

TEST_F(PortProgTest, UnicastToAdminDownPortIsDropped) {
  RunResult result = run(vm1, ping(vm1, vm4));

  EXPECT_EQ(result.retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_PORT_DOWN));
}

TEST_F(PortProgTest, TruncatedFramesAreMalformed) {
  Bytes ip = ping(vm1, vm2);
  Bytes arp = arp_request(vm1, vm2.ip);
  Bytes ra = PacketBuilder()
                 .eth(kIpv6AllNodesMac, vm1.mac)
                 .ipv6(link_local(vm1.mac), ipv6("ff02::1"), 255)
                 .icmpv6(kIcmpv6RouterAdvert, 0, router_advert_body(vm1.mac))
                 .build();
  Bytes dhcp6 = PacketBuilder()
                    .eth(vm2.mac, vm1.mac)
                    .ipv6(link_local(vm1.mac), link_local(vm2.mac))
                    .udp(547, 546)
                    .payload(dhcpv6_advertise())
                    .build();
  Bytes not_ipv4 = ip;
  not_ipv4[14] = 0x65; // version 6 under an IPv4 ethertype
  Bytes short_ihl = ip;
  short_ihl[14] = 0x44; // a 16-byte IPv4 header
  Bytes not_ipv6 = ra;
  not_ipv6[14] = 0x40; // version 4 under the IPv6 ethertype
  Bytes not_ethernet_arp = arp;
  not_ethernet_arp[14 + 1] = 6; // hardware type 6 (IEEE 802)

  // The kernel refuses to test-run an IPv4 or IPv6 frame shorter than its
  // IP header (EINVAL), so those are cut after the IP header or made invalid.
  const std::vector<std::pair<std::string, Bytes>> frames = {
      {"Ethernet header only, ARP", Bytes(arp.begin(), arp.begin() + 14)},
      {"ARP cut at 20 bytes", Bytes(arp.begin(), arp.begin() + 34)},
      {"ARP cut at 27 bytes", Bytes(arp.begin(), arp.begin() + 41)},
      {"ARP over another hardware type", not_ethernet_arp},
      {"IPv4 ethertype, version 6", not_ipv4},
      {"IPv4 IHL 4", short_ihl},
      {"IPv6 ethertype, version 4", not_ipv6},
      {"ICMPv6 header cut at 7 bytes", Bytes(ra.begin(), ra.begin() + 61)},
      {"UDP over IPv6 cut at 7 bytes", Bytes(dhcp6.begin(), dhcp6.begin() + 61)},
  };
  std::uint64_t expected = 0;
  for (const auto& [what, frame] : frames) {
    SCOPED_TRACE(what);
    EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
    EXPECT_EQ(counts(), one(vm1, WEFT_DROP_MALFORMED, ++expected));
  }
}

TEST_F(PortProgTest, VlanTaggedFramesFromSecuredPortAreDropped) {
  Bytes dot1q = PacketBuilder()
                    .eth(kBroadcastMac, vm1.mac)
                    .vlan(100)
                    .arp(kArpRequest, vm1.mac, vm1.ip, kZeroMac, vm2.ip)
                    .build();
  Bytes dot1ad = PacketBuilder()
                     .eth(vm2.mac, vm1.mac)
                     .vlan(200, kEth8021AD)
                     .vlan(100)
                     .ipv4(vm1.ip, vm2.ip)
                     .udp(5000, 5000)
                     .build();

  EXPECT_EQ(run(vm1, dot1q).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(vm1, dot1ad).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_VLAN_TAGGED, 2));
}

TEST_F(PortProgTest, SourceMacNotThePortsIsSpoofed) {
  // An unknown MAC, and the MAC of another port of the same network.
  EXPECT_EQ(run(vm1, udp4(kStrangerMac, vm2.mac, vm1.ip, vm2.ip, 5000, 5000)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(vm1, udp4(vm3.mac, vm2.mac, vm1.ip, vm2.ip, 5000, 5000)).retval, TC_ACT_SHOT);
  // A spoofed MAC is a spoofed MAC whatever the frame carries.
  EXPECT_EQ(run(vm1, PacketBuilder()
                         .eth(kBroadcastMac, kStrangerMac)
                         .arp(kArpRequest, kStrangerMac, vm1.ip, kZeroMac, vm2.ip)
                         .build())
                .retval,
            TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_SPOOF_MAC, 3));
}

TEST_F(PortProgTest, Ipv4SourceNotThePortsIsSpoofed) {
  // Another port's IP; a foreign IP; the port's own IP from the pair's MAC
  // (Neutron allows MAC and IP together, not each on its own).
  EXPECT_EQ(run(vm1, udp4(vm1.mac, vm2.mac, vm3.ip, vm2.ip, 5000, 5000)).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(vm1, udp4(vm1.mac, vm2.mac, ipv4("192.0.2.1"), vm2.ip, 5000, 5000)).retval,
            TC_ACT_SHOT);
  EXPECT_EQ(run(vm1, udp4(pair_mac, vm2.mac, vm1.ip, vm2.ip, 5000, 5000)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_SPOOF_IP, 3));
}

TEST_F(PortProgTest, AllowedAddressPairCidrIsAcceptedWithThePairsMac) {
  for (const char* source : {"10.0.0.128", "10.0.0.200", "10.0.0.255"}) {
    SCOPED_TRACE(source);
    Bytes frame = udp4(pair_mac, vm2.mac, ipv4(source), vm2.ip, 5000, 5000);
    RunResult result = run(vm1, frame);
    EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
    EXPECT_EQ(result.out, frame);
  }
  EXPECT_EQ(counts(),
            (Counts{{{vm1.device, "forward-unicast"}, 3}, {{vm2.device, "delivered"}, 3}}));
}

TEST_F(PortProgTest, AllowedAddressPairIsBoundToItsMacAndPrefix) {
  // Just outside the /25, and inside it but from the port's own MAC.
  EXPECT_EQ(run(vm1, udp4(pair_mac, vm2.mac, ipv4("10.0.0.127"), vm2.ip, 5000, 5000)).retval,
            TC_ACT_SHOT);
  EXPECT_EQ(run(vm1, udp4(vm1.mac, vm2.mac, ipv4("10.0.0.200"), vm2.ip, 5000, 5000)).retval,
            TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_SPOOF_IP, 2));
}

TEST_F(PortProgTest, ArpWithSpoofedSenderIpIsDropped) {
  Bytes request = PacketBuilder()
                      .eth(kBroadcastMac, vm1.mac)
                      .arp(kArpRequest, vm1.mac, vm3.ip, kZeroMac, vm2.ip)
                      .build();
  Bytes reply = PacketBuilder()
                    .eth(vm2.mac, vm1.mac)
                    .arp(kArpReply, vm1.mac, ipv4("10.0.0.254"), vm2.mac, vm2.ip)
                    .build();

  EXPECT_EQ(run(vm1, request).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(vm1, reply).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_SPOOF_ARP, 2));
}

TEST_F(PortProgTest, ArpSenderMacDifferentFromEthernetSourceIsDropped) {
  // Both MACs are the port's to use, and the IP belongs to the pair; only
  // the mismatch between sha and the Ethernet source is wrong.
  Bytes frame = PacketBuilder()
                    .eth(kBroadcastMac, vm1.mac)
                    .arp(kArpRequest, pair_mac, ipv4("10.0.0.200"), kZeroMac, vm2.ip)
                    .build();

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_SPOOF_ARP));
}

TEST_F(PortProgTest, ArpFromAllowedAddressPairIsAccepted) {
  Bytes frame = PacketBuilder()
                    .eth(vm2.mac, pair_mac)
                    .arp(kArpReply, pair_mac, ipv4("10.0.0.200"), vm2.mac, vm2.ip)
                    .build();

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(),
            (Counts{{{vm1.device, "forward-unicast"}, 1}, {{vm2.device, "delivered"}, 1}}));
}

TEST_F(PortProgTest, DhcpDiscoverFromUnconfiguredVmIsFlooded) {
  Bytes frame = udp4(vm1.mac, kBroadcastMac, ipv4("0.0.0.0"), ipv4("255.255.255.255"), 68, 67,
                     dhcp_discover(vm1.mac));
  Wire vm2_side(peer_name(vm2.device));
  Wire vm3_side(peer_name(vm3.device));

  RunResult result = run(vm1, frame);

  EXPECT_EQ(result.retval, TC_ACT_SHOT); // the original; clones went out
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "forward-flood"}, 1},
                              {{vm2.device, "delivered"}, 1},
                              {{vm3.device, "delivered"}, 1}}));
  EXPECT_TRUE(vm2_side.receives(frame, 1s));
  EXPECT_TRUE(vm3_side.receives(frame, 1s));
}

TEST_F(PortProgTest, OnlyTheDhcpDiscoverShapeMaySendFromZeroAddress) {
  // To a unicast server, or from/to other ports.
  EXPECT_EQ(
      run(vm1, udp4(vm1.mac, vm2.mac, ipv4("0.0.0.0"), vm2.ip, 68, 67, dhcp_discover(vm1.mac)))
          .retval,
      TC_ACT_SHOT);
  EXPECT_EQ(
      run(vm1, udp4(vm1.mac, kBroadcastMac, ipv4("0.0.0.0"), ipv4("255.255.255.255"), 5000, 67))
          .retval,
      TC_ACT_SHOT);
  EXPECT_EQ(
      run(vm1, udp4(vm1.mac, kBroadcastMac, ipv4("0.0.0.0"), ipv4("255.255.255.255"), 68, 5000))
          .retval,
      TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_SPOOF_IP, 3));
}

TEST_F(PortProgTest, VmMayNotAnswerAsDhcpServer) {
  // Broadcast offer and unicast offer, from the VM's own, valid address.
  EXPECT_EQ(run(vm1, udp4(vm1.mac, kBroadcastMac, vm1.ip, ipv4("255.255.255.255"), 67, 68,
                          dhcp_offer(vm2.mac)))
                .retval,
            TC_ACT_SHOT);
  EXPECT_EQ(run(vm1, udp4(vm1.mac, vm2.mac, vm1.ip, vm2.ip, 67, 68, dhcp_offer(vm2.mac))).retval,
            TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_DHCP_SERVER, 2));
}

TEST_F(PortProgTest, VmMayNotAnswerAsDhcpv6Server) {
  Bytes frame = PacketBuilder()
                    .eth(vm2.mac, vm1.mac)
                    .ipv6(link_local(vm1.mac), link_local(vm2.mac))
                    .udp(547, 546)
                    .payload(dhcpv6_advertise())
                    .build();

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_DHCP_SERVER));
}

TEST_F(PortProgTest, Dhcpv6ClientSolicitIsFlooded) {
  Bytes frame = PacketBuilder()
                    .eth(mac("33:33:00:01:00:02"), vm1.mac)
                    .ipv6(link_local(vm1.mac), ipv6("ff02::1:2"))
                    .udp(546, 547)
                    .payload({1, 0x12, 0x34, 0x56})
                    .build();

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "forward-flood"}, 1},
                              {{vm2.device, "delivered"}, 1},
                              {{vm3.device, "delivered"}, 1}}));
}

TEST_F(PortProgTest, VmMayNotSendIpv6RouterAdvertisements) {
  Bytes frame = PacketBuilder()
                    .eth(kIpv6AllNodesMac, vm1.mac)
                    .ipv6(link_local(vm1.mac), ipv6("ff02::1"), 255)
                    .icmpv6(kIcmpv6RouterAdvert, 0, router_advert_body(vm1.mac))
                    .build();

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_IPV6_RA));
}

// ip6tables' `-p ipv6-icmp` (Neutron's iptables driver) and OVS flow
// extraction (its OVS driver) both look past extension headers, so Neutron
// drops an RA behind a hop-by-hop header too (the RA-guard evasion of RFC 7113).
TEST_F(PortProgTest, RouterAdvertisementBehindHopByHopHeaderIsDropped) {
  Bytes frame = PacketBuilder()
                    .eth(kIpv6AllNodesMac, vm1.mac)
                    .ipv6(link_local(vm1.mac), ipv6("ff02::1"), 255)
                    .ipv6_hop_by_hop()
                    .icmpv6(kIcmpv6RouterAdvert, 0, router_advert_body(vm1.mac))
                    .build();

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_IPV6_RA));
}

TEST_F(PortProgTest, OtherIcmpv6FromSecuredPortIsForwarded) {
  Bytes solicit = PacketBuilder()
                      .eth(mac("33:33:00:00:00:02"), vm1.mac)
                      .ipv6(link_local(vm1.mac), ipv6("ff02::2"), 255)
                      .icmpv6(kIcmpv6RouterSolicit, 0, Bytes(4, 0))
                      .build();
  Bytes echo = PacketBuilder()
                   .eth(vm2.mac, vm1.mac)
                   .ipv6(link_local(vm1.mac), link_local(vm2.mac))
                   .icmpv6(kIcmpv6EchoRequest, 0, {0, 1, 0, 1})
                   .build();

  EXPECT_EQ(run(vm1, solicit).retval, TC_ACT_SHOT);
  EXPECT_EQ(run(vm1, echo).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "forward-flood"}, 1},
                              {{vm1.device, "forward-unicast"}, 1},
                              {{vm2.device, "delivered"}, 2},
                              {{vm3.device, "delivered"}, 1}}));
}

TEST_F(PortProgTest, UnknownEthertypeFromSecuredPortIsDropped) {
  for (std::uint16_t type : {0x88b5 /* local experimental */, 0x88cc /* LLDP */,
                             0x8863 /* PPPoE discovery */, 0x0600 /* XNS */}) {
    SCOPED_TRACE(type);
    Bytes frame =
        PacketBuilder().eth(kBroadcastMac, vm1.mac, type).payload(Bytes(46, 0x5a)).build();
    EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
  }
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_ETHERTYPE, 4));
}

TEST_F(PortProgTest, PortSecurityOffForwardsSpoofedTaggedAndForeignFrames) {
  Bytes spoofed_mac_broadcast = udp4(kStrangerMac, kBroadcastMac, ipv4("192.0.2.7"),
                                     ipv4("255.255.255.255"), 67, 68, dhcp_offer(vm8.mac));
  Bytes spoofed_ip_unicast = udp4(vm7.mac, vm8.mac, ipv4("192.0.2.7"), vm8.ip, 5000, 5000);
  Bytes tagged_unicast =
      PacketBuilder().eth(vm8.mac, kStrangerMac).vlan(42).ipv4(vm7.ip, vm8.ip).udp(1, 2).build();
  Bytes foreign_type =
      PacketBuilder().eth(vm8.mac, vm7.mac, 0x88b5).payload(Bytes(46, 0x5a)).build();
  Bytes router_advert = PacketBuilder()
                            .eth(kIpv6AllNodesMac, vm7.mac)
                            .ipv6(link_local(vm7.mac), ipv6("ff02::1"), 255)
                            .icmpv6(kIcmpv6RouterAdvert, 0, router_advert_body(vm7.mac))
                            .build();
  Wire vm8_side(peer_name(vm8.device));

  EXPECT_EQ(run(vm7, spoofed_mac_broadcast).retval, TC_ACT_SHOT);
  EXPECT_TRUE(vm8_side.receives(spoofed_mac_broadcast, 1s));
  EXPECT_EQ(run(vm7, spoofed_ip_unicast).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(vm7, tagged_unicast).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(vm7, foreign_type).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(vm7, router_advert).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), (Counts{{{vm7.device, "forward-flood"}, 2},
                              {{vm7.device, "forward-unicast"}, 3},
                              {{vm8.device, "delivered"}, 5}}));
}

// --- unicast ----------------------------------------------------------------------

TEST_F(PortProgTest, UnicastToKnownMacIsRedirectedToItsPort) {
  Bytes icmp = ping(vm1, vm2);
  Bytes tcp = PacketBuilder().eth(vm2.mac, vm1.mac).ipv4(vm1.ip, vm2.ip).tcp(40000, 22).build();

  RunResult result = run(vm1, icmp);

  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(result.out, icmp); // switched, not rewritten
  EXPECT_EQ(counts(),
            (Counts{{{vm1.device, "forward-unicast"}, 1}, {{vm2.device, "delivered"}, 1}}));
  EXPECT_EQ(counter(vm1.ifindex, WEFT_FWD_UNICAST).bytes, icmp.size());
  EXPECT_EQ(counter(vm2.ifindex, WEFT_DELIVERED).bytes, icmp.size());

  EXPECT_EQ(run(vm1, tcp).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(run(vm3, ping(vm3, vm2)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counter(vm2.ifindex, WEFT_DELIVERED).packets, 3u);
  EXPECT_EQ(counter(vm2.ifindex, WEFT_DELIVERED).bytes, 2 * icmp.size() + tcp.size());
}

TEST_F(PortProgTest, UnknownUnicastIsDropped) {
  Bytes frame = udp4(vm1.mac, kStrangerMac, vm1.ip, ipv4("10.0.0.99"), 5000, 5000);

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_UNKNOWN_UNICAST));
}

TEST_F(PortProgTest, UnicastToOwnMacIsHairpinDrop) {
  Bytes frame = udp4(vm1.mac, vm1.mac, vm1.ip, vm1.ip, 5000, 5000);

  EXPECT_EQ(run(vm1, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_HAIRPIN));
}

TEST_F(PortProgTest, SameMacInTwoNetworksReachesOnlyItsOwnNetworksPort) {
  ASSERT_EQ(vm1.mac, vm5.mac);

  EXPECT_EQ(run(vm2, ping(vm2, vm1)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(),
            (Counts{{{vm2.device, "forward-unicast"}, 1}, {{vm1.device, "delivered"}, 1}}));

  EXPECT_EQ(run(vm6, ping(vm6, vm5)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(counts(), (Counts{{{vm2.device, "forward-unicast"}, 1},
                              {{vm1.device, "delivered"}, 1},
                              {{vm6.device, "forward-unicast"}, 1},
                              {{vm5.device, "delivered"}, 1}}));
}

TEST_F(PortProgTest, MacOfAnotherNetworkIsUnknownUnicast) {
  // vm6 lives in red only; vm1 (blue) cannot reach it, even by its MAC.
  EXPECT_EQ(run(vm1, udp4(vm1.mac, vm6.mac, vm1.ip, vm6.ip, 5000, 5000)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_UNKNOWN_UNICAST));
}

// --- flooding ---------------------------------------------------------------------

TEST_F(PortProgTest, BroadcastIsFloodedToTheOtherUpPortsOfItsNetworkOnly) {
  Bytes frame = broadcast_udp(vm1);
  Wire vm2_side(peer_name(vm2.device));
  Wire vm3_side(peer_name(vm3.device));
  Wire vm4_side(peer_name(vm4.device));
  Wire vm5_side(peer_name(vm5.device));

  RunResult result = run(vm1, frame);

  EXPECT_EQ(result.retval, TC_ACT_SHOT);
  // Nothing for vm1 itself, vm4 (down), vm5/vm6 (red, vm5 even shares vm1's MAC).
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "forward-flood"}, 1},
                              {{vm2.device, "delivered"}, 1},
                              {{vm3.device, "delivered"}, 1}}));
  EXPECT_EQ(counter(vm2.ifindex, WEFT_DELIVERED).bytes, frame.size());
  EXPECT_TRUE(vm2_side.receives(frame, 1s));
  EXPECT_TRUE(vm3_side.receives(frame, 1s));
  EXPECT_FALSE(vm4_side.receives(frame, 100ms));
  EXPECT_FALSE(vm5_side.receives(frame, 100ms));
}

TEST_F(PortProgTest, MulticastIsFloodedLikeBroadcast) {
  Bytes frame = PacketBuilder()
                    .eth(mac("01:00:5e:00:00:fb"), vm2.mac)
                    .ipv4(vm2.ip, ipv4("224.0.0.251"), 255)
                    .udp(5353, 5353)
                    .payload(Bytes(12, 0))
                    .build();

  EXPECT_EQ(run(vm2, frame).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), (Counts{{{vm2.device, "forward-flood"}, 1},
                              {{vm1.device, "delivered"}, 1},
                              {{vm3.device, "delivered"}, 1}}));
}

TEST_F(PortProgTest, FloodWithNoOtherPortIsDropped) {
  EXPECT_EQ(run(vm9, broadcast_udp(vm9)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm9, WEFT_DROP_NO_FLOOD_TARGET));
}

TEST_F(PortProgTest, FloodWithEveryOtherPortDownIsDropped) {
  vm2.up = false;
  vm3.up = false;
  write_port(vm2);
  write_port(vm3);

  EXPECT_EQ(run(vm1, broadcast_udp(vm1)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(vm1, WEFT_DROP_NO_FLOOD_TARGET));
}

TEST_F(PortProgTest, FloodInNetworkWithoutFloodListIsDropped) {
  VmPort orphan{stranger, mac("fa:16:3e:00:05:01"), ipv4("10.5.0.1"), kNoFloodList, true, true};
  orphan.ifindex = if_nametoindex(stranger.c_str());
  write_port(orphan);
  allow_mac(orphan, orphan.mac);
  add_fixed_ip(orphan, orphan.ip);

  EXPECT_EQ(run(orphan, broadcast_udp(orphan)).retval, TC_ACT_SHOT);
  EXPECT_EQ(counts(), one(orphan, WEFT_DROP_NO_FLOOD_TARGET));
}

// --- the ARP responder ------------------------------------------------------------

void expect_arp_reply(const RunResult& result, const Bytes& request, const Mac& owner_mac,
                      Ipv4Address owner_ip, const Mac& requester_mac, Ipv4Address requester_ip) {
  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  ASSERT_EQ(result.out.size(), request.size());
  FrameView reply(result.out);
  EXPECT_EQ(reply.dst(), requester_mac);
  EXPECT_EQ(reply.src(), owner_mac);
  EXPECT_EQ(reply.ethertype(), kEthArp);
  auto msg = reply.arp();
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->htype, 1);
  EXPECT_EQ(msg->ptype, kEthIpv4);
  EXPECT_EQ(msg->hlen, 6);
  EXPECT_EQ(msg->plen, 4);
  EXPECT_EQ(msg->op, kArpReply);
  EXPECT_EQ(msg->sha, owner_mac);
  EXPECT_EQ(msg->spa, owner_ip);
  EXPECT_EQ(msg->tha, requester_mac);
  EXPECT_EQ(msg->tpa, requester_ip);
  // Anything after the ARP body (padding) is left as it was.
  EXPECT_TRUE(std::equal(result.out.begin() + 42, result.out.end(), request.begin() + 42));
}

TEST_F(PortProgTest, ArpRequestForKnownIpIsAnsweredInPlace) {
  Bytes request = arp_request(vm1, vm2.ip);

  RunResult result = run(vm1, request);

  expect_arp_reply(result, request, vm2.mac, vm2.ip, vm1.mac, vm1.ip);
  // Sent back to the asking port; nothing delivered to vm2.
  EXPECT_EQ(counts(), one(vm1, WEFT_ARP_REPLY));
  EXPECT_EQ(counter(vm1.ifindex, WEFT_ARP_REPLY).bytes, request.size());
}

TEST_F(PortProgTest, ArpRequestWithPaddingAndUnicastDestinationIsAnswered) {
  // A padded (60-byte) request, sent unicast as a cache refresh.
  Bytes request = PacketBuilder()
                      .eth(vm3.mac, vm1.mac)
                      .arp(kArpRequest, vm1.mac, vm1.ip, vm3.mac, vm3.ip)
                      .payload(Bytes(18, 0))
                      .build();

  expect_arp_reply(run(vm1, request), request, vm3.mac, vm3.ip, vm1.mac, vm1.ip);
  EXPECT_EQ(counts(), one(vm1, WEFT_ARP_REPLY));
}

TEST_F(PortProgTest, ArpIsAnsweredFromTheMapEvenForAdminDownPort) {
  Bytes request = arp_request(vm2, vm4.ip);

  expect_arp_reply(run(vm2, request), request, vm4.mac, vm4.ip, vm2.mac, vm2.ip);
  EXPECT_EQ(counts(), one(vm2, WEFT_ARP_REPLY));
}

TEST_F(PortProgTest, ArpIsAnsweredFromTheRequestersNetwork) {
  // 10.0.0.2 is vm2 in blue and vm6 in red.
  Bytes from_blue = arp_request(vm1, ipv4("10.0.0.2"));
  Bytes from_red = arp_request(vm5, ipv4("10.0.0.2"));

  expect_arp_reply(run(vm1, from_blue), from_blue, vm2.mac, vm2.ip, vm1.mac, vm1.ip);
  expect_arp_reply(run(vm5, from_red), from_red, vm6.mac, vm6.ip, vm5.mac, vm5.ip);
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "arp-reply"}, 1}, {{vm5.device, "arp-reply"}, 1}}));
}

TEST_F(PortProgTest, ArpForIpKnownOnlyInAnotherNetworkIsFloodedNotAnswered) {
  for (Ipv4Address target : {red_only_ip, vm5.ip}) {
    Bytes request = arp_request(vm1, target);
    RunResult result = run(vm1, request);
    EXPECT_EQ(result.retval, TC_ACT_SHOT);
    EXPECT_EQ(result.out, request);
  }
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "forward-flood"}, 2},
                              {{vm2.device, "delivered"}, 2},
                              {{vm3.device, "delivered"}, 2}}));
}

TEST_F(PortProgTest, GratuitousArpIsFloodedNotAnswered) {
  Bytes announce = PacketBuilder()
                       .eth(kBroadcastMac, vm1.mac)
                       .arp(kArpRequest, vm1.mac, vm1.ip, kZeroMac, vm1.ip)
                       .build();

  RunResult result = run(vm1, announce);

  EXPECT_EQ(result.retval, TC_ACT_SHOT);
  EXPECT_EQ(result.out, announce);
  EXPECT_EQ(counts(), (Counts{{{vm1.device, "forward-flood"}, 1},
                              {{vm2.device, "delivered"}, 1},
                              {{vm3.device, "delivered"}, 1}}));
}

TEST_F(PortProgTest, ArpReplyFromVmIsSwitchedNotAnswered) {
  Bytes reply = PacketBuilder()
                    .eth(vm2.mac, vm1.mac)
                    .arp(kArpReply, vm1.mac, vm1.ip, vm2.mac, vm2.ip)
                    .build();

  RunResult result = run(vm1, reply);

  EXPECT_EQ(result.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(result.out, reply);
  EXPECT_EQ(counts(),
            (Counts{{{vm1.device, "forward-unicast"}, 1}, {{vm2.device, "delivered"}, 1}}));
}

TEST_F(PortProgTest, ArpResponderServesPortsWithoutPortSecurity) {
  Bytes request = arp_request(vm7, vm8.ip);

  expect_arp_reply(run(vm7, request), request, vm8.mac, vm8.ip, vm7.mac, vm7.ip);
  EXPECT_EQ(counts(), one(vm7, WEFT_ARP_REPLY));
}

// --- the real ingress path ----------------------------------------------------------

// The same program attached with tcx to a port device, fed by a frame sent
// from the VM's side of the veth: what BPF_PROG_TEST_RUN cannot show is how
// the kernel hands a frame to tc ingress.
class TcxIngress {
public:
  TcxIngress(const bpf_program* program, std::uint32_t ifindex) {
    constexpr auto kTcxIngress = static_cast<bpf_attach_type>(46); // BPF_TCX_INGRESS
    fd_ =
        bpf_link_create(bpf_program__fd(program), static_cast<int>(ifindex), kTcxIngress, nullptr);
    if (fd_ < 0)
      throw std::runtime_error("tcx attach: " + std::string(std::strerror(-fd_)));
  }
  ~TcxIngress() { close(fd_); }
  TcxIngress(const TcxIngress&) = delete;
  TcxIngress& operator=(const TcxIngress&) = delete;

private:
  int fd_ = -1;
};

class PortIngressTest : public PortProgTest {
protected:
  // Polls the counters until they are what is expected or a second passed.
  Counts wait_for(const Counts& expected) {
    auto deadline = std::chrono::steady_clock::now() + 1s;
    Counts now = counts();
    while (now != expected && std::chrono::steady_clock::now() < deadline) {
      usleep(10000);
      now = counts();
    }
    return now;
  }
};

TEST_F(PortIngressTest, ArpRequestFromVmIsAnsweredOnTheWire) {
  TcxIngress attached(program_->program(), vm1.ifindex);
  Wire vm1_side(peer_name(vm1.device));
  Bytes request = arp_request(vm1, vm2.ip);

  vm1_side.send(request);

  EXPECT_EQ(wait_for(one(vm1, WEFT_ARP_REPLY)), one(vm1, WEFT_ARP_REPLY));
  Bytes reply = PacketBuilder()
                    .eth(vm1.mac, vm2.mac)
                    .arp(kArpReply, vm2.mac, vm2.ip, vm1.mac, vm1.ip)
                    .build();
  EXPECT_TRUE(vm1_side.receives(reply, 1s));
}

// Neutron drops every VLAN-tagged frame a VM sends. On the wire the kernel
// moves the tag into skb metadata (skb_vlan_untag in __netif_receive_skb_core)
// before tc ingress runs, so the check must not rely on the tag being in the
// packet bytes, as it is in a test run.
TEST_F(PortIngressTest, VlanTaggedFrameFromVmIsDroppedOnTheWire) {
  TcxIngress attached(program_->program(), vm1.ifindex);
  Wire vm1_side(peer_name(vm1.device));
  Bytes tagged = PacketBuilder()
                     .eth(vm2.mac, vm1.mac)
                     .vlan(100)
                     .ipv4(vm1.ip, vm2.ip)
                     .udp(5000, 5000)
                     .payload(Bytes(32, 0xab))
                     .build();

  vm1_side.send(tagged);

  EXPECT_EQ(wait_for(one(vm1, WEFT_DROP_VLAN_TAGGED)), one(vm1, WEFT_DROP_VLAN_TAGGED));
}

} // namespace
} // namespace weft::test
