#include "loader/lab/topology.hpp"

#include <algorithm>
#include <optional>
#include <set>

#include "loader/model/fields.hpp"
#include "loader/model/state.hpp"

namespace weft::lab {

using document::Fields;
using document::json;
using document::Problems;

namespace {

// Namespace and VM names: what `ip netns` and a readable listing take.
bool valid_name(const std::string& name) {
  return !name.empty() && name.size() <= 32 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

// "<what> is a list, not an object": a topology entry of the wrong kind.
std::string not_an_object(const std::string& what, const json& value) {
  return (what.empty() ? "" : what + " ") + "is " + document::kind_of(value) + ", not an object";
}

// The MAC of field `key`, normalised, or the problem reported.
void read_mac(Fields& fields, std::string_view key, const std::string& text, LabVm& vm) {
  if (auto parsed = Mac::parse(text))
    vm.mac = parsed->str();
  else
    fields.problem(key, document::in_quotes(text) + " is not a MAC address");
}

void check_keys(const json& entry, const std::string& where, const char* kind,
                const std::set<std::string>& known, Problems& problems) {
  for (const auto& [key, value] : entry.items()) {
    (void)value;
    if (!known.count(key))
      problems.add(where, document::printable(key, 40) + " is not a field of " + kind);
  }
}

std::vector<LabNode> parse_nodes(const json& top, Problems& problems) {
  std::vector<LabNode> nodes;
  Fields fields(top, "topology", "", problems);
  const json* list = fields.list("nodes");
  if (!list || list->empty()) {
    problems.add("topology", "nodes must list at least one node");
    return nodes;
  }
  std::set<std::string> names, namespaces;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const json& entry = (*list)[i];
    std::string where = document::indexed("nodes", i);
    if (!entry.is_object()) {
      problems.add(where, not_an_object("", entry));
      continue;
    }
    check_keys(entry, where, "a lab node", {"name", "namespace"}, problems);
    Fields node(entry, where, "", problems);
    LabNode out;
    out.name = node.required_text("name").value_or("");
    out.namespace_ = node.text("namespace").value_or(out.name);
    if (!out.name.empty() && !names.insert(out.name).second)
      node.problem("name", document::in_quotes(out.name) + " is given twice");
    if (!valid_name(out.namespace_))
      node.problem("namespace", document::in_quotes(out.namespace_) +
                                    " is not a name of lower-case letters, digits, - and _");
    else if (!namespaces.insert(out.namespace_).second)
      node.problem("namespace", document::in_quotes(out.namespace_) + " is given twice");
    nodes.push_back(out);
  }
  return nodes;
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

// A VM of a port in the document: what the document says of it.
void from_document(const State& state, const Port& port, std::optional<int> prefixlen, LabVm& vm) {
  vm.mac = port.mac_address.str();
  vm.node = port.host_id;
  if (const Network* net = state.find_network(port.network_id)) {
    vm.network_id = net->id;
    vm.network_name = net->name;
    vm.project_id = net->project_id;
    vm.mtu = net->mtu;
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
      fixed_fields.problem("ip_address", document::in_quotes(*text) + " is not an IP address");
  }
}

} // namespace

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

Topology parse_topology(std::string_view text) {
  json top = json::parse(text, nullptr, false);
  if (top.is_discarded() || !top.is_object())
    throw StateError({"topology: is not a JSON object"});
  Problems problems;
  check_keys(top, "topology", "a lab topology", {"comment", "nodes", "vms", "document"}, problems);
  Topology topology;
  topology.nodes = parse_nodes(top, problems);

  std::optional<State> state;
  topology.source = std::string(text);
  if (top.contains("document")) {
    // In the document's own order, as `weft lab state` prints it.
    topology.document = nlohmann::ordered_json::parse(text)["document"].dump();
    try {
      state = parse_state(*topology.document);
    } catch (const StateError& e) {
      for (const auto& problem : e.problems())
        problems.add("document", problem);
    }
  }

  Fields fields(top, "topology", "", problems);
  const json* list = fields.list("vms");
  std::set<std::string> names, devices;
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
      vm_fields.problem("name", document::in_quotes(vm.name) +
                                    " is not a name of lower-case letters, digits, - and _");
    else if (!vm.name.empty() && !names.insert(vm.name).second)
      vm_fields.problem("name", document::in_quotes(vm.name) + " is given twice");
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
        vm_fields.problem("port_id", document::in_quotes(*given) + " is not the port's id " +
                                         document::in_quotes(vm.port_id));
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
    if (const json* addresses = vm_fields.list("addresses")) {
      vm.addresses.clear();
      for (std::size_t a = 0; a < addresses->size(); ++a) {
        const json& address = (*addresses)[a];
        auto prefix =
            address.is_string() ? IpPrefix::parse(address.get<std::string>()) : std::nullopt;
        if (!prefix || address.get<std::string>().find('/') == std::string::npos)
          vm_fields.problem(document::indexed("addresses", a),
                            document::shown(address) + " is not an address with a prefix length");
        else
          vm.addresses.push_back(address.get<std::string>());
      }
    }
    if (auto mtu = vm_fields.integer("mtu")) {
      if (*mtu < 68 || *mtu > 65535)
        vm_fields.problem("mtu",
                          std::to_string(*mtu) + " is not in " + document::range_text(68, 65535));
      else
        vm.mtu = static_cast<unsigned>(*mtu);
    }
    if (!known && !inline_port && state)
      vm_fields.problem("port_id",
                        document::in_quotes(vm.port_id) + " is not a port of the document");
    if (vm.mac.empty() && !vm.port_id.empty() && !inline_port && !vm_fields.value("mac"))
      vm_fields.problem("mac", "is missing (the document has no port " +
                                   document::in_quotes(vm.port_id) + ")");
    if (!vm.node.empty() && std::none_of(topology.nodes.begin(), topology.nodes.end(),
                                         [&](const LabNode& n) { return n.name == vm.node; }))
      vm_fields.problem("node", document::in_quotes(vm.node) + " is not a node of the topology");
    else if (vm.node.empty())
      vm_fields.problem("node", "is missing");
    topology.vms.push_back(vm);
  }
  if (problems.count())
    throw StateError(problems.list());
  return topology;
}

} // namespace weft::lab
