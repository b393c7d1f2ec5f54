// `weft net list`: the tenant networks this node serves.
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/inspect/inspect.hpp"

namespace weft::cli {

void register_net(Command& cmd) {
  cmd.list(cmd.object("net", "tenant networks"), "list networks", inspect_networks,
           {field("ID", "id"), field("NAME", "name"), field("PROJECT", "project_id"),
            field("TYPE", "type"), field("SEGMENT", "segmentation_id"),
            field("PHYSNET", "physical_network"), field("MTU", "mtu"), field("NET_ID", "net_id"),
            field("LOCAL_PORTS", "local_ports")});
}

} // namespace weft::cli
