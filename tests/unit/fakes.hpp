// Fakes of the kernel-facing layer (maps, attachments, devices), so the domain
// code — compile, diff, reconcile — is tested as it runs, without a kernel.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>

#include "loader/fabric/compile.hpp"
#include "loader/fabric/datapath.hpp"
#include "loader/fabric/reconcile.hpp"
#include "maps/registry.hpp"
#include "maps/weft_abi.h"

namespace weft::test {

class FakeDevices : public Devices {
public:
  void add(const std::string& name, int ifindex) { devices_[name] = ifindex; }
  void remove(const std::string& name) { devices_.erase(name); }
  std::optional<Device> find(const std::string& name) const override {
    auto it = devices_.find(name);
    if (it == devices_.end())
      return std::nullopt;
    return Device{name, it->second, "veth", true, 1500};
  }
  std::optional<Device> find(int ifindex) const override {
    for (const auto& [name, index] : devices_)
      if (index == ifindex)
        return Device{name, index, "veth", true, 1500};
    return std::nullopt;
  }

private:
  std::map<std::string, int> devices_;
};

class FakeAttacher : public Attacher {
public:
  void attach(const std::string& device, int ifindex) override {
    attached[device] = ifindex;
    ++attaches;
  }
  void detach(const std::string& device, int) override {
    attached.erase(device);
    ++detaches;
  }
  std::optional<Attachment> query(const std::string& device, int) const override {
    auto it = attached.find(device);
    if (it == attached.end())
      return std::nullopt;
    return Attachment{device, it->second, AttachMode::Tcx, 1};
  }
  std::map<std::string, int> attached;
  int attaches = 0;
  int detaches = 0;
};

// Every map of a node, in memory, refusing what the kernel would (sizes and
// capacities of maps/registry.hpp). Per-CPU maps hold one value here.
struct FakeMaps {
  FakeMaps() {
    for (const auto& spec : maps::kMaps) {
      std::string name(spec.name);
      MapLimits limits{spec.key_size, spec.value_size, spec.capacity ? spec.capacity : kCtMax};
      maps.emplace(name, std::make_unique<MemoryMap>(name, limits));
    }
  }
  static constexpr std::size_t kCtMax = 65536;
  MapSet set() {
    MapSet out;
    for (auto& [name, map] : maps)
      out[name] = map.get();
    return out;
  }
  int writes() const {
    int n = 0;
    for (const auto& [name, map] : maps)
      n += map->writes();
    return n;
  }
  MemoryMap& operator[](const std::string& name) { return *maps.at(name); }
  std::map<std::string, std::unique_ptr<MemoryMap>> maps;
};

} // namespace weft::test
