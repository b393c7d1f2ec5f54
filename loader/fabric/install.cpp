#include "loader/fabric/install.hpp"

#include <cstring>
#include <netinet/in.h>
#include <stdexcept>

#include "loader/model/error.hpp"

#include "loader/model/layout.hpp"

namespace weft {

namespace {

AttachMode mode_of(const weft_node_config& config) {
  return (config.flags & WEFT_CONFIG_ATTACH_TC) ? AttachMode::Tc : AttachMode::Tcx;
}

} // namespace

PhysnetMappings parse_physnet_mappings(const std::string& text) {
  PhysnetMappings out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(',', start);
    std::string item = text.substr(start, end == std::string::npos ? end : end - start);
    std::size_t colon = item.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == item.size())
      throw std::runtime_error("--physical-interface-mappings: '" + item +
                               "' is not PHYSNET:DEVICE");
    std::string name = item.substr(0, colon);
    if (name.size() >= WEFT_PHYSNET_NAME_LEN)
      throw std::runtime_error("--physical-interface-mappings: physnet name '" + name +
                               "' is longer than " + std::to_string(WEFT_PHYSNET_NAME_LEN - 1) +
                               " characters");
    for (const auto& [seen, device] : out)
      if (seen == name)
        throw std::runtime_error("--physical-interface-mappings: physnet " + name +
                                 " is mapped twice");
    out.emplace_back(name, item.substr(colon + 1));
    if (end == std::string::npos)
      break;
    start = end + 1;
  }
  return out;
}

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

  if (options.sets_loopback_forwarding)
    config.flags |= WEFT_CONFIG_LO_FORWARDING;

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

std::optional<weft_node_config> Installer::config() const {
  MapIo* map = datapath_.map(WEFT_MAP_CONFIG);
  if (!map)
    return std::nullopt;
  return Map<std::uint32_t, weft_node_config>(*map).get(0);
}

bool Installer::installed() const {
  return datapath_.pinned_program(kPortProgram).has_value();
}

void Installer::require_installed() const {
  auto pinned = config();
  if (!pinned || !installed())
    throw std::runtime_error("node " + node_ + " is not installed (run: weft node install)");
  if (pinned->abi_version != WEFT_ABI_VERSION)
    throw std::runtime_error("node " + node_ + " has pins of ABI version " +
                             std::to_string(pinned->abi_version) + ", this weft speaks " +
                             std::to_string(WEFT_ABI_VERSION) +
                             " (run: weft node uninstall, then weft node install)");
}

AttachMode Installer::attach_mode() const {
  auto pinned = config();
  return pinned ? mode_of(*pinned) : AttachMode::Tcx;
}

std::unique_ptr<Attacher> Installer::attacher() const {
  return datapath_.attacher(kPortProgram, attach_mode());
}

std::vector<Physnet> Installer::physnets() const {
  std::vector<Physnet> out;
  MapIo* map = datapath_.map(WEFT_MAP_PHYSNETS);
  if (!map)
    return out;
  for (const auto& [key, value] : Map<weft_physnet_key, weft_physnet>(*map).entries()) {
    Physnet p;
    p.name = std::string(key.name, strnlen(key.name, sizeof(key.name)));
    p.ifindex = static_cast<int>(value.ifindex);
    if (auto dev = devices_.find(p.ifindex))
      p.device = dev->name;
    out.push_back(p);
  }
  return out;
}

