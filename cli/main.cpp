// weft: bpftool grammar, `weft [global options] OBJECT COMMAND [ARGS]`.
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <sstream>
#include <unistd.h>

#include "cli/lab.hpp"
#include "cli/output.hpp"
#include "loader/decode.hpp"
#include "loader/inspect.hpp"
#include "loader/netns.hpp"
#include "loader/session.hpp"
#include "maps/weft_abi.h"

using nlohmann::json;
using namespace weft;
using namespace weft::cli;

namespace {

struct Globals {
  Format format;
  std::string node;
  std::string netns;
  std::string bpffs = "/sys/fs/bpf";
  std::string state_dir = "/run/weft";
};

std::string host_name() {
  char buf[256] = {};
  ::gethostname(buf, sizeof(buf) - 1);
  return buf;
}

Layout layout_of(const Globals& g) {
  Layout layout;
  layout.bpffs = g.bpffs;
  layout.state_dir = g.state_dir;
  layout.node = g.node.empty() ? host_name() : g.node;
  return layout;
}

std::string read_input(const std::string& path) {
  std::stringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
    return text.str();
  }
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  text << in.rdbuf();
  return text.str();
}

// ---- node ----------------------------------------------------------------

void node_install(const Globals& g, const std::string& uplink, const std::string& tunnel_ip,
                  const std::string& attach, std::uint32_t ct_max, std::uint32_t ct_network_max) {
  InstallOptions opts;
  if (ct_max)
    opts.ct_max = ct_max;
  if (ct_network_max)
    opts.ct_network_max = ct_network_max;
  if (!uplink.empty())
    opts.uplink = uplink;
  if (!tunnel_ip.empty()) {
    opts.tunnel_ip = IpAddr::parse(tunnel_ip);
    if (!opts.tunnel_ip)
      throw std::runtime_error("--tunnel-ip '" + tunnel_ip + "' is not an IP address");
  }
  if (attach == "tcx")
    opts.attach_mode = AttachMode::Tcx;
  else if (attach == "tc")
    opts.attach_mode = AttachMode::Tc;
  Session session(layout_of(g));
  NodeLock lock(session.layout().record_dir(), session.layout().node);
  auto result = session.installation().install(opts);
  json out = inspect_node(session);
  out["fresh_install"] = result.fresh;
  out["program_replaced"] = result.program_replaced;
  if (g.format.json) {
    print_json(out, g.format);
    return;
  }
  std::cout << "node " << session.layout().node << ": "
            << (result.fresh              ? "installed"
                : result.program_replaced ? "upgraded"
                                          : "already installed, nothing changed")
            << " (ABI " << WEFT_ABI_VERSION << ", " << out["attach_mode"].get<std::string>()
            << " attachments, pins in " << session.layout().root() << ")\n";
  if (result.program_replaced)
    std::cout << "replaced the port program on " << result.links_updated << " devices\n";
}

void node_uninstall(const Globals& g) {
  Session session(layout_of(g));
  NodeLock lock(session.layout().record_dir(), session.layout().node);
  bool was = session.installation().installed();
  int removed = session.installation().uninstall();
  if (g.format.json) {
    print_json({{"node", session.layout().node}, {"was_installed", was}, {"detached", removed}},
               g.format);
    return;
  }
  std::cout << "node " << session.layout().node << ": "
            << (was ? "uninstalled, " + std::to_string(removed) + " attachments removed"
                    : "was not installed; left nothing behind")
            << "\n";
}

void node_show(const Globals& g) {
  Session session(layout_of(g));
  json out = inspect_node(session);
  print_detail(out, "attachments", out.value("attachments", json()),
               {field("DEVICE", "device"), field("IFINDEX", "ifindex"), field("HOOK", "hook"),
                field("MODE", "mode"), field("PROG_ID", "prog_id")},
               g.format);
}

// ---- apply ---------------------------------------------------------------

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

// ---- inspection ----------------------------------------------------------

void net_list(const Globals& g) {
  Session session(layout_of(g));
  print_rows(inspect_networks(session),
             {field("ID", "id"), field("NAME", "name"), field("PROJECT", "project_id"),
              field("TYPE", "type"), field("SEGMENT", "segmentation_id"),
              field("PHYSNET", "physical_network"), field("MTU", "mtu"), field("NET_ID", "net_id"),
              field("LOCAL_PORTS", "local_ports")},
             g.format);
}

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

