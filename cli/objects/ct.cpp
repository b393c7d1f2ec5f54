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
  const Globals& g = cmd.globals;
  CLI::App* ct = cmd.object("ct", "connection tracking");
  auto& port = cmd.store.add<std::string>();
  auto& network = cmd.store.add<std::string>();
  CLI::App* list = cmd.verb(ct, "list", "tracked connections, decoded",
                            [&g, &port, &network] { ct_list(g, port, network); });
  list->alias("show");
  list->add_option("--port", port, "only connections of this port (id or prefix)");
  list->add_option("--network", network, "only connections in this network (id or prefix)");
  cmd.verb(ct, "flush", "delete tracked connections", [&g, &port] { ct_flush(g, port); })
      ->add_option("--port", port, "only connections of this port");
}

} // namespace weft::cli
