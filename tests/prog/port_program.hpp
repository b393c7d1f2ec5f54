// The port program, loaded from its skeleton with every map unpinned.
//
// port_program.cpp is the only file that includes the generated skeleton
// (its struct name follows the build's `bpftool gen skeleton ... name`); the
// tests see plain libbpf handles and the ABI.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "maps/weft_abi.h"

struct bpf_map;
struct bpf_object;
struct bpf_program;

namespace weft::test {

struct PortMaps {
  bpf_map* config = nullptr;
  bpf_map* ports = nullptr;
  bpf_map* networks = nullptr;
  bpf_map* fdb = nullptr;
  bpf_map* arp = nullptr;
  bpf_map* spoof_v4 = nullptr;
  bpf_map* spoof_v6 = nullptr;
  bpf_map* port_macs = nullptr;
  bpf_map* flood = nullptr;
  bpf_map* stats = nullptr;
  bpf_map* sg_l4 = nullptr;
  bpf_map* sg_remote = nullptr;
  bpf_map* ct = nullptr;
  bpf_map* ct_new = nullptr;
  bpf_map* ct_zones = nullptr;
  bpf_map* sg_hits = nullptr;
  bpf_map* vteps = nullptr;
  bpf_map* vnis = nullptr;
  bpf_map* segments = nullptr;
  bpf_map* vtep_paths = nullptr;
  bpf_map* port_stats = nullptr;
};

// What the programs counted, packets and bytes summed over the CPUs, by
// (device, reason): WEFT_MAP_STATS merged with the slots of
// WEFT_MAP_PORT_STATS, as `weft stats` reads them.
using Counters = std::map<std::pair<std::uint32_t, std::uint32_t>, weft_counter>;
Counters read_counters(const PortMaps& maps);

// tx and rx of each VTEP slot in WEFT_MAP_VTEP_PATHS that counted any,
// summed over the CPUs.
std::map<std::uint32_t, weft_vtep_path> read_vtep_paths(const PortMaps& maps);

// The verdict of one BPF_PROG_TEST_RUN and the frame as the program left it.
struct RunResult {
  std::uint32_t retval;
  std::vector<std::uint8_t> out;
};

// Runs `program` once on `frame` as if it came in on device `ifindex` (a
// real device: a tc test run needs one). Throws std::runtime_error.
RunResult run_once(bpf_program* program, std::uint32_t ifindex,
                   const std::vector<std::uint8_t>& frame);

class PortProgram {
public:
  // Opens and loads bpf/port.bpf.c with fresh, private maps: the pin path of
  // every map is cleared before load, so nothing is read from or left in
  // bpffs. `ct_max` (0: the object's) sizes both conntrack tables, as
  // `node install --ct-max` does. Throws std::runtime_error naming the step
  // and the errno.
  explicit PortProgram(std::uint32_t ct_max = 0);
  ~PortProgram();
  PortProgram(const PortProgram&) = delete;
  PortProgram& operator=(const PortProgram&) = delete;

  bpf_object* object() const;
  bpf_program* program() const;
  const PortMaps& maps() const { return maps_; }

  // Empties every map (the config array is zeroed; read-only data is left
  // alone), so one loaded program serves many tests: the verifier takes
  // seconds, an empty map as fresh as a new one takes none.
  void reset();

private:
  struct Skeleton;
  std::unique_ptr<Skeleton> skeleton_;
  PortMaps maps_;
};

} // namespace weft::test
