// `weft node install|uninstall|show` (loader/fabric/install.cpp), without a
// kernel: what an install decides (defaults, what an installed node keeps,
// what is refused), and install, upgrade and uninstall carried out on a
// fake datapath.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "loader/fabric/install.hpp"
#include "tests/unit/fakes.hpp"

namespace weft::test {
namespace {

InstallContext fresh(AttachMode kernel_default = AttachMode::Tcx) {
  InstallContext context;
  context.node = "node1";
  context.kernel_default = kernel_default;
  return context;
}

InstallContext installed(const weft_node_config& config) {
  InstallContext context = fresh();
  context.previous = config;
  context.installed = true;
  return context;
}

std::string refusal(const InstallOptions& options, const InstallContext& context) {
  try {
    plan_install(options, context);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(Install, AFreshNodeTakesTheDefaults) {
  weft_node_config config = plan_install({}, fresh());
  EXPECT_EQ(config.abi_version, static_cast<std::uint32_t>(WEFT_ABI_VERSION));
  EXPECT_EQ(config.ct_max, kDefaultCtMax);
  EXPECT_EQ(config.ct_network_max, kDefaultCtMax / 2);
  EXPECT_EQ(config.flags & WEFT_CONFIG_ATTACH_TC, 0u);
  EXPECT_EQ(config.tunnel_ip, 0u);
  // Without tcx (Debian 12's 6.1) the default is clsact.
  EXPECT_NE(plan_install({}, fresh(AttachMode::Tc)).flags & WEFT_CONFIG_ATTACH_TC, 0u);
}

TEST(Install, AnInstalledNodeKeepsWhatItHasAndItsGeneration) {
  InstallOptions first;
  first.ct_max = 4096;
  first.attach_mode = AttachMode::Tc;
  first.tunnel_ip = IpAddr::parse("172.31.0.1");
  weft_node_config config = plan_install(first, fresh());
  config.sg_generation = 7;
  weft_node_config again = plan_install({}, installed(config));
  EXPECT_EQ(again.ct_max, 4096u);
  EXPECT_EQ(again.ct_network_max, 2048u);
  EXPECT_NE(again.flags & WEFT_CONFIG_ATTACH_TC, 0u);
  EXPECT_EQ(again.tunnel_ip, config.tunnel_ip);
  EXPECT_EQ(again.sg_generation, 7u);
}

TEST(Install, WhatIsFixedOnceInstalledIsRefusedWithWhatToDo) {
  weft_node_config config = plan_install({}, fresh());
  InstallOptions bigger;
  bigger.ct_max = 131072;
  EXPECT_EQ(refusal(bigger, installed(config)),
            "node node1 has a conntrack table of 65536 entries; uninstall it to change --ct-max");
  InstallOptions tc;
  tc.attach_mode = AttachMode::Tc;
  EXPECT_EQ(refusal(tc, installed(config)),
            "node node1 is installed with tcx attachments; uninstall it to change the attach "
            "mode");
  // The same values again are fine.
  InstallOptions same;
  same.ct_max = kDefaultCtMax;
  same.attach_mode = AttachMode::Tcx;
  EXPECT_NO_THROW(plan_install(same, installed(config)));
}

TEST(Install, BadValuesAreRefused) {
  InstallOptions small;
  small.ct_max = 1000;
  EXPECT_EQ(refusal(small, fresh()), "--ct-max 1000 is below 1024");
  InstallOptions share;
  share.ct_max = 2048;
  share.ct_network_max = 4096;
  EXPECT_EQ(refusal(share, fresh()), "--ct-network-max 4096 is above --ct-max 2048");
  InstallOptions v6;
  v6.tunnel_ip = IpAddr::parse("fd00::1");
  EXPECT_EQ(refusal(v6, fresh()), "--tunnel-ip fd00::1 is not an IPv4 address");
  InstallOptions uplink;
  uplink.uplink = "eth9";
  EXPECT_EQ(refusal(uplink, fresh()), "--uplink eth9: no such device");
  InstallContext with_uplink = fresh();
  with_uplink.uplink_ifindex = 5;
  EXPECT_EQ(plan_install(uplink, with_uplink).uplink_ifindex, 5u);
}

// ---- install, upgrade and uninstall on a fake datapath ----------------------

class Installing : public ::testing::Test {
protected:
  Installing() { devices.add("eth1", 2); }

  std::string failure(const InstallOptions& options = {}) {
    try {
      installer.install(options);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  }
  // Port devices 5 (tapA) and 6 (tapB) running the program, and a port entry
  // whose device is gone (7).
  void plug_ports() {
    devices.add("tapA", 5);
    devices.add("tapB", 6);
    auto attacher = installer.attacher();
    for (int ifindex : {5, 6, 7}) {
      datapath.add_port(ifindex);
      if (auto dev = devices.find(ifindex))
        attacher->attach(dev->name, dev->ifindex);
    }
  }

  FakeDatapath datapath;
  FakeDevices devices;
  MemoryRecordStore records;
  Installer installer{"node1", datapath, devices, records};
};

TEST_F(Installing, AFreshInstallPinsTheProgramAndEveryMapAndWritesTheConfiguration) {
  EXPECT_FALSE(installer.installed());
  InstallOptions options;
  options.ct_max = 4096;
  options.uplink = "eth1";
  InstallResult result = installer.install(options);
  EXPECT_TRUE(result.fresh);
  EXPECT_FALSE(result.program_replaced);
  EXPECT_TRUE(installer.installed());
  EXPECT_NO_THROW(installer.require_installed());
  EXPECT_EQ(datapath.program->tag, "tag-1");
  EXPECT_EQ(datapath.maps.size(), maps::kMaps.size());
  EXPECT_EQ(datapath.ct_max_loaded, 4096u);
  weft_node_config config = datapath.config();
  EXPECT_EQ(config.abi_version, static_cast<std::uint32_t>(WEFT_ABI_VERSION));
  EXPECT_EQ(config.ct_max, 4096u);
  EXPECT_EQ(config.uplink_ifindex, 2u);
  EXPECT_EQ(installer.attach_mode(), AttachMode::Tcx);
}

TEST_F(Installing, ReinstallingTheSameProgramKeepsEveryEntryAndChangesNothing) {
  installer.install({});
  plug_ports();
  std::uint32_t prog_id = datapath.program->id;
  InstallResult again = installer.install({});
  EXPECT_FALSE(again.fresh);
  EXPECT_FALSE(again.program_replaced);
  EXPECT_EQ(again.links_updated, 0);
  // Each install loads both programs, the port's and the uplink's.
  EXPECT_EQ(datapath.loads, 4);
  EXPECT_EQ(datapath.program->id, prog_id);
  EXPECT_EQ(datapath.map(WEFT_MAP_PORTS)->keys().size(), 3u);
  EXPECT_EQ(datapath.attached.at("tapA").prog_id, prog_id);
}

TEST_F(Installing, AnUpgradeSwapsTheProgramOnEveryPortDeviceThatExists) {
  installer.install({});
  plug_ports();
  std::uint32_t old_id = datapath.program->id;
  datapath.next_tag = "tag-2";
  InstallResult upgrade = installer.install({});
  EXPECT_FALSE(upgrade.fresh);
  EXPECT_TRUE(upgrade.program_replaced);
  EXPECT_EQ(upgrade.links_updated, 2); // device 7 is gone
  ASSERT_NE(datapath.program->id, old_id);
  EXPECT_EQ(datapath.program->tag, "tag-2");
  for (const char* device : {"tapA", "tapB"})
    EXPECT_EQ(datapath.attached.at(device).prog_id, datapath.program->id) << device;
  EXPECT_EQ(datapath.map(WEFT_MAP_PORTS)->keys().size(), 3u);
}

TEST_F(Installing, AFailedFirstInstallLeavesNothingBehind) {
  datapath.refuse_load = "load the port program: Permission denied";
  EXPECT_EQ(failure(), "load the port program: Permission denied");
  EXPECT_FALSE(datapath.exists());
  EXPECT_TRUE(datapath.maps.empty()); // pinned by the load that was then refused
  EXPECT_FALSE(installer.installed());
  InstallOptions uplink;
  uplink.uplink = "eth9";
  datapath.refuse_load.reset();
  EXPECT_EQ(failure(uplink), "--uplink eth9: no such device");
  EXPECT_FALSE(datapath.exists());
}

TEST_F(Installing, AFailedUpgradeKeepsTheInstalledNode) {
  installer.install({});
  plug_ports();
  Record record;
  record.document = R"({"ports": []})";
  records.save(record);
  std::uint32_t prog_id = datapath.program->id;
  datapath.next_tag = "tag-2";
  datapath.refuse_load = "load the port program: Invalid argument";
  EXPECT_EQ(failure(), "load the port program: Invalid argument");
  EXPECT_TRUE(installer.installed());
  EXPECT_EQ(datapath.program->id, prog_id);
  EXPECT_EQ(datapath.map(WEFT_MAP_PORTS)->keys().size(), 3u);
  EXPECT_EQ(datapath.attached.at("tapA").prog_id, prog_id);
  EXPECT_TRUE(records.load().has_value());
}

TEST_F(Installing, PinsOfAnotherAbiVersionAreRefusedWithWhatToDoAndKept) {
  installer.install({});
  weft_node_config old = datapath.config();
  old.abi_version = WEFT_ABI_VERSION - 1;
  Map<std::uint32_t, weft_node_config>(*datapath.map(WEFT_MAP_CONFIG)).put(0, old);
  std::string expected = "node node1 has pins of ABI version " +
                         std::to_string(WEFT_ABI_VERSION - 1) + ", this weft speaks " +
                         std::to_string(WEFT_ABI_VERSION) +
                         " (run: weft node uninstall, then weft node install)";
  EXPECT_EQ(failure(), expected);
  EXPECT_EQ(datapath.loads, 2); // the first install's two programs only
  EXPECT_EQ(datapath.config().abi_version, static_cast<std::uint32_t>(WEFT_ABI_VERSION - 1));
  EXPECT_THROW(installer.require_installed(), std::runtime_error);
}

TEST_F(Installing, UninstallRemovesTcFiltersPinsAndTheRecord) {
  datapath.kernel_mode = AttachMode::Tc; // Debian 12's 6.1: no tcx
  installer.install({});
  EXPECT_EQ(installer.attach_mode(), AttachMode::Tc);
  plug_ports();
  records.save(Record{});
  EXPECT_EQ(installer.uninstall(), 2);
  EXPECT_TRUE(datapath.attached.empty()); // no filter stays on a device
  EXPECT_FALSE(datapath.exists());
  EXPECT_FALSE(records.load().has_value());
  EXPECT_FALSE(installer.installed());
}

TEST_F(Installing, UninstallCountsTheTcxLinksThatWentWithTheirPins) {
  installer.install({});
  plug_ports();
  EXPECT_EQ(installer.uninstall(), 2);
  EXPECT_TRUE(datapath.attached.empty());
  EXPECT_FALSE(datapath.exists());
  // Nothing installed: nothing to remove, and no error.
  EXPECT_EQ(installer.uninstall(), 0);
}

TEST_F(Installing, StatusReportsWhatIsInstalledAndAttached) {
  EXPECT_FALSE(installer.status().installed);
  EXPECT_THROW(installer.require_installed(), std::runtime_error);
  InstallOptions options;
  options.uplink = "eth1";
  options.tunnel_ip = IpAddr::parse("172.31.0.1");
  installer.install(options);
  plug_ports();
  NodeStatus status = installer.status();
  EXPECT_TRUE(status.installed);
  EXPECT_EQ(status.abi_version, static_cast<std::uint32_t>(WEFT_ABI_VERSION));
  EXPECT_EQ(status.prog_tag, "tag-1");
  EXPECT_EQ(status.prog_id, datapath.program->id);
  EXPECT_EQ(status.uplink, "eth1");
  ASSERT_TRUE(status.tunnel_ip.has_value());
  EXPECT_EQ(status.tunnel_ip->str(), "172.31.0.1");
  EXPECT_EQ(status.maps.size(), maps::kMaps.size());
  // The ports run the port program, the uplink the uplink program.
  ASSERT_EQ(status.attachments.size(), 3u);
  EXPECT_EQ(status.attachments[0].device, "tapA");
  EXPECT_EQ(status.attachments[1].device, "tapB");
  EXPECT_EQ(status.attachments[2].device, "eth1");
  EXPECT_EQ(status.attachments[2].prog_id, datapath.uplink_program->id);
}

} // namespace
} // namespace weft::test
