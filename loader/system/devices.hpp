// Network devices of the current namespace, through libnl-route.
#pragma once

#include <optional>
#include <string>

#include "loader/fabric/datapath.hpp"

struct nl_sock;

namespace weft {

// A sysctl of the current namespace under /proc/sys: its value without the
// newline ("" when it cannot be read), and writing one (throws).
std::string read_sysctl(const std::string& path);
void write_sysctl(const std::string& path, const std::string& value);

// The node's GRO device (add_gro_device), made by `weft node install --uplink`.
inline constexpr const char* kGroDevice = "weft-gro";

class NetlinkDevices : public Devices {
public:
  NetlinkDevices();
  ~NetlinkDevices() override;
  NetlinkDevices(const NetlinkDevices&) = delete;
  NetlinkDevices& operator=(const NetlinkDevices&) = delete;

  std::optional<Device> find(const std::string& name) const override;
  std::optional<Device> find(int ifindex) const override;

  // An idle, up, collect_md vxlan device on UDP 4789 (idempotent). It
  // carries nothing: the uplink program decapsulates or drops every VXLAN
  // frame for the node's VTEP before the stack sees it. Its UDP tunnel
  // socket is what lets GRO merge VXLAN segments before tc ingress, which
  // lifts TCP through the tunnel by a third here (README). Forwarding and
  // IPv6 are off on it, so a frame the kernel decapsulates on it, sent to
  // port 4789 of another address, reaches no tenant and is not routed.
  void add_gro_device(const std::string& name);
  // Removes a device of this namespace; one that is not there is fine.
  void remove_device(const std::string& name);

private:
  ::nl_sock* sock_ = nullptr;
};

} // namespace weft
