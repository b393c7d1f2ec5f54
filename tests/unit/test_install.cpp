// What `weft node install` decides (loader/fabric/install.cpp), without a
// kernel: defaults, what an installed node keeps, and what is refused.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "loader/fabric/install.hpp"

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

} // namespace
} // namespace weft::test
