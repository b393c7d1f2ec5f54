#include "loader/lab/topology.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>

#include "loader/model/fields.hpp"
#include "loader/model/state.hpp"

namespace weft::lab {

using document::Fields;
using document::in_quotes;
using document::json;
using document::Problems;
using nlohmann::ordered_json;

namespace {

// Namespace and VM names: what `ip netns` and a readable listing take.
bool valid_name(const std::string& name) {
  return !name.empty() && name.size() <= 32 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

// A device name the kernel takes (IFNAMSIZ less the NUL) that reads as one
// word in `ip link` and in Neutron's physnet:device syntax.
bool valid_device(const std::string& name) {
  return !name.empty() && name.size() <= 15 && name != "." && name != ".." &&
         std::none_of(name.begin(), name.end(), [](char c) {
           auto byte = static_cast<unsigned char>(c);
           return c == '/' || c == ':' || c == ',' || c == ' ' || byte < 0x20 || byte == 0x7f;
         });
}

// A physnet name that --physical-interface-mappings can carry (physnet:device,…).
bool valid_physnet(const std::string& name) {
  return !name.empty() && name.size() <= 63 && std::none_of(name.begin(), name.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return c == ':' || c == ',' || c == ' ' || byte < 0x20 || byte == 0x7f;
  });
}

// IPv4 addresses as numbers, to count the hosts of the underlay.
std::uint32_t v4_number(const IpAddr& ip) {
  return (std::uint32_t{ip.bytes[0]} << 24) | (std::uint32_t{ip.bytes[1]} << 16) |
         (std::uint32_t{ip.bytes[2]} << 8) | std::uint32_t{ip.bytes[3]};
}
IpAddr v4_address(std::uint32_t number) {
  return *IpAddr::parse(std::to_string(number >> 24) + "." + std::to_string((number >> 16) & 255) +
                        "." + std::to_string((number >> 8) & 255) + "." +
                        std::to_string(number & 255));
}

// "<what> is a list, not an object": a topology entry of the wrong kind.
std::string not_an_object(const std::string& what, const json& value) {
  return (what.empty() ? "" : what + " ") + "is " + document::kind_of(value) + ", not an object";
}

// The MAC of field `key`, normalised, or the problem reported.
void read_mac(Fields& fields, std::string_view key, const std::string& text,
              LabEndpoint& endpoint) {
  if (auto parsed = Mac::parse(text))
    endpoint.mac = parsed->str();
  else
    fields.problem(key, in_quotes(text) + " is not a MAC address");
}

// `addresses`, when given, in place of what the endpoint has: each an
// address with a prefix length (IPv4 only with v4_only).
void read_addresses(Fields& fields, bool v4_only, LabEndpoint& endpoint) {
  const json* addresses = fields.list("addresses");
  if (!addresses)
    return;
  endpoint.addresses.clear();
  for (std::size_t a = 0; a < addresses->size(); ++a) {
    const json& address = (*addresses)[a];
    auto prefix = address.is_string() ? IpPrefix::parse(address.get<std::string>()) : std::nullopt;
    if (!prefix || address.get<std::string>().find('/') == std::string::npos)
      fields.problem(document::indexed("addresses", a),
                     document::shown(address) + " is not an address with a prefix length");
    else if (v4_only && !prefix->addr.is_v4())
      fields.problem(document::indexed("addresses", a),
                     document::shown(address) + " is not IPv4 (IPv6 is off in the namespace)");
    else
      endpoint.addresses.push_back(address.get<std::string>());
  }
}

void read_mtu(Fields& fields, LabEndpoint& endpoint) {
  if (auto mtu = fields.integer("mtu")) {
    if (*mtu < 68 || *mtu > 65535)
      fields.problem("mtu", std::to_string(*mtu) + " is not in " + document::range_text(68, 65535));
    else
      endpoint.mtu = static_cast<unsigned>(*mtu);
  }
}

void check_keys(const json& entry, const std::string& where, const char* kind,
                const std::set<std::string>& known, Problems& problems) {
  for (const auto& [key, value] : entry.items()) {
    (void)value;
    if (!known.count(key))
      problems.add(where, document::printable(key, 40) + " is not a field of " + kind);
  }
}

// The namespaces <prefix>-<name> the topology asks for, each taken once: by
// a node, a VM, a physical host or one of the switches.
class Namespaces {
public:
  Namespaces() {
    owners_[kUnderlayNamespace] = {"", "the underlay switch"};
    owners_[kProviderNamespace] = {"", "the provider switch"};
  }
  // Takes `name` for entry `owner` of `list` ("vms", "vms[2]"), or reports
  // under field `key` who has it.
  void claim(const std::string& name, const std::string& list, const std::string& owner,
             Fields& fields, std::string_view key) {
    auto [it, inserted] = owners_.emplace(name, std::make_pair(list, owner));
    if (inserted)
      return;
    if (it->second.first == list)
      fields.problem(key, in_quotes(name) + " is given twice");
    else
      fields.problem(key,
                     in_quotes(name) + " is the namespace of " + it->second.second + " already");
  }

private:
  std::map<std::string, std::pair<std::string, std::string>> owners_; // name -> (list, owner)
};

// physical_interface_mappings: physnet -> device, each a device of its own.
void parse_mappings(const json& entry, const std::string& where, Problems& problems,
                    LabNode& node) {
  Fields fields(entry, where, "", problems);
  const json* mappings = fields.value("physical_interface_mappings");
  if (!mappings)
    return;
  if (!mappings->is_object()) {
    fields.problem("physical_interface_mappings", not_an_object("", *mappings));
    return;
  }
  Fields mapping(*mappings, where, "physical_interface_mappings.", problems);
  std::map<std::string, std::string> devices; // device -> physnet
  for (const auto& [physnet, value] : mappings->items()) {
    (void)value;
    if (!valid_physnet(physnet)) {
      fields.problem("physical_interface_mappings",
                     in_quotes(physnet) + " is not a physnet name (no ':', ',' or blanks)");
      continue;
    }
    auto device = mapping.required_text(physnet);
    if (!device)
      continue;
    if (!valid_device(*device))
      mapping.problem(physnet, in_quotes(*device) +
                                   " is not a device name (1 to 15 characters, no '/', ':', "
                                   "',' or blanks)");
    else if (*device == kUplinkDevice)
      mapping.problem(physnet,
                      in_quotes(*device) +
                          " is the uplink; the lab gives each physnet a device of its own");
    else if (device->rfind("tap", 0) == 0 || *device == "lo")
      mapping.problem(physnet, in_quotes(*device) +
                                   " is a name of the ports' kind (tap…) or lo; take another");
    else if (auto [it, inserted] = devices.emplace(*device, physnet); !inserted)
      mapping.problem(physnet,
                      in_quotes(*device) + " is the device of " + in_quotes(it->second) + " too");
    else
      node.physical_interface_mappings.emplace_back(physnet, *device);
  }
}

// Nodes, with their tunnel_ip as given (addressed later, against the underlay).
std::vector<LabNode> parse_nodes(const json& top, Problems& problems, Namespaces& namespaces) {
  std::vector<LabNode> nodes;
  Fields fields(top, "topology", "", problems);
  const json* list = fields.list("nodes");
  if (!list || list->empty()) {
    problems.add("topology", "nodes must list at least one node");
    return nodes;
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const json& entry = (*list)[i];
    std::string where = document::indexed("nodes", i);
    if (!entry.is_object()) {
      problems.add(where, not_an_object("", entry));
      nodes.emplace_back(); // keeps nodes[i] at index i
      continue;
    }
    check_keys(entry, where, "a lab node",
               {"name", "namespace", "tunnel_ip", "physical_interface_mappings"}, problems);
    Fields node(entry, where, "", problems);
    LabNode out;
    out.name = node.required_text("name").value_or("");
    out.namespace_ = node.text("namespace").value_or(out.name);
    if (!out.name.empty() && !names.insert(out.name).second)
      node.problem("name", in_quotes(out.name) + " is given twice");
    if (!valid_name(out.namespace_))
      node.problem("namespace", in_quotes(out.namespace_) +
                                    " is not a name of lower-case letters, digits, - and _");
    else
      namespaces.claim(out.namespace_, "nodes", where, node, "namespace");
    if (auto text = node.text("tunnel_ip")) {
      auto ip = IpAddr::parse(*text);
      if (!ip || !ip->is_v4())
        node.problem("tunnel_ip", in_quotes(*text) + " is not an IPv4 address");
      else
        out.tunnel_ip = ip->str();
    }
    parse_mappings(entry, where, problems, out);
    std::sort(out.physical_interface_mappings.begin(), out.physical_interface_mappings.end());
    nodes.push_back(out);
  }
  return nodes;
}

// underlay.cidr; nullopt without an underlay or with a bad cidr (reported).
std::optional<IpPrefix> parse_underlay(const json& top, Problems& problems) {
  auto it = top.find("underlay");
  if (it == top.end() || it->is_null())
    return std::nullopt;
  if (!it->is_object()) {
    problems.add("underlay", not_an_object("", *it));
    return std::nullopt;
  }
  check_keys(*it, "underlay", "the underlay", {"cidr"}, problems);
  Fields fields(*it, "underlay", "", problems);
  auto text = fields.required_text("cidr");
  if (!text)
    return std::nullopt;
  auto cidr = IpPrefix::parse(*text);
  if (!cidr || text->find('/') == std::string::npos || !cidr->addr.is_v4() || cidr->len < 1 ||
      cidr->len > 30) {
    fields.problem("cidr", in_quotes(*text) +
                               " is not an IPv4 network with room for hosts (prefix length 1..30)");
    return std::nullopt;
  }
  return cidr;
}

// The document's nodes[] entry of `name`, or nullptr.
ordered_json* document_node(ordered_json& document, const std::string& name) {
  if (!document.is_object() || !document.contains("nodes") || !document["nodes"].is_array())
    return nullptr;
  for (auto& entry : document["nodes"])
    if (entry.is_object() && entry.value("name", json()) == name)
      return &entry;
  return nullptr;
}

// Each node's tunnel IP: its own, or its document entry's, or the
// underlay's host number <index + 1>; then written into the document's
// nodes[], so that every node's document names every VTEP.
void address_nodes(std::vector<LabNode>& nodes, const IpPrefix& cidr,
                   std::optional<ordered_json>& document, Problems& problems) {
  std::uint32_t network = v4_number(cidr.addr);
  std::uint32_t broadcast = network | (cidr.len == 0 ? ~0u : (~0u >> cidr.len));
  std::map<std::uint32_t, std::string> taken; // tunnel IP -> the node's entry
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    LabNode& node = nodes[i];
    if (node.name.empty())
      continue;
    std::string where = document::indexed("nodes", i);
    ordered_json* entry = document ? document_node(*document, node.name) : nullptr;
    std::optional<IpAddr> given = IpAddr::parse(node.tunnel_ip), in_document;
    if (entry && entry->contains("tunnel_ip") && (*entry)["tunnel_ip"].is_string())
      in_document = IpAddr::parse((*entry)["tunnel_ip"].get<std::string>());
    if (entry && entry->contains("tunnel_ip") && !in_document)
      continue; // not an address: the document's parser says so
    if (given && in_document && *given != *in_document) {
      problems.add(where, "tunnel_ip " + in_quotes(given->str()) + " is not the document's " +
                              in_quotes(in_document->str()) + " for node " + in_quotes(node.name));
      continue;
    }
    std::string origin;
    std::optional<IpAddr> ip = given ? given : in_document;
    if (!ip) {
      std::uint64_t number = std::uint64_t{network} + i + 1;
      origin = " (the underlay's host number " + std::to_string(i + 1) + ")";
      if (number >= broadcast) {
        problems.add(where, "tunnel_ip is missing and the underlay " + cidr.str() +
                                " has no host number " + std::to_string(i + 1) + " to give");
        continue;
      }
      ip = v4_address(static_cast<std::uint32_t>(number));
    } else if (!given) {
      origin = " (the document's)";
    }
    std::string shown = "tunnel_ip " + in_quotes(ip->str()) + origin;
    std::uint32_t number = v4_number(*ip);
    if (!ip->is_v4() || !cidr.contains(*ip))
      problems.add(where, shown + " is not in the underlay " + cidr.str());
    else if (number == network || number == broadcast)
      problems.add(where, shown + " is the underlay's " +
                              (number == network ? "network" : "broadcast") + " address");
    else if (auto [it, inserted] = taken.emplace(number, where); !inserted)
      problems.add(where, shown + " is " + it->second + "'s too");
    node.tunnel_ip = ip->str();
    node.uplink = kUplinkDevice;
    if (!document || !document->is_object())
      continue;
    if (entry)
      (*entry)["tunnel_ip"] = node.tunnel_ip;
    else if (!document->contains("nodes") || (*document)["nodes"].is_null())
      (*document)["nodes"] =
          ordered_json::array({{{"name", node.name}, {"tunnel_ip", node.tunnel_ip}}});
    else if ((*document)["nodes"].is_array())
      (*document)["nodes"].push_back({{"name", node.name}, {"tunnel_ip", node.tunnel_ip}});
  }
}

// One fixed IP of the VM's port as an address of its eth0: with the subnet's
// prefix length (24 or 64 when the subnet is not known), `prefixlen` in
// place of an IPv4 one's; IPv6 ones only with the VM's IPv6 on.
void add_address(LabVm& vm, const IpAddr& ip, std::optional<int> subnet_len,
                 std::optional<int> prefixlen) {
  if (!ip.is_v4() && !vm.ipv6)
    return;
  int len = ip.is_v4() ? prefixlen.value_or(subnet_len.value_or(24)) : subnet_len.value_or(64);
  vm.addresses.push_back(ip.str() + "/" + std::to_string(len));
}

void take_network(const Network& net, LabEndpoint& endpoint) {
  endpoint.network_id = net.id;
  endpoint.network_name = net.name;
  endpoint.network_type = std::string(to_string(net.type));
  endpoint.physical_network = net.physical_network.value_or("");
  endpoint.mtu = net.mtu;
}

// A VM of a port in the document: what the document says of it.
void from_document(const State& state, const Port& port, std::optional<int> prefixlen, LabVm& vm) {
  vm.mac = port.mac_address.str();
  vm.node = port.host_id;
  if (const Network* net = state.find_network(port.network_id)) {
    take_network(*net, vm);
    vm.project_id = net->project_id;
  }
  for (const auto& fixed : port.fixed_ips) {
    const Subnet* subnet = state.find_subnet(fixed.subnet_id);
    add_address(vm, fixed.ip_address, subnet ? std::optional<int>(subnet->cidr.len) : std::nullopt,
                prefixlen);
  }
}

// A VM whose Neutron port is given inline (the e2e harness plugs VMs before
// their ports are applied): its MAC, fixed IPs and binding, read with the
// model's address parsers; the document's checks are apply's to make.
void from_port(const json& port, const std::string& where, std::optional<int> prefixlen,
               Problems& problems, LabVm& vm) {
  Fields fields(port, where, "port.", problems);
  if (auto mac = fields.required_text("mac_address"))
    read_mac(fields, "mac_address", *mac, vm);
  vm.node = fields.text("binding:host_id").value_or("");
  vm.network_id = fields.text("network_id").value_or("");
  const json* fixed_ips = fields.list("fixed_ips");
  for (std::size_t i = 0; fixed_ips && i < fixed_ips->size(); ++i) {
    const json& fixed = (*fixed_ips)[i];
    std::string path = "port." + document::indexed("fixed_ips", i);
    if (!fixed.is_object()) {
      problems.add(where, not_an_object(path, fixed));
      continue;
    }
    Fields fixed_fields(fixed, where, path + ".", problems);
    auto text = fixed_fields.required_text("ip_address");
    if (!text)
      continue;
    if (auto ip = IpAddr::parse(*text))
      add_address(vm, *ip, std::nullopt, prefixlen);
    else
      fixed_fields.problem("ip_address", in_quotes(*text) + " is not an IP address");
  }
}

std::vector<LabVm> parse_vms(const json& top, const Topology& topology,
                             const std::optional<State>& state, Problems& problems,
                             Namespaces& namespaces) {
  std::vector<LabVm> vms;
  Fields fields(top, "topology", "", problems);
  const json* list = fields.list("vms");
  std::set<std::string> devices;
  for (std::size_t i = 0; list && i < list->size(); ++i) {
    const json& entry = (*list)[i];
    std::string where = document::indexed("vms", i);
    if (!entry.is_object()) {
      problems.add(where, not_an_object("", entry));
      continue;
    }
    check_keys(
        entry, where, "a lab VM",
        {"name", "port_id", "port", "node", "mac", "addresses", "mtu", "up", "ipv6", "prefixlen"},
        problems);
    Fields vm_fields(entry, where, "", problems);
    LabVm vm;
    vm.name = vm_fields.required_text("name").value_or("");
    if (!vm.name.empty())
      vm_fields.set_where(where + " (" + document::printable(vm.name, 32) + ")");
    if (!vm.name.empty() && !valid_name(vm.name))
      vm_fields.problem("name", in_quotes(vm.name) +
                                    " is not a name of lower-case letters, digits, - and _");
    else if (!vm.name.empty())
      namespaces.claim(vm.name, "vms", where, vm_fields, "name");
    const json* inline_port = vm_fields.value("port");
    if (inline_port && !inline_port->is_object()) {
      vm_fields.problem("port", not_an_object("", *inline_port));
      inline_port = nullptr;
    }
    if (inline_port) {
      Fields port_fields(*inline_port, vm_fields.where(), "port.", problems);
      vm.port_id = port_fields.required_text("id").value_or("");
      auto given = vm_fields.text("port_id");
      if (given && *given != vm.port_id)
        vm_fields.problem("port_id",
                          in_quotes(*given) + " is not the port's id " + in_quotes(vm.port_id));
    } else if (!vm_fields.value("port")) { // not an object: reported once
      vm.port_id = vm_fields.required_text("port_id").value_or("");
    }
    vm.up = vm_fields.flag("up", true);
    vm.ipv6 = vm_fields.flag("ipv6", false);
    std::optional<int> prefixlen;
    if (auto len = vm_fields.integer("prefixlen")) {
      if (*len < 0 || *len > 32)
        vm_fields.problem("prefixlen",
                          std::to_string(*len) + " is not in " + document::range_text(0, 32));
      else
        prefixlen = static_cast<int>(*len);
    }
    Port port;
    port.id = vm.port_id;
    vm.device = port.device_name();
    if (!vm.port_id.empty() && !devices.insert(vm.device).second)
      vm_fields.problem("port_id", "gives device " + vm.device + ", which another VM has");

    const Port* known = state && !inline_port ? state->find_port(vm.port_id) : nullptr;
    if (known)
      from_document(*state, *known, prefixlen, vm);
    else if (inline_port)
      from_port(*inline_port, vm_fields.where(), prefixlen, problems, vm);
    if (auto node = vm_fields.text("node"))
      vm.node = *node;
    else if (vm.node.empty() && topology.nodes.size() == 1)
      vm.node = topology.nodes.front().name;
    if (auto mac = vm_fields.text("mac"))
      read_mac(vm_fields, "mac", *mac, vm);
    read_addresses(vm_fields, false, vm);
    read_mtu(vm_fields, vm);
    if (!known && !inline_port && state)
      vm_fields.problem("port_id", in_quotes(vm.port_id) + " is not a port of the document");
    if (vm.mac.empty() && !vm.port_id.empty() && !inline_port && !vm_fields.value("mac"))
      vm_fields.problem("mac",
                        "is missing (the document has no port " + in_quotes(vm.port_id) + ")");
    if (!vm.node.empty() && std::none_of(topology.nodes.begin(), topology.nodes.end(),
                                         [&](const LabNode& n) { return n.name == vm.node; }))
      vm_fields.problem("node", in_quotes(vm.node) + " is not a node of the topology");
    else if (vm.node.empty())
      vm_fields.problem("node", "is missing");
    vms.push_back(vm);
  }
  return vms;
}

// Physical hosts: on a physnet some node maps, on its flat network.
std::vector<LabHost> parse_hosts(const json& top, const Topology& topology,
                                 const std::optional<State>& state, Problems& problems,
                                 Namespaces& namespaces) {
  std::vector<LabHost> hosts;
  Fields fields(top, "topology", "", problems);
  const json* list = fields.list("physical_hosts");
  for (std::size_t i = 0; list && i < list->size(); ++i) {
    const json& entry = (*list)[i];
    std::string where = document::indexed("physical_hosts", i);
    if (!entry.is_object()) {
      problems.add(where, not_an_object("", entry));
      continue;
    }
    check_keys(entry, where, "a physical host", {"name", "physnet", "mac", "addresses", "mtu"},
               problems);
    Fields host_fields(entry, where, "", problems);
    LabHost host;
    host.name = host_fields.required_text("name").value_or("");
    if (!host.name.empty())
      host_fields.set_where(where + " (" + document::printable(host.name, 32) + ")");
    if (!host.name.empty() && !valid_name(host.name))
      host_fields.problem("name", in_quotes(host.name) +
                                      " is not a name of lower-case letters, digits, - and _");
    else if (!host.name.empty())
      namespaces.claim(host.name, "physical_hosts", where, host_fields, "name");
    host.physnet = host_fields.required_text("physnet").value_or("");
    if (!host.physnet.empty() &&
        std::none_of(topology.nodes.begin(), topology.nodes.end(),
                     [&](const LabNode& n) { return n.physnet_device(host.physnet); }))
      host_fields.problem("physnet", in_quotes(host.physnet) +
                                         " is mapped by no node (nodes[].physical_interface_"
                                         "mappings): the host would be alone on it");
    if (auto mac = host_fields.required_text("mac")) {
      read_mac(host_fields, "mac", *mac, host);
      if (auto parsed = Mac::parse(*mac); parsed && (parsed->is_multicast() || parsed->is_zero()))
        host_fields.problem("mac", in_quotes(*mac) + " is not a unicast MAC address");
    }
    read_addresses(host_fields, true, host);
    read_mtu(host_fields, host);
    if (state)
      for (const auto& net : state->networks)
        if (net.type == NetworkType::Flat && net.physical_network == host.physnet) {
          unsigned mtu = host.mtu;
          take_network(net, host);
          host.mtu = mtu ? mtu : net.mtu;
        }
    hosts.push_back(host);
  }
  return hosts;
}

} // namespace

