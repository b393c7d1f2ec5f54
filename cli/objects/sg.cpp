// `weft sg list|show`: security groups, decoded rules, the ports using them.
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/datapath/session.hpp"
#include "loader/inspect/inspect.hpp"

using nlohmann::json;

namespace weft::cli {

namespace {

void sg_list(const Globals& g) {
  Session session(layout_of(g));
  print_rows(inspect_groups(session),
             {field("ID", "id"), field("NAME", "name"), field("STATEFUL", "stateful"),
              field("RULES", "rule_count"), field("PORTS", "port_count")},
             g.format);
}

void sg_show(const Globals& g, const std::string& id) {
  Session session(layout_of(g));
  json group = inspect_group(session, id);
  print_detail(group, "rules", group["rules"],
               {field("ID", "id"), field("DIRECTION", "direction"), field("ETHERTYPE", "ethertype"),
                field("PROTOCOL", "protocol"), field("PORTS", "ports"), field("REMOTE", "remote"),
                field("HITS", "hits")},
               g.format);
}

} // namespace

void register_sg(Command& cmd) {
  const Globals& g = cmd.globals;
  CLI::App* sg = cmd.object("sg", "security groups");
  cmd.verb(sg, "list", "list security groups", [&g] { sg_list(g); });
  auto& id = cmd.store.add<std::string>();
  cmd.verb(sg, "show", "one group's rules and ports, or all without an ID",
           [&g, &id] { id.empty() ? sg_list(g) : sg_show(g, id); })
      ->add_option("ID", id, "group id, unique prefix or name");
}

} // namespace weft::cli
