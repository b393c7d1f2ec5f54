#include "loader/fabric/install.hpp"

#include <stdexcept>

namespace weft {

namespace {

AttachMode mode_of(const weft_node_config& config) {
  return (config.flags & WEFT_CONFIG_ATTACH_TC) ? AttachMode::Tc : AttachMode::Tcx;
}

} // namespace

weft_node_config plan_install(const InstallOptions& options, const InstallContext& context) {
  const auto& previous = context.previous;
  weft_node_config config{};
  if (previous)
    config = *previous;
  config.abi_version = WEFT_ABI_VERSION;

  if (options.attach_mode) {
    if (previous && context.installed && *options.attach_mode != mode_of(*previous))
      throw std::runtime_error("node " + context.node + " is installed with " +
                               to_string(mode_of(*previous)) +
                               " attachments; uninstall it to change the attach mode");
    config.flags = *options.attach_mode == AttachMode::Tc ? (config.flags | WEFT_CONFIG_ATTACH_TC)
                                                          : (config.flags & ~WEFT_CONFIG_ATTACH_TC);
  } else if (!previous && context.kernel_default == AttachMode::Tc) {
    config.flags |= WEFT_CONFIG_ATTACH_TC;
  }

  if (options.tunnel_ip) {
    if (!options.tunnel_ip->is_v4())
      throw std::runtime_error("--tunnel-ip " + options.tunnel_ip->str() +
                               " is not an IPv4 address");
    config.tunnel_ip = options.tunnel_ip->v4_be();
  }
  if (options.uplink) {
    if (!context.uplink_ifindex)
      throw std::runtime_error("--uplink " + *options.uplink + ": no such device");
    config.uplink_ifindex = static_cast<std::uint32_t>(*context.uplink_ifindex);
  }

  if (options.ct_max && previous && previous->ct_max && *options.ct_max != previous->ct_max)
    throw std::runtime_error("node " + context.node + " has a conntrack table of " +
                             std::to_string(previous->ct_max) +
                             " entries; uninstall it to change --ct-max");
  config.ct_max = options.ct_max.value_or(config.ct_max ? config.ct_max : kDefaultCtMax);
  if (config.ct_max < kMinCtMax)
    throw std::runtime_error("--ct-max " + std::to_string(config.ct_max) + " is below " +
                             std::to_string(kMinCtMax));
  if (options.ct_network_max)
    config.ct_network_max = *options.ct_network_max;
  if (!config.ct_network_max)
    config.ct_network_max = config.ct_max / 2;
  if (config.ct_network_max > config.ct_max)
    throw std::runtime_error("--ct-network-max " + std::to_string(config.ct_network_max) +
                             " is above --ct-max " + std::to_string(config.ct_max));
  return config;
}

} // namespace weft
