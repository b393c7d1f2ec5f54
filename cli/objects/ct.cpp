// `weft ct list|flush`: tracked connections.
#include <iostream>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/datapath/session.hpp"
#include "loader/inspect/inspect.hpp"

using nlohmann::json;

namespace weft::cli {

namespace {

void ct_list(const Globals& g, const std::string& port, const std::string& network) {
  Session session(layout_of(g));
  print_rows(inspect_ct(session, port, network),
             {field("NETWORK", "network_id"), field("PROTO", "protocol"), field("SRC", "src"),
              field("SPORT", "sport"), field("DST", "dst"), field("DPORT", "dport"),
              field("STATE", "state"), field("EXPIRES_S", "expires_in_seconds"),
              field("PKTS_ORIG", "packets_orig"), field("PKTS_REPLY", "packets_reply"),
              field("BYTES_ORIG", "bytes_orig"), field("BYTES_REPLY", "bytes_reply")},
             g.format);
}

void ct_flush(const Globals& g, const std::string& port) {
  Session session(layout_of(g));
  std::size_t removed = flush_ct(session, port);
  if (g.format.json)
    print_json({{"flushed", removed}}, g.format);
  else
    std::cout << "flushed " << removed << " conntrack entries"
              << (port.empty() ? "" : " of port " + port) << "\n";
}

} // namespace

void register_ct(Command& cmd) {
  CLI::App& app = cmd.app;
  const Globals& g = cmd.globals;
  Action& action = cmd.action;
  OptionStore& store = cmd.store;
  auto* ct = app.add_subcommand("ct", "connection tracking");
  ct->require_subcommand(1);
  auto& ct_port = store.add<std::string>();
  auto& ct_network = store.add<std::string>();
  for (const char* name : {"list", "show"}) {
    auto* list = ct->add_subcommand(name, "tracked connections, decoded");
    list->add_option("--port", ct_port, "only connections of this port (id or prefix)");
    list->add_option("--network", ct_network, "only connections in this network (id or prefix)");
    list->callback([&] { action = [&] { ct_list(g, ct_port, ct_network); }; });
  }
  auto* flush = ct->add_subcommand("flush", "delete tracked connections");
  flush->add_option("--port", ct_port, "only connections of this port");
  flush->callback([&] { action = [&] { ct_flush(g, ct_port); }; });
}

} // namespace weft::cli
