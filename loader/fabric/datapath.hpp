// What the fabric needs of a node's datapath, as interfaces: the devices of
// its namespace, attaching the port program to them, and the node's pinned
// programs and maps. The system layer implements them with netlink, libbpf
// and bpffs (loader/system/); the unit tests with fakes. The fabric links
// neither libbpf nor libnl.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loader/fabric/map_io.hpp"

namespace weft {

enum class AttachMode { Tcx, Tc };
std::string to_string(AttachMode mode);

struct Attachment {
  std::string device;
  int ifindex = 0;
  AttachMode mode = AttachMode::Tcx;
  std::uint32_t prog_id = 0;
  std::string program; // filled in by the Installer: kPortProgram or kUplinkProgram
};

class Attacher {
public:
  virtual ~Attacher() = default;
  // Idempotent: an attachment that already runs this program is left alone.
  virtual void attach(const std::string& device, int ifindex) = 0;
  // Missing attachments (or a device that is gone) are fine.
  virtual void detach(const std::string& device, int ifindex) = 0;
  virtual std::optional<Attachment> query(const std::string& device, int ifindex) const = 0;
};

struct Device {
  std::string name;
  int ifindex = 0;
  std::string kind; // "veth", "tun" (tap), "vxlan", … or "" for physical
  bool up = false;
  unsigned mtu = 0;
};

class Devices {
public:
  virtual ~Devices() = default;
  virtual std::optional<Device> find(const std::string& name) const = 0;
  virtual std::optional<Device> find(int ifindex) const = 0;
};

// A program loaded into the kernel and not pinned yet; it is unloaded when
// this goes, unless pinned.
class LoadedProgram {
public:
  virtual ~LoadedProgram() = default;
  virtual const std::string& tag() const = 0;
  // Pins it in place of the pinned program of its name, if there is one.
  virtual void pin() = 0;
};

struct PinnedProgram {
  std::uint32_t id = 0;
  std::string tag;
};

// A node's pinned kernel objects (<bpffs>/weft/<node>/): what install,
// upgrade and uninstall (loader/fabric/installer.hpp) do their work through.
// The system layer pins in bpffs with libbpf; the unit tests use a fake.
class Datapath {
public:
  virtual ~Datapath() = default;
  // Anything of the node is pinned.
  virtual bool exists() const = 0;
  // Makes the pin folders, mounting a bpffs first where there is none.
  virtual void prepare() = 0;
  // A pinned map, or nullptr when it is not pinned.
  virtual MapIo* map(const std::string& name) = 0;
  virtual std::vector<std::string> pinned_maps() const = 0;
  virtual std::optional<PinnedProgram> pinned_program(const std::string& name) const = 0;
  // Loads the port program's object. Pinned maps whose type and sizes match
  // are reused, with their contents; the others are pinned new. The maps the
  // registry sizes at install (capacity 0) get `ct_max` entries.
  virtual std::unique_ptr<LoadedProgram> load(const std::string& name, std::uint32_t ct_max) = 0;
  // Attaches the pinned program `name` in the given mode.
  virtual std::unique_ptr<Attacher> attacher(const std::string& name, AttachMode mode) = 0;
  // Removes every pin and pin folder of the node; returns the tcx links that
  // went with them.
  virtual int remove_pins() = 0;
  // tcx on kernels that have it (6.6 and later), tc before.
  virtual AttachMode kernel_attach_mode() const = 0;
};

} // namespace weft
