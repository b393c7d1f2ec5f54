#include "loader/agent/state_file.hpp"

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/inotify.h>

#include "loader/model/error.hpp"

namespace weft {

StateFile::StateFile(std::string path)
    : path_(std::move(path)), inotify_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
  if (!inotify_)
    throw SystemError("inotify", errno);
  auto slash = path_.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path_.substr(0, slash ? slash : 1);
  name_ = slash == std::string::npos ? path_ : path_.substr(slash + 1);
  // The folder, not the file: a new file renamed over the old one (how
  // editors and config managers write) replaces the watched inode.
  if (::inotify_add_watch(inotify_.get(), dir.c_str(),
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM) < 0)
    throw SystemError("watch " + dir + " for " + name_, errno);
  last_.reset();
}

std::optional<Snapshot> StateFile::take() {
  // Drain the events; which ones came does not matter, the file is read.
  alignas(inotify_event) char buffer[16 * (sizeof(inotify_event) + NAME_MAX + 1)];
  while (::read(inotify_.get(), buffer, sizeof(buffer)) > 0) {
  }
  std::ifstream in(path_);
  if (!in) {
    problem_ = path_ + ": " + std::strerror(errno);
    readable_ = false;
    return std::nullopt;
  }
  std::stringstream text;
  text << in.rdbuf();
  problem_.clear();
  readable_ = true;
  if (last_ && *last_ == text.str())
    return std::nullopt;
  last_ = text.str();
  return Snapshot{*last_, ++revision_, ""};
}

} // namespace weft
