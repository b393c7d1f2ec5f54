#include "loader/system/attach.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstring>
#include <linux/bpf.h>
#include <sys/utsname.h>

namespace weft {

// Debian 12's UAPI headers predate tcx (DESIGN.md §5).
constexpr int kTcxIngress = 46;
// Our clsact filter slot: a fixed handle and priority so REPLACE swaps in place.
constexpr std::uint32_t kTcHandle = 0x7e1f;
constexpr std::uint32_t kTcPriority = 0xc001;

AttachMode default_attach_mode() {
  utsname u{};
  int major = 0, minor = 0;
  if (::uname(&u) == 0 && std::sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
      (major > 6 || (major == 6 && minor >= 6)))
    return AttachMode::Tcx;
  return AttachMode::Tc;
}

std::uint32_t prog_id_of(int prog_fd) {
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0)
    return 0;
  return info.id;
}

namespace {

// What a pinned tcx link points at. bpf_link_info's tcx member (ifindex,
// attach_type) is newer than Debian 12's headers; it starts the union.
struct LinkTarget {
  std::uint32_t prog_id = 0;
  std::uint32_t ifindex = 0;
};

std::optional<LinkTarget> link_target(int link_fd) {
  bpf_link_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(link_fd, &info, &len) != 0)
    return std::nullopt;
  LinkTarget target;
  target.prog_id = info.prog_id;
  std::uint32_t union_words[2];
  std::memcpy(union_words, &info.raw_tracepoint, sizeof(union_words));
  target.ifindex = union_words[0];
  return target;
}

} // namespace

KernelAttacher::KernelAttacher(Layout layout, AttachMode mode, Fd prog)
    : layout_(std::move(layout)), mode_(mode), prog_(std::move(prog)),
      prog_id_(prog_id_of(prog_.get())) {}

void KernelAttacher::attach(const std::string& device, int ifindex) {
  if (mode_ == AttachMode::Tc) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
    int err = bpf_tc_hook_create(&hook);
    if (err && err != -EEXIST)
      throw SystemError("create clsact on " + device, -err);
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_.get(), .flags = BPF_TC_F_REPLACE, .prog_id = 0,
                .handle = kTcHandle, .priority = kTcPriority);
    if ((err = bpf_tc_attach(&hook, &opts)) != 0)
      throw SystemError("attach tc program to " + device, -err);
    return;
  }

  std::string pin = layout_.link(device);
  if (path_exists(pin)) {
    Fd link(bpf_obj_get(pin.c_str()));
    auto target = link ? link_target(link.get()) : std::nullopt;
    if (target && target->ifindex == static_cast<std::uint32_t>(ifindex)) {
      if (target->prog_id == prog_id_)
        return;
      if (bpf_link_update(link.get(), prog_.get(), nullptr) != 0)
        throw SystemError("replace program on " + device, errno);
      return;
    }
    // The device was re-created (or the link is defunct): start over.
    remove_pin(pin);
  }
  Fd link(
      bpf_link_create(prog_.get(), ifindex, static_cast<bpf_attach_type>(kTcxIngress), nullptr));
  if (!link)
    throw SystemError("attach tcx program to " + device, errno);
  if (bpf_obj_pin(link.get(), pin.c_str()) != 0)
    throw SystemError("pin link " + pin, errno);
}

void KernelAttacher::detach(const std::string& device, int ifindex) {
  if (mode_ == AttachMode::Tc) {
    if (ifindex <= 0)
      return;
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kTcHandle, .priority = kTcPriority);
    int err = bpf_tc_detach(&hook, &opts);
    if (err && err != -ENOENT && err != -ENODEV && err != -EINVAL)
      throw SystemError("detach tc program from " + device, -err);
    return;
  }
  // Unpinning the last reference to a tcx link detaches it.
  remove_pin(layout_.link(device));
}

std::optional<Attachment> KernelAttacher::query(const std::string& device, int ifindex) const {
  Attachment a{device, ifindex, mode_, 0};
  if (mode_ == AttachMode::Tc) {
    if (ifindex <= 0)
      return std::nullopt;
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kTcHandle, .priority = kTcPriority);
    if (bpf_tc_query(&hook, &opts) != 0)
      return std::nullopt;
    a.prog_id = opts.prog_id;
    return a;
  }
  std::string pin = layout_.link(device);
  if (!path_exists(pin))
    return std::nullopt;
  Fd link(bpf_obj_get(pin.c_str()));
  auto target = link ? link_target(link.get()) : std::nullopt;
  if (!target || target->ifindex == 0)
    return std::nullopt;
  a.ifindex = static_cast<int>(target->ifindex);
  a.prog_id = target->prog_id;
  return a;
}

} // namespace weft
