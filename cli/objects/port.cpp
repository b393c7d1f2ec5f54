// `weft port list|show`: ports, their devices, addresses and counters.
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/datapath/session.hpp"
#include "loader/inspect/inspect.hpp"

using nlohmann::json;

namespace weft::cli {

namespace {

std::vector<Column> port_columns() {
  return {field("ID", "id"),           field("DEVICE", "device"),
          field("IFINDEX", "ifindex"), field("STATE", "state"),
          field("MAC", "mac_address"), field("IPS", "fixed_ips"),
          field("NETWORK", "network"), field("HOST", "host"),
          field("SENT", "sent"),       field("RECEIVED", "received"),
          field("DROPPED", "dropped")};
}

void port_list(const Globals& g) {
  Session session(layout_of(g));
  print_rows(inspect_ports(session), port_columns(), g.format);
}

void port_show(const Globals& g, const std::string& id) {
  Session session(layout_of(g));
  json port = inspect_port(session, id);
  json rows = json::array();
  for (const auto& [reason, c] : port["counters"].items())
    rows.push_back({{"reason", reason}, {"packets", c["packets"]}, {"bytes", c["bytes"]}});
  print_detail(port, "counters", rows,
               {field("REASON", "reason"), field("PACKETS", "packets"), field("BYTES", "bytes")},
               g.format);
}

} // namespace

void register_port(Command& cmd) {
  const Globals& g = cmd.globals;
  CLI::App* port = cmd.object("port", "ports (VM interfaces)");
  cmd.verb(port, "list", "list ports", [&g] { port_list(g); });
  auto& id = cmd.store.add<std::string>();
  cmd.verb(port, "show", "one port, or all without an ID",
           [&g, &id] { id.empty() ? port_list(g) : port_show(g, id); })
      ->add_option("ID", id, "port id (or a unique prefix)");
}

} // namespace weft::cli
