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
  CLI::App& app = cmd.app;
  const Globals& g = cmd.globals;
  Action& action = cmd.action;
  OptionStore& store = cmd.store;
  auto* port = app.add_subcommand("port", "ports (VM interfaces)");
  port->require_subcommand(1);
  port->add_subcommand("list", "list ports")->callback([&] { action = [&] { port_list(g); }; });
  auto& port_id = store.add<std::string>();
  auto* port_show_cmd = port->add_subcommand("show", "one port, or all without an ID");
  port_show_cmd->add_option("ID", port_id, "port id (or a unique prefix)");
  port_show_cmd->callback(
      [&] { action = [&] { port_id.empty() ? port_list(g) : port_show(g, port_id); }; });
}

} // namespace weft::cli