const std::string* LabNode::physnet_device(const std::string& physnet) const {
  for (const auto& [name, device] : physical_interface_mappings)
    if (name == physnet)
      return &device;
  return nullptr;
}

const LabNode& Topology::node(const std::string& name) const {
  for (const auto& n : nodes)
    if (n.name == name)
      return n;
  throw std::logic_error("lab: no node " + name);
}

std::vector<const LabVm*> Topology::vms_of(const std::string& node) const {
  std::vector<const LabVm*> out;
  for (const auto& vm : vms)
    if (vm.node == node)
      out.push_back(&vm);
  return out;
}

bool Topology::has_provider() const {
  return std::any_of(nodes.begin(), nodes.end(),
                     [](const LabNode& n) { return !n.physical_interface_mappings.empty(); });
}

std::vector<const LabEndpoint*> Topology::endpoints() const {
  std::vector<const LabEndpoint*> out;
  for (const auto& vm : vms)
    out.push_back(&vm);
  for (const auto& host : physical_hosts)
    out.push_back(&host);
  return out;
}

bool Topology::expect_reachable(const LabEndpoint& from, const LabEndpoint& to) const {
  if (!from.up || !to.up || from.network_id.empty() || from.network_id != to.network_id)
    return false;
  if (!from.node.empty() && from.node == to.node)
    return true; // the node's own switching
  if (from.network_type == "vxlan")
    return !from.node.empty() && !to.node.empty() && !node(from.node).tunnel_ip.empty() &&
           !node(to.node).tunnel_ip.empty();
  if (from.network_type != "vlan" && from.network_type != "flat")
    return false; // a network the document does not describe: nothing known carries it
  // The provider switch: a host is on its physnet, a VM's node needs a device of it.
  auto on_physnet = [&](const LabEndpoint& end) {
    return end.node.empty() ? end.physnet == from.physical_network
                            : node(end.node).physnet_device(from.physical_network) != nullptr;
  };
  return on_physnet(from) && on_physnet(to);
}

