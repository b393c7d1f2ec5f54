// A lab's topology as data (DESIGN.md §3.3): its nodes, each a network
// namespace, and its VMs, each a namespace plugged into its node's namespace
// the way Nova plugs a VM, with the Neutron document the lab applies. The
// demo's is embedded (loader/lab/default_topology.json); `weft lab up -f`
// and the e2e harness bring their own. Parsing needs only the model, so it
// is unit-tested without a kernel.
//
//   {"nodes": [{"name": "lab-node1", "namespace": "node1"}],
//    "vms": [{"name": "a1", "port_id": "3f2a9c1e-…"},
//            {"name": "c1", "port": {…a Neutron port…}, "node": "lab-node1",
//             "prefixlen": 16, "ipv6": true, "up": false},
//            {"name": "x1", "node": "lab-node1", "port_id": "…",
//             "mac": "fa:16:3e:00:00:99", "addresses": ["10.9.0.5/24"], "mtu": 1500}],
//    "document": {…Neutron networks, subnets, security groups, ports…}}
//
// A VM is bound to its node through its Neutron port: one of the document
// (port_id), or one given inline (port), which need not be applied yet. It
// takes from the port its MAC, its fixed IPs as addresses (with the subnet's
// prefix length, or 24 and 64 when the subnet is not known; `prefixlen`
// replaces the IPv4 one; IPv6 ones only with `ipv6`), its network's MTU and
// its node (binding:host_id; `node` overrides, the only node is the
// default). `mac`, `addresses` and `mtu` override what the port says. Its
// device is the port's, as Port::device_name() derives it: the one place that
// name is made. Every lab namespace has IPv6 off (no DAD, MLD or RS chatter in
// a capture); a VM with `ipv6` has it on, without DAD and RAs, its IPv6
// addresses added nodad.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace weft::lab {

struct LabNode {
  std::string name;       // the weft node (its pins, its record)
  std::string namespace_; // <prefix>-<namespace_>
};

struct LabVm {
  std::string name; // namespace <prefix>-<name>
  std::string node;
  std::string port_id;
  std::string device; // the port's device in the node's namespace
  std::string mac;
  std::vector<std::string> addresses; // "10.0.0.11/24", "fd00::11/64" (IPv6 with ipv6 only)
  std::string network_id;             // "" when the document does not say
  std::string network_name;
  std::string project_id;
  unsigned mtu = 0; // 0: the kernel's default
  bool up = true;
  // IPv6 on in the VM (off in every lab namespace otherwise, so that no DAD,
  // MLD or RS chatter reaches a capture), without DAD and RAs.
  bool ipv6 = false;
};

struct Topology {
  std::vector<LabNode> nodes;
  std::vector<LabVm> vms;
  std::optional<std::string> document; // what `lab up` applies on every node
  std::string source;                  // the topology's text, as given

  const LabNode& node(const std::string& name) const;
  std::vector<const LabVm*> vms_of(const std::string& node) const;
};

// Throws StateError listing every problem, each naming the entry and field
// ("vms[1] (x1): mac …"), before anything is made.
Topology parse_topology(std::string_view text);
// The embedded demo topology, as text.
std::string_view default_topology();

} // namespace weft::lab
