// `weft stats [--port ID]`: forward and drop counters by port and reason.
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/datapath/session.hpp"
#include "loader/inspect/inspect.hpp"

using nlohmann::json;

namespace weft::cli {

namespace {

void stats(const Globals& g, const std::string& port) {
  Session session(layout_of(g));
  print_rows(inspect_stats(session, port),
             {field("PORT", "port_id"), field("DEVICE", "device"), field("REASON", "reason"),
              field("PACKETS", "packets"), field("BYTES", "bytes")},
             g.format);
}

} // namespace

void register_stats(Command& cmd) {
  const Globals& g = cmd.globals;
  auto& port = cmd.store.add<std::string>();
  cmd.verb(&cmd.app, "stats", "forward and drop counters by port and reason",
           [&g, &port] { stats(g, port); })
      ->add_option("--port", port, "only this port (id or prefix)");
}

} // namespace weft::cli
