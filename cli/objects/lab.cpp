// `weft lab up|plug|status|down|state|topology`: a lab of nodes, VMs and
// physical hosts in network namespaces, from a topology (loader/lab/), the
// demo's by default.
#include <iostream>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/lab/lab.hpp"

using nlohmann::json;

namespace weft::cli {

namespace {

using namespace weft::lab;

LabOptions lab_options(const Globals& g, const std::string& prefix) {
  LabOptions opts;
  opts.layout = layout_of(g);
  opts.prefix = prefix;
  opts.verbose = !g.format.json;
  return opts;
}

// The topology of FILE (- for standard input), or the embedded demo's.
Topology topology_of(const std::string& file) {
  return parse_topology(file.empty() ? std::string(default_topology()) : read_input(file));
}

void print_matrix(const json& status) {
  if (!status.contains("matrix"))
    return;
  json rows = json::array();
  for (const auto& cell : status["matrix"])
    rows.push_back(cell);
  // A VM's node, or a physical host's physnet.
  auto place = [](const char* end) {
    std::string node = std::string(end) + "_node", physnet = std::string(end) + "_physnet";
    return [node, physnet](const json& cell) {
      return cell.contains(physnet) ? "host on " + cell[physnet].get<std::string>()
                                    : text(cell.value(node, json()));
    };
  };
  print_table(rows, {field("FROM", "from"), Column{"FROM_NODE", place("from")}, field("TO", "to"),
                     Column{"TO_NODE", place("to")}, field("ADDRESS", "address"),
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
  const Globals& g = cmd.globals;
  CLI::App* lab = cmd.object(
      "lab", "a lab of nodes and VMs in network namespaces, built from a topology: nodes (each a "
             "namespace) joined by an underlay switch and a provider switch, VMs (each bound to a "
             "node by its Neutron port), physical hosts on the provider switch and the Neutron "
             "document (`weft lab topology` prints the demo's; the format is in "
             "loader/lab/topology.hpp)");
  auto& prefix = cmd.store.add<std::string>("weftlab");
  lab->add_option("--prefix", prefix, "every namespace of the lab is named <prefix>-<name>")
      ->capture_default_str();
  auto& up_file = cmd.store.add<std::string>();
  cmd.verb(lab, "up",
           "build a topology (default: the demo's three nodes, two tenants and a provider "
           "network with a physical host): namespaces, switches, VMs, install and apply on "
           "every node, then measure",
           [&g, &prefix, &up_file] {
             json out = lab_up(lab_options(g, prefix), topology_of(up_file));
             if (g.format.json)
               print_json(out, g.format);
             else
               print_matrix(out.value("status", json::object()));
             if (!out.value("status", json::object()).value("ok", false))
               throw std::runtime_error(
                   "lab: up, but the measured matrix differs from the expected one");
           })
      ->add_option("-f,--file", up_file,
                   "the topology (JSON, see `weft lab topology`); - for stdin; default: the "
                   "embedded demo's");
  auto& plug_file = cmd.store.add<std::string>();
  auto& plug_dry = cmd.store.add<bool>(false);
  CLI::App* plug = cmd.verb(
      lab, "plug",
      "make the node namespaces and VMs of a topology that are not there yet and add them to "
      "the lab's record (no install, no apply; `lab down` removes them); prints each VM with "
      "the device weft named for its port",
      [&g, &prefix, &plug_file, &plug_dry] {
        json out = lab_plug(lab_options(g, prefix), topology_of(plug_file), plug_dry);
        if (g.format.json) {
          print_json(out, g.format);
          return;
        }
        print_table(out["vms"],
                    {field("VM", "name"), field("NAMESPACE", "namespace"), field("NODE", "node"),
                     field("DEVICE", "device"), field("MAC", "mac_address"),
                     field("ADDRESSES", "addresses"), field("MADE", "made")});
      });
  plug->add_option("-f,--file", plug_file,
                   "the topology or a fragment of it (JSON, VMs may give their port inline); - "
                   "for stdin")
      ->required();
  plug->add_flag("--dry-run", plug_dry, "say what would be made, make nothing");
  cmd.verb(lab, "status",
           "measure the connectivity matrix of the lab up built with real traffic (expected "
           "reachable: same network, both up, and the underlay or provider switch carries it "
           "between their nodes)",
           [&g, &prefix] {
             json out = lab_status(lab_options(g, prefix));
             if (g.format.json)
               print_json(out, g.format);
             else
               print_matrix(out);
             if (!out.value("ok", false))
               throw std::runtime_error("lab: the measured matrix differs from the expected one");
           });
  cmd.verb(lab, "down",
           "uninstall the lab's recorded nodes and remove every namespace of the prefix",
           [&g, &prefix] {
             json out = lab_down(lab_options(g, prefix));
             if (g.format.json)
               print_json(out, g.format);
             else if (!out.value("was_up", false))
               std::cout << "lab: was not up; nothing to remove\n";
             else {
               json uninstalled = json::array();
               for (const auto& node : out["nodes"])
                 if (node.value("node_uninstalled", false))
                   uninstalled.push_back(node["node"]);
               std::cout << "lab: down: nodes uninstalled: "
                         << (uninstalled.empty() ? std::string("none") : text(uninstalled))
                         << "; namespaces removed: " << text(out["namespaces_removed"]) << "\n";
             }
           });
  cmd.verb(
      lab, "state", "print the Neutron document the lab applies (its topology's)", [&g, &prefix] {
        Topology topology = lab_topology(lab_options(g, prefix));
        std::cout << (topology.document ? nlohmann::ordered_json::parse(*topology.document).dump(2)
                                        : std::string("{}"))
                  << "\n";
      });
  cmd.verb(lab, "topology", "print the lab's topology: the embedded demo's, or the one up built",
           [&g, &prefix] { std::cout << lab_topology(lab_options(g, prefix)).source; });
}

} // namespace weft::cli
