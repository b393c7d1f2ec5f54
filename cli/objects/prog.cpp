// `weft prog list`: the devices running the port program.
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/inspect/inspect.hpp"

namespace weft::cli {

void register_prog(Command& cmd) {
  cmd.list(cmd.object("prog", "attached programs"), "list attachments", inspect_progs,
           {field("DEVICE", "device"), field("IFINDEX", "ifindex"), field("PORT", "port_id"),
            field("HOOK", "hook"), field("PROGRAM", "program"), field("PROG_ID", "prog_id"),
            field("MODE", "mode")});
}

} // namespace weft::cli
