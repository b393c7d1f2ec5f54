// The uplink program (bpf/uplink.bpf.c), loaded from its skeleton onto the
// maps of a loaded port program: on a node both programs open the same
// pinned maps, here they share the port program's private ones, so a test
// writes the node's state once and runs either program on it.
//
// uplink_program.cpp is the only file that includes the uplink skeleton.
#pragma once

#include <memory>

#include "tests/prog/port_program.hpp"

struct bpf_program;

namespace weft::test {

class UplinkProgram {
public:
  // Opens and loads bpf/uplink.bpf.c with every map of `maps_of` reused by
  // name (nothing pinned, nothing read from bpffs). Throws
  // std::runtime_error naming the step and the errno.
  explicit UplinkProgram(const PortProgram& maps_of);
  ~UplinkProgram();
  UplinkProgram(const UplinkProgram&) = delete;
  UplinkProgram& operator=(const UplinkProgram&) = delete;

  bpf_program* program() const;

private:
  struct Skeleton;
  std::unique_ptr<Skeleton> skeleton_;
};

} // namespace weft::test
