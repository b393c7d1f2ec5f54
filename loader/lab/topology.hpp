// A lab's topology as data (DESIGN.md §3.3, §3.4): its nodes, each a network
// namespace, its VMs, each a namespace plugged into its node's namespace the
// way Nova plugs a VM, the switches that join the nodes, the physical hosts
// on those switches, and the Neutron document the lab applies. The demo's is
// embedded (loader/lab/default_topology.json); `weft lab up -f` and the e2e
// harness bring their own. Parsing needs only the model, so it is
// unit-tested without a kernel.
//
//   {"underlay": {"cidr": "172.31.0.0/24"},
//    "nodes": [{"name": "lab-node1", "namespace": "node1", "tunnel_ip": "172.31.0.1",
//               "physical_interface_mappings": {"physnet1": "eth-physnet1"}}],
//    "vms": [{"name": "a1", "port_id": "3f2a9c1e-…"},
//            {"name": "c1", "port": {…a Neutron port…}, "node": "lab-node1",
//             "prefixlen": 16, "ipv6": true, "up": false},
//            {"name": "x1", "node": "lab-node1", "port_id": "…",
//             "mac": "fa:16:3e:00:00:99", "addresses": ["10.9.0.5/24"], "mtu": 1500}],
//    "physical_hosts": [{"name": "ph1", "physnet": "physnet1", "mac": "52:54:00:00:00:01",
//                        "addresses": ["10.20.0.100/24"], "mtu": 1500}],
//    "document": {…Neutron nodes, networks, subnets, security groups, ports…}}
//
// The underlay (optional; without it the nodes are not joined, as single-node
// labs have it) is a namespace <prefix>-underlay with one bridge, into which
// every node has a veth whose node end is its uplink, kUplinkDevice, with
// the node's tunnel IP on it (prefix length of the cidr). A node's tunnel IP
// is its `tunnel_ip`, or the document's nodes[] entry's, or else the cidr's
// host number <index + 1> (nodes[0] gets .1); the lab writes it into the
// document's nodes[] (adding the entry if missing), so that every node's
// document names every VTEP, and installs the node with it.
//
// physical_interface_mappings (Neutron's, as an object: physnet -> device in
// the node's namespace) gives a node one veth per physnet into the provider
// switch, a namespace <prefix>-provider with one bridge that carries every
// physnet (tagged VLAN frames as they are: the bridge has no VLAN filter, the
// kernel here has none). Each physnet gets a device of its own, never the
// uplink, so the underlay stays plain IP. The node is installed with these
// mappings. A physical host is a namespace <prefix>-<name> whose eth0 is
// plugged untagged into the provider switch: a host on its physnet's flat
// network (a router, a bare-metal server) that the document does not list.
// A host on a VLAN would need an access port that tags, which this kernel
// can only make in BPF: not the lab's.
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
#include <utility>
#include <vector>

namespace weft::lab {

// Every node's uplink, the node end of its veth into the underlay switch.
inline constexpr const char* kUplinkDevice = "eth-underlay";
// The namespaces <prefix>-<name> of the two switches; no node, VM or host
// may take these names.
inline constexpr const char* kUnderlayNamespace = "underlay";
inline constexpr const char* kProviderNamespace = "provider";

struct Underlay {
  std::string cidr; // "172.31.0.0/24", IPv4
  int prefixlen = 0;
};

struct LabNode {
  std::string name;       // the weft node (its pins, its record)
  std::string namespace_; // <prefix>-<namespace_>
  std::string tunnel_ip;  // "" without an underlay
  std::string uplink;     // kUplinkDevice with an underlay, "" without
  // physnet -> its device in the node's namespace, sorted by physnet.
  std::vector<std::pair<std::string, std::string>> physical_interface_mappings;

  // The node's device of `physnet`, or nullptr when it maps none.
  const std::string* physnet_device(const std::string& physnet) const;
};

// What lab status pings from and to: a namespace <prefix>-<name> whose eth0
// has this MAC and these addresses.
struct LabEndpoint {
  std::string name;
  std::string mac;
  std::vector<std::string> addresses; // "10.0.0.11/24", "fd00::11/64" (IPv6 with ipv6 only)
  std::string network_id;             // "" when the document does not say
  std::string network_name;
  std::string network_type;     // "vxlan", "vlan", "flat"; "" when the document does not say
  std::string physical_network; // a vlan or flat network's
  unsigned mtu = 0;             // 0: the kernel's default
  bool up = true;
  // Where eth0's peer is: a VM's node, or a physical host's physnet (the
  // other one is "").
  std::string node;
  std::string physnet;
};

struct LabVm : LabEndpoint {
  std::string port_id;
  std::string device; // the port's device in the node's namespace
  std::string project_id;
  // IPv6 on in the VM (off in every lab namespace otherwise, so that no DAD,
  // MLD or RS chatter reaches a capture), without DAD and RAs.
  bool ipv6 = false;
};

// A host on a physnet's flat network, untagged on the provider switch; its
// network is the document's flat network of that physnet ("" when none).
struct LabHost : LabEndpoint {};

struct Topology {
  std::optional<Underlay> underlay;
  std::vector<LabNode> nodes;
  std::vector<LabVm> vms;
  std::vector<LabHost> physical_hosts;
  // What `lab up` applies on every node, with the nodes' tunnel IPs in nodes[].
  std::optional<std::string> document;
  std::string source; // the topology's text, as given

  const LabNode& node(const std::string& name) const;
  std::vector<const LabVm*> vms_of(const std::string& node) const;
  // Whether the lab has a provider switch: some node maps a physnet.
  bool has_provider() const;
  // The VMs, then the physical hosts.
  std::vector<const LabEndpoint*> endpoints() const;
  // What lab status expects of a ping from one endpoint to the other: both
  // up, on the same network, and something carries it between them — one
  // node's own switching, the underlay for VXLAN between two nodes with
  // tunnel IPs, the provider switch for a VLAN or flat network whose physnet
  // both ends map (a physical host is on its physnet). Security groups are
  // not evaluated: a lab's document admits its own networks.
  bool expect_reachable(const LabEndpoint& from, const LabEndpoint& to) const;
};

// Throws StateError listing every problem, each naming the entry and field
// ("vms[1] (x1): mac …"), before anything is made.
Topology parse_topology(std::string_view text);
// The embedded demo topology, as text.
std::string_view default_topology();

} // namespace weft::lab
