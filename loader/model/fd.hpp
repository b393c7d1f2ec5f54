// An owned file descriptor: every layer's RAII for the fds it opens.
#pragma once

#include <unistd.h>

#include <utility>

namespace weft {

class Fd {
public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  // Closes now, reporting what close(2) says (a write-back error, for a file
  // just written): 0 or -1 with errno.
  int close() { return fd_ < 0 ? 0 : ::close(std::exchange(fd_, -1)); }

private:
  void reset() {
    if (fd_ >= 0)
      ::close(std::exchange(fd_, -1));
  }
  int fd_ = -1;
};

} // namespace weft
