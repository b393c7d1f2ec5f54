// `weft apply -f FILE [--dry-run]`: make the node match a Neutron-shaped document.
#include <iostream>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/datapath/session.hpp"
#include "loader/inspect/inspect.hpp"

using nlohmann::json;

namespace weft::cli {

namespace {

void print_plan_text(const json& plan, bool dry_run) {
  if (dry_run) {
    for (const auto& c : plan["changes"])
      std::cout << c["op"].get<std::string>() << " " << c["map"].get<std::string>() << " "
                << text(c["key"]) << " => " << text(c["value"]) << "\n";
    for (const auto& p : plan["attach"])
      std::cout << "attach port " << text(p["port_id"]) << " on " << text(p["device"]) << "\n";
    for (const auto& p : plan["detach"])
      std::cout << "detach " << text(p["device"]) << "\n";
  }
  std::cout << (dry_run ? "would change: " : "applied: ") << plan["entries_added"]
            << " entries added, " << plan["entries_changed"] << " changed, "
            << plan["entries_removed"] << " removed; " << plan["attach"].size()
            << " ports attached, " << plan["detach"].size() << " detached\n";
  for (const auto& w : plan["waiting"])
    std::cout << "waiting: port " << text(w["port_id"]) << " has no device " << text(w["device"])
              << " yet (apply again once it exists)\n";
}

void apply(const Globals& g, const std::string& file, bool dry_run) {
  std::string document = read_input(file);
  Session session(layout_of(g));
  NodeLock lock(session.layout().record_dir(), session.layout().node);
  Plan plan = session.apply(document, dry_run);
  json out = describe_plan(plan);
  out["dry_run"] = dry_run;
  out["node"] = session.layout().node;
  if (g.format.json)
    print_json(out, g.format);
  else
    print_plan_text(out, dry_run);
}

} // namespace

void register_apply(Command& cmd) {
  const Globals& g = cmd.globals;
  auto& file = cmd.store.add<std::string>();
  auto& dry_run = cmd.store.add<bool>(false);
  CLI::App* apply_cmd =
      cmd.verb(&cmd.app, "apply", "reconcile the node with a desired-state document",
               [&g, &file, &dry_run] { apply(g, file, dry_run); });
  apply_cmd->add_option("-f,--file", file, "the document (Neutron resource shapes); - for stdin")
      ->required();
  apply_cmd->add_flag("--dry-run", dry_run, "print what would change, change nothing");
}

} // namespace weft::cli
