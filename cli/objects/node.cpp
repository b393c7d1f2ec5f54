// `weft node install|uninstall|show`: the datapath on this node.
#include <iostream>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/datapath/session.hpp"
#include "loader/inspect/inspect.hpp"
#include "maps/weft_abi.h"

using nlohmann::json;

namespace weft::cli {

namespace {

void node_install(const Globals& g, const std::string& uplink, const std::string& tunnel_ip,
                  const std::string& mappings, const std::string& attach, std::uint32_t ct_max,
                  std::uint32_t ct_network_max) {
  InstallOptions opts;
  if (!mappings.empty())
    opts.physical_interface_mappings = parse_physnet_mappings(mappings);
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
    std::cout << "replaced the programs on " << result.links_updated << " devices\n";
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
                field("PROGRAM", "program"), field("MODE", "mode"), field("PROG_ID", "prog_id")},
               g.format);
}

} // namespace

void register_node(Command& cmd) {
  const Globals& g = cmd.globals;
  OptionStore& store = cmd.store;
  CLI::App* node = cmd.object("node", "install, remove and show the fabric on this node");
  auto& uplink = store.add<std::string>();
  auto& tunnel_ip = store.add<std::string>();
  auto& mappings = store.add<std::string>();
  auto& attach = store.add<std::string>("auto");
  auto& ct_max = store.add<std::uint32_t>(0);
  auto& ct_network_max = store.add<std::uint32_t>(0);
  CLI::App* install =
      cmd.verb(node, "install", "load and pin the datapath (idempotent)",
               [&g, &uplink, &tunnel_ip, &mappings, &attach, &ct_max, &ct_network_max] {
                 node_install(g, uplink, tunnel_ip, mappings, attach, ct_max, ct_network_max);
               });
  install->add_option("--uplink", uplink,
                      "the node's underlay device, addressed with --tunnel-ip: VXLAN leaves and "
                      "enters there; the node's own traffic on it passes untouched");
  install->add_option("--tunnel-ip", tunnel_ip,
                      "this node's VXLAN tunnel endpoint (IPv4, Neutron's local_ip); the "
                      "document's nodes[].tunnel_ip names the others'");
  install->add_option("--physical-interface-mappings", mappings,
                      "PHYSNET:DEVICE[,PHYSNET:DEVICE]: vlan networks of PHYSNET are tagged with "
                      "their segmentation id on DEVICE, a flat one untagged (on a device of its "
                      "own); replaces the node's mappings");
  install->add_option("--attach", attach, "attach mode: auto (tcx on kernels >= 6.6), tcx or tc")
      ->check(CLI::IsMember({"auto", "tcx", "tc"}))
      ->capture_default_str();
  install->add_option("--ct-max", ct_max,
                      "established connections the node tracks, and as many being opened "
                      "(default 65536); fixed until uninstall");
  install->add_option("--ct-network-max", ct_network_max,
                      "established connections one network may hold (default: half of "
                      "--ct-max), so that no tenant can take the table from the others");
  cmd.verb(node, "uninstall", "detach all programs and remove every pin",
           [&g] { node_uninstall(g); });
  cmd.verb(node, "show", "what is installed", [&g] { node_show(g); })->alias("list");
}

} // namespace weft::cli
