#include "loader/system/port_object.hpp"

#include <bpf/libbpf.h>
#include <cerrno>
#include <stdexcept>

#include "loader/model/error.hpp"
#include "maps/weft_abi.h"
// The skeleton comes after the ABI header it relies on.
#include "port.skel.h"

namespace weft {

PortObject::PortObject(const std::string& pin_root) : pin_root_(pin_root) {
  LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = pin_root_.c_str());
  skel_ = port_bpf__open_opts(&open_opts);
  if (!skel_)
    throw SystemError("open the port program", errno);
}

PortObject::~PortObject() {
  port_bpf__destroy(skel_);
}

void PortObject::set_max_entries(const std::string& map, std::uint32_t entries) {
  bpf_map* found = bpf_object__find_map_by_name(skel_->obj, map.c_str());
  if (!found || bpf_map__set_max_entries(found, entries) != 0)
    throw std::runtime_error("size map " + map + " of the port program");
}

void PortObject::load() {
  if (int err = port_bpf__load(skel_); err != 0)
    throw SystemError("load the port program (see the verifier log above)", -err);
}

int PortObject::program_fd() const {
  return bpf_program__fd(skel_->progs.weft_port);
}

} // namespace weft
