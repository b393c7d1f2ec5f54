// Errors from the system, with what was being done and the errno's text:
// "open map /sys/...: No such file or directory". Any layer may throw one.
#pragma once

#include <stdexcept>
#include <string>

namespace weft {

class SystemError : public std::runtime_error {
public:
  SystemError(const std::string& what, int err);
  int err() const { return err_; }

private:
  int err_;
};

} // namespace weft
