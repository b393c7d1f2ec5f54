// Attaching the port program to devices: tcx links (kernel >= 6.6), pinned so
// they outlive the command, or clsact/cls_bpf filters where tcx is missing
// (Debian 12's own 6.1 kernel). Both replace the program atomically.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "loader/bpf.hpp"
#include "loader/layout.hpp"

namespace weft {

enum class AttachMode { Tcx, Tc };
std::string to_string(AttachMode mode);
// tcx when the running kernel has it (6.6 and later).
AttachMode default_attach_mode();

struct Attachment {
  std::string device;
  int ifindex = 0;
  AttachMode mode = AttachMode::Tcx;
  std::uint32_t prog_id = 0;
};

class Attacher {
public:
  virtual ~Attacher() = default;
  // Idempotent: an attachment that already runs this program is left alone.
  virtual void attach(const std::string& device, int ifindex) = 0;
  // Missing attachments (or a device that is gone) are fine.
  virtual void detach(const std::string& device, int ifindex) = 0;
  virtual std::optional<Attachment> query(const std::string& device, int ifindex) const = 0;
};

class KernelAttacher : public Attacher {
public:
  // `prog` is the pinned port program (an fd from bpf_obj_get).
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

// The id of the program behind an fd (0 if none).
std::uint32_t prog_id_of(int prog_fd);

} // namespace weft
