// `weft fdb list`: where each MAC of each network lives.
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/datapath/session.hpp"
#include "loader/inspect/inspect.hpp"

using nlohmann::json;

namespace weft::cli {

namespace {

void fdb_list(const Globals& g) {
  Session session(layout_of(g));
  print_rows(inspect_fdb(session),
             {field("NET_ID", "net_id"), field("NETWORK", "network"), field("MAC", "mac"),
              field("PORT", "port_id"), field("DEVICE", "device"), field("IFINDEX", "ifindex"),
              field("VTEP", "vtep")},
             g.format);
}

} // namespace

void register_fdb(Command& cmd) {
  CLI::App& app = cmd.app;
  const Globals& g = cmd.globals;
  Action& action = cmd.action;
  auto* fdb = app.add_subcommand("fdb", "the forwarding table");
  fdb->require_subcommand(1);
  for (const char* name : {"list", "show"})
    fdb->add_subcommand(name, "list FDB entries")->callback([&] { action = [&] { fdb_list(g); }; });
}

} // namespace weft::cli
