// The checks that span resources and so can only be made once every resource
// of a kind is read: subnets of one network must not overlap, and an allowed
// address pair must not take over another port's MAC.
#include "loader/model/parser.hpp"

namespace weft::document {

namespace {

bool overlaps(const IpPrefix& a, const IpPrefix& b) {
  return a.contains(b.addr) || b.contains(a.addr);
}

} // namespace

void Parser::check_subnet_overlaps() {
  const auto& subnets = state_.subnets;
  for (std::size_t later = 0; later < subnets.size(); ++later) {
    if (!subnet_cidr_valid_[later] || subnets[later].network_id.empty())
      continue;
    for (std::size_t earlier = 0; earlier < later; ++earlier) {
      if (!subnet_cidr_valid_[earlier] || subnets[earlier].network_id != subnets[later].network_id)
        continue;
      if (overlaps(subnets[earlier].cidr, subnets[later].cidr)) {
        std::string where = subnets[later].id.empty() ? indexed("subnets", later)
                                                      : label("subnet", subnets[later].id);
        problems_.add(where, "cidr " + subnets[later].cidr.str() + " overlaps subnet " +
                                 printable(subnets[earlier].id) + " (" +
                                 subnets[earlier].cidr.str() + ") in network " +
                                 printable(subnets[later].network_id));
        break;
      }
    }
  }
}

// An allowed pair may widen what a port sends from, never take over what
// another port of its network receives: the forwarding table would send that
// port's unicast to whichever of the two came last in the document.
void Parser::check_pair_macs() {
  for (std::size_t i = 0; i < state_.ports.size(); ++i) {
    const Port& port = state_.ports[i];
    for (std::size_t k = 0; k < port.allowed_address_pairs.size(); ++k) {
      const Mac& mac = port.allowed_address_pairs[k].mac_address;
      if (mac == port.mac_address)
        continue;
      auto owner = macs_.find(std::make_pair(port.network_id, mac));
      if (owner == macs_.end())
        continue;
      std::string where = port.id.empty() ? indexed("ports", i) : label("port", port.id);
      problems_.add(where, indexed("allowed_address_pairs", k) + ".mac_address " + mac.str() +
                               " is the MAC of " + owner->second + " in network " +
                               printable(port.network_id) +
                               ": a pair may not take over another port's traffic");
    }
  }
}

} // namespace weft::document
