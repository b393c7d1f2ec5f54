// The node of the tunnel tests: the port-program node (port_fixture.hpp)
// with an underlay and provider networks, and the uplink program loaded on
// the same maps.
//
// In the tests' private network namespace (PrivateNetwork), devices named
// wprog*: the uplink wprogul (this node's tunnel IP, 192.0.2.1/24, with
// forwarding on for lo as node install does, permanent neighbour entries for the other nodes' VTEPs
// and a gateway to a routed one), the physnet device wprogph of the vlan network and wprogfl of the
// flat one; each a veth whose peer (…p) stands for the wire. They are made once and removed at
// exit; the namespace goes with the process.
//
// Other nodes' ports of the blue network (VNI 1001) sit behind VTEP B and C
// (the flood list's), D (no neighbour yet) and E (behind a router); red
// (VNI 1002) has one behind C. Green is the vlan network (300) on wprogph,
// lonely the flat one on wprogfl.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <utility>

#include "tests/prog/port_fixture.hpp"
#include "tests/prog/uplink_program.hpp"

namespace weft::test {

inline const std::string kUplink = "wprogul";
inline const std::string kVlanWire = "wprogph"; // physnet1: green, VLAN 300
inline const std::string kFlatWire = "wprogfl"; // physnet2: lonely, untagged

inline const Mac kUplinkMac = mac("02:77:00:00:00:01");
inline const Ipv4Address kTunnelIp = ipv4("192.0.2.1");

// Another node's tunnel endpoint, and the MAC the outer frame goes to.
struct Vtep {
  std::string name;
  Ipv4Address ip;
  Mac next_hop_mac;   // its own, or (routed) the gateway's
  std::uint32_t slot; // in WEFT_MAP_VTEP_PATHS, as apply gives each VTEP one
};

inline const Vtep kVtepB{"B", ipv4("192.0.2.2"), mac("02:77:00:00:00:02"), 1};
inline const Vtep kVtepC{"C", ipv4("192.0.2.3"), mac("02:77:00:00:00:03"), 2};
inline const Vtep kVtepD{"D", ipv4("192.0.2.4"), kZeroMac, 3}; // on the link, not resolved
inline const Vtep kVtepE{"E", ipv4("198.51.100.5"), mac("02:77:00:00:00:fe"), 4}; // via .254
// Resolved on the link, but no node of the document: never sent to, never accepted.
inline const Vtep kStrangerVtep{"stranger", ipv4("192.0.2.9"), mac("02:77:00:00:00:09"), 5};

// A port bound to another node.
struct RemotePort {
  Mac mac;
  Ipv4Address ip;
  std::uint32_t net_id;
  Vtep vtep;
};

// VXLAN packets by (VTEP name, "ingress"/"egress").
using VtepCounts = std::map<std::pair<std::string, std::string>, std::uint64_t>;

class TunnelTest : public PortProgTest {
protected:
  RemotePort rb{mac("fa:16:3e:00:0b:01"), ipv4("10.0.0.11"), kBlue, kVtepB};
  RemotePort rc{mac("fa:16:3e:00:0c:01"), ipv4("10.0.0.12"), kBlue, kVtepC};
  RemotePort rd{mac("fa:16:3e:00:0d:01"), ipv4("10.0.0.13"), kBlue, kVtepD};
  RemotePort re{mac("fa:16:3e:00:0e:01"), ipv4("10.0.0.14"), kBlue, kVtepE};
  RemotePort red_c{mac("fa:16:3e:00:0c:02"), ipv4("10.0.0.12"), kRed, kVtepC};

  // A router on the vlan and flat networks' wires, which the document does not know.
  const Mac router_mac = mac("02:55:00:00:00:01");

  static constexpr std::uint16_t kGreenVlan = 300;

  std::uint32_t uplink_ifindex = 0;
  std::uint32_t vlan_wire_ifindex = 0;
  std::uint32_t flat_wire_ifindex = 0;

  void SetUp() override;

  const UplinkProgram& uplink() const { return *uplink_; }

  void add_remote_port(const RemotePort& port);
  void set_flood_vteps(std::uint32_t net_id, std::initializer_list<Vtep> vteps);
  // A node of the document: the VTEP may send this node VXLAN.
  void add_vtep(const Vtep& vtep);

  // Runs the uplink program once on `frame` as if it came in on `device`.
  RunResult run_uplink(const std::string& device, const Bytes& frame);

  // `inner` as `vtep` sends it to this node: VXLAN with `vni`, outer UDP
  // source port `sport`.
  static Bytes from_vtep(const Vtep& vtep, std::uint32_t vni, const Bytes& inner,
                         std::uint16_t sport = 54321);

  VtepCounts vtep_counts() const;

  static Counts on_uplink(weft_reason reason, std::uint64_t packets = 1) {
    return {{{kUplink, reason_name(reason)}, packets}};
  }

private:
  UplinkProgram* uplink_ = nullptr;
};

} // namespace weft::test
