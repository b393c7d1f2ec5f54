#include "loader/system/node.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstring>
#include <memory>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader/system/devices.hpp"
#include "maps/registry.hpp"
#include "maps/weft_abi.h"
// The skeleton comes after the ABI header it relies on.
#include "port.skel.h"

namespace weft {

namespace {

void make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
    throw SystemError("create " + path, errno);
}

struct SkeletonDeleter {
  void operator()(port_bpf* skel) const { port_bpf__destroy(skel); }
};
using Skeleton = std::unique_ptr<port_bpf, SkeletonDeleter>;

std::optional<weft_node_config> read_config(const Layout& layout) {
  if (!path_exists(layout.map(WEFT_MAP_CONFIG)))
    return std::nullopt;
  auto map = KernelMap::open_pinned(WEFT_MAP_CONFIG, layout.map(WEFT_MAP_CONFIG));
  return Map<std::uint32_t, weft_node_config>(map).get(0);
}

std::string tag_of(int prog_fd) {
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0)
    return "";
  static const char* hex = "0123456789abcdef";
  std::string tag;
  for (auto byte : info.tag) {
    tag += hex[byte >> 4];
    tag += hex[byte & 15];
  }
  return tag;
}

} // namespace

bool Installation::installed() const {
  return path_exists(layout_.prog(kPortProgram));
}

void Installation::require_installed() const {
  auto config = read_config(layout_);
  if (!config || !installed())
    throw std::runtime_error("node " + layout_.node + " is not installed (run: weft node install)");
  if (config->abi_version != WEFT_ABI_VERSION)
    throw std::runtime_error("node " + layout_.node + " has pins of ABI version " +
                             std::to_string(config->abi_version) + ", this weft speaks " +
                             std::to_string(WEFT_ABI_VERSION) +
                             " (run: weft node uninstall, then weft node install)");
}

AttachMode Installation::attach_mode() const {
  auto config = read_config(layout_);
  return config && (config->flags & WEFT_CONFIG_ATTACH_TC) ? AttachMode::Tc : AttachMode::Tcx;
}

KernelAttacher Installation::attacher() const {
  Fd prog(bpf_obj_get(layout_.prog(kPortProgram).c_str()));
  if (!prog)
    throw SystemError("open program " + layout_.prog(kPortProgram), errno);
  return KernelAttacher(layout_, attach_mode(), std::move(prog));
}

InstallResult Installation::install(const InstallOptions& options) {
  bool fresh = !path_exists(layout_.root());
  try {
    return install_or_upgrade(options);
  } catch (...) {
    // A node that had nothing before has nothing after a failed install: no
    // empty folders, no maps pinned before the program was refused.
    if (fresh) {
      remove_pins();
      ::rmdir(layout_.record_dir().c_str()); // the lock's folder, when nothing else is in it
      ::rmdir(layout_.state_dir.c_str());
    }
    throw;
  }
}

InstallResult Installation::install_or_upgrade(const InstallOptions& options) {
  InstallResult result;
  ensure_bpffs(layout_.bpffs);
  auto previous = read_config(layout_);
  if (previous && previous->abi_version != WEFT_ABI_VERSION)
    require_installed(); // throws, saying what to do
  result.fresh = !previous;

  InstallContext context;
  context.node = layout_.node;
  context.previous = previous;
  context.installed = installed();
  context.kernel_default = default_attach_mode();
  if (options.uplink)
    if (auto dev = NetlinkDevices().find(*options.uplink))
      context.uplink_ifindex = dev->ifindex;
  weft_node_config config = plan_install(options, context);

  for (const auto& dir : {layout_.weft_root(), layout_.root(), layout_.maps_dir(),
                          layout_.progs_dir(), layout_.links_dir()})
    make_dir(dir);

  // libbpf reuses every pinned map whose type and sizes match, and pins the rest.
  std::string pin_root = layout_.maps_dir();
  LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = pin_root.c_str());
  Skeleton skel(port_bpf__open_opts(&open_opts));
  if (!skel)
    throw SystemError("open the port program", errno);
  // The registry's maps sized at install: the conntrack tables.
  for (const auto& spec : maps::kMaps)
    if (spec.capacity == 0) {
      std::string name(spec.name);
      bpf_map* map = bpf_object__find_map_by_name(skel->obj, name.c_str());
      if (!map || bpf_map__set_max_entries(map, config.ct_max) != 0)
        throw std::runtime_error("size map " + name + " of the port program");
    }
  if (int err = port_bpf__load(skel.get()); err != 0)
    throw SystemError("load the port program (see the verifier log above)", -err);

  int new_prog = bpf_program__fd(skel->progs.weft_port);
  std::string prog_pin = layout_.prog(kPortProgram);
  bool replace = false;
  if (path_exists(prog_pin)) {
    Fd old(bpf_obj_get(prog_pin.c_str()));
    replace = !old || tag_of(old.get()) != tag_of(new_prog);
  }
  if (!path_exists(prog_pin) || replace) {
    if (replace)
      remove_pin(prog_pin);
    if (bpf_obj_pin(new_prog, prog_pin.c_str()) != 0)
      throw SystemError("pin " + prog_pin, errno);
  }

  auto config_pin = KernelMap::open_pinned(WEFT_MAP_CONFIG, layout_.map(WEFT_MAP_CONFIG));
  Map<std::uint32_t, weft_node_config>(config_pin).put(0, config);

  if (replace) {
    // Swap the program in place on every device that runs the old one.
    result.program_replaced = true;
    auto attach = attacher();
    auto ports = KernelMap::open_pinned(WEFT_MAP_PORTS, layout_.map(WEFT_MAP_PORTS));
    NetlinkDevices devices;
    for (const auto& [ifindex, port] : Map<std::uint32_t, weft_port>(ports).entries()) {
      (void)port;
      if (auto dev = devices.find(static_cast<int>(ifindex))) {
        attach.attach(dev->name, dev->ifindex);
        ++result.links_updated;
      }
    }
  }
  return result;
}

