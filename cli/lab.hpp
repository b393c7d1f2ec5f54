// `weft lab up|down|status`: a node and its VMs as network namespaces on this
// machine (DESIGN.md §3.3), built on the same install and apply as a real node.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "loader/model/layout.hpp"

namespace weft::cli {

struct LabOptions {
  Layout layout; // bpffs and state dir from the global options; node set by the lab
  std::string prefix = "weftlab"; // every namespace the lab makes starts with it
  bool verbose = true;            // progress lines on stderr
};

// Each returns what it did as JSON; they throw on failure (after cleaning up
// what they made, for up).
nlohmann::json lab_up(const LabOptions& options);
nlohmann::json lab_down(const LabOptions& options);
// Measures the connectivity matrix with real traffic: {"matrix": [...], "ok": bool}.
nlohmann::json lab_status(const LabOptions& options);
// The embedded desired state the lab applies.
std::string lab_state_document(const LabOptions& options);

} // namespace weft::cli
