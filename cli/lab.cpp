// The lab (DESIGN.md §3.3): one node and four VMs as network namespaces, two
// tenants whose subnets overlap (and whose first VMs share a MAC and an IP),
// wired the way Nova wires a VM — a veth whose host end is tap + 11 chars of
// the port id — and driven by the same install and apply as a real node.
#include "cli/lab.hpp"

#include <algorithm>
#include <chrono>
#include <dirent.h>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "cli/lab_process.hpp"
#include "loader/datapath/session.hpp"
#include "loader/inspect/inspect.hpp"
#include "loader/system/netns.hpp"

using nlohmann::json;

namespace weft::cli {

namespace {

constexpr const char* kLabNode = "lab-node1";

struct LabNetwork {
  const char* key; // "a" or "b": the VM names start with it
  const char* id;
  const char* name;
  const char* project_id;
  const char* type;
  std::uint32_t segmentation_id;
  const char* physical_network; // nullptr for vxlan
  std::uint32_t mtu;
  const char* subnet_id;
  const char* group_id; // the project's "default" security group
};

// tenant-a: VXLAN; tenant-b: a VLAN provider network. Same CIDR on both.
const LabNetwork kNetworks[] = {
    {"a", "5b1c3a2e-0d4f-4e6a-9b7c-1a2b3c4d5e01", "blue", "tenant-a", "vxlan", 1001, nullptr, 1450,
     "6c2d4b3f-1e5a-4f7b-8c8d-2b3c4d5e6f01", "a7e0c1d2-3f4a-4b5c-9d6e-7f8091a2b301"},
    {"b", "8d2e4f6a-1b3c-4d5e-8f7a-2b3c4d5e6f02", "red", "tenant-b", "vlan", 101, "physnet1", 1500,
     "9e3f5a7b-2c4d-4e6f-9a8b-3c4d5e6f7a02", "b8f1d2e3-4a5b-4c6d-8e7f-8091a2b3c402"},
};
constexpr const char* kCidr = "10.0.0.0/24";
constexpr const char* kGateway = "10.0.0.1";
constexpr int kPrefixLen = 24;

struct LabVm {
  const char* name; // namespace <prefix>-<name>
  const char* network_key;
  const char* port_id;
  const char* mac;
  const char* ip;
};

// a1 and b1: two projects, the same MAC and the same IP, isolated.
const LabVm kVms[] = {
    {"a1", "a", "3f2a9c1e-a101-4d6b-9b8e-1c2d3e4f5a6b", "fa:16:3e:00:00:11", "10.0.0.11"},
    {"a2", "a", "7c41d2b0-a202-4e1f-8a3c-5d6e7f809a1b", "fa:16:3e:0a:00:12", "10.0.0.12"},
    {"b1", "b", "9e5b3a7d-b101-4c2e-9f4a-6b7c8d9e0f1a", "fa:16:3e:00:00:11", "10.0.0.11"},
    {"b2", "b", "c06d8e2f-b202-4a5b-8c9d-0e1f2a3b4c5d", "fa:16:3e:0b:00:22", "10.0.0.22"},
};

const LabNetwork& network_of(const LabVm& vm) {
  for (const auto& net : kNetworks)
    if (std::string(net.key) == vm.network_key)
      return net;
  throw std::logic_error("lab: VM " + std::string(vm.name) + " has no network");
}

// Nova's libvirt naming, as Port::device_name() computes it.
std::string device_of(const LabVm& vm) {
  return "tap" + std::string(vm.port_id).substr(0, 11);
}

Layout lab_layout(const LabOptions& options) {
  Layout layout = options.layout;
  layout.node = kLabNode;
  return layout;
}

std::string node_netns(const LabOptions& options) {
  return options.prefix + "-node1";
}
std::string vm_netns(const LabOptions& options, const LabVm& vm) {
  return options.prefix + "-" + vm.name;
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
  if (DIR* dir = ::opendir("/run/netns")) {
    while (dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name.rfind(start, 0) == 0)
        out.push_back(name);
    }
    ::closedir(dir);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Pins or a record of the lab's node, even without a working installation.
bool node_leftovers(const Layout& layout) {
  return path_exists(layout.root()) || path_exists(layout.record_dir());
}

bool lab_exists(const LabOptions& options) {
  return !lab_namespaces(options).empty() || node_leftovers(lab_layout(options));
}

void ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  run_checked(argv);
}

// ---- the VMs ----------------------------------------------------------------

void create_namespace(const LabOptions& options, const std::string& name) {
  say(options, "creating namespace " + name);
  ip({"netns", "add", name});
  ip({"-n", name, "link", "set", "lo", "up"});
}

// The veth of one VM: host end tapXXXXXXXXXXX in the node, eth0 in the VM
// with the port's MAC and address, both at the network's MTU.
void create_vm(const LabOptions& options, const LabVm& vm) {
  const LabNetwork& net = network_of(vm);
  std::string node = node_netns(options), ns = vm_netns(options, vm), tap = device_of(vm);
  std::string mtu = std::to_string(net.mtu);
  create_namespace(options, ns);
  say(options, "plugging VM " + std::string(vm.name) + ": " + tap + " (" + node + ") <-> eth0 (" +
                   ns + "), " + vm.mac + " " + vm.ip + "/" + std::to_string(kPrefixLen) + " on " +
                   net.name);
  ip({"-n", node, "link", "add", tap, "mtu", mtu, "type", "veth", "peer", "name", "eth0", "netns",
      ns});
  ip({"-n", ns, "link", "set", "eth0", "address", vm.mac, "mtu", mtu});
  ip({"-n", ns, "addr", "add", std::string(vm.ip) + "/" + std::to_string(kPrefixLen), "dev",
      "eth0"});
  ip({"-n", ns, "link", "set", "eth0", "up"});
  ip({"-n", node, "link", "set", tap, "up"});
}

// ---- install and apply ------------------------------------------------------

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

json teardown(const LabOptions& options) {
  Layout layout = lab_layout(options);
  json out = {{"node", layout.node}, {"node_uninstalled", false}, {"detached", 0}};
  bool made_node_netns = false;
  if (Installation(layout).installed()) {
    // Uninstall from inside the node, where its devices are; if the node's
    // namespace is already gone, an empty one stands in (no device of any
    // other namespace can match a port ifindex there).
    std::string node = node_netns(options);
    if (!netns_exists(node)) {
      ip({"netns", "add", node});
      made_node_netns = true;
    }
    enter_netns(node);
    say(options, "uninstalling node " + layout.node + " (pins under " + layout.root() + ")");
    Installation installation(layout);
    out["detached"] = installation.uninstall();
    out["node_uninstalled"] = true;
  } else if (node_leftovers(layout)) {
    // No program pinned: nothing is attached through it; remove what remains.
    say(options, "removing the remains of node " + layout.node + " under " + layout.root());
    out["detached"] = Installation(layout).uninstall();
    out["node_uninstalled"] = true;
  }
  json removed = json::array();
  auto namespaces = lab_namespaces(options);
  // The VMs first, then the node: deleting a namespace deletes its veths.
  std::stable_partition(namespaces.begin(), namespaces.end(),
                        [&](const std::string& n) { return n != node_netns(options); });
  for (const auto& name : namespaces) {
    say(options, "deleting namespace " + name);
    ip({"netns", "delete", name});
    if (!(made_node_netns && name == node_netns(options)))
      removed.push_back(name);
  }
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

std::map<std::string, std::uint64_t> read_in_echos(const LabOptions& options) {
  std::vector<std::pair<std::string, Process>> reads;
  for (const auto& vm : kVms)
    reads.emplace_back(vm.name, Process({"cat", "/proc/net/snmp"}, vm_netns(options, vm)));
  std::map<std::string, std::uint64_t> out;
  for (auto& [name, process] : reads) {
    auto result = process.finish();
    if (result.status != 0)
      throw std::runtime_error("lab: cannot read the ICMP counters of VM " + name + ": " +
                               result.output);
    out[name] = in_echos(result.output);
  }
  return out;
}

// One echo request from a VM to an address. Which VM answered is told by
// the receivers' counters, not by the reply: a1 and b1 share 10.0.0.11.
struct Probe {
  const LabVm* from;
  std::string address;
  bool replied = false;
  std::vector<std::string> reached; // VMs whose stack got the echo request
};

json counters_summary(const LabOptions& options) {
  Session session(lab_layout(options));
  json dropped = json::object(), forwarded = json::object();
  std::uint64_t drops = 0;
  for (const auto& row : inspect_stats(session)) {
    std::string reason = row["reason"].get<std::string>();
    auto packets = row["packets"].get<std::uint64_t>();
    json& bucket = row["drop"].get<bool>() ? dropped : forwarded;
    bucket[reason] = bucket.value(reason, std::uint64_t{0}) + packets;
    if (row["drop"].get<bool>())
      drops += packets;
  }
  return {{"dropped", dropped}, {"dropped_total", drops}, {"forwarded", forwarded}};
}

} // namespace

// ---- the document -----------------------------------------------------------

std::string lab_state_document(const LabOptions&) {
  using nlohmann::ordered_json; // the document reads in Neutron's order
  ordered_json networks = ordered_json::array(), subnets = ordered_json::array(),
               groups = ordered_json::array(), ports = ordered_json::array();
  for (const auto& net : kNetworks) {
    networks.push_back(
        {{"id", net.id},
         {"name", net.name},
         {"project_id", net.project_id},
         {"provider:network_type", net.type},
         {"provider:segmentation_id", net.segmentation_id},
         {"provider:physical_network",
          net.physical_network ? ordered_json(net.physical_network) : ordered_json(nullptr)},
         {"mtu", net.mtu},
         {"port_security_enabled", true}});
    subnets.push_back({{"id", net.subnet_id},
                       {"network_id", net.id},
                       {"name", std::string(net.name) + "-subnet"},
                       {"project_id", net.project_id},
                       {"ip_version", 4},
                       {"cidr", kCidr},
                       {"gateway_ip", kGateway},
                       {"enable_dhcp", false}}); // addresses are static in the lab
    // Neutron's "default" group of each project: all egress, ingress from members.
    ordered_json rules = ordered_json::array();
    int n = 0;
    for (const char* direction : {"egress", "ingress"})
      for (const char* ethertype : {"IPv4", "IPv6"}) {
        std::string rule_id = std::string(net.group_id).substr(0, 34) + "0" + std::to_string(++n);
        bool ingress = std::string(direction) == "ingress";
        rules.push_back(
            {{"id", rule_id},
             {"direction", direction},
             {"ethertype", ethertype},
             {"protocol", nullptr},
             {"port_range_min", nullptr},
             {"port_range_max", nullptr},
             {"remote_ip_prefix", nullptr},
             {"remote_group_id", ingress ? ordered_json(net.group_id) : ordered_json(nullptr)}});
      }
    groups.push_back({{"id", net.group_id},
                      {"name", "default"},
                      {"project_id", net.project_id},
                      {"stateful", true},
                      {"security_group_rules", rules}});
  }
  for (const auto& vm : kVms) {
    const LabNetwork& net = network_of(vm);
    ports.push_back({{"id", vm.port_id},
                     {"name", vm.name},
                     {"network_id", net.id},
                     {"project_id", net.project_id},
                     {"mac_address", vm.mac},
                     {"fixed_ips",
                      ordered_json::array({{{"subnet_id", net.subnet_id}, {"ip_address", vm.ip}}})},
                     {"binding:host_id", kLabNode},
                     {"device_owner", "compute:nova"},
                     {"security_groups", ordered_json::array({net.group_id})},
                     {"port_security_enabled", true},
                     {"allowed_address_pairs", ordered_json::array()}});
  }
  ordered_json document = {{"nodes", ordered_json::array({{{"name", kLabNode}}})},
                           {"networks", networks},
                           {"subnets", subnets},
                           {"security_groups", groups},
                           {"ports", ports}};
  return document.dump(2);
}

// ---- lab up / down / status -------------------------------------------------

json lab_up(const LabOptions& options) {
  Layout layout = lab_layout(options);
  json out = {{"node", layout.node}, {"prefix", options.prefix}};
  if (lab_exists(options)) {
    say(options, "a lab is up already; tearing it down first");
    out["replaced"] = teardown(options);
  }
  std::string document = lab_state_document(options);
  parse_state(document); // refuse before making anything

  try {
    std::string node = node_netns(options);
    create_namespace(options, node);
    json vms = json::array();
    for (const auto& vm : kVms) {
      create_vm(options, vm);
      vms.push_back({{"name", vm.name},
                     {"namespace", vm_netns(options, vm)},
                     {"network", network_of(vm).name},
                     {"project_id", network_of(vm).project_id},
                     {"port_id", vm.port_id},
                     {"device", device_of(vm)},
                     {"mac_address", vm.mac},
                     {"ip_address", vm.ip}});
    }

    enter_netns(node); // for good: the node's devices are here
    Session session(layout);
    say(options,
        "installing node " + layout.node + " in " + node + " (pins under " + layout.root() + ")");
    auto installed = session.installation().install({});
    say(options, "applying " + std::to_string(std::size(kNetworks)) + " networks, " +
                     std::to_string(std::size(kVms)) + " ports");
    json applied = apply_document(session, document);
    say(options, "applied: " + applied["entries_added"].dump() + " map entries added, " +
                     std::to_string(applied["attach"].size()) + " ports attached (" +
                     to_string(session.installation().attach_mode()) + ")");

    out["node_namespace"] = node;
    out["vms"] = vms;
    out["fresh_install"] = installed.fresh;
    out["attach_mode"] = to_string(session.installation().attach_mode());
    out["applied"] = applied;
  } catch (const std::exception& e) {
    say(options, std::string("failed: ") + e.what());
    say(options, "removing what was made");
    try {
      teardown(options);
    } catch (const std::exception& cleanup) {
      say(options, std::string("cleanup failed too: ") + cleanup.what());
    }
    throw;
  }
  out["status"] = lab_status(options);
  return out;
}

json lab_down(const LabOptions& options) {
  bool was_up = lab_exists(options);
  json out = teardown(options);
  out["was_up"] = was_up;
  return out;
}

json lab_status(const LabOptions& options) {
  Layout layout = lab_layout(options);
  for (const auto& vm : kVms)
    if (!netns_exists(vm_netns(options, vm)))
      throw std::runtime_error("lab: not up: no namespace " + vm_netns(options, vm) +
                               " (run: weft lab up)");
  if (!netns_exists(node_netns(options)) || !Installation(layout).installed())
    throw std::runtime_error("lab: not up: node " + layout.node + " is not installed in " +
                             node_netns(options) + " (run: weft lab up)");
  auto started = std::chrono::steady_clock::now();

  // Forget every neighbour, so that each probe resolves through the fabric.
  for (const auto& vm : kVms)
    ip({"-n", vm_netns(options, vm), "neigh", "flush", "all"});

  // One probe per (VM, address other than its own). Probes run in parallel
  // rounds in which no address is probed twice, so that a receiver's
  // counter tells which probe reached it.
  std::vector<Probe> probes;
  std::set<std::string> addresses;
  for (const auto& vm : kVms)
    addresses.insert(vm.ip);
  for (const auto& from : kVms)
    for (const auto& address : addresses)
      if (address != from.ip)
        probes.push_back({&from, address, false, {}});
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

  auto before = read_in_echos(options);
  for (const auto& round : rounds) {
    std::vector<Process> pings;
    for (const Probe* probe : round)
      pings.emplace_back(
          std::vector<std::string>{"ping", "-n", "-q", "-c", "1", "-W", "1", probe->address},
          vm_netns(options, *probe->from));
    for (std::size_t i = 0; i < round.size(); ++i)
      round[i]->replied = pings[i].finish().status == 0;
    auto after = read_in_echos(options);
    for (Probe* probe : round)
      for (const auto& vm : kVms)
        if (vm.ip == probe->address && after[vm.name] > before[vm.name])
          probe->reached.push_back(vm.name);
    before = std::move(after);
  }

  json matrix = json::array();
  bool ok = true;
  int measured_cells = 0;
  for (const auto& from : kVms)
    for (const auto& to : kVms) {
      if (&from == &to)
        continue;
      bool same_network = std::string(from.network_key) == to.network_key;
      json cell = {{"from", from.name},
                   {"to", to.name},
                   {"address", to.ip},
                   {"expected", same_network ? "reachable" : "isolated"}};
      if (std::string(from.ip) == to.ip) {
        cell["measured"] = "self-address";
        cell["result"] = "skipped";
        matrix.push_back(cell);
        continue;
      }
      const Probe& probe = *std::find_if(probes.begin(), probes.end(), [&](const Probe& p) {
        return p.from == &from && p.address == to.ip;
      });
      bool reached =
          std::find(probe.reached.begin(), probe.reached.end(), to.name) != probe.reached.end();
      std::string measured = !reached ? "isolated" : probe.replied ? "reachable" : "one-way";
      cell["measured"] = measured;
      cell["result"] = measured == cell["expected"] ? "ok" : "MISMATCH";
      cell["echo_reached"] = probe.reached;
      ok = ok && measured == cell["expected"];
      ++measured_cells;
      matrix.push_back(cell);
    }

  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  return {{"node", layout.node},
          {"prefix", options.prefix},
          {"matrix", matrix},
          {"measured", measured_cells},
          {"ok", ok},
          {"duration_ms", elapsed.count()},
          {"counters", counters_summary(options)}};
}

} // namespace weft::cli
