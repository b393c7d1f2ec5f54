#include "loader/datapath/attach.hpp"

#include "loader/system/bpf.hpp"
#include "loader/system/link.hpp"

namespace weft {

// Our clsact filter slot: a fixed handle and priority so REPLACE swaps in place.
constexpr TcSlot kTcSlot{0x7e1f, 0xc001};

AttachMode default_attach_mode() {
  return kernel_has_tcx() ? AttachMode::Tcx : AttachMode::Tc;
}

KernelAttacher::KernelAttacher(Layout layout, AttachMode mode, Fd prog)
    : layout_(std::move(layout)), mode_(mode), prog_(std::move(prog)) {
  if (auto info = prog_info(prog_.get()))
    prog_id_ = info->id;
}

void KernelAttacher::attach(const std::string& device, int ifindex) {
  if (mode_ == AttachMode::Tc) {
    tc_attach(prog_.get(), ifindex, kTcSlot, device);
    return;
  }
  std::string pin = layout_.link(device);
  if (path_exists(pin)) {
    Fd link = open_pin(pin);
    auto target = link ? link_target(link.get()) : std::nullopt;
    if (target && target->ifindex == static_cast<std::uint32_t>(ifindex)) {
      if (target->prog_id != prog_id_)
        link_update(link.get(), prog_.get(), device);
      return;
    }
    // The device was re-created (or the link is defunct): start over.
    remove_pin(pin);
  }
  Fd link = tcx_attach(prog_.get(), ifindex, device);
  pin_object(link.get(), pin);
}

void KernelAttacher::detach(const std::string& device, int ifindex) {
  if (mode_ == AttachMode::Tc) {
    tc_detach(ifindex, kTcSlot, device);
    return;
  }
  // Unpinning the last reference to a tcx link detaches it.
  remove_pin(layout_.link(device));
}

std::optional<Attachment> KernelAttacher::query(const std::string& device, int ifindex) const {
  Attachment a{device, ifindex, mode_, 0};
  if (mode_ == AttachMode::Tc) {
    auto prog_id = tc_query(ifindex, kTcSlot);
    if (!prog_id)
      return std::nullopt;
    a.prog_id = *prog_id;
    return a;
  }
  std::string pin = layout_.link(device);
  if (!path_exists(pin))
    return std::nullopt;
  Fd link = open_pin(pin);
  auto target = link ? link_target(link.get()) : std::nullopt;
  if (!target || target->ifindex == 0)
    return std::nullopt;
  a.ifindex = static_cast<int>(target->ifindex);
  a.prog_id = target->prog_id;
  return a;
}

} // namespace weft
