// `weft lab up|status|down|state`: the demo lab in network namespaces.
#include <iostream>

#include "cli/command.hpp"
#include "cli/lab.hpp"
#include "cli/output.hpp"

using nlohmann::json;

namespace weft::cli {

namespace {

LabOptions lab_options(const Globals& g) {
  LabOptions opts;
  opts.layout = layout_of(g);
  opts.verbose = !g.format.json;
  return opts;
}

void print_matrix(const json& status) {
  if (!status.contains("matrix"))
    return;
  json rows = json::array();
  for (const auto& cell : status["matrix"])
    rows.push_back(cell);
  print_table(rows, {field("FROM", "from"), field("TO", "to"), field("ADDRESS", "address"),
                     field("EXPECTED", "expected"), field("MEASURED", "measured"),
                     field("RESULT", "result"), field("ECHO_REACHED", "echo_reached")});
  int mismatches = 0, skipped = 0;
  for (const auto& cell : status["matrix"]) {
    mismatches += cell.value("result", "") == "MISMATCH";
    skipped += cell.value("result", "") == "skipped";
  }
  std::cout << "\n"
            << status.value("node", "") << ": " << status.value("measured", 0)
            << " pairs measured with ping in " << status.value("duration_ms", 0) << " ms, "
            << (mismatches ? std::to_string(mismatches) + " MISMATCH"
                           : std::string("all as expected"))
            << " (" << skipped << " pairs skipped: the target has the sender's own address)\n";
  if (status.contains("counters")) {
    const json& counters = status["counters"];
    std::cout << "counters: forwarded " << text(counters.value("forwarded", json::object()))
              << "; dropped "
              << (counters.value("dropped", json::object()).empty() ? std::string("none")
                                                                    : text(counters["dropped"]))
              << "\n";
  }
}

} // namespace

void register_lab(Command& cmd) {
  CLI::App& app = cmd.app;
  const Globals& g = cmd.globals;
  Action& action = cmd.action;
  auto* lab = app.add_subcommand("lab", "the demo lab in network namespaces");
  lab->require_subcommand(1);
  lab->add_subcommand("up", "build the lab: a node, two tenants, four VMs")->callback([&] {
    action = [&] {
      json out = lab_up(lab_options(g));
      if (g.format.json)
        print_json(out, g.format);
      else
        print_matrix(out.value("status", json::object()));
      if (!out.value("status", json::object()).value("ok", false))
        throw std::runtime_error("lab: up, but the measured matrix differs from the expected one");
    };
  });
  lab->add_subcommand("status", "measure the connectivity matrix with real traffic")->callback([&] {
    action = [&] {
      json out = lab_status(lab_options(g));
      if (g.format.json)
        print_json(out, g.format);
      else
        print_matrix(out);
      if (!out.value("ok", false))
        throw std::runtime_error("lab: the measured matrix differs from the expected one");
    };
  });
  lab->add_subcommand("down", "remove everything the lab made")->callback([&] {
    action = [&] {
      json out = lab_down(lab_options(g));
      if (g.format.json)
        print_json(out, g.format);
      else if (!out.value("was_up", false))
        std::cout << "lab: was not up; nothing to remove\n";
      else
        std::cout << "lab: down: node " << text(out["node"])
                  << (out.value("node_uninstalled", false) ? " uninstalled" : " was not installed")
                  << ", namespaces removed: " << text(out["namespaces_removed"]) << "\n";
    };
  });
  lab->add_subcommand("state", "print the lab's embedded desired-state document")->callback([&] {
    action = [&] { std::cout << lab_state_document(lab_options(g)) << "\n"; };
  });
}

} // namespace weft::cli
