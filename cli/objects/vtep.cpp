// `weft vtep list`: the other nodes' tunnel endpoints, as this node sees them.
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/datapath/session.hpp"
#include "loader/inspect/inspect.hpp"

namespace weft::cli {

void register_vtep(Command& cmd) {
  cmd.list(cmd.object("vtep", "the other nodes' VXLAN tunnel endpoints"),
           "list remote VTEPs: node, networks flooded to it, MACs behind it, counters",
           inspect_vteps,
           {field("VTEP", "vtep"), field("NODE", "node"), field("NETWORKS", "networks"),
            field("MACS", "macs"), field("TX_PACKETS", "tx_packets"), field("TX_BYTES", "tx_bytes"),
            field("RX_PACKETS", "rx_packets"), field("RX_BYTES", "rx_bytes")});
}

} // namespace weft::cli