int Installation::uninstall() {
  int removed = 0;
  if (installed() && path_exists(layout_.map(WEFT_MAP_PORTS))) {
    auto attach = attacher();
    if (attach.mode() == AttachMode::Tc) {
      auto ports = KernelMap::open_pinned(WEFT_MAP_PORTS, layout_.map(WEFT_MAP_PORTS));
      NetlinkDevices devices;
      for (const auto& [ifindex, port] : Map<std::uint32_t, weft_port>(ports).entries()) {
        (void)port;
        auto dev = devices.find(static_cast<int>(ifindex));
        if (dev && attach.query(dev->name, dev->ifindex)) {
          attach.detach(dev->name, dev->ifindex);
          ++removed;
        }
      }
    }
  }
  removed += remove_pins();
  ::unlink(layout_.record().c_str());
  ::rmdir(layout_.record_dir().c_str());
  ::rmdir(layout_.state_dir.c_str());
  return removed;
}

int Installation::remove_pins() {
  // tcx links go with their pins.
  int links = 0;
  for (const auto& link : list_dir(layout_.links_dir())) {
    remove_pin(layout_.link(link));
    ++links;
  }
  for (const auto& dir : {layout_.links_dir(), layout_.progs_dir(), layout_.maps_dir()})
    for (const auto& name : list_dir(dir))
      remove_pin(std::string(dir).append("/").append(name));
  for (const auto& dir :
       {layout_.links_dir(), layout_.progs_dir(), layout_.maps_dir(), layout_.root()})
    remove_pin(dir);
  if (list_dir(layout_.weft_root()).empty())
    remove_pin(layout_.weft_root());
  return links;
}

NodeStatus Installation::status() const {
  NodeStatus s;
  auto config = read_config(layout_);
  s.installed = config && installed();
  if (!s.installed)
    return s;
  s.abi_version = config->abi_version;
  s.attach_mode = attach_mode();
  if (config->tunnel_ip) {
    IpAddr ip;
    ip.family = AF_INET;
    std::memcpy(ip.bytes.data(), &config->tunnel_ip, 4);
    s.tunnel_ip = ip;
  }
  NetlinkDevices devices;
  s.uplink_ifindex = static_cast<int>(config->uplink_ifindex);
  if (s.uplink_ifindex)
    if (auto dev = devices.find(s.uplink_ifindex))
      s.uplink = dev->name;
  Fd prog(bpf_obj_get(layout_.prog(kPortProgram).c_str()));
  if (prog) {
    s.prog_id = prog_id_of(prog.get());
    s.prog_tag = tag_of(prog.get());
  }
  s.maps = list_dir(layout_.maps_dir());
  s.ct_max = config->ct_max;
  s.ct_network_max = config->ct_network_max;
  s.sg_generation = config->sg_generation;
  auto attach = attacher();
  auto ports = KernelMap::open_pinned(WEFT_MAP_PORTS, layout_.map(WEFT_MAP_PORTS));
  for (const auto& [ifindex, port] : Map<std::uint32_t, weft_port>(ports).entries()) {
    (void)port;
    if (auto dev = devices.find(static_cast<int>(ifindex)))
      if (auto a = attach.query(dev->name, dev->ifindex))
        s.attachments.push_back(*a);
  }
  return s;
}

} // namespace weft
