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
  CLI::App& app = cmd.app;
  const Globals& g = cmd.globals;
  Action& action = cmd.action;
  OptionStore& store = cmd.store;
  auto* sg = app.add_subcommand("sg", "security groups");
  sg->require_subcommand(1);
  sg->add_subcommand("list", "list security groups")->callback([&] {
    action = [&] { sg_list(g); };
  });
  auto& sg_id = store.add<std::string>();
  auto* sg_show_cmd =
      sg->add_subcommand("show", "one group's rules and ports, or all without an ID");
  sg_show_cmd->add_option("ID", sg_id, "group id, unique prefix or name");
  sg_show_cmd->callback([&] { action = [&] { sg_id.empty() ? sg_list(g) : sg_show(g, sg_id); }; });
}

} // namespace weft::cli
