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
  CLI::App& app = cmd.app;
  const Globals& g = cmd.globals;
  Action& action = cmd.action;
  OptionStore& store = cmd.store;
  auto& stats_port = store.add<std::string>();
  auto* stats_cmd = app.add_subcommand("stats", "forward and drop counters by port and reason");
  stats_cmd->add_option("--port", stats_port, "only this port (id or prefix)");
  stats_cmd->callback([&] { action = [&] { stats(g, stats_port); }; });
}

} // namespace weft::cli