void fdb_list(const Globals& g) {
  Session session(layout_of(g));
  print_rows(inspect_fdb(session),
             {field("NET_ID", "net_id"), field("NETWORK", "network"), field("MAC", "mac"),
              field("PORT", "port_id"), field("DEVICE", "device"), field("IFINDEX", "ifindex"),
              field("VTEP", "vtep")},
             g.format);
}

void map_list(const Globals& g) {
  Session session(layout_of(g));
  print_rows(inspect_maps(session),
             {field("NAME", "name"), field("TYPE", "type"), field("ID", "id"),
              field("KEY", "key_size"), field("VALUE", "value_size"), field("ENTRIES", "entries"),
              field("MAX", "max_entries")},
             g.format);
}

void map_dump(const Globals& g, const std::string& name) {
  Session session(layout_of(g));
  print_rows(dump_map(session, name), {field("KEY", "key"), field("VALUE", "value")}, g.format);
}

void prog_list(const Globals& g) {
  Session session(layout_of(g));
  print_rows(inspect_progs(session),
             {field("DEVICE", "device"), field("IFINDEX", "ifindex"), field("PORT", "port_id"),
              field("HOOK", "hook"), field("PROGRAM", "program"), field("PROG_ID", "prog_id"),
              field("MODE", "mode")},
             g.format);
}

void stats(const Globals& g, const std::string& port) {
  Session session(layout_of(g));
  print_rows(inspect_stats(session, port),
             {field("PORT", "port_id"), field("DEVICE", "device"), field("REASON", "reason"),
              field("PACKETS", "packets"), field("BYTES", "bytes")},
             g.format);
}

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

// ---- lab -----------------------------------------------------------------

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

const char* kFooter = R"(
OBJECTS AND COMMANDS
  node install [--uplink IFACE] [--tunnel-ip IP] [--attach auto|tcx|tc] [--ct-max N]
               [--ct-network-max N]
                          load the datapath and pin its maps (idempotent)
  node uninstall          detach every weft program of the node, remove its pins
  node show               what is installed: ABI version, program, attachments
  apply -f FILE [--dry-run]
                          make the node's maps match a Neutron-shaped document
  net list                tenant networks with their node-local net_id
  port list | port show ID
                          ports: device, state, addresses, counters
  fdb list                where each MAC of each network lives
  map list | map dump NAME
                          the pinned maps, decoded
  prog list               devices running the port program
  stats [--port ID]       forward and drop counters by port and reason
  sg list | sg show ID    security groups: decoded rules, ports using them
  ct list [--port ID] [--network ID] | ct flush [--port ID]
                          tracked connections: 5-tuple, state, idle time, counters
  lab up | lab status | lab down
                          a demo node with two tenants in network namespaces

FILES
  <bpffs>/weft/<node>/{maps,progs,links}/   pinned maps, program and tcx links
  <state-dir>/<node>/applied.json           the last applied document

EXIT STATUS
  0 on success; 1 on any error (the message names the resource and field).
  With -j an error is printed as {"error": "..."} on stdout.

