// Working inside a named network namespace (/run/netns/NAME) while keeping the
// mount namespace, so that the bpffs pins stay reachable (DESIGN.md §5).
#pragma once

#include <string>

namespace weft {

// Moves the calling thread into /run/netns/<name> for good.
void enter_netns(const std::string& name);

} // namespace weft
