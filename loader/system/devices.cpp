#include "loader/system/devices.hpp"

#include <fstream>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/vxlan.h>
#include <stdexcept>

#include "maps/weft_abi.h"

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

namespace weft {

std::string read_sysctl(const std::string& path) {
  std::ifstream in(path);
  std::string value;
  std::getline(in, value);
  return value;
}

void write_sysctl(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  out << value << "\n";
  out.close();
  if (!out)
    throw std::runtime_error("write " + value + " to " + path);
}

void NetlinkDevices::add_gro_device(const std::string& name) {
  if (!find(name)) {
    rtnl_link* link = rtnl_link_vxlan_alloc();
    if (!link)
      throw std::runtime_error("netlink: cannot allocate a vxlan device");
    rtnl_link_set_name(link, name.c_str());
    rtnl_link_vxlan_set_collect_metadata(link, 1);
    rtnl_link_vxlan_set_port(link, WEFT_VXLAN_PORT);
    int err = rtnl_link_add(sock_, link, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_link_put(link);
    if (err < 0 && err != -NLE_EXIST)
      throw std::runtime_error("create the GRO device " + name + ": " + nl_geterror(err));
  }
  write_sysctl("/proc/sys/net/ipv4/conf/" + name + "/forwarding", "0");
  write_sysctl("/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6", "1");
  auto dev = find(name);
  if (!dev)
    throw std::runtime_error("create the GRO device " + name + ": it is not there");
  if (dev->up)
    return;
  rtnl_link* change = rtnl_link_alloc();
  rtnl_link* current = nullptr;
  if (rtnl_link_get_kernel(sock_, dev->ifindex, nullptr, &current) < 0 || !change) {
    rtnl_link_put(change);
    throw std::runtime_error("bring up the GRO device " + name);
  }
  rtnl_link_set_flags(change, IFF_UP);
  int err = rtnl_link_change(sock_, current, change, 0);
  rtnl_link_put(change);
  rtnl_link_put(current);
  if (err < 0)
    throw std::runtime_error("bring up the GRO device " + name + ": " + nl_geterror(err));
}

void NetlinkDevices::remove_device(const std::string& name) {
  auto dev = find(name);
  if (!dev)
    return;
  rtnl_link* link = rtnl_link_alloc();
  if (!link)
    return;
  rtnl_link_set_ifindex(link, dev->ifindex);
  int err = rtnl_link_delete(sock_, link);
  rtnl_link_put(link);
  if (err < 0 && err != -NLE_NODEV && err != -NLE_OBJ_NOTFOUND)
    throw std::runtime_error("remove device " + name + ": " + nl_geterror(err));
}

} // namespace weft
