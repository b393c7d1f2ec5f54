// The thin layer over libbpf and the bpf() syscall: file descriptors, pinned
// maps, per-CPU values, pins, programs. loader/system/ is the only place that
// talks to libbpf, libnl and bpffs (tests/build/layers.sh checks it).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "loader/fabric/map_io.hpp"
#include "loader/model/error.hpp"
#include "loader/model/fd.hpp"

namespace weft {

// An error from the kernel, with what was being done: "open map /sys/…: No such file".

// The number of possible CPUs: the one place that knows it.
int possible_cpus();

struct MapInfo {
  std::string name;
  std::uint32_t id = 0;
  std::uint32_t type = 0;
  std::uint32_t key_size = 0;
  std::uint32_t value_size = 0;
  std::uint32_t max_entries = 0;
  std::uint32_t flags = 0;
};
std::string map_type_name(std::uint32_t type);

// A map reached through its pin (or an fd), as a MapIo.
class KernelMap : public MapIo {
public:
  KernelMap(std::string name, Fd fd);
  static KernelMap open_pinned(const std::string& name, const std::string& path);

  const std::string& name() const override { return name_; }
  std::optional<Bytes> lookup(const Bytes& key) const override;
  std::map<Bytes, Bytes> dump() const override;
  // A per-CPU map's entry gets `value` on every CPU.
  void update(const Bytes& key, const Bytes& value) override;
  void erase(const Bytes& key) override;

  // Per-CPU maps: one value per possible CPU, in CPU order.
  std::vector<Bytes> lookup_percpu(const Bytes& key) const;
  std::vector<Bytes> keys() const override;
  const MapInfo& info() const { return info_; }
  int fd() const { return fd_.get(); }

private:
  std::optional<std::map<Bytes, Bytes>> dump_batched() const;

  std::string name_;
  Fd fd_;
  MapInfo info_;
};

// A pinned object (map, program, link) opened; an empty Fd when there is none.
Fd open_pin(const std::string& path);
// Pins an object; throws on failure.
void pin_object(int fd, const std::string& path);

// A loaded program, as the kernel describes it.
struct ProgInfo {
  std::uint32_t id = 0;
  std::string tag; // 16 hex digits: the hash of its instructions
};
std::optional<ProgInfo> prog_info(int prog_fd);

bool path_exists(const std::string& path);
// Makes sure `dir` is on a bpffs, mounting one at `dir` when it is not.
void ensure_bpffs(const std::string& dir);
// Makes a pin folder (mode 0700); one that exists is fine.
void make_pin_dir(const std::string& dir);
// Removes a pin or an empty directory; missing is fine.
void remove_pin(const std::string& path);
std::vector<std::string> list_dir(const std::string& dir);

} // namespace weft