void Installer::write_physnets(const PhysnetMappings& mappings) {
  std::vector<std::pair<weft_physnet_key, weft_physnet>> wanted;
  std::vector<std::string> problems;
  for (const auto& [name, device] : mappings) {
    auto dev = devices_.find(device);
    if (!dev) {
      std::string problem = "--physical-interface-mappings ";
      problem.append(name).append(":").append(device).append(": no such device");
      problems.push_back(problem);
      continue;
    }
    weft_physnet_key key{};
    std::memcpy(key.name, name.data(), name.size());
    wanted.emplace_back(key, weft_physnet{static_cast<std::uint32_t>(dev->ifindex)});
  }
  if (!problems.empty())
    throw StateError(problems);
  MapIo* map = datapath_.map(WEFT_MAP_PHYSNETS);
  if (!map)
    throw std::runtime_error("node " + node_ + ": the load pinned no " WEFT_MAP_PHYSNETS " map");
  // Only what differs is written: a reinstall with the same mappings writes nothing.
  Map<weft_physnet_key, weft_physnet> physnets(*map);
  auto pinned = physnets.entries();
  auto same_name = [](const weft_physnet_key& a, const weft_physnet_key& b) {
    return std::memcmp(a.name, b.name, sizeof(a.name)) == 0;
  };
  for (const auto& [key, value] : pinned) {
    bool keep = false;
    for (const auto& [want, v] : wanted)
      keep = keep || same_name(want, key);
    if (!keep)
      physnets.erase(key);
  }
  for (const auto& [key, value] : wanted) {
    bool unchanged = false;
    for (const auto& [have, v] : pinned)
      unchanged = unchanged || (same_name(have, key) && v.ifindex == value.ifindex);
    if (!unchanged)
      physnets.put(key, value);
  }
}

std::vector<Device> Installer::wire_devices() const {
  std::vector<Device> out;
  auto add = [&](int ifindex) {
    if (!ifindex)
      return;
    for (const auto& dev : out)
      if (dev.ifindex == ifindex)
        return;
    if (auto dev = devices_.find(ifindex))
      out.push_back(*dev);
  };
  if (auto pinned = config())
    add(static_cast<int>(pinned->uplink_ifindex));
  for (const auto& physnet : physnets())
    add(physnet.ifindex);
  return out;
}

std::vector<Device> Installer::port_devices() const {
  std::vector<Device> out;
  MapIo* ports = datapath_.map(WEFT_MAP_PORTS);
  if (!ports)
    return out;
  for (const auto& [ifindex, port] : Map<std::uint32_t, weft_port>(*ports).entries()) {
    (void)port;
    if (auto dev = devices_.find(static_cast<int>(ifindex)))
      out.push_back(*dev);
  }
  return out;
}

InstallResult Installer::install(const InstallOptions& options) {
  bool fresh = !datapath_.exists();
  try {
    return install_or_upgrade(options);
  } catch (...) {
    // A node that had nothing before has nothing after a failed install: no
    // empty folders, no maps pinned before the program was refused.
    if (fresh) {
      datapath_.remove_pins();
      records_.remove(); // the lock's folder, when nothing else is in it
    }
    throw;
  }
}

