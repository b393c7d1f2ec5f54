// Fakes of the kernel-facing layer (maps, attachments, devices, the pinned
// datapath), so the domain code — compile, diff, reconcile, install — is
// tested as it runs, without a kernel.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>

#include "loader/fabric/compile.hpp"
#include "loader/fabric/datapath.hpp"
#include "loader/fabric/reconcile.hpp"
#include "loader/model/layout.hpp"
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

// A node's pins in memory, refusing what the kernel refuses: the maps of
// the registry appear at the first load (sized as the kernel sizes them),
// a load can fail as the verifier fails it, and attachments are kept per
// device with the id of the program they run.
class FakeDatapath : public Datapath {
public:
  // What the next load makes.
  std::string next_tag = "tag-1";
  std::optional<std::string> refuse_load; // the verifier's refusal
  AttachMode kernel_mode = AttachMode::Tcx;

  bool prepared = false;
  std::optional<PinnedProgram> program;        // the port program
  std::optional<PinnedProgram> uplink_program; // the uplink program
  std::map<std::string, std::unique_ptr<MemoryMap>> maps;
  std::uint32_t ct_max_loaded = 0;
  std::map<std::string, Attachment> attached; // by device
  int loads = 0;

  bool exists() const override { return prepared || program || !maps.empty(); }
  void prepare() override { prepared = true; }
  MapIo* map(const std::string& name) override {
    auto it = maps.find(name);
    return it == maps.end() ? nullptr : it->second.get();
  }
  std::vector<std::string> pinned_maps() const override {
    std::vector<std::string> out;
    for (const auto& [name, map] : maps)
      out.push_back(name);
    return out;
  }
  std::optional<PinnedProgram> pinned_program(const std::string& name) const override {
    if (name == kPortProgram)
      return program;
    if (name == kUplinkProgram)
      return uplink_program;
    return std::nullopt;
  }
  std::unique_ptr<LoadedProgram> load(const std::string& name, std::uint32_t ct_max) override {
    if (!prepared)
      throw std::logic_error("load before the pin folders were made");
    ++loads;
    if (name != kPortProgram && name != kUplinkProgram)
      throw std::runtime_error("no program " + name);
    // libbpf pins the maps while loading, before the verifier has its say.
    for (const auto& spec : maps::kMaps) {
      std::string map_name(spec.name);
      if (!maps.count(map_name))
        maps.emplace(map_name, std::make_unique<MemoryMap>(
                                   map_name, MapLimits{spec.key_size, spec.value_size,
                                                       spec.capacity ? spec.capacity : ct_max}));
    }
    if (refuse_load)
      throw std::runtime_error(*refuse_load);
    ct_max_loaded = ct_max;
    return std::make_unique<Loaded>(*this, name == kPortProgram ? program : uplink_program,
                                    next_tag);
  }
  std::unique_ptr<Attacher> attacher(const std::string& name, AttachMode mode) override {
    auto pinned = pinned_program(name);
    if (!pinned)
      throw std::runtime_error("open program " + name + ": not pinned");
    return std::make_unique<Attaching>(*this, mode, pinned->id);
  }
  int remove_pins() override {
    // Pinned tcx links go with the pins; tc filters stay on their devices.
    int links = 0;
    for (auto it = attached.begin(); it != attached.end();)
      if (it->second.mode == AttachMode::Tcx) {
        it = attached.erase(it);
        ++links;
      } else {
        ++it;
      }
    maps.clear();
    program.reset();
    uplink_program.reset();
    prepared = false;
    return links;
  }
  AttachMode kernel_attach_mode() const override { return kernel_mode; }

  // The pinned node configuration.
  weft_node_config config() {
    auto value = Map<std::uint32_t, weft_node_config>(*map(WEFT_MAP_CONFIG)).get(0);
    if (!value)
      throw std::runtime_error("no node configuration pinned");
    return *value;
  }
  // A port entry, as apply writes it: the port's device runs the program.
  void add_port(int ifindex) {
    Map<std::uint32_t, weft_port>(*map(WEFT_MAP_PORTS))
        .put(static_cast<std::uint32_t>(ifindex), weft_port{});
  }

private:
  std::uint32_t next_id_ = 100;

  class Loaded : public LoadedProgram {
  public:
    Loaded(FakeDatapath& dp, std::optional<PinnedProgram>& pin, std::string tag)
        : dp_(dp), pin_(pin), tag_(std::move(tag)) {}
    const std::string& tag() const override { return tag_; }
    void pin() override { pin_ = PinnedProgram{++dp_.next_id_, tag_}; }

  private:
    FakeDatapath& dp_;
    std::optional<PinnedProgram>& pin_;
    std::string tag_;
  };

  class Attaching : public Attacher {
  public:
    Attaching(FakeDatapath& dp, AttachMode mode, std::uint32_t prog_id)
        : dp_(dp), mode_(mode), prog_id_(prog_id) {}
    void attach(const std::string& device, int ifindex) override {
      dp_.attached[device] = Attachment{device, ifindex, mode_, prog_id_};
    }
    void detach(const std::string& device, int) override { dp_.attached.erase(device); }
    std::optional<Attachment> query(const std::string& device, int) const override {
      auto it = dp_.attached.find(device);
      if (it == dp_.attached.end())
        return std::nullopt;
      return it->second;
    }

  private:
    FakeDatapath& dp_;
    AttachMode mode_;
    std::uint32_t prog_id_;
  };
};

} // namespace weft::test
