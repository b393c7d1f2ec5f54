// Network devices of the current namespace, through libnl-route.
#pragma once

#include <optional>
#include <string>

struct nl_sock;

namespace weft {

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

class NetlinkDevices : public Devices {
public:
  NetlinkDevices();
  ~NetlinkDevices() override;
  NetlinkDevices(const NetlinkDevices&) = delete;
  NetlinkDevices& operator=(const NetlinkDevices&) = delete;

  std::optional<Device> find(const std::string& name) const override;
  std::optional<Device> find(int ifindex) const override;

private:
  ::nl_sock* sock_ = nullptr;
};

} // namespace weft
