// `weft node install|uninstall|show` as domain logic: the node configuration
// an install (or an upgrade of an installed node) writes, from the options
// given, what is installed already and what the kernel offers; and the
// install, upgrade and uninstall themselves, carried out through the
// Datapath interface (the kernel's in loader/system/, a fake in the unit
// tests).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "loader/fabric/datapath.hpp"
#include "loader/fabric/record.hpp"
#include "loader/model/state.hpp"
#include "maps/weft_abi.h"

namespace weft {

// physnet name -> device in the node's namespace, in the order given.
using PhysnetMappings = std::vector<std::pair<std::string, std::string>>;

// "physnet1:eth1,physnet2:eth2" (the linuxbridge agent's syntax), or
// std::runtime_error naming what is wrong.
PhysnetMappings parse_physnet_mappings(const std::string& text);

struct InstallOptions {
  std::optional<std::string> uplink; // device name in the node's namespace
  std::optional<IpAddr> tunnel_ip;   // IPv4
  // vlan networks of a physnet are tagged on its device, flat ones untagged;
  // given, it replaces the node's mappings.
  std::optional<PhysnetMappings> physical_interface_mappings;
  std::optional<AttachMode> attach_mode;       // default: tcx where the kernel has it
  std::optional<std::uint32_t> ct_max;         // conntrack entries; fixed once installed
  std::optional<std::uint32_t> ct_network_max; // established entries of one network
  // The installer (system side) turns forwarding on for lo, for the
  // datapath's FIB lookups, and records it so that uninstall undoes it.
  bool sets_loopback_forwarding = false;
};

inline constexpr std::uint32_t kDefaultCtMax = 65536;
inline constexpr std::uint32_t kMinCtMax = 1024;

// What the install is made on.
struct InstallContext {
  std::string node;
  // The configuration pinned now, and whether its program is installed.
  std::optional<weft_node_config> previous;
  bool installed = false;
  AttachMode kernel_default = AttachMode::Tcx; // tcx on kernels >= 6.6
  std::optional<int> uplink_ifindex;           // the --uplink device's, when it exists
};

struct Physnet {
  std::string name;
  std::string device;
  int ifindex = 0;
};

// The configuration to write, or std::runtime_error saying what is wrong and
// what to do (an option that cannot change while installed, a bad value).
weft_node_config plan_install(const InstallOptions& options, const InstallContext& context);

struct InstallResult {
  bool fresh = false;            // nothing was installed before
  bool program_replaced = false; // an older port program was swapped out
  int links_updated = 0;
};

struct NodeStatus {
  bool installed = false;
  std::vector<Physnet> physnets;
  std::uint32_t abi_version = 0;
  AttachMode attach_mode = AttachMode::Tcx;
  std::optional<IpAddr> tunnel_ip;
  std::string uplink;
  int uplink_ifindex = 0;
  std::uint32_t prog_id = 0;
  std::string prog_tag;
  std::uint32_t ct_max = 0;
  std::uint32_t ct_network_max = 0;
  std::uint32_t sg_generation = 0;
  bool set_loopback_forwarding = false; // install turned forwarding on for lo
  std::vector<std::string> maps;
  std::vector<Attachment> attachments;
};

// A node's installation: the port program and the maps pinned under
// <bpffs>/weft/<node>/, with the record of what was applied.
class Installer {
public:
  Installer(std::string node, Datapath& datapath, const Devices& devices, RecordStore& records)
      : node_(std::move(node)), datapath_(datapath), devices_(devices), records_(records) {}

  // Loads and pins everything; idempotent, keeps every map's contents. A
  // newer port program replaces the pinned one on every attached device. A
  // first install that fails leaves nothing behind.
  InstallResult install(const InstallOptions& options);
  // Detaches every program weft attached on this node and removes its pins
  // and record. Returns the number of attachments removed.
  int uninstall();
  NodeStatus status() const;
  bool installed() const;
  // Throws, with what to do, when the node is not installed or its pins are
  // of another ABI version.
  void require_installed() const;
  AttachMode attach_mode() const;
  // Attaches the pinned port program in the node's mode.
  std::unique_ptr<Attacher> attacher() const;
  // The node's physnets, as installed.
  std::vector<Physnet> physnets() const;

private:
  // The devices the uplink program runs on: the uplink and the physnets'.
  std::vector<Device> wire_devices() const;
  void write_physnets(const PhysnetMappings& mappings);
  InstallResult install_or_upgrade(const InstallOptions& options);
  std::optional<weft_node_config> config() const;
  // The ports' devices that exist now, from the pinned ports map.
  std::vector<Device> port_devices() const;

  std::string node_;
  Datapath& datapath_;
  const Devices& devices_;
  RecordStore& records_;
};

} // namespace weft
