#include "loader/system/node.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <sys/stat.h>

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

// The port program's object, loaded: its maps are pinned (libbpf pins them
// at load), the program is not until pin().
class LoadedPort : public LoadedProgram {
public:
  LoadedPort(Skeleton skel, std::string pin_path)
      : skel_(std::move(skel)), pin_path_(std::move(pin_path)),
        tag_(tag_of(bpf_program__fd(skel_->progs.weft_port))) {}

  const std::string& tag() const override { return tag_; }
  void pin() override {
    remove_pin(pin_path_);
    if (bpf_obj_pin(bpf_program__fd(skel_->progs.weft_port), pin_path_.c_str()) != 0)
      throw SystemError("pin " + pin_path_, errno);
  }

private:
  Skeleton skel_;
  std::string pin_path_;
  std::string tag_;
};

} // namespace

bool KernelDatapath::exists() const {
  return path_exists(layout_.root());
}

void KernelDatapath::prepare() {
  ensure_bpffs(layout_.bpffs);
  for (const auto& dir : {layout_.weft_root(), layout_.root(), layout_.maps_dir(),
                          layout_.progs_dir(), layout_.links_dir()})
    make_dir(dir);
}

MapIo* KernelDatapath::map(const std::string& name) {
  if (auto it = maps_.find(name); it != maps_.end())
    return it->second.get();
  if (!path_exists(layout_.map(name)))
    return nullptr;
  auto opened = std::make_unique<KernelMap>(KernelMap::open_pinned(name, layout_.map(name)));
  return maps_.emplace(name, std::move(opened)).first->second.get();
}

std::vector<std::string> KernelDatapath::pinned_maps() const {
  return list_dir(layout_.maps_dir());
}

std::optional<PinnedProgram> KernelDatapath::pinned_program(const std::string& name) const {
  std::string pin = layout_.prog(name);
  if (!path_exists(pin))
    return std::nullopt;
  PinnedProgram program;
  if (Fd prog(bpf_obj_get(pin.c_str())); prog) {
    program.id = prog_id_of(prog.get());
    program.tag = tag_of(prog.get());
  }
  return program;
}

std::unique_ptr<LoadedProgram> KernelDatapath::load(const std::string& name, std::uint32_t ct_max) {
  if (name != kPortProgram)
    throw std::logic_error("no BPF program " + name);
  // libbpf reuses every pinned map whose type and sizes match, and pins the rest.
  std::string pin_root = layout_.maps_dir();
  LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = pin_root.c_str());
  Skeleton skel(port_bpf__open_opts(&open_opts));
  if (!skel)
    throw SystemError("open the port program", errno);
  // The registry's maps sized at install: the conntrack tables.
  for (const auto& spec : maps::kMaps)
    if (spec.capacity == 0) {
      std::string map_name(spec.name);
      bpf_map* map = bpf_object__find_map_by_name(skel->obj, map_name.c_str());
      if (!map || bpf_map__set_max_entries(map, ct_max) != 0)
        throw std::runtime_error("size map " + map_name + " of the port program");
    }
  if (int err = port_bpf__load(skel.get()); err != 0)
    throw SystemError("load the port program (see the verifier log above)", -err);
  return std::make_unique<LoadedPort>(std::move(skel), layout_.prog(name));
}

std::unique_ptr<Attacher> KernelDatapath::attacher(const std::string& name, AttachMode mode) {
  Fd prog(bpf_obj_get(layout_.prog(name).c_str()));
  if (!prog)
    throw SystemError("open program " + layout_.prog(name), errno);
  return std::make_unique<KernelAttacher>(layout_, mode, std::move(prog));
}

int KernelDatapath::remove_pins() {
  maps_.clear();
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

} // namespace weft
