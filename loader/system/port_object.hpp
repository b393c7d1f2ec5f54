// The port program's BPF object (bpf/port.bpf.c) through its libbpf
// skeleton, owned: opened with its maps pinned under a folder, sized, loaded.
// Destroying it unloads what is not pinned.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

struct port_bpf;

namespace weft {

class PortObject {
public:
  // Opens the object; at load, libbpf reuses every map pinned in
  // `pin_root` whose type and sizes match and pins the others there.
  explicit PortObject(const std::string& pin_root);
  ~PortObject();
  PortObject(const PortObject&) = delete;
  PortObject& operator=(const PortObject&) = delete;

  void set_max_entries(const std::string& map, std::uint32_t entries);
  // Throws, pointing at the verifier's log, when the kernel refuses it.
  void load();
  // The port program's fd, once loaded.
  int program_fd() const;

private:
  std::string pin_root_;
  port_bpf* skel_ = nullptr;
};

} // namespace weft
