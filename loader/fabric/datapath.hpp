// What the fabric needs of a node's datapath, as interfaces: the devices of
// its namespace and attaching the port program to them. The system layer
// implements them with netlink and libbpf (loader/system/); the unit tests
// with fakes. The fabric links neither libbpf nor libnl.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace weft {

enum class AttachMode { Tcx, Tc };
std::string to_string(AttachMode mode);

struct Attachment {
  std::string device;
  int ifindex = 0;
  AttachMode mode = AttachMode::Tcx;
  std::uint32_t prog_id = 0;
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

} // namespace weft