InstallResult Installer::install_or_upgrade(const InstallOptions& options) {
  InstallResult result;
  datapath_.prepare();
  auto previous = config();
  if (previous && previous->abi_version != WEFT_ABI_VERSION)
    require_installed(); // throws, saying what to do
  result.fresh = !previous;

  InstallContext context;
  context.node = node_;
  context.previous = previous;
  context.installed = installed();
  context.kernel_default = datapath_.kernel_attach_mode();
  if (options.uplink)
    if (auto dev = devices_.find(*options.uplink))
      context.uplink_ifindex = dev->ifindex;
  weft_node_config planned = plan_install(options, context);

  // Both programs are loaded before either is pinned: a refused one changes
  // nothing of an installed node.
  auto port = datapath_.load(kPortProgram, planned.ct_max);
  auto uplink = datapath_.load(kUplinkProgram, planned.ct_max);
  auto pinned = datapath_.pinned_program(kPortProgram);
  auto pinned_uplink = datapath_.pinned_program(kUplinkProgram);
  bool replace = pinned && pinned->tag != port->tag();
  bool replace_uplink = pinned_uplink && pinned_uplink->tag != uplink->tag();
  if (!pinned || replace)
    port->pin();
  if (!pinned_uplink || replace_uplink)
    uplink->pin();

  MapIo* config_map = datapath_.map(WEFT_MAP_CONFIG);
  if (!config_map)
    throw std::runtime_error("node " + node_ + ": the load pinned no " WEFT_MAP_CONFIG " map");
  if (options.physical_interface_mappings)
    write_physnets(*options.physical_interface_mappings);
  Map<std::uint32_t, weft_node_config>(*config_map).put(0, planned);

  if (replace) {
    // Swap the program in place on every device that runs the old one.
    result.program_replaced = true;
    auto attach = attacher();
    for (const auto& dev : port_devices()) {
      attach->attach(dev.name, dev.ifindex);
      ++result.links_updated;
    }
  }
  // The uplink program on the uplink and the physnets' devices (idempotent;
  // swapped in place when it is newer).
  result.program_replaced = result.program_replaced || replace_uplink;
  auto attach_uplink = datapath_.attacher(kUplinkProgram, mode_of(planned));
  for (const auto& dev : wire_devices()) {
    attach_uplink->attach(dev.name, dev.ifindex);
    if (replace_uplink)
      ++result.links_updated;
  }
  return result;
}

int Installer::uninstall() {
  int removed = 0;
  // tc filters stay on their devices until removed; tcx links go with their pins.
  if (installed() && attach_mode() == AttachMode::Tc) {
    auto attach = attacher();
    for (const auto& dev : port_devices())
      if (attach->query(dev.name, dev.ifindex)) {
        attach->detach(dev.name, dev.ifindex);
        ++removed;
      }
    if (datapath_.pinned_program(kUplinkProgram)) {
      auto attach_uplink = datapath_.attacher(kUplinkProgram, AttachMode::Tc);
      for (const auto& dev : wire_devices())
        if (attach_uplink->query(dev.name, dev.ifindex)) {
          attach_uplink->detach(dev.name, dev.ifindex);
          ++removed;
        }
    }
  }
  removed += datapath_.remove_pins();
  records_.remove();
  return removed;
}

NodeStatus Installer::status() const {
  NodeStatus s;
  auto pinned = config();
  auto program = datapath_.pinned_program(kPortProgram);
  s.installed = pinned && program;
  if (!s.installed)
    return s;
  s.abi_version = pinned->abi_version;
  s.attach_mode = mode_of(*pinned);
  if (pinned->tunnel_ip) {
    IpAddr ip;
    ip.family = AF_INET;
    std::memcpy(ip.bytes.data(), &pinned->tunnel_ip, 4);
    s.tunnel_ip = ip;
  }
  s.uplink_ifindex = static_cast<int>(pinned->uplink_ifindex);
  if (s.uplink_ifindex)
    if (auto dev = devices_.find(s.uplink_ifindex))
      s.uplink = dev->name;
  s.prog_id = program->id;
  s.prog_tag = program->tag;
  s.maps = datapath_.pinned_maps();
  s.ct_max = pinned->ct_max;
  s.ct_network_max = pinned->ct_network_max;
  s.sg_generation = pinned->sg_generation;
  s.set_loopback_forwarding = (pinned->flags & WEFT_CONFIG_LO_FORWARDING) != 0;
  s.physnets = physnets();
  auto attach = attacher();
  for (const auto& dev : port_devices())
    if (auto a = attach->query(dev.name, dev.ifindex)) {
      a->program = kPortProgram;
      s.attachments.push_back(*a);
    }
  if (datapath_.pinned_program(kUplinkProgram)) {
    auto attach_uplink = datapath_.attacher(kUplinkProgram, s.attach_mode);
    for (const auto& dev : wire_devices())
      if (auto a = attach_uplink->query(dev.name, dev.ifindex)) {
        a->program = kUplinkProgram;
        s.attachments.push_back(*a);
      }
  }
  return s;
}

} // namespace weft
