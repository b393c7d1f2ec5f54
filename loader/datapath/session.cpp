#include "loader/datapath/session.hpp"

#include "loader/system/neighbours.hpp"
#include "maps/registry.hpp"
#include "maps/weft_abi.h"

namespace weft {

KernelMap& Session::map(const std::string& name) {
  auto it = maps_.find(name);
  if (it != maps_.end())
    return *it->second;
  installation_.require_installed();
  if (!path_exists(layout_.map(name)))
    throw std::runtime_error("map " + name + ": no such weft map on node " + layout_.node);
  auto opened = std::make_unique<KernelMap>(KernelMap::open_pinned(name, layout_.map(name)));
  return *maps_.emplace(name, std::move(opened)).first->second;
}

MapSet Session::fabric_maps() {
  MapSet set;
  for (const auto& spec : maps::kMaps) {
    std::string name(spec.name);
    // Apply writes its own maps, bumps the configuration's rule generation,
    // and clears counters and rule hits that no longer mean anything (or
    // belonged to another port).
    if (spec.owner != maps::Owner::Datapath || name == WEFT_MAP_STATS || name == WEFT_MAP_SG_HITS ||
        name == WEFT_MAP_PORT_STATS || name == WEFT_MAP_PORT_HITS || name == WEFT_MAP_VTEP_PATHS)
      set[name] = &map(name);
  }
  return set;
}

const Devices& Session::devices() {
  if (!devices_)
    devices_ = std::make_unique<NetlinkDevices>();
  return *devices_;
}

const Record& Session::record() {
  if (!record_)
    record_ = records_.load().value_or(Record{});
  return *record_;
}

const State& Session::applied() {
  if (!applied_)
    applied_ = parse_state(record().document);
  return *applied_;
}

Plan Session::apply(const std::string& document, bool dry_run) {
  return apply(parse_state(document), document, dry_run);
}

namespace {

// The record read once for a whole apply: the plan and the check for an
// unchanged document share it (a cloud's record holds megabytes of JSON).
class RecordReadOnce : public RecordStore {
public:
  explicit RecordReadOnce(RecordStore& store) : store_(store), record_(store.load()) {}
  std::optional<Record> load() const override { return record_; }
  void save(const Record& record) override {
    store_.save(record);
    record_ = record;
  }
  void remove() override {
    store_.remove();
    record_.reset();
  }

private:
  RecordStore& store_;
  std::optional<Record> record_;
};

} // namespace

Plan Session::apply(const State& state, const std::string& document, bool dry_run) {
  installation_.require_installed();
  auto attacher = installation_.attacher();
  RecordReadOnce records(records_);
  Fabric fabric(fabric_maps(), *attacher, devices(), records, layout_.node);
  Plan plan = fabric.plan(state);
  // Nothing to change and nothing new to record: not one write (weftd
  // reconciles on every event and must leave an unchanged node alone).
  auto recorded = records.load();
  if (!dry_run && plan.empty() && recorded.value_or(Record{}).document == document)
    return plan;
  if (!dry_run) {
    fabric.execute(plan, document);
    // Broadcast copies to the peers need their neighbours resolved.
    std::vector<std::uint32_t> peers;
    for (const auto& [key, value] : plan.desired.maps.at(WEFT_MAP_VTEPS))
      peers.push_back(from_bytes<std::uint32_t>(key));
    probe_neighbours(peers);
    record_.reset();
    applied_.reset();
  }
  return plan;
}

} // namespace weft
