// `weft lab`: the nodes and VMs of a topology (loader/lab/topology.hpp) as
// network namespaces on this machine (DESIGN.md §3.3), built on the same
// install and apply as a real node. The demo, the README's first command and
// the e2e harness (tests/e2e/weftlab.py) all build their labs here.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "loader/lab/topology.hpp"
#include "loader/model/layout.hpp"

namespace weft::lab {

struct LabOptions {
  Layout layout; // bpffs and state dir from the global options; nodes from the topology
  std::string prefix = "weftlab"; // every namespace the lab makes starts with "<prefix>-"
  bool verbose = true;            // progress lines on stderr
};

// Each returns what it did as JSON and throws on failure.
// Builds the whole topology: namespaces, switches, VMs and physical hosts,
// install (with uplink, tunnel IP and physnet mappings) and apply on every
// node, then measures (after removing a lab of the same prefix, and
// cleaning up what it made when it fails). Remembers the topology for
// status and down.
nlohmann::json lab_up(const LabOptions& options, const Topology& topology);
// Makes the namespaces, switch wiring, VMs and physical hosts of the
// topology (a fragment of the lab's) that are not there yet; installs and applies nothing. Adds the
// fragment's nodes and VMs to the lab's record, so that down uninstalls those nodes (refused,
// before anything is made, when the fragment does not fit the record). With
// dry_run, says what it would make and makes and records nothing.
nlohmann::json lab_plug(const LabOptions& options, const Topology& topology, bool dry_run);
// Uninstalls the recorded nodes, removes every namespace of the prefix and
// forgets the record.
nlohmann::json lab_down(const LabOptions& options);
// Measures the connectivity matrix of VMs and physical hosts with real
// traffic against what Topology::expect_reachable says:
// {"nodes": [...], "matrix": [...], "ok": bool, …}.
nlohmann::json lab_status(const LabOptions& options);
// The topology `lab up` built under this prefix, or the embedded one.
Topology lab_topology(const LabOptions& options);

} // namespace weft::lab
