// Network devices of the current namespace, through libnl-route.
#pragma once

#include <optional>
#include <string>

#include "loader/fabric/datapath.hpp"

struct nl_sock;

namespace weft {

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