EXAMPLES
  weft node install --tunnel-ip 172.31.0.1
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

  std::function<void()> action;

  auto* node = app.add_subcommand("node", "install, remove and show the fabric on this node");
  node->require_subcommand(1);
  std::string uplink, tunnel_ip, attach = "auto";
  auto* install = node->add_subcommand("install", "load and pin the datapath (idempotent)");
  install->add_option("--uplink", uplink, "the node's physical uplink device");
  install->add_option("--tunnel-ip", tunnel_ip, "this node's VXLAN tunnel endpoint (IPv4)");
  install->add_option("--attach", attach, "attach mode: auto (tcx on kernels >= 6.6), tcx or tc")
      ->check(CLI::IsMember({"auto", "tcx", "tc"}))
      ->capture_default_str();
  std::uint32_t ct_max = 0, ct_network_max = 0;
  install->add_option("--ct-max", ct_max,
                      "established connections the node tracks, and as many being opened "
                      "(default 65536); fixed until uninstall");
  install->add_option("--ct-network-max", ct_network_max,
                      "established connections one network may hold (default: half of "
                      "--ct-max), so that no tenant can take the table from the others");
  install->callback([&] {
    action = [&] { node_install(g, uplink, tunnel_ip, attach, ct_max, ct_network_max); };
  });
  node->add_subcommand("uninstall", "detach all programs and remove every pin")->callback([&] {
    action = [&] { node_uninstall(g); };
  });
  for (const char* name : {"show", "list"})
    node->add_subcommand(name, "what is installed")->callback([&] {
      action = [&] { node_show(g); };
    });

  std::string file;
  bool dry_run = false;
  auto* apply_cmd = app.add_subcommand("apply", "reconcile the node with a desired-state document");
  apply_cmd->add_option("-f,--file", file, "the document (Neutron resource shapes); - for stdin")
      ->required();
  apply_cmd->add_flag("--dry-run", dry_run, "print what would change, change nothing");
  apply_cmd->callback([&] { action = [&] { apply(g, file, dry_run); }; });

  auto* net = app.add_subcommand("net", "tenant networks");
  net->require_subcommand(1);
  for (const char* name : {"list", "show"})
    net->add_subcommand(name, "list networks")->callback([&] { action = [&] { net_list(g); }; });

  auto* port = app.add_subcommand("port", "ports (VM interfaces)");
  port->require_subcommand(1);
  port->add_subcommand("list", "list ports")->callback([&] { action = [&] { port_list(g); }; });
  std::string port_id;
  auto* port_show_cmd = port->add_subcommand("show", "one port, or all without an ID");
  port_show_cmd->add_option("ID", port_id, "port id (or a unique prefix)");
  port_show_cmd->callback(
      [&] { action = [&] { port_id.empty() ? port_list(g) : port_show(g, port_id); }; });

  auto* fdb = app.add_subcommand("fdb", "the forwarding table");
  fdb->require_subcommand(1);
  for (const char* name : {"list", "show"})
    fdb->add_subcommand(name, "list FDB entries")->callback([&] { action = [&] { fdb_list(g); }; });

  auto* map = app.add_subcommand("map", "the pinned maps");
  map->require_subcommand(1);
  for (const char* name : {"list", "show"})
    map->add_subcommand(name, "list maps")->callback([&] { action = [&] { map_list(g); }; });
  std::string map_name;
  auto* dump = map->add_subcommand("dump", "decoded entries of one map");
  dump->add_option("NAME", map_name, "map name (see map list)")->required();
  dump->callback([&] { action = [&] { map_dump(g, map_name); }; });

  auto* prog = app.add_subcommand("prog", "attached programs");
  prog->require_subcommand(1);
  for (const char* name : {"list", "show"})
    prog->add_subcommand(name, "list attachments")->callback([&] {
      action = [&] { prog_list(g); };
    });

  std::string stats_port;
  auto* stats_cmd = app.add_subcommand("stats", "forward and drop counters by port and reason");
  stats_cmd->add_option("--port", stats_port, "only this port (id or prefix)");
  stats_cmd->callback([&] { action = [&] { stats(g, stats_port); }; });

  auto* sg = app.add_subcommand("sg", "security groups");
  sg->require_subcommand(1);
  sg->add_subcommand("list", "list security groups")->callback([&] {
    action = [&] { sg_list(g); };
  });
  std::string sg_id;
  auto* sg_show_cmd =
      sg->add_subcommand("show", "one group's rules and ports, or all without an ID");
  sg_show_cmd->add_option("ID", sg_id, "group id, unique prefix or name");
  sg_show_cmd->callback([&] { action = [&] { sg_id.empty() ? sg_list(g) : sg_show(g, sg_id); }; });

  auto* ct = app.add_subcommand("ct", "connection tracking");
  ct->require_subcommand(1);
  std::string ct_port, ct_network;
  for (const char* name : {"list", "show"}) {
    auto* list = ct->add_subcommand(name, "tracked connections, decoded");
    list->add_option("--port", ct_port, "only connections of this port (id or prefix)");
    list->add_option("--network", ct_network, "only connections in this network (id or prefix)");
    list->callback([&] { action = [&] { ct_list(g, ct_port, ct_network); }; });
  }
  auto* flush = ct->add_subcommand("flush", "delete tracked connections");
  flush->add_option("--port", ct_port, "only connections of this port");
  flush->callback([&] { action = [&] { ct_flush(g, ct_port); }; });

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
