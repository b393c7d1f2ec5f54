#include "loader/system/netns.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sched.h>

#include "loader/system/bpf.hpp"

namespace weft {

void enter_netns(const std::string& name) {
  std::string path = "/run/netns/" + name;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    throw SystemError("network namespace " + name + " (" + path + ")", errno);
  if (::setns(fd.get(), CLONE_NEWNET) != 0)
    throw SystemError("enter network namespace " + name, errno);
}

} // namespace weft
