// The lab (DESIGN.md §3.3, §3.4): the nodes and VMs of a topology as network
// namespaces, wired the way Nova wires a VM — a veth whose host end is the
// port's device (tap + 11 characters of the port id) — the nodes joined by
// an underlay switch and a provider switch the way an operator cables them,
// and driven by the same install and apply as a real node.
#include "loader/lab/lab.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "loader/datapath/session.hpp"
#include "loader/inspect/inspect.hpp"
#include "loader/lab/process.hpp"
#include "loader/system/netns.hpp"

using nlohmann::json;

namespace weft::lab {

namespace {

Layout node_layout(const LabOptions& options, const LabNode& node) {
  Layout layout = options.layout;
  layout.node = node.name;
  return layout;
}

std::string node_netns(const LabOptions& options, const LabNode& node) {
  return options.prefix + "-" + node.namespace_;
}
// A VM's or a physical host's.
std::string endpoint_netns(const LabOptions& options, const LabEndpoint& endpoint) {
  return options.prefix + "-" + endpoint.name;
}
std::string underlay_netns(const LabOptions& options) {
  return options.prefix + "-" + kUnderlayNamespace;
}
std::string provider_netns(const LabOptions& options) {
  return options.prefix + "-" + kProviderNamespace;
}

// The bridge of the underlay switch; the provider switch has one per
// physnet (provider_bridge()), as physnets are separate wires.
constexpr const char* kSwitchBridge = "br0";

// A device name of at most 15 characters made from `text`: itself when it
// fits, else its start and a hash of the whole (FNV-1a: the same in every
// build), so that long namespace names still give distinct ports.
std::string device_name(const std::string& text) {
  if (text.size() <= 15)
    return text;
  std::uint32_t hash = 2166136261u;
  for (unsigned char c : text)
    hash = (hash ^ c) * 16777619u;
  static const char* digits = "0123456789abcdef";
  std::string out = text.substr(0, 10) + "-";
  for (int shift = 12; shift >= 0; shift -= 4)
    out += digits[(hash >> shift) & 15];
  return out;
}

// The switch ends of the lab's wiring: a node's uplink's in the underlay, a
// node's physnet device's and a physical host's in the provider switch.
std::string underlay_port(const LabNode& node) {
  return device_name(node.namespace_);
}
std::string provider_port(const LabNode& node, std::size_t mapping) {
  return device_name(node.namespace_ + "-p" + std::to_string(mapping + 1));
}
std::string provider_port(const LabHost& host) {
  return device_name("host-" + host.name);
}
std::string provider_bridge(const std::string& physnet) {
  return device_name("br-" + physnet);
}

// Where `lab up` keeps the topology it built, for status and down.
std::string saved_topology(const LabOptions& options) {
  return options.layout.state_dir + "/lab-" + options.prefix + ".json";
}

// The record's text, when the lab has one.
std::optional<std::string> read_record(const LabOptions& options) {
  std::ifstream saved(saved_topology(options));
  if (!saved)
    return std::nullopt;
  std::stringstream text;
  text << saved.rdbuf();
  return text.str();
}

// The record status and down read: the topology up built, or what plug made.
void save_record(const LabOptions& options, const std::string& text) {
  if (::mkdir(options.layout.state_dir.c_str(), 0755) != 0 && errno != EEXIST)
    throw SystemError("create " + options.layout.state_dir, errno);
  std::ofstream saved(saved_topology(options));
  saved << text;
  if (!saved.flush())
    throw std::runtime_error("lab: cannot write " + saved_topology(options));
}

void say(const LabOptions& options, const std::string& line) {
  if (options.verbose)
    std::cerr << "lab: " << line << std::endl;
}

bool netns_exists(const std::string& name) {
  return path_exists("/run/netns/" + name);
}

// Every namespace of this lab: <prefix>-*, whoever made it (the prefix is the lab's).
std::vector<std::string> lab_namespaces(const LabOptions& options) {
  std::vector<std::string> out;
  std::string start = options.prefix + "-";
  for (const auto& name : list_dir("/run/netns"))
    if (name.rfind(start, 0) == 0)
      out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

// Pins or a record of a node, even without a working installation.
bool node_leftovers(const Layout& layout) {
  return path_exists(layout.root()) || path_exists(layout.record_dir());
}

bool lab_exists(const LabOptions& options, const Topology& topology) {
  if (!lab_namespaces(options).empty() || path_exists(saved_topology(options)))
    return true;
  return std::any_of(topology.nodes.begin(), topology.nodes.end(), [&](const LabNode& node) {
    return node_leftovers(node_layout(options, node));
  });
}

void ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  run_checked(argv);
}

void sysctl(const std::string& netns, const std::vector<std::string>& settings) {
  std::vector<std::string> argv{"sysctl", "-qw"};
  argv.insert(argv.end(), settings.begin(), settings.end());
  run_checked(argv, netns);
}

// ---- namespaces and VMs -------------------------------------------------------

// A namespace with lo up and IPv6 off, so that no DAD, MLD or RS chatter
// muddles what the fabric is shown (a VM may turn IPv6 back on).
void create_namespace(const LabOptions& options, const std::string& name) {
  say(options, "creating namespace " + name);
  ip({"netns", "add", name});
  sysctl(name, {"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"});
  ip({"-n", name, "link", "set", "lo", "up"});
}

// eth0 of a VM or host: its MAC, MTU and addresses (IPv6 ones only with
// IPv6 turned on, without DAD and RAs).
void configure_eth0(const std::string& ns, const LabEndpoint& endpoint, bool ipv6) {
  std::vector<std::string> eth0{"-n", ns, "link", "set", "eth0", "address", endpoint.mac};
  if (endpoint.mtu)
    eth0.insert(eth0.end(), {"mtu", std::to_string(endpoint.mtu)});
  ip(eth0);
  if (ipv6)
    for (const char* conf : {"all", "default", "eth0"}) {
      std::string key = std::string("net.ipv6.conf.") + conf + ".";
      sysctl(ns, {key + "accept_dad=0", key + "accept_ra=0", key + "router_solicitations=0",
                  key + "disable_ipv6=0"});
    }
  for (const auto& address : endpoint.addresses) {
    bool v6 = address.find(':') != std::string::npos;
    if (v6 && !ipv6)
      continue;
    std::vector<std::string> add_address{"-n", ns, "addr", "add", address, "dev", "eth0"};
    if (v6)
      add_address.emplace_back("nodad");
    ip(add_address);
  }
}

// The veth of one VM: the port's device in the node, eth0 in the VM with the
// port's MAC and addresses, both at the network's MTU when it is known.
void create_vm(const LabOptions& options, const Topology& topology, const LabVm& vm) {
  std::string node = node_netns(options, topology.node(vm.node)), ns = endpoint_netns(options, vm);
  create_namespace(options, ns);
  std::string addresses;
  for (const auto& address : vm.addresses)
    addresses += (addresses.empty() ? "" : ", ") + address;
  say(options, "plugging VM " + vm.name + ": " + vm.device + " (" + node + ") <-> eth0 (" + ns +
                   "), " + vm.mac + " " + addresses +
                   (vm.network_name.empty() ? "" : " on " + vm.network_name));
  std::vector<std::string> add{"-n", node, "link", "add", vm.device};
  std::vector<std::string> mtu;
  if (vm.mtu)
    mtu = {"mtu", std::to_string(vm.mtu)};
  add.insert(add.end(), mtu.begin(), mtu.end());
  add.insert(add.end(), {"type", "veth", "peer", "name", "eth0", "netns", ns});
  ip(add);
  configure_eth0(ns, vm, vm.ipv6);
  ip({"-n", node, "link", "set", vm.device, "up"});
  if (vm.up)
    ip({"-n", ns, "link", "set", "eth0", "up"});
}

bool link_exists(const std::string& netns, const std::string& device) {
  return run({"ip", "-n", netns, "link", "show", "dev", device}).status == 0;
}

// A switch: a namespace with one bridge. No STP (the wiring has no loops,
// and ports forward at once), no multicast snooping (every multicast floods,
// as on a plain wire) and no VLAN filtering (the kernel here has none:
// tagged frames pass as they are, which is what a trunk does).
void create_bridge(const std::string& ns, const std::string& bridge) {
  if (run({"ip", "-n", ns, "link", "show", "dev", bridge}).status == 0)
    return;
  ip({"-n", ns, "link", "add", bridge, "type", "bridge", "stp_state", "0", "mcast_snooping", "0"});
  ip({"-n", ns, "link", "set", bridge, "up"});
}

void create_switch(const LabOptions& options, const std::string& ns, bool bridge = true) {
  create_namespace(options, ns);
  if (bridge)
    create_bridge(ns, kSwitchBridge);
}

// A veth from switch `ns`, its end `port` a port of `bridge`, to `device`
// in `peer_ns`; both ends up.
void plug_into_switch(const std::string& ns, const std::string& bridge, const std::string& port,
                      const std::string& peer_ns, const std::string& device, unsigned mtu) {
  std::vector<std::string> add{"-n", ns, "link", "add", port};
  if (mtu)
    add.insert(add.end(), {"mtu", std::to_string(mtu)});
  add.insert(add.end(), {"type", "veth", "peer", "name", device, "netns", peer_ns});
  ip(add);
  ip({"-n", ns, "link", "set", port, "master", bridge, "up"});
  ip({"-n", peer_ns, "link", "set", device, "up"});
}

// A node's uplink into the underlay switch, with its tunnel IP: the
// operator's part of `node install --uplink --tunnel-ip` (DESIGN.md §3.4).
void create_uplink(const LabOptions& options, const LabNode& node, const Underlay& underlay) {
  std::string ns = node_netns(options, node),
              address = node.tunnel_ip + "/" + std::to_string(underlay.prefixlen);
  say(options, "wiring node " + node.name + " to the underlay: " + node.uplink + " (" + ns + ") " +
                   address + " <-> " + underlay_port(node) + " (" + underlay_netns(options) + ")");
  plug_into_switch(underlay_netns(options), kSwitchBridge, underlay_port(node), ns, node.uplink, 0);
  ip({"-n", ns, "addr", "add", address, "dev", node.uplink});
}

// A node's device of one physnet into the provider switch; no address: the
// fabric alone sends and takes the tenants' frames there.
void create_physnet_device(const LabOptions& options, const LabNode& node, std::size_t mapping) {
  const auto& [physnet, device] = node.physical_interface_mappings[mapping];
  std::string ns = node_netns(options, node);
  say(options, "wiring node " + node.name + " to the provider switch: " + device + " (" + ns +
                   ") for " + physnet + " <-> " + provider_port(node, mapping) + " (" +
                   provider_netns(options) + ")");
  create_bridge(provider_netns(options), provider_bridge(physnet));
  plug_into_switch(provider_netns(options), provider_bridge(physnet), provider_port(node, mapping),
                   ns, device, 0);
}

// A physical host: eth0 untagged on the provider switch.
void create_host(const LabOptions& options, const LabHost& host) {
  std::string ns = endpoint_netns(options, host);
  create_namespace(options, ns);
  say(options, "plugging physical host " + host.name + " into the provider switch on " +
                   host.physnet + ": eth0 (" + ns + ") <-> " + provider_port(host) + ", " +
                   host.mac);
  create_bridge(provider_netns(options), provider_bridge(host.physnet));
  plug_into_switch(provider_netns(options), provider_bridge(host.physnet), provider_port(host), ns,
                   "eth0", host.mtu);
  configure_eth0(ns, host, false);
}

// The first address, without its prefix length ("" without one).
std::string first_address(const LabEndpoint& endpoint) {
  return endpoint.addresses.empty()
             ? std::string()
             : endpoint.addresses.front().substr(0, endpoint.addresses.front().find('/'));
}

json describe_node(const LabOptions& options, const LabNode& node) {
  json mappings = json::object();
  for (const auto& [physnet, device] : node.physical_interface_mappings)
    mappings[physnet] = device;
  auto or_null = [](const std::string& text) { return text.empty() ? json() : json(text); };
  return {{"name", node.name},
          {"namespace", node_netns(options, node)},
          {"tunnel_ip", or_null(node.tunnel_ip)},
          {"uplink", or_null(node.uplink)},
          {"physical_interface_mappings", mappings}};
}

json describe_host(const LabOptions& options, const LabHost& host) {
  return {{"name", host.name},
          {"namespace", endpoint_netns(options, host)},
          {"physnet", host.physnet},
          {"network", host.network_name},
          {"mac_address", host.mac},
          {"addresses", host.addresses},
          {"ip_address", first_address(host)}};
}

json describe_vm(const LabOptions& options, const LabVm& vm) {
  return {{"name", vm.name},
          {"namespace", endpoint_netns(options, vm)},
          {"node", vm.node},
          {"network", vm.network_name},
          {"project_id", vm.project_id},
          {"port_id", vm.port_id},
          {"device", vm.device},
          {"mac_address", vm.mac},
          {"addresses", vm.addresses},
          {"ip_address", first_address(vm)}};
}

// ---- install and apply ------------------------------------------------------

// What the node is installed with: its uplink and tunnel IP on the underlay,
// its physnets' devices on the provider switch.
InstallOptions install_options(const LabNode& node) {
  InstallOptions install;
  if (!node.uplink.empty()) {
    install.uplink = node.uplink;
    install.tunnel_ip = IpAddr::parse(node.tunnel_ip);
  }
  install.physical_interface_mappings = node.physical_interface_mappings;
  return install;
}

// The same as `weft node install` flags, for the progress line.
std::string install_flags(const LabNode& node) {
  std::string out;
  if (!node.uplink.empty())
    out += " --uplink " + node.uplink + " --tunnel-ip " + node.tunnel_ip;
  std::string mappings;
  for (const auto& [physnet, device] : node.physical_interface_mappings)
    mappings.append(mappings.empty() ? "" : ",").append(physnet).append(":").append(device);
  if (!mappings.empty())
    out += " --physical-interface-mappings " + mappings;
  return out;
}

// What `weft apply` does, in this process: the whole document is parsed
// before any map is touched.
json apply_document(Session& session, const std::string& document) {
  Plan plan = session.apply(document, false);
  if (!plan.waiting.empty())
    throw std::runtime_error("lab: port " + plan.waiting.front().id + " has no device " +
                             plan.waiting.front().device + " in the node namespace");
  json out = describe_plan(plan);
  out.erase("changes");
  return out;
}

// ---- teardown ---------------------------------------------------------------

json uninstall_node(const LabOptions& options, const LabNode& node) {
  Layout layout = node_layout(options, node);
  json out = {{"node", layout.node}, {"node_uninstalled", false}, {"detached", 0}};
  if (Installation(layout).installed()) {
    // Uninstall from inside the node, where its devices are; if the node's
    // namespace is already gone, an empty one stands in (no device of any
    // other namespace can match a port ifindex there).
    std::string ns = node_netns(options, node);
    bool made = false;
    if (!netns_exists(ns)) {
      ip({"netns", "add", ns});
      made = true;
    }
    enter_netns(ns);
    say(options, "uninstalling node " + layout.node + " (pins under " + layout.root() + ")");
    out["detached"] = Installation(layout).uninstall();
    out["node_uninstalled"] = true;
    if (made)
      ip({"netns", "delete", ns});
  } else if (node_leftovers(layout)) {
    // No program pinned: nothing is attached through it; remove what remains.
    say(options, "removing the remains of node " + layout.node + " under " + layout.root());
    out["detached"] = Installation(layout).uninstall();
    out["node_uninstalled"] = true;
  }
  return out;
}

json teardown(const LabOptions& options, const Topology& topology) {
  json nodes = json::array();
  int detached = 0;
  bool uninstalled = false;
  for (const auto& node : topology.nodes) {
    json done = uninstall_node(options, node);
    detached += done["detached"].get<int>();
    uninstalled = uninstalled || done["node_uninstalled"].get<bool>();
    nodes.push_back(done);
  }
  json out = {{"node", topology.nodes.empty() ? "" : topology.nodes.front().name},
              {"nodes", nodes},
              {"node_uninstalled", uninstalled},
              {"detached", detached}};
  json removed = json::array();
  auto namespaces = lab_namespaces(options);
  std::set<std::string> node_namespaces;
  for (const auto& node : topology.nodes)
    node_namespaces.insert(node_netns(options, node));
  // The VMs first, then the nodes: deleting a namespace deletes its veths.
  std::stable_partition(namespaces.begin(), namespaces.end(),
                        [&](const std::string& n) { return !node_namespaces.count(n); });
  for (const auto& name : namespaces) {
    say(options, "deleting namespace " + name);
    ip({"netns", "delete", name});
    removed.push_back(name);
  }
  ::unlink(saved_topology(options).c_str());
  out["namespaces_removed"] = removed;
  return out;
}

// ---- measuring --------------------------------------------------------------

// Icmp InEchos of one namespace: how many echo requests reached its stack.
std::uint64_t in_echos(const std::string& snmp) {
  std::istringstream lines(snmp);
  std::string header, values;
  while (std::getline(lines, header)) {
    if (header.rfind("Icmp: ", 0) != 0 || !std::getline(lines, values))
      continue;
    std::istringstream names(header), numbers(values);
    std::string name, number;
    while (names >> name && numbers >> number)
      if (name == "InEchos")
        return std::stoull(number);
  }
  throw std::runtime_error("lab: no Icmp InEchos in /proc/net/snmp");
}

std::map<std::string, std::uint64_t> read_in_echos(const LabOptions& options,
                                                   const Topology& topology) {
  std::vector<std::pair<std::string, Process>> reads;
  for (const LabEndpoint* endpoint : topology.endpoints())
    reads.emplace_back(endpoint->name,
                       Process({"cat", "/proc/net/snmp"}, endpoint_netns(options, *endpoint)));
  std::map<std::string, std::uint64_t> out;
  for (auto& [name, process] : reads) {
    auto result = process.finish();
    if (result.status != 0)
      throw std::runtime_error("lab: cannot read the ICMP counters of " + name + ": " +
                               result.output);
    out[name] = in_echos(result.output);
  }
  return out;
}

// The IPv4 address a VM or host is pinged at ("" without one).
std::string probe_address(const LabEndpoint& endpoint) {
  for (const auto& address : endpoint.addresses)
    if (address.find(':') == std::string::npos)
      return address.substr(0, address.find('/'));
  return "";
}

// One echo request from a VM or host to an address. Which one answered is
// told by the receivers' counters, not by the reply: two VMs may share an
// address.
struct Probe {
  const LabEndpoint* from;
  std::string address;
  bool replied = false;
  std::vector<std::string> reached; // VMs whose stack got the echo request
};

json counters_summary(const LabOptions& options, const Topology& topology) {
  json dropped = json::object(), forwarded = json::object();
  std::uint64_t drops = 0;
  for (const auto& node : topology.nodes) {
    enter_netns(node_netns(options, node));
    Session session(node_layout(options, node));
    for (const auto& row : inspect_stats(session)) {
      std::string reason = row["reason"].get<std::string>();
      auto packets = row["packets"].get<std::uint64_t>();
      json& bucket = row["drop"].get<bool>() ? dropped : forwarded;
      bucket[reason] = bucket.value(reason, std::uint64_t{0}) + packets;
      if (row["drop"].get<bool>())
        drops += packets;
    }
  }
  return {{"dropped", dropped}, {"dropped_total", drops}, {"forwarded", forwarded}};
}

std::string node_names(const Topology& topology) {
  std::string out;
  for (const auto& node : topology.nodes)
    out += (out.empty() ? "" : ",") + node.name;
  return out;
}

} // namespace

// ---- lab up / plug / down / status ------------------------------------------

namespace {

// The lab's record with a plugged fragment added: its nodes and VMs that the
// record does not name yet, and its document if the record has none. Parsed
// whole, so a fragment that does not fit is refused before anything is made.
Topology with_fragment(const LabOptions& options, const Topology& fragment) {
  auto text = read_record(options);
  if (!text)
    return fragment;
  using nlohmann::ordered_json;
  ordered_json record = ordered_json::parse(*text);
  ordered_json added = ordered_json::parse(fragment.source);
  auto named = [](const ordered_json& list, const ordered_json& entry) {
    return std::find_if(list.begin(), list.end(), [&](const ordered_json& other) {
      return other.value("name", "") == entry.value("name", "");
    });
  };
  for (const auto& node : added["nodes"]) {
    auto known = named(record["nodes"], node);
    if (known == record["nodes"].end())
      record["nodes"].push_back(node);
    else if (*known != node)
      throw std::runtime_error("lab: node " + node.value("name", "") + " is in the lab of prefix " +
                               options.prefix + " already, as " + known->dump());
  }
  if (added.contains("underlay")) {
    if (!record.contains("underlay"))
      record["underlay"] = added["underlay"];
    else if (record["underlay"] != added["underlay"])
      throw std::runtime_error("lab: the lab of prefix " + options.prefix +
                               " has another underlay already: " + record["underlay"].dump());
  }
  for (const char* list : {"vms", "physical_hosts"}) {
    if (!added.contains(list))
      continue;
    if (!record.contains(list))
      record[list] = ordered_json::array();
    for (const auto& entry : added[list])
      if (named(record[list], entry) == record[list].end())
        record[list].push_back(entry);
  }
  if (added.contains("document")) {
    if (!record.contains("document"))
      record["document"] = added["document"];
    else if (record["document"] != added["document"])
      throw std::runtime_error("lab: the lab of prefix " + options.prefix +
                               " applies another document; plug only its own");
  }
  return parse_topology(record.dump(2) + "\n");
}

// Makes the namespaces and VMs of the topology that are not there yet.
// Makes the namespaces, the switches' wiring and the VMs of the topology
// that are not there yet: "made" lists the namespaces, "wired" the devices
// plugged into a switch ("<namespace>:<device>").
json plug(const LabOptions& options, const Topology& topology, bool dry_run) {
  json made = json::array(), wired = json::array(), vms = json::array(), hosts = json::array();
  auto make_namespace = [&](const std::string& ns, const std::function<void()>& create) {
    if (netns_exists(ns))
      return false;
    if (!dry_run)
      create();
    made.push_back(ns);
    return true;
  };
  auto wire = [&](const std::string& ns, const std::string& device,
                  const std::function<void()>& create) {
    if (link_exists(ns, device))
      return;
    if (!dry_run)
      create();
    wired.push_back(ns + ":" + device);
  };
  for (const auto& node : topology.nodes) {
    std::string ns = node_netns(options, node);
    make_namespace(ns, [&] { create_namespace(options, ns); });
  }
  if (topology.underlay) {
    make_namespace(underlay_netns(options),
                   [&] { create_switch(options, underlay_netns(options)); });
    for (const auto& node : topology.nodes)
      wire(node_netns(options, node), node.uplink,
           [&] { create_uplink(options, node, *topology.underlay); });
  }
  if (topology.has_provider()) {
    // One bridge per physnet, made with its first device.
    make_namespace(provider_netns(options),
                   [&] { create_switch(options, provider_netns(options), false); });
    for (const auto& node : topology.nodes)
      for (std::size_t m = 0; m < node.physical_interface_mappings.size(); ++m)
        wire(node_netns(options, node), node.physical_interface_mappings[m].second,
             [&] { create_physnet_device(options, node, m); });
  }
  for (const auto& host : topology.physical_hosts) {
    json described = describe_host(options, host);
    described["made"] =
        make_namespace(endpoint_netns(options, host), [&] { create_host(options, host); });
    hosts.push_back(described);
  }
  for (const auto& vm : topology.vms) {
    json described = describe_vm(options, vm);
    described["made"] = !netns_exists(endpoint_netns(options, vm));
    if (described["made"].get<bool>()) {
      if (!dry_run)
        create_vm(options, topology, vm);
      made.push_back(endpoint_netns(options, vm));
    }
    vms.push_back(described);
  }
  return {{"prefix", options.prefix}, {"made", made},      {"wired", wired}, {"vms", vms},
          {"physical_hosts", hosts},  {"dry_run", dry_run}};
}

} // namespace

Topology lab_topology(const LabOptions& options) {
  // Without a record, the demo's is the default prefix's; another prefix
  // has none (its down removes its namespaces and touches no demo node).
  if (auto text = read_record(options))
    return parse_topology(*text);
  return options.prefix == LabOptions().prefix ? parse_topology(default_topology()) : Topology{};
}

json lab_plug(const LabOptions& options, const Topology& topology, bool dry_run) {
  Topology record = with_fragment(options, topology);
  // Recorded first: a plug that fails half-way is still down's to remove.
  if (!dry_run)
    save_record(options, record.source);
  // Made from the whole record, where each node has its index (its derived
  // tunnel IP) and each physnet its switch; the fragment's VMs and hosts
  // described as the fragment gives them: what the caller plugged.
  json out = plug(options, record, dry_run);
  auto described = [&](json entry, const LabEndpoint& endpoint) {
    const json& made = out["made"];
    entry["made"] =
        std::find(made.begin(), made.end(), endpoint_netns(options, endpoint)) != made.end();
    return entry;
  };
  json vms = json::array(), hosts = json::array();
  for (const auto& vm : topology.vms)
    vms.push_back(described(describe_vm(options, vm), vm));
  for (const auto& host : topology.physical_hosts)
    hosts.push_back(described(describe_host(options, host), host));
  out["vms"] = vms;
  out["physical_hosts"] = hosts;
  return out;
}

json lab_up(const LabOptions& options, const Topology& topology) {
  json out = {{"node", topology.nodes.front().name}, {"prefix", options.prefix}};
  if (lab_exists(options, topology)) {
    say(options, "a lab is up already; tearing it down first");
    Topology previous = lab_topology(options);
    out["replaced"] = teardown(options, previous);
    if (node_names(previous) != node_names(topology))
      teardown(options, topology); // leftovers of these nodes too
  }
  try {
    json plugged = plug(options, topology, false);
    json nodes = json::array();
    for (const auto& node : topology.nodes) {
      Layout layout = node_layout(options, node);
      std::string ns = node_netns(options, node);
      enter_netns(ns); // the node's devices are here
      Session session(layout);
      say(options, "installing node " + layout.node + " in " + ns + " (pins under " +
                       layout.root() + ")" + install_flags(node));
      auto installed = session.installation().install(install_options(node));
      json described = describe_node(options, node);
      json done = {{"node", layout.node},
                   {"node_namespace", ns},
                   {"tunnel_ip", described["tunnel_ip"]},
                   {"uplink", described["uplink"]},
                   {"physical_interface_mappings", described["physical_interface_mappings"]},
                   {"fresh_install", installed.fresh},
                   {"attach_mode", to_string(session.installation().attach_mode())}};
      if (topology.document) {
        say(options, "applying the topology's document on " + layout.node + " (" +
                         std::to_string(topology.vms_of(node.name).size()) + " local ports)");
        done["applied"] = apply_document(session, *topology.document);
        say(options, "applied: " + done["applied"]["entries_added"].dump() +
                         " map entries added, " + std::to_string(done["applied"]["attach"].size()) +
                         " ports attached (" + done["attach_mode"].get<std::string>() + ")");
      }
      nodes.push_back(done);
    }
    save_record(options, topology.source); // for lab status and lab down

    out["node_namespace"] = nodes.front()["node_namespace"];
    out["vms"] = plugged["vms"];
    out["physical_hosts"] = plugged["physical_hosts"];
    out["nodes"] = nodes;
    out["fresh_install"] = nodes.front()["fresh_install"];
    out["attach_mode"] = nodes.front()["attach_mode"];
    if (nodes.front().contains("applied"))
      out["applied"] = nodes.front()["applied"];
  } catch (const std::exception& e) {
    say(options, std::string("failed: ") + e.what());
    say(options, "removing what was made");
    try {
      teardown(options, topology);
    } catch (const std::exception& cleanup) {
      say(options, std::string("cleanup failed too: ") + cleanup.what());
    }
    throw;
  }
  out["status"] = lab_status(options);
  return out;
}

json lab_down(const LabOptions& options) {
  Topology topology = lab_topology(options);
  bool was_up = lab_exists(options, topology);
  json out = teardown(options, topology);
  out["was_up"] = was_up;
  return out;
}

json lab_status(const LabOptions& options) {
  Topology topology = lab_topology(options);
  if (topology.nodes.empty())
    throw std::runtime_error("lab: not up: no lab of prefix " + options.prefix +
                             " (run: weft lab --prefix " + options.prefix + " up)");
  std::vector<std::string> needed;
  for (const LabEndpoint* endpoint : topology.endpoints())
    needed.push_back(endpoint_netns(options, *endpoint));
  if (topology.underlay)
    needed.push_back(underlay_netns(options));
  if (topology.has_provider())
    needed.push_back(provider_netns(options));
  for (const auto& ns : needed)
    if (!netns_exists(ns))
      throw std::runtime_error("lab: not up: no namespace " + ns + " (run: weft lab up)");
  for (const auto& node : topology.nodes)
    if (!netns_exists(node_netns(options, node)) ||
        !Installation(node_layout(options, node)).installed())
      throw std::runtime_error("lab: not up: node " + node.name + " is not installed in " +
                               node_netns(options, node) + " (run: weft lab up)");
  auto started = std::chrono::steady_clock::now();
  std::vector<const LabEndpoint*> endpoints = topology.endpoints();

  // Forget every neighbour, so that each probe resolves through the fabric.
  for (const LabEndpoint* endpoint : endpoints)
    ip({"-n", endpoint_netns(options, *endpoint), "neigh", "flush", "all"});

  // One probe per (VM or host, address other than its own). Probes run in
  // parallel rounds in which no address is probed twice, so that a
  // receiver's counter tells which probe reached it.
  std::vector<Probe> probes;
  std::set<std::string> addresses;
  for (const LabEndpoint* endpoint : endpoints)
    if (!probe_address(*endpoint).empty())
      addresses.insert(probe_address(*endpoint));
  for (const LabEndpoint* from : endpoints)
    for (const auto& address : addresses)
      if (address != probe_address(*from) && from->up)
        probes.push_back({from, address, false, {}});
  std::vector<std::vector<Probe*>> rounds;
  for (auto& probe : probes) {
    auto round = std::find_if(rounds.begin(), rounds.end(), [&](const auto& r) {
      return std::none_of(r.begin(), r.end(),
                          [&](const Probe* p) { return p->address == probe.address; });
    });
    if (round == rounds.end())
      rounds.push_back({&probe});
    else
      round->push_back(&probe);
  }
  say(options, "measuring: " + std::to_string(probes.size()) + " pings in " +
                   std::to_string(rounds.size()) + " parallel rounds");

  auto before = read_in_echos(options, topology);
  for (const auto& round : rounds) {
    std::vector<Process> pings;
    for (const Probe* probe : round)
      pings.emplace_back(
          std::vector<std::string>{"ping", "-n", "-q", "-c", "1", "-W", "1", probe->address},
          endpoint_netns(options, *probe->from));
    for (std::size_t i = 0; i < round.size(); ++i)
      round[i]->replied = pings[i].finish().status == 0;
    auto after = read_in_echos(options, topology);
    for (Probe* probe : round)
      for (const LabEndpoint* endpoint : endpoints)
        if (probe_address(*endpoint) == probe->address &&
            after[endpoint->name] > before[endpoint->name])
          probe->reached.push_back(endpoint->name);
    before = std::move(after);
  }

  // A VM's node; null for a physical host, whose physnet the cell names.
  auto place = [](const LabEndpoint& end) { return end.node.empty() ? json() : json(end.node); };
  json matrix = json::array();
  bool ok = true;
  int measured_cells = 0;
  for (const LabEndpoint* from : endpoints)
    for (const LabEndpoint* to : endpoints) {
      if (from == to)
        continue;
      json cell = {{"from", from->name},
                   {"from_node", place(*from)},
                   {"to", to->name},
                   {"to_node", place(*to)},
                   {"address", probe_address(*to)},
                   {"expected", topology.expect_reachable(*from, *to) ? "reachable" : "isolated"}};
      if (!from->physnet.empty())
        cell["from_physnet"] = from->physnet;
      if (!to->physnet.empty())
        cell["to_physnet"] = to->physnet;
      if (probe_address(*from) == probe_address(*to) || probe_address(*to).empty() || !from->up) {
        cell["measured"] = probe_address(*to).empty() ? "no-address"
                           : !from->up                ? "sender-down"
                                                      : "self-address";
        cell["result"] = "skipped";
        matrix.push_back(cell);
        continue;
      }
      const Probe& probe = *std::find_if(probes.begin(), probes.end(), [&](const Probe& p) {
        return p.from == from && p.address == probe_address(*to);
      });
      bool reached =
          std::find(probe.reached.begin(), probe.reached.end(), to->name) != probe.reached.end();
      std::string measured = !reached ? "isolated" : probe.replied ? "reachable" : "one-way";
      cell["measured"] = measured;
      cell["result"] = measured == cell["expected"] ? "ok" : "MISMATCH";
      cell["echo_reached"] = probe.reached;
      ok = ok && measured == cell["expected"];
      ++measured_cells;
      matrix.push_back(cell);
    }

  json nodes = json::array(), hosts = json::array();
  for (const auto& node : topology.nodes)
    nodes.push_back(describe_node(options, node));
  for (const auto& host : topology.physical_hosts)
    hosts.push_back(describe_host(options, host));
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  return {
      {"node", node_names(topology)},
      {"prefix", options.prefix},
      {"nodes", nodes},
      {"underlay", topology.underlay ? json{{"cidr", topology.underlay->cidr},
                                            {"namespace", underlay_netns(options)}}
                                     : json()},
      {"provider", topology.has_provider() ? json{{"namespace", provider_netns(options)}} : json()},
      {"physical_hosts", hosts},
      {"matrix", matrix},
      {"measured", measured_cells},
      {"ok", ok},
      {"duration_ms", elapsed.count()},
      {"counters", counters_summary(options, topology)}};
}

} // namespace weft::lab
