// One command's view of a node: its layout, installation, pinned maps,
// devices and records, opened as needed.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "loader/datapath/kernel_datapath.hpp"
#include "loader/fabric/reconcile.hpp"
#include "loader/fabric/record.hpp"
#include "loader/model/layout.hpp"
#include "loader/model/state.hpp"
#include "loader/system/bpf.hpp"
#include "loader/system/devices.hpp"

namespace weft {

class Session {
public:
  explicit Session(Layout layout)
      : layout_(std::move(layout)), installation_(layout_), records_(layout_.record()) {}

  const Layout& layout() const { return layout_; }
  Installation& installation() { return installation_; }
  // A pinned map; the node must be installed.
  KernelMap& map(const std::string& name);
  // Every map `weft apply` touches, plus stats.
  MapSet fabric_maps();
  const Devices& devices();
  RecordStore& records() { return records_; }
  // The last applied document, parsed (an empty state before the first apply).
  const State& applied();
  const Record& record();

  // `weft apply`: validates the whole document first (StateError, nothing
  // touched), then plans and, unless dry_run, carries the plan out. A plan
  // with nothing to do for the document already recorded writes nothing.
  Plan apply(const std::string& document, bool dry_run);
  // The same for a document already parsed (`state` is parse_state(document)).
  Plan apply(const State& state, const std::string& document, bool dry_run);

private:
  Layout layout_;
  Installation installation_;
  FileRecordStore records_;
  std::map<std::string, std::unique_ptr<KernelMap>> maps_;
  std::unique_ptr<NetlinkDevices> devices_;
  std::optional<Record> record_;
  std::optional<State> applied_;
};

} // namespace weft
