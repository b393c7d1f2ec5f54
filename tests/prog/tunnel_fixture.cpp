#include "tests/prog/tunnel_fixture.hpp"

#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <net/if.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace weft::test {
namespace {

std::string text(Ipv4Address address) {
  char buffer[INET_ADDRSTRLEN] = {};
  in_addr in{address};
  return inet_ntop(AF_INET, &in, buffer, sizeof buffer) ? buffer : "?";
}

std::string text(const Mac& mac) {
  char buffer[18];
  std::snprintf(buffer, sizeof buffer, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
                mac[3], mac[4], mac[5]);
  return buffer;
}

// The devices of the underlay, removed again when the binary exits (also
// after a failed test; the private namespace would take them anyway).
class Underlay {
public:
  Underlay() {
    try {
      make_veth(kUplink);
      shell("ip link set " + kUplink + " address " + text(kUplinkMac));
      shell("ip addr add " + text(kTunnelIp) + "/24 dev " + kUplink);
      // The datapath asks the FIB as from lo, where bpf_fib_lookup wants
      // forwarding on; `weft node install` turns it on there, not on the
      // uplink (bpf/lib/encap.h).
      shell("sysctl -qw net.ipv4.conf.lo.forwarding=1");
      for (const Vtep* vtep : {&kVtepB, &kVtepC, &kStrangerVtep})
        neighbour(vtep->ip, vtep->next_hop_mac);
      neighbour(ipv4("192.0.2.254"), kVtepE.next_hop_mac);
      shell("ip route add 198.51.100.0/24 via 192.0.2.254 dev " + kUplink);
      make_veth(kVlanWire);
      make_veth(kFlatWire);
    } catch (...) {
      remove();
      throw;
    }
  }
  ~Underlay() { remove(); }
  Underlay(const Underlay&) = delete;
  Underlay& operator=(const Underlay&) = delete;

private:
  void make_veth(const std::string& device) {
    shell("ip link add " + device + " type veth peer name " + peer_name(device));
    made_.push_back(device);
    shell("ip link set " + device + " up");
    shell("ip link set " + peer_name(device) + " up");
  }
  static void neighbour(Ipv4Address ip, const Mac& mac) {
    shell("ip neigh replace " + text(ip) + " lladdr " + text(mac) + " dev " + kUplink +
          " nud permanent");
  }
  void remove() noexcept {
    for (const auto& device : made_)
      std::system(("ip link del " + device + " >/dev/null 2>&1").c_str());
    made_.clear();
  }

  std::vector<std::string> made_;
};

std::uint32_t index_of(const std::string& device) {
  std::uint32_t ifindex = if_nametoindex(device.c_str());
  if (ifindex == 0)
    throw std::runtime_error("no device " + device);
  return ifindex;
}

} // namespace

void TunnelTest::SetUp() {
  PortProgTest::SetUp();
  if (HasFatalFailure())
    return;
  static Underlay underlay;
  // Loaded once, on the maps of the binary's one port program.
  static UplinkProgram program(*program_);
  uplink_ = &program;
  uplink_ifindex = index_of(kUplink);
  vlan_wire_ifindex = index_of(kVlanWire);
  flat_wire_ifindex = index_of(kFlatWire);

  change_config([&](weft_node_config& config) {
    config.tunnel_ip = kTunnelIp;
    config.uplink_ifindex = uplink_ifindex;
  });
  for (const Vtep* vtep : {&kVtepB, &kVtepC, &kVtepD, &kVtepE})
    add_vtep(*vtep);
  put(maps().vnis, std::uint32_t{1001}, kBlue);
  put(maps().vnis, std::uint32_t{1002}, kRed);
  for (const RemotePort* port : {&rb, &rc, &rd, &re, &red_c})
    add_remote_port(*port);
  set_flood_vteps(kBlue, {kVtepB, kVtepC});
  set_flood_vteps(kRed, {kVtepC});

  // The provider networks' wires, as install's physnet mappings and apply give them.
  for (auto [net_id, wire, vlan] : {std::tuple{kGreen, vlan_wire_ifindex, kGreenVlan},
                                    std::tuple{kLonely, flat_wire_ifindex, std::uint16_t{0}}}) {
    weft_network network{};
    ASSERT_EQ(
        bpf_map__lookup_elem(maps().networks, &net_id, sizeof net_id, &network, sizeof network, 0),
        0);
    network.wire_ifindex = wire;
    set_network(net_id, network);
    weft_segment_key key{};
    key.ifindex = wire;
    key.vlan = vlan;
    put(maps().segments, key, net_id);
  }
}

void TunnelTest::add_vtep(const Vtep& vtep) {
  put(maps().vteps, vtep.ip, weft_vtep{vtep.slot});
}

void TunnelTest::add_remote_port(const RemotePort& port) {
  weft_fdb_key key{};
  key.net_id = port.net_id;
  std::memcpy(key.mac, port.mac.data(), WEFT_ETH_ALEN);
  weft_fdb_entry entry{};
  entry.vtep = port.vtep.ip;
  entry.vtep_slot = port.vtep.slot;
  put(maps().fdb, key, entry);
  weft_arp_key arp_key{};
  arp_key.net_id = port.net_id;
  arp_key.ip = port.ip;
  weft_arp_entry arp_entry{};
  std::memcpy(arp_entry.mac, port.mac.data(), WEFT_ETH_ALEN);
  put(maps().arp, arp_key, arp_entry);
}

void TunnelTest::set_flood_vteps(std::uint32_t net_id, std::initializer_list<Vtep> vteps) {
  weft_flood list{};
  bpf_map__lookup_elem(maps().flood, &net_id, sizeof net_id, &list, sizeof list, 0);
  list.vtep_count = 0;
  for (const Vtep& vtep : vteps) {
    list.vtep_slots[list.vtep_count] = vtep.slot;
    list.vteps[list.vtep_count++] = vtep.ip;
  }
  put(maps().flood, net_id, list);
}

RunResult TunnelTest::run_uplink(const std::string& device, const Bytes& frame) {
  return run_once(uplink_->program(), index_of(device), frame);
}

Bytes TunnelTest::from_vtep(const Vtep& vtep, std::uint32_t vni, const Bytes& inner,
                            std::uint16_t sport) {
  return PacketBuilder()
      .eth(kUplinkMac, vtep.next_hop_mac)
      .ipv4(vtep.ip, kTunnelIp)
      .udp(sport, kVxlanPort)
      .vxlan(vni)
      .payload(inner)
      .build();
}

VtepCounts TunnelTest::vtep_counts() const {
  std::map<std::uint32_t, std::string> names;
  for (const Vtep* vtep : {&kVtepB, &kVtepC, &kVtepD, &kVtepE, &kStrangerVtep})
    names[vtep->slot] = vtep->name;
  VtepCounts all;
  for (const auto& [slot, path] : read_vtep_paths(maps())) {
    auto name = names.count(slot) ? names[slot] : "slot " + std::to_string(slot);
    if (path.tx.packets)
      all[{name, "egress"}] = path.tx.packets;
    if (path.rx.packets)
      all[{name, "ingress"}] = path.rx.packets;
  }
  return all;
}

} // namespace weft::test
