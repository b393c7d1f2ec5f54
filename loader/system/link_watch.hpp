// Network devices appearing, going and changing in the current namespace, as
// the kernel announces them (RTNLGRP_LINK), so that the agent attaches a
// port's tap the moment a hypervisor makes it instead of at the next apply.
#pragma once

#include <chrono>
#include <set>
#include <string>

struct nl_sock;
struct nl_cb;

namespace weft {

struct LinkEvents {
  std::set<std::string> devices; // names of devices added, changed or removed
  // The kernel dropped announcements (the socket's buffer filled): any
  // device may have changed.
  bool overflow = false;
  std::chrono::steady_clock::time_point first; // when the first was read
  bool empty() const { return devices.empty() && !overflow; }
};

class LinkWatch {
public:
  LinkWatch();
  ~LinkWatch();
  LinkWatch(const LinkWatch&) = delete;
  LinkWatch& operator=(const LinkWatch&) = delete;

  // Readable when announcements wait; never blocks in read().
  int fd() const;
  // Every announcement that waits, drained.
  LinkEvents read();

private:
  ::nl_sock* sock_ = nullptr;
  ::nl_cb* cb_ = nullptr;
};

} // namespace weft
