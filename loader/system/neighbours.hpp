// The underlay neighbours of the node's VTEPs, resolved ahead of traffic:
// the datapath reads the kernel's neighbour table (bpf_fib_lookup) and
// cannot make it resolve an address for a broadcast's copies, only for
// unicast (bpf_redirect_neigh). One ICMP echo to each peer VTEP from the
// node's namespace has the kernel resolve its next hop, as any first packet
// would.
#pragma once

#include <cstdint>
#include <vector>

namespace weft {

// Sends one echo request to each IPv4 address (network order); best effort,
// never throws: an unreachable peer only stays unresolved.
void probe_neighbours(const std::vector<std::uint32_t>& ipv4_be);

} // namespace weft
