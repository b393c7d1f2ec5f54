#include "loader/system/link.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <linux/bpf.h>
#include <sys/utsname.h>

#include "loader/model/error.hpp"

namespace weft {

// Debian 12's UAPI headers predate tcx (DESIGN.md §5).
constexpr int kTcxIngress = 46;

bool kernel_has_tcx() {
  utsname u{};
  int major = 0, minor = 0;
  return ::uname(&u) == 0 && std::sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
         (major > 6 || (major == 6 && minor >= 6));
}

Fd tcx_attach(int prog_fd, int ifindex, const std::string& device) {
  Fd link(bpf_link_create(prog_fd, ifindex, static_cast<bpf_attach_type>(kTcxIngress), nullptr));
  if (!link)
    throw SystemError("attach tcx program to " + device, errno);
  return link;
}

void link_update(int link_fd, int prog_fd, const std::string& device) {
  if (bpf_link_update(link_fd, prog_fd, nullptr) != 0)
    throw SystemError("replace program on " + device, errno);
}

// bpf_link_info's tcx member (ifindex, attach_type) is newer than Debian 12's
// headers; it starts the union.
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

void tc_attach(int prog_fd, int ifindex, TcSlot slot, const std::string& device) {
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST)
    throw SystemError("create clsact on " + device, -err);
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE, .prog_id = 0,
              .handle = slot.handle, .priority = slot.priority);
  if ((err = bpf_tc_attach(&hook, &opts)) != 0)
    throw SystemError("attach tc program to " + device, -err);
}

void tc_detach(int ifindex, TcSlot slot, const std::string& device) {
  if (ifindex <= 0)
    return;
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = slot.handle, .priority = slot.priority);
  int err = bpf_tc_detach(&hook, &opts);
  if (err && err != -ENOENT && err != -ENODEV && err != -EINVAL)
    throw SystemError("detach tc program from " + device, -err);
}

std::optional<std::uint32_t> tc_query(int ifindex, TcSlot slot) {
  if (ifindex <= 0)
    return std::nullopt;
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = slot.handle, .priority = slot.priority);
  if (bpf_tc_query(&hook, &opts) != 0)
    return std::nullopt;
  return opts.prog_id;
}

} // namespace weft
