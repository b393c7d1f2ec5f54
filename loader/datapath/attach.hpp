// Attaching the port program to devices (the fabric's Attacher): tcx links
// (kernel >= 6.6), pinned under links/ so they outlive the command, or
// clsact/cls_bpf filters in a slot of weft's own where tcx is missing
// (Debian 12's own 6.1 kernel). Both replace the program atomically.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "loader/fabric/datapath.hpp"
#include "loader/model/fd.hpp"
#include "loader/model/layout.hpp"

namespace weft {

// tcx when the running kernel has it (6.6 and later).
AttachMode default_attach_mode();

class KernelAttacher : public Attacher {
public:
  // `prog` is the pinned port program, opened.
  KernelAttacher(Layout layout, AttachMode mode, Fd prog);

  void attach(const std::string& device, int ifindex) override;
  void detach(const std::string& device, int ifindex) override;
  std::optional<Attachment> query(const std::string& device, int ifindex) const override;
  AttachMode mode() const { return mode_; }

private:
  Layout layout_;
  AttachMode mode_;
  Fd prog_;
  std::uint32_t prog_id_ = 0;
};

} // namespace weft
