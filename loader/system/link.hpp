// Hooks that run a program on a device's ingress, as the kernel offers them:
// tcx links (6.6 and later), pinned so they outlive the command, and
// clsact/cls_bpf filters before that (Debian 12's own 6.1 kernel). Both
// replace a program atomically. Thin wrappers; the choice of hook and the
// pins are loader/datapath/attach.cpp's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "loader/model/fd.hpp"

namespace weft {

// The running kernel has tcx (6.6 and later).
bool kernel_has_tcx();

// A new tcx ingress link of `prog_fd` on `ifindex` (not pinned yet).
Fd tcx_attach(int prog_fd, int ifindex, const std::string& device);
// Swaps the program behind a link in place.
void link_update(int link_fd, int prog_fd, const std::string& device);
// What a tcx link points at; nullopt when it is not one (or is defunct).
struct LinkTarget {
  std::uint32_t prog_id = 0;
  std::uint32_t ifindex = 0; // 0: the device is gone
};
std::optional<LinkTarget> link_target(int link_fd);

// A cls_bpf filter in the device's clsact ingress, in a slot of its own
// (handle and priority): attaching again replaces the program there.
struct TcSlot {
  std::uint32_t handle = 0;
  std::uint32_t priority = 0;
};
void tc_attach(int prog_fd, int ifindex, TcSlot slot, const std::string& device);
// A missing filter, clsact or device is fine.
void tc_detach(int ifindex, TcSlot slot, const std::string& device);
// The id of the program in the slot, nullopt when the slot is empty.
std::optional<std::uint32_t> tc_query(int ifindex, TcSlot slot);

} // namespace weft
