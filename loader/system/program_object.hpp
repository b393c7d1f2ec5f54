// A BPF object of the node's datapath (bpf/port.bpf.c, bpf/uplink.bpf.c)
// through its libbpf skeleton, owned: opened with its maps pinned under a
// folder, sized, loaded. Both objects declare the same maps (bpf/lib/maps.h),
// so the second to load reuses the first's pins. Destroying it unloads what
// is not pinned.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace weft {

class ProgramObject {
public:
  // Opens the object of `program` (kPortProgram or kUplinkProgram); at load,
  // libbpf reuses every map pinned in `pin_root` whose type and sizes match
  // and pins the others there.
  ProgramObject(const std::string& program, const std::string& pin_root);
  ~ProgramObject();
  ProgramObject(const ProgramObject&) = delete;
  ProgramObject& operator=(const ProgramObject&) = delete;

  void set_max_entries(const std::string& map, std::uint32_t entries);
  // Throws, pointing at the verifier's log, when the kernel refuses it.
  void load();
  // The program's fd, once loaded.
  int program_fd() const;

  class Skeleton;

private:
  std::string program_;
  std::string pin_root_;
  std::unique_ptr<Skeleton> skel_;
};

} // namespace weft
