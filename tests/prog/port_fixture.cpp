#include "tests/prog/port_fixture.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/magic.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace weft::test {
namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream file(path);
  file << text;
  if (!file.flush())
    throw std::runtime_error("cannot write " + path);
}

// Nothing is pinned by these tests, but bpffs is where weft lives: mount it
// as weft does when a fresh machine lacks it.
void mount_bpffs() {
  struct statfs fs {};
  if (statfs("/sys/fs/bpf", &fs) == 0 && fs.f_type == BPF_FS_MAGIC)
    return;
  if (mount("bpf", "/sys/fs/bpf", "bpf", 0, nullptr) != 0)
    throw std::runtime_error(std::string("mount bpffs: ") + std::strerror(errno));
}

[[maybe_unused]] ::testing::Environment* const kPrivateNetwork =
    ::testing::AddGlobalTestEnvironment(new PrivateNetwork);

// One program for the whole binary: loading it (the verifier) takes seconds.
PortProgram& shared_program() {
  static PortProgram program;
  return program;
}

// The same with conntrack tables of the smallest size the loader allows.
PortProgram& small_ct_program() {
  static PortProgram program(kSmallCtMax);
  return program;
}

#define WEFT_REASON_TEXT(name, text) text,
constexpr const char* kReasonNames[] = {WEFT_REASONS(WEFT_REASON_TEXT)};
#undef WEFT_REASON_TEXT

} // namespace

void shell(const std::string& command) {
  int status = std::system((command + " >/dev/null 2>&1").c_str());
  if (status != 0)
    throw std::runtime_error("failed (" + std::to_string(status) + "): " + command);
}

std::string device_name(int index) {
  return "wtp" + std::to_string(index);
}

std::string peer_name(const std::string& device) {
  return device + "p";
}

// --- PrivateNetwork ------------------------------------------------------------

void PrivateNetwork::SetUp() {
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

std::string& PrivateNetwork::unavailable_reason() {
  static std::string reason;
  return reason;
}

std::string& PrivateNetwork::setup_error() {
  static std::string error;
  return error;
}

// --- counters --------------------------------------------------------------------

std::string reason_name(std::uint32_t reason) {
  return reason < WEFT_REASON_COUNT ? kReasonNames[reason] : "reason-" + std::to_string(reason);
}

std::string ifname(std::uint32_t ifindex) {
  char name[IF_NAMESIZE] = {};
  return if_indextoname(ifindex, name) ? name : "if" + std::to_string(ifindex);
}

// --- Wire ------------------------------------------------------------------------

std::vector<std::uint16_t> Received::vlan_ids() const {
  std::vector<std::uint16_t> ids;
  if (vlan_tci)
    ids.push_back(*vlan_tci & 0x0fff);
  for (std::uint16_t id : FrameView(frame).vlan_ids())
    ids.push_back(id);
  return ids;
}

Wire::Wire(const std::string& device) : ifindex_(if_nametoindex(device.c_str())) {
  fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd_ < 0)
    throw std::runtime_error("AF_PACKET socket: " + std::string(std::strerror(errno)));
  int on = 1;
  if (setsockopt(fd_, SOL_PACKET, PACKET_AUXDATA, &on, sizeof on) != 0) {
    int err = errno;
    close(fd_);
    throw std::runtime_error("PACKET_AUXDATA: " + std::string(std::strerror(err)));
  }
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

Wire::~Wire() {
  close(fd_);
}

void Wire::send(const Bytes& frame) {
  sockaddr_ll address{};
  address.sll_family = AF_PACKET;
  address.sll_ifindex = static_cast<int>(ifindex_);
  address.sll_halen = 6;
  std::memcpy(address.sll_addr, frame.data(), 6);
  if (sendto(fd_, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&address),
             sizeof address) != static_cast<ssize_t>(frame.size()))
    throw std::runtime_error("AF_PACKET send: " + std::string(std::strerror(errno)));
}

bool Wire::receives(const Bytes& frame, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto received = next(std::max(left, std::chrono::milliseconds(0)));
    if (!received)
      return false;
    if (received->frame == frame)
      return true;
  }
}

std::optional<Received> Wire::next(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{fd_, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(std::max<long>(left.count(), 0))) <= 0)
      return std::nullopt;
    Received received;
    received.frame.resize(65536);
    sockaddr_ll from{};
    iovec iov{received.frame.data(), received.frame.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(tpacket_auxdata))] = {};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(fd_, &msg, 0);
    if (n < 0 || from.sll_pkttype == PACKET_OUTGOING)
      continue;
    received.frame.resize(static_cast<std::size_t>(n));
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA)
        continue;
      tpacket_auxdata aux{};
      std::memcpy(&aux, CMSG_DATA(c), sizeof aux);
      if (aux.tp_status & TP_STATUS_VLAN_VALID) {
        received.vlan_tci = aux.tp_vlan_tci;
        received.vlan_tpid = (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) ? aux.tp_vlan_tpid : 0;
      }
    }
    return received;
  }
}