Topology parse_topology(std::string_view text) {
  json top = json::parse(text, nullptr, false);
  if (top.is_discarded() || !top.is_object())
    throw StateError({"topology: is not a JSON object"});
  Problems problems;
  check_keys(top, "topology", "a lab topology",
             {"comment", "underlay", "nodes", "vms", "physical_hosts", "document"}, problems);
  Topology topology;
  topology.source = std::string(text);
  Namespaces namespaces;
  bool underlay_given = top.contains("underlay") && !top["underlay"].is_null();
  auto cidr = parse_underlay(top, problems);
  topology.nodes = parse_nodes(top, problems, namespaces);

  // In the document's own order, as `weft lab state` prints it.
  std::optional<ordered_json> document;
  if (top.contains("document"))
    document = ordered_json::parse(text)["document"];
  if (cidr) {
    topology.underlay = Underlay{cidr->str(), cidr->len};
    address_nodes(topology.nodes, *cidr, document, problems);
  } else if (!underlay_given) {
    for (std::size_t i = 0; i < topology.nodes.size(); ++i)
      if (!topology.nodes[i].tunnel_ip.empty())
        problems.add(document::indexed("nodes", i),
                     "tunnel_ip needs an underlay (underlay.cidr) to be addressed on");
  }
  std::optional<State> state;
  if (document) {
    topology.document = document->dump();
    try {
      state = parse_state(*topology.document);
    } catch (const StateError& e) {
      for (const auto& problem : e.problems())
        problems.add("document", problem);
    }
  }
  topology.vms = parse_vms(top, topology, state, problems, namespaces);
  topology.physical_hosts = parse_hosts(top, topology, state, problems, namespaces);
  if (problems.count())
    throw StateError(problems.list());
  return topology;
}

} // namespace weft::lab
