#include "loader/system/program_object.hpp"

#include <bpf/libbpf.h>
#include <cerrno>
#include <stdexcept>

#include "loader/model/error.hpp"
#include "loader/model/layout.hpp"
#include "maps/weft_abi.h"
// The skeletons come after the ABI header they rely on.
#include "port.skel.h"
#include "uplink.skel.h"

namespace weft {

class ProgramObject::Skeleton {
public:
  virtual ~Skeleton() = default;
  virtual bpf_object* object() const = 0;
  virtual int load() = 0;
  virtual bpf_program* program() const = 0;
};

namespace {

class PortSkeleton : public ProgramObject::Skeleton {
public:
  explicit PortSkeleton(const bpf_object_open_opts* opts) : skel_(port_bpf__open_opts(opts)) {
    if (!skel_)
      throw SystemError("open the port program", errno);
  }
  ~PortSkeleton() override { port_bpf__destroy(skel_); }
  PortSkeleton(const PortSkeleton&) = delete;
  PortSkeleton& operator=(const PortSkeleton&) = delete;
  bpf_object* object() const override { return skel_->obj; }
  int load() override { return port_bpf__load(skel_); }
  bpf_program* program() const override { return skel_->progs.weft_port; }

private:
  port_bpf* skel_;
};

class UplinkSkeleton : public ProgramObject::Skeleton {
public:
  explicit UplinkSkeleton(const bpf_object_open_opts* opts) : skel_(uplink_bpf__open_opts(opts)) {
    if (!skel_)
      throw SystemError("open the uplink program", errno);
  }
  ~UplinkSkeleton() override { uplink_bpf__destroy(skel_); }
  UplinkSkeleton(const UplinkSkeleton&) = delete;
  UplinkSkeleton& operator=(const UplinkSkeleton&) = delete;
  bpf_object* object() const override { return skel_->obj; }
  int load() override { return uplink_bpf__load(skel_); }
  bpf_program* program() const override { return skel_->progs.weft_uplink; }

private:
  uplink_bpf* skel_;
};

} // namespace

ProgramObject::ProgramObject(const std::string& program, const std::string& pin_root)
    : program_(program), pin_root_(pin_root) {
  LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = pin_root_.c_str());
  if (program == kPortProgram)
    skel_ = std::make_unique<PortSkeleton>(&open_opts);
  else if (program == kUplinkProgram)
    skel_ = std::make_unique<UplinkSkeleton>(&open_opts);
  else
    throw std::logic_error("no BPF program " + program);
}

ProgramObject::~ProgramObject() = default;

void ProgramObject::set_max_entries(const std::string& map, std::uint32_t entries) {
  bpf_map* found = bpf_object__find_map_by_name(skel_->object(), map.c_str());
  if (!found || bpf_map__set_max_entries(found, entries) != 0)
    throw std::runtime_error("size map " + map + " of the " + program_ + " program");
}

void ProgramObject::load() {
  if (int err = skel_->load(); err != 0)
    throw SystemError("load the " + program_ + " program (see the verifier log above)", -err);
}

int ProgramObject::program_fd() const {
  return bpf_program__fd(skel_->program());
}

} // namespace weft