std::vector<Received> Wire::drain(std::chrono::milliseconds quiet) {
  std::vector<Received> all;
  while (auto received = next(quiet))
    all.push_back(std::move(*received));
  return all;
}

// --- TcxIngress ------------------------------------------------------------------

TcxIngress::TcxIngress(const bpf_program* program, std::uint32_t ifindex) {
  constexpr auto kTcxIngress = static_cast<bpf_attach_type>(46); // BPF_TCX_INGRESS
  fd_ = bpf_link_create(bpf_program__fd(program), static_cast<int>(ifindex), kTcxIngress, nullptr);
  if (fd_ < 0)
    throw std::runtime_error("tcx attach to " + ifname(ifindex) + ": " + std::strerror(-fd_));
}

TcxIngress::~TcxIngress() {
  close(fd_);
}

// --- the fixture -------------------------------------------------------------------

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

void PortProgTest::SetUp() {
  // Without root these tests fail: a skip would read as a pass in CI.
  ASSERT_TRUE(PrivateNetwork::unavailable_reason().empty()) << PrivateNetwork::unavailable_reason();
  ASSERT_EQ(PrivateNetwork::setup_error(), "");
  program_ = small_ct() ? &small_ct_program() : &shared_program();
  program_->reset();

  weft_node_config config{};
  config.abi_version = WEFT_ABI_VERSION;
  config.ct_max = bpf_map__max_entries(maps().ct);
  put(maps().config, std::uint32_t{0}, config);
  add_network(kBlue, WEFT_NET_VXLAN, 1001);
  add_network(kRed, WEFT_NET_VXLAN, 1002);
  add_network(kGreen, WEFT_NET_VLAN, 300);
  add_network(kLonely, WEFT_NET_FLAT, 0);
  add_network(kNoFloodList, WEFT_NET_VXLAN, 1005);
  write_open_policy(kOpenPolicy);

  for (VmPort* port : {&vm1, &vm2, &vm3, &vm4, &vm5, &vm6, &vm7, &vm8, &vm9})
    add_port(*port);
  add_fixed_ip(vm6, red_only_ip);
  add_address_pair(vm1, pair_mac, pair_cidr, kPairPrefixLen);
}

void PortProgTest::put_raw(bpf_map* map, const void* key, std::size_t key_size, const void* value,
                           std::size_t value_size) {
  if (int err = bpf_map__update_elem(map, key, key_size, value, value_size, BPF_ANY))
    throw std::runtime_error(std::string("update ") + bpf_map__name(map) + ": " +
                             std::strerror(-err));
}

void PortProgTest::add_network(std::uint32_t net_id, weft_net_type type,
                               std::uint32_t segmentation_id) {
  weft_network network{};
  network.segmentation_id = segmentation_id;
  network.mtu = type == WEFT_NET_VXLAN ? 1450 : 1500;
  network.type = static_cast<std::uint8_t>(type);
  set_network(net_id, network);
}

void PortProgTest::set_network(std::uint32_t net_id, const weft_network& network) {
  put(maps().networks, net_id, network);
  std::uint32_t ifindex = 0, next = 0;
  const std::uint32_t* previous = nullptr;
  while (bpf_map__get_next_key(maps().ports, previous, &next, sizeof next) == 0) {
    ifindex = next;
    previous = &ifindex;
    weft_port port{};
    if (bpf_map__lookup_elem(maps().ports, &ifindex, sizeof ifindex, &port, sizeof port, 0) == 0 &&
        port.net_id == net_id) {
      port.net = network;
      put(maps().ports, ifindex, port);
    }
  }
}

void PortProgTest::write_port(const VmPort& port) {
  weft_port value{};
  value.net_id = port.net_id;
  value.flags = (port.security ? WEFT_PORT_SECURITY : 0) | (port.up ? WEFT_PORT_UP : 0);
  if (port.security && port.stateful)
    value.flags |= WEFT_PORT_STATEFUL;
  std::memcpy(value.mac, port.mac.data(), WEFT_ETH_ALEN);
  // Port security off means no groups (Neutron refuses both together).
  value.policy = port.security ? port.policy : 0;
  // A slot of its own for its forwarding counters, and its network's entry,
  // as apply writes each port.
  value.stat_slot = port.ifindex < WEFT_MAX_PORTS ? port.ifindex : 0;
  bpf_map__lookup_elem(maps().networks, &port.net_id, sizeof port.net_id, &value.net,
                       sizeof value.net, 0);
  put(maps().ports, port.ifindex, value);
}

