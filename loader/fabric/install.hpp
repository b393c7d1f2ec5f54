// What `weft node install` decides, apart from how it is done: the node
// configuration an install (or an upgrade of an installed node) writes, from
// the options given, what is installed already and what the kernel offers.
// Domain logic over plain values, so it is unit-tested without a kernel;
// loader/system/node.cpp carries it out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "loader/fabric/datapath.hpp"
#include "loader/model/state.hpp"
#include "maps/weft_abi.h"

namespace weft {

struct InstallOptions {
  std::optional<std::string> uplink;           // device name in the node's namespace
  std::optional<IpAddr> tunnel_ip;             // IPv4
  std::optional<AttachMode> attach_mode;       // default: tcx where the kernel has it
  std::optional<std::uint32_t> ct_max;         // conntrack entries; fixed once installed
  std::optional<std::uint32_t> ct_network_max; // established entries of one network
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

// The configuration to write, or std::runtime_error saying what is wrong and
// what to do (an option that cannot change while installed, a bad value).
weft_node_config plan_install(const InstallOptions& options, const InstallContext& context);

} // namespace weft
