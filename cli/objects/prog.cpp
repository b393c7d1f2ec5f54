// `weft prog list`: the devices running the port program.
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/datapath/session.hpp"
#include "loader/inspect/inspect.hpp"

using nlohmann::json;

namespace weft::cli {

namespace {

void prog_list(const Globals& g) {
  Session session(layout_of(g));
  print_rows(inspect_progs(session),
             {field("DEVICE", "device"), field("IFINDEX", "ifindex"), field("PORT", "port_id"),
              field("HOOK", "hook"), field("PROGRAM", "program"), field("PROG_ID", "prog_id"),
              field("MODE", "mode")},
             g.format);
}

} // namespace

void register_prog(Command& cmd) {
  CLI::App& app = cmd.app;
  const Globals& g = cmd.globals;
  Action& action = cmd.action;
  auto* prog = app.add_subcommand("prog", "attached programs");
  prog->require_subcommand(1);
  for (const char* name : {"list", "show"})
    prog->add_subcommand(name, "list attachments")->callback([&] {
      action = [&] { prog_list(g); };
    });
}

} // namespace weft::cli