void PortProgTest::add_port(VmPort& port) {
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
  allow_source6(port, port.mac, link_local(port.mac), 128);
}

void PortProgTest::allow_mac(const VmPort& port, const Mac& mac) {
  weft_port_mac_key key{};
  key.ifindex = port.ifindex;
  std::memcpy(key.mac, mac.data(), WEFT_ETH_ALEN);
  put(maps().port_macs, key, std::uint8_t{1});
}

void PortProgTest::allow_source(const VmPort& port, const Mac& mac, Ipv4Address ip,
                                std::uint32_t prefix_len) {
  weft_spoof_v4_key key{};
  key.prefixlen = WEFT_SPOOF_V4_FIXED_BITS + prefix_len;
  key.ifindex = port.ifindex;
  std::memcpy(key.mac, mac.data(), WEFT_ETH_ALEN);
  key.ip = ip;
  put(maps().spoof_v4, key, std::uint8_t{1});
}

void PortProgTest::allow_source6(const VmPort& port, const Mac& mac, const Ipv6Address& ip,
                                 std::uint32_t prefix_len) {
  weft_spoof_v6_key key{};
  key.prefixlen = WEFT_SPOOF_V6_FIXED_BITS + prefix_len;
  key.ifindex = port.ifindex;
  std::memcpy(key.mac, mac.data(), WEFT_ETH_ALEN);
  std::memcpy(key.ip, ip.data(), sizeof key.ip);
  put(maps().spoof_v6, key, std::uint8_t{1});
}

void PortProgTest::add_fixed_ip(const VmPort& port, Ipv4Address ip) {
  allow_source(port, port.mac, ip, 32);
  weft_arp_key key{};
  key.net_id = port.net_id;
  key.ip = ip;
  weft_arp_entry entry{};
  std::memcpy(entry.mac, port.mac.data(), WEFT_ETH_ALEN);
  put(maps().arp, key, entry);
}

void PortProgTest::add_address_pair(const VmPort& port, const Mac& mac, Ipv4Address ip,
                                    std::uint32_t prefix_len) {
  allow_mac(port, mac);
  allow_source(port, mac, ip, prefix_len);
  allow_source6(port, mac, link_local(mac), 128);
}

// --- security groups ---------------------------------------------------------------

void PortProgTest::put_sg_l4(std::uint32_t policy, weft_direction direction, std::uint8_t family,
                             std::uint8_t proto, std::uint16_t block_start,
                             std::uint32_t block_prefix_len,
                             std::initializer_list<std::uint32_t> rules) {
  test::put_sg_l4(maps().sg_l4,
                  sg_l4_key(policy, direction, family, proto, block_start, block_prefix_len),
                  rule_set(rules));
}

void PortProgTest::erase_sg_l4(std::uint32_t policy, weft_direction direction, std::uint8_t family,
                               std::uint8_t proto, std::uint16_t block_start,
                               std::uint32_t block_prefix_len) {
  test::erase_sg_l4(maps().sg_l4,
                    sg_l4_key(policy, direction, family, proto, block_start, block_prefix_len));
}

void PortProgTest::put_sg_remote(std::uint32_t policy, weft_direction direction,
                                 std::string_view prefix,
                                 std::initializer_list<std::uint32_t> rules) {
  test::put_sg_remote(maps().sg_remote, sg_remote_key(policy, direction, ip_prefix(prefix)),
                      rule_set(rules));
}

void PortProgTest::erase_sg_remote(std::uint32_t policy, weft_direction direction,
                                   std::string_view prefix) {
  test::erase_sg_remote(maps().sg_remote, sg_remote_key(policy, direction, ip_prefix(prefix)));
}

void PortProgTest::write_open_policy(std::uint32_t policy) {
  put_sg_l4(policy, WEFT_DIR_INGRESS, 4, WEFT_PROTO_ANY, 0, 0, {0});
  put_sg_remote(policy, WEFT_DIR_INGRESS, "0.0.0.0/0", {0});
  put_sg_l4(policy, WEFT_DIR_EGRESS, 4, WEFT_PROTO_ANY, 0, 0, {1});
  put_sg_remote(policy, WEFT_DIR_EGRESS, "0.0.0.0/0", {1});
  put_sg_l4(policy, WEFT_DIR_INGRESS, 6, WEFT_PROTO_ANY, 0, 0, {2});
  put_sg_remote(policy, WEFT_DIR_INGRESS, "::/0", {2});
  put_sg_l4(policy, WEFT_DIR_EGRESS, 6, WEFT_PROTO_ANY, 0, 0, {3});
  put_sg_remote(policy, WEFT_DIR_EGRESS, "::/0", {3});
}

