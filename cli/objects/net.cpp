// `weft net list`: tenant networks and their node-local net_id.
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/datapath/session.hpp"
#include "loader/inspect/inspect.hpp"

using nlohmann::json;

namespace weft::cli {

namespace {

void net_list(const Globals& g) {
  Session session(layout_of(g));
  print_rows(inspect_networks(session),
             {field("ID", "id"), field("NAME", "name"), field("PROJECT", "project_id"),
              field("TYPE", "type"), field("SEGMENT", "segmentation_id"),
              field("PHYSNET", "physical_network"), field("MTU", "mtu"), field("NET_ID", "net_id"),
              field("LOCAL_PORTS", "local_ports")},
             g.format);
}

} // namespace

void register_net(Command& cmd) {
  CLI::App& app = cmd.app;
  const Globals& g = cmd.globals;
  Action& action = cmd.action;
  auto* net = app.add_subcommand("net", "tenant networks");
  net->require_subcommand(1);
  for (const char* name : {"list", "show"})
    net->add_subcommand(name, "list networks")->callback([&] { action = [&] { net_list(g); }; });
}

} // namespace weft::cli
