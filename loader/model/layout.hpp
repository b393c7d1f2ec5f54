// Where a node's kernel objects and records live (DESIGN.md §3.2):
// <bpffs>/weft/<node>/{maps,progs,links}/ and <state-dir>/<node>/{applied,agent}.json.
#pragma once

#include <string>

namespace weft {

struct Layout {
  std::string bpffs = "/sys/fs/bpf";
  std::string state_dir = "/run/weft";
  std::string node;

  std::string weft_root() const { return bpffs + "/weft"; }
  std::string root() const { return weft_root() + "/" + node; }
  std::string maps_dir() const { return root() + "/maps"; }
  std::string map(const std::string& name) const { return maps_dir() + "/" + name; }
  std::string progs_dir() const { return root() + "/progs"; }
  std::string prog(const std::string& name) const { return progs_dir() + "/" + name; }
  std::string links_dir() const { return root() + "/links"; }
  std::string link(const std::string& device) const { return links_dir() + "/" + device; }
  std::string record_dir() const { return state_dir + "/" + node; }
  std::string record() const { return record_dir() + "/applied.json"; }
  // What weftd says of itself (`weft agent status`), beside the record.
  std::string agent_status() const { return record_dir() + "/" + kAgentStatusFile; }
  static constexpr const char* kAgentStatusFile = "agent.json";
};

// The program every port device runs, and the one on the uplink and the
// provider networks' devices; their pin names under progs/.
inline constexpr const char* kPortProgram = "port";
inline constexpr const char* kUplinkProgram = "uplink";

} // namespace weft