void PortProgTest::set_policy(VmPort& port, std::uint32_t policy, bool stateful) {
  port.policy = policy;
  port.stateful = stateful;
  write_port(port);
}

void PortProgTest::change_config(const std::function<void(weft_node_config&)>& change) {
  std::uint32_t zero = 0;
  weft_node_config config{};
  if (int err = bpf_map__lookup_elem(maps().config, &zero, sizeof zero, &config, sizeof config, 0))
    throw std::runtime_error(std::string("read config: ") + std::strerror(-err));
  change(config);
  put(maps().config, zero, config);
}

void PortProgTest::set_sg_generation(std::uint32_t generation) {
  change_config([&](weft_node_config& config) { config.sg_generation = generation; });
}

std::vector<std::pair<weft_ct_key, weft_ct_entry>> PortProgTest::ct_entries(bpf_map* table) const {
  std::vector<std::pair<weft_ct_key, weft_ct_entry>> all;
  weft_ct_key key{};
  weft_ct_key next{};
  const weft_ct_key* previous = nullptr;
  while (bpf_map__get_next_key(table, previous, &next, sizeof next) == 0) {
    key = next;
    previous = &key;
    weft_ct_entry entry{};
    if (bpf_map__lookup_elem(table, &key, sizeof key, &entry, sizeof entry, 0) == 0)
      all.emplace_back(key, entry);
  }
  return all;
}

std::vector<std::pair<weft_ct_key, weft_ct_entry>> PortProgTest::ct_entries() const {
  auto all = ct_entries(maps().ct);
  auto pending = ct_entries(maps().ct_new);
  all.insert(all.end(), pending.begin(), pending.end());
  return all;
}

void PortProgTest::set_ct_network_max(std::uint32_t limit) {
  change_config([&](weft_node_config& config) { config.ct_network_max = limit; });
}

// --- running the program -------------------------------------------------------------

RunResult PortProgTest::run_on(const std::string& device, const Bytes& frame) {
  std::uint32_t ifindex = if_nametoindex(device.c_str());
  if (ifindex == 0)
    throw std::runtime_error("no device " + device);
  return run_once(program_->program(), ifindex, frame);
}

Counts PortProgTest::counts() const {
  Counts all;
  for (const auto& [at, c] : read_counters(maps()))
    all[{ifname(at.first), reason_name(at.second)}] = c.packets;
  return all;
}

Counts PortProgTest::wait_for(const Counts& expected) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  Counts now = counts();
  while (now != expected && std::chrono::steady_clock::now() < deadline) {
    usleep(10000);
    now = counts();
  }
  return now;
}

weft_counter PortProgTest::counter(std::uint32_t ifindex, std::uint32_t reason) const {
  auto all = read_counters(maps());
  auto it = all.find({ifindex, reason});
  return it == all.end() ? weft_counter{} : it->second;
}

// --- frames a VM sends -----------------------------------------------------------------

Bytes PortProgTest::arp_request(const VmPort& from, Ipv4Address target, const Mac& eth_dst) {
  return PacketBuilder()
      .eth(eth_dst, from.mac)
      .arp(kArpRequest, from.mac, from.ip, kZeroMac, target)
      .build();
}

Bytes PortProgTest::udp4(const Mac& eth_src, const Mac& eth_dst, Ipv4Address src, Ipv4Address dst,
                         std::uint16_t sport, std::uint16_t dport, Bytes data) {
  return PacketBuilder()
      .eth(eth_dst, eth_src)
      .ipv4(src, dst)
      .udp(sport, dport)
      .payload(std::move(data))
      .build();
}

Bytes PortProgTest::ping(const VmPort& from, const VmPort& to) {
  return PacketBuilder()
      .eth(to.mac, from.mac)
      .ipv4(from.ip, to.ip)
      .icmp(kIcmpEchoRequest, 0, 0x00010001)
      .payload(Bytes(56, 0x42))
      .build();
}

Bytes PortProgTest::broadcast_udp(const VmPort& from) {
  return udp4(from.mac, kBroadcastMac, from.ip, ipv4("10.0.0.255"), 5000, 5000);
}

} // namespace weft::test
