#include "loader/datapath/kernel_datapath.hpp"

#include "loader/system/program_object.hpp"
#include "maps/registry.hpp"

namespace weft {

namespace {

// A program's object, loaded: its maps are pinned (libbpf pins them at
// load), the program is not until pin().
class Loaded : public LoadedProgram {
public:
  Loaded(std::unique_ptr<ProgramObject> object, std::string pin_path)
      : object_(std::move(object)), pin_path_(std::move(pin_path)) {
    if (auto info = prog_info(object_->program_fd()))
      tag_ = info->tag;
  }

  const std::string& tag() const override { return tag_; }
  void pin() override {
    remove_pin(pin_path_);
    pin_object(object_->program_fd(), pin_path_);
  }

private:
  std::unique_ptr<ProgramObject> object_;
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
    make_pin_dir(dir);
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
  if (Fd prog = open_pin(pin))
    if (auto info = prog_info(prog.get()))
      program = {info->id, info->tag};
  return program;
}

std::unique_ptr<LoadedProgram> KernelDatapath::load(const std::string& name, std::uint32_t ct_max) {
  auto object = std::make_unique<ProgramObject>(name, layout_.maps_dir());
  // The registry's maps sized at install: the conntrack tables.
  for (const auto& spec : maps::kMaps)
    if (spec.capacity == 0)
      object->set_max_entries(std::string(spec.name), ct_max);
  object->load();
  return std::make_unique<Loaded>(std::move(object), layout_.prog(name));
}

std::unique_ptr<Attacher> KernelDatapath::attacher(const std::string& name, AttachMode mode) {
  Fd prog = open_pin(layout_.prog(name));
  if (!prog)
    throw SystemError("open program " + layout_.prog(name), errno);
  return std::make_unique<KernelAttacher>(layout_, mode, std::move(prog));
}

namespace {

// The datapath asks the FIB for the way to a VTEP as if from lo (see
// bpf/lib/encap.h), which needs forwarding on there.
const char* kLoopbackForwarding = "/proc/sys/net/ipv4/conf/lo/forwarding";

} // namespace

InstallResult Installation::install(const InstallOptions& options) {
  InstallOptions opts = options;
  bool turn_on = opts.uplink && read_sysctl(kLoopbackForwarding) == "0";
  opts.sets_loopback_forwarding = turn_on;
  InstallResult result = installer_.install(opts);
  if (turn_on)
    write_sysctl(kLoopbackForwarding, "1");
  if (installer_.status().uplink_ifindex)
    devices_.add_gro_device(kGroDevice);
  return result;
}

int Installation::uninstall() {
  bool undo = installer_.status().set_loopback_forwarding;
  int removed = installer_.uninstall();
  devices_.remove_device(kGroDevice);
  if (undo)
    write_sysctl(kLoopbackForwarding, "0");
  return removed;
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
