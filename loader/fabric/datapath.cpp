#include "loader/fabric/datapath.hpp"

namespace weft {

std::string to_string(AttachMode mode) {
  return mode == AttachMode::Tcx ? "tcx" : "tc";
}

} // namespace weft
