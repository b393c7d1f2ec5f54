#include "loader/model/error.hpp"

#include <cstring>

namespace weft {

SystemError::SystemError(const std::string& what, int err)
    : std::runtime_error(what + ": " + std::strerror(err)), err_(err) {}

} // namespace weft
