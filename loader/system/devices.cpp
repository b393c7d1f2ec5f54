#include "loader/system/devices.hpp"

#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <stdexcept>

namespace weft {

NetlinkDevices::NetlinkDevices() : sock_(nl_socket_alloc()) {
  if (!sock_)
    throw std::runtime_error("netlink: cannot allocate a socket");
  if (int err = nl_connect(sock_, NETLINK_ROUTE); err < 0) {
    nl_socket_free(sock_);
    throw std::runtime_error(std::string("netlink: connect: ") + nl_geterror(err));
  }
}

NetlinkDevices::~NetlinkDevices() {
  nl_socket_free(sock_);
}

static std::optional<Device> get(nl_sock* sock, int ifindex, const char* name) {
  rtnl_link* link = nullptr;
  if (rtnl_link_get_kernel(sock, ifindex, name, &link) < 0 || !link)
    return std::nullopt;
  Device dev;
  dev.name = rtnl_link_get_name(link);
  dev.ifindex = rtnl_link_get_ifindex(link);
  const char* kind = rtnl_link_get_type(link);
  dev.kind = kind ? kind : "";
  dev.up = (rtnl_link_get_flags(link) & IFF_UP) != 0;
  dev.mtu = rtnl_link_get_mtu(link);
  rtnl_link_put(link);
  return dev;
}

std::optional<Device> NetlinkDevices::find(const std::string& name) const {
  return get(sock_, 0, name.c_str());
}

std::optional<Device> NetlinkDevices::find(int ifindex) const {
  return get(sock_, ifindex, nullptr);
}

} // namespace weft
