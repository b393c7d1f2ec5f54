// `weft net list|show`: the tenant networks this node serves.
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/datapath/session.hpp"
#include "loader/inspect/inspect.hpp"

namespace weft::cli {

namespace {

std::vector<Column> net_columns() {
  return {field("ID", "id"),
          field("NAME", "name"),
          field("PROJECT", "project_id"),
          field("TYPE", "type"),
          field("SEGMENT", "segmentation_id"),
          field("PHYSNET", "physical_network"),
          field("MTU", "mtu"),
          field("NET_ID", "net_id"),
          field("LOCAL_PORTS", "local_ports")};
}

void net_list(const Globals& g) {
  Session session(layout_of(g));
  print_rows(inspect_networks(session), net_columns(), g.format);
}

void net_show(const Globals& g, const std::string& id) {
  Session session(layout_of(g));
  nlohmann::json net = inspect_network(session, id);
  print_detail(net, "flood", net.value("flood", nlohmann::json::array()),
               {field("TO", "to"), field("PORT", "port_id"), field("IFINDEX", "ifindex"),
                field("VTEP", "vtep"), field("NODE", "node"), field("DEVICE", "device")},
               g.format);
}

} // namespace

void register_net(Command& cmd) {
  const Globals& g = cmd.globals;
  CLI::App* net = cmd.object("net", "tenant networks");
  cmd.verb(net, "list", "list networks", [&g] { net_list(g); });
  auto& id = cmd.store.add<std::string>();
  cmd.verb(net, "show",
           "one network (id, prefix or name): its segment, ports here and flood list; all "
           "without an ID",
           [&g, &id] { id.empty() ? net_list(g) : net_show(g, id); })
      ->add_option("ID", id, "network id, a unique prefix of it, or its name");
}

} // namespace weft::cli
