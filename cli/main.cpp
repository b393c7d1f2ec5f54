// weft: bpftool grammar, `weft [global options] OBJECT COMMAND [ARGS]`. Each
// object's commands live in cli/objects/OBJECT.cpp; this file registers them,
// parses the command line and turns every error into a message and exit 1.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/model/state.hpp"
#include "loader/system/netns.hpp"

using nlohmann::json;
using namespace weft;
using namespace weft::cli;

namespace {

const char* kFooter = R"(
OBJECTS AND COMMANDS
  node install [--uplink IFACE] [--tunnel-ip IP]
               [--physical-interface-mappings PHYSNET:IFACE[,...]]
               [--attach auto|tcx|tc] [--ct-max N] [--ct-network-max N]
                          load the datapath and pin its maps (idempotent)
  node uninstall          detach every weft program of the node, remove its pins
  node show               what is installed: ABI version, program, attachments
  apply -f FILE [--dry-run]
                          make the node's maps match a Neutron-shaped document
  net list | net show ID  tenant networks with their node-local net_id; one
                          network's segment, ports here and flood list
  port list | port show ID
                          ports: device, state, addresses, counters
  fdb list                where each MAC of each network lives (local port, or
                          the remote VTEP and node)
  vtep list               the other nodes' VTEPs: networks, MACs, counters
  map list | map dump NAME
                          the pinned maps, decoded
  prog list               devices running the port and uplink programs
  stats [--port ID]       forward and drop counters by port and reason
  sg list | sg show ID    security groups: decoded rules, ports using them
  ct list [--port ID] [--network ID] | ct flush [--port ID]
                          tracked connections: 5-tuple, state, idle time, counters
  lab [--prefix P] up [-f TOPOLOGY] | lab status | lab down
                          nodes and VMs of a topology (default: the demo, one
                          node, two tenants) in network namespaces, measured
  lab plug -f TOPOLOGY [--dry-run] | lab topology | lab state
                          make missing VMs only; print the topology, its document

  agent status            the node agent (weftd): source, revision applied,
                          last change, errors, ports up

FILES
  <bpffs>/weft/<node>/{maps,progs,links}/   pinned maps, program and tcx links
  <state-dir>/<node>/applied.json           the last applied document
  <state-dir>/<node>/agent.json             what weftd says of itself

EXIT STATUS
  0 on success; 1 on any error (the message names the resource and field).
  With -j an error is printed as {"error": "..."} on stdout.

EXAMPLES
  weft node install --uplink eth1 --tunnel-ip 172.31.0.1 \
      --physical-interface-mappings physnet1:eth2
  weft apply -f state.json --dry-run
  weft -p port show 3f2a9c1e
  weft --netns weftlab-node1 --node lab-node1 stats)";

} // namespace

int main(int argc, char** argv) {
  Globals g;
  CLI::App app{"weft: an eBPF/XDP tenant network fabric with Neutron's semantics.\n"
               "weft [global options] OBJECT COMMAND [ARGS] (options may follow the command)",
               "weft"};
  app.footer(kFooter);
  app.fallthrough();
  app.require_subcommand(1);
  app.add_flag("-j,--json", g.format.json, "print JSON");
  app.add_flag("-p,--pretty", g.format.pretty, "print indented JSON (implies -j)");
  app.add_option("--node", g.node, "the node whose pins to use (default: the host name)");
  app.add_option("--netns", g.netns, "work inside the network namespace /run/netns/NAME");
  app.add_option("--bpffs", g.bpffs, "the bpffs mount to pin under")->capture_default_str();
  app.add_option("--state-dir", g.state_dir, "where applied documents are recorded")
      ->capture_default_str();

  Action action;
  OptionStore store;
  Command cmd{app, g, action, store};
  for (auto* object : {register_node, register_apply, register_net, register_port, register_fdb,
                       register_vtep, register_map, register_prog, register_stats, register_sg,
                       register_ct, register_lab, register_agent})
    object(cmd);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (g.format.pretty)
    g.format.json = true;

  try {
    if (!g.netns.empty())
      enter_netns(g.netns);
    if (action)
      action();
    return 0;
  } catch (const StateError& e) {
    if (g.format.json) {
      print_json({{"error", "invalid document"}, {"problems", e.problems()}}, g.format);
    } else {
      std::cerr << "weft: invalid document, nothing changed:\n";
      for (const auto& p : e.problems())
        std::cerr << "  " << p << "\n";
    }
  } catch (const std::exception& e) {
    if (g.format.json)
      print_json({{"error", e.what()}}, g.format);
    else
      std::cerr << "weft: " << e.what() << "\n";
  }
  return 1;
}
