// The checks across resources, made in one pass once the whole document is
// parsed: what must be unique across resources (a node's tunnel IP, a
// network's segment, a port's MAC and fixed IPs in its network, its device on
// its host), subnets of one network that overlap, and allowed address pairs
// that would take over another port's MAC. Each reads the State; Origins adds
// only where an entry was in the document and which parts failed to parse.
#include "loader/model/parser.hpp"

namespace weft::document {

namespace {

// (network id, MAC) → the port that has it.
using Macs = std::map<std::pair<std::string, Mac>, std::string>;

bool overlaps(const IpPrefix& a, const IpPrefix& b) {
  return a.contains(b.addr) || b.contains(a.addr);
}

// Each node is reached at its own tunnel IP.
void check_tunnel_ips(const State& state, const Origins& origins, Problems& problems) {
  std::map<IpAddr, std::string> tunnel_ips; // → node name
  for (std::size_t i = 0; i < state.nodes.size(); ++i) {
    const Node& node = state.nodes[i];
    if (!node.tunnel_ip)
      continue;
    auto [it, inserted] = tunnel_ips.emplace(*node.tunnel_ip, node.name);
    if (!inserted)
      problems.add(origins.nodes[i], "tunnel_ip " + node.tunnel_ip->str() +
                                         " is also the tunnel_ip of node " + printable(it->second));
  }
}

// One network per VNI, per (physical network, VLAN id), and per flat physical
// network. A network is named by its id, or by its place without one.
void check_segments(const State& state, const Origins& origins, Problems& problems) {
  const char* kSegmentationId = "provider:segmentation_id";
  const char* kPhysicalNetwork = "provider:physical_network";
  std::map<std::uint32_t, std::string> vnis;                          // → network
  std::map<std::pair<std::string, std::uint32_t>, std::string> vlans; // (physnet, vlan)
  std::map<std::string, std::string> flats;                           // physnet → network
  for (std::size_t i = 0; i < state.networks.size(); ++i) {
    const Network& network = state.networks[i];
    const NetworkOrigin& origin = origins.networks[i];
    if (!origin.segment_valid)
      continue;
    auto problem = [&](const char* key, const std::string& what) {
      problems.add(origin.where, origin.segment_path + key + " " + what);
    };
    std::string self = network.id.empty() ? origin.where : network.id;
    switch (network.type) {
    case NetworkType::Vxlan: {
      auto [it, inserted] = vnis.emplace(network.segmentation_id, self);
      if (!inserted)
        problem(kSegmentationId, std::to_string(network.segmentation_id) +
                                     " is already the VNI of network " + printable(it->second));
      break;
    }
    case NetworkType::Vlan: {
      auto [it, inserted] =
          vlans.emplace(std::make_pair(*network.physical_network, network.segmentation_id), self);
      if (!inserted)
        problem(kSegmentationId, std::to_string(network.segmentation_id) + " on physical network " +
                                     in_quotes(*network.physical_network) +
                                     " is already used by network " + printable(it->second));
      break;
    }
    case NetworkType::Flat: {
      auto [it, inserted] = flats.emplace(*network.physical_network, self);
      if (!inserted)
        problem(kPhysicalNetwork, in_quotes(*network.physical_network) +
                                      " already has a flat network: " + printable(it->second));
      break;
    }
    }
  }
}

// Subnets of one network do not overlap: an address would be in two of them.
void check_subnet_overlaps(const State& state, const Origins& origins, Problems& problems) {
  const auto& subnets = state.subnets;
  for (std::size_t later = 0; later < subnets.size(); ++later) {
    if (!origins.subnet_cidr_valid[later] || subnets[later].network_id.empty())
      continue;
    for (std::size_t earlier = 0; earlier < later; ++earlier) {
      if (!origins.subnet_cidr_valid[earlier] ||
          subnets[earlier].network_id != subnets[later].network_id)
        continue;
      if (overlaps(subnets[earlier].cidr, subnets[later].cidr)) {
        std::string where = subnets[later].id.empty() ? indexed("subnets", later)
                                                      : label("subnet", subnets[later].id);
        problems.add(where, "cidr " + subnets[later].cidr.str() + " overlaps subnet " +
                                printable(subnets[earlier].id) + " (" +
                                subnets[earlier].cidr.str() + ") in network " +
                                printable(subnets[later].network_id));
        break;
      }
    }
  }
}

// One MAC and one owner per fixed IP in a network; one tap per host. Only
// ports of a known network are checked (a port of an unknown network is
// refused already), and of ports that share an id only the first has a
// device (the others are refused already). Returns the MACs, which
// check_pair_macs needs.
Macs check_ports(const State& state, const Origins& origins, Problems& problems) {
  std::set<std::string_view> networks; // the known network ids
  for (const Network& network : state.networks)
    if (!network.id.empty())
      networks.insert(network.id);
  Macs macs;
  std::map<std::pair<std::string, IpAddr>, std::string> ips;          // (network, IP) → port
  std::map<std::pair<std::string, std::string>, std::string> devices; // (host, tap) → port
  std::set<std::string_view> port_ids;
  for (std::size_t i = 0; i < state.ports.size(); ++i) {
    const Port& port = state.ports[i];
    const PortOrigin& origin = origins.ports[i];
    bool network_known = networks.contains(port.network_id);
    // A port's MAC is set only when it is valid, and a valid MAC is not zero.
    if (!port.mac_address.is_zero() && network_known) {
      auto [it, inserted] =
          macs.emplace(std::make_pair(port.network_id, port.mac_address), origin.where);
      if (!inserted)
        problems.add(origin.where, "mac_address " + port.mac_address.str() +
                                       " is also the MAC of " + it->second + " in network " +
                                       printable(port.network_id));
    }
    if (network_known) {
      for (std::size_t k = 0; k < port.fixed_ips.size(); ++k) {
        const IpAddr& ip = port.fixed_ips[k].ip_address;
        auto [it, inserted] = ips.emplace(std::make_pair(port.network_id, ip), origin.where);
        if (!inserted)
          problems.add(origin.where, indexed("fixed_ips", origin.fixed_ip_index[k]) +
                                         ".ip_address " + ip.str() + " is also a fixed IP of " +
                                         it->second + " in network " + printable(port.network_id));
      }
    }
    bool first_with_id = !port.id.empty() && port_ids.insert(port.id).second;
    if (first_with_id && !port.host_id.empty()) {
      auto [it, inserted] =
          devices.emplace(std::make_pair(port.host_id, port.device_name()), origin.where);
      if (!inserted)
        problems.add(origin.where, "id gives device " + printable(port.device_name()) +
                                       ", also the device of " + it->second + " on host " +
                                       printable(port.host_id));
    }
  }
  return macs;
}

// An allowed pair may widen what a port sends from, never take over what
// another port of its network receives: the forwarding table would send that
// port's unicast to whichever of the two came last in the document.
void check_pair_macs(const State& state, const Macs& macs, Problems& problems) {
  for (std::size_t i = 0; i < state.ports.size(); ++i) {
    const Port& port = state.ports[i];
    for (std::size_t k = 0; k < port.allowed_address_pairs.size(); ++k) {
      const Mac& mac = port.allowed_address_pairs[k].mac_address;
      if (mac == port.mac_address)
        continue;
      auto owner = macs.find(std::make_pair(port.network_id, mac));
      if (owner == macs.end())
        continue;
      std::string where = port.id.empty() ? indexed("ports", i) : label("port", port.id);
      problems.add(where, indexed("allowed_address_pairs", k) + ".mac_address " + mac.str() +
                              " is the MAC of " + owner->second + " in network " +
                              printable(port.network_id) +
                              ": a pair may not take over another port's traffic");
    }
  }
}

} // namespace

void validate(const State& state, const Origins& origins, Problems& problems) {
  check_tunnel_ips(state, origins, problems);
  check_segments(state, origins, problems);
  check_subnet_overlaps(state, origins, problems);
  Macs macs = check_ports(state, origins, problems);
  check_pair_macs(state, macs, problems);
}

} // namespace weft::document
