// `weft fdb list`: where each MAC of each network lives.
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/inspect/inspect.hpp"

namespace weft::cli {

void register_fdb(Command& cmd) {
  cmd.list(cmd.object("fdb", "the forwarding table"), "list FDB entries", inspect_fdb,
           {field("NET_ID", "net_id"), field("NETWORK", "network"), field("MAC", "mac"),
            field("PORT", "port_id"), field("DEVICE", "device"), field("IFINDEX", "ifindex"),
            field("WHERE", "where"), field("NODE", "node"), field("VTEP", "vtep")});
}

} // namespace weft::cli
