// A node's installation: the loaded port program and the pinned maps under
// <bpffs>/weft/<node>/, and what `weft node show` reports about them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "loader/fabric/install.hpp"
#include "loader/model/layout.hpp"
#include "loader/model/state.hpp"
#include "loader/system/attach.hpp"

namespace weft {

struct InstallResult {
  bool fresh = false;            // nothing was installed before
  bool program_replaced = false; // an older port program was swapped out
  int links_updated = 0;
};

struct NodeStatus {
  bool installed = false;
  std::uint32_t abi_version = 0;
  AttachMode attach_mode = AttachMode::Tcx;
  std::optional<IpAddr> tunnel_ip;
  std::string uplink;
  int uplink_ifindex = 0;
  std::uint32_t prog_id = 0;
  std::string prog_tag;
  std::uint32_t ct_max = 0;
  std::uint32_t ct_network_max = 0;
  std::uint32_t sg_generation = 0;
  std::vector<std::string> maps;
  std::vector<Attachment> attachments;
};

class Installation {
public:
  explicit Installation(Layout layout) : layout_(std::move(layout)) {}

  // Loads and pins everything; idempotent, keeps every map's contents. A
  // newer port program replaces the pinned one on every attached device. A
  // first install that fails leaves nothing behind.
  InstallResult install(const InstallOptions& options);
  // Detaches every program weft attached on this node and removes its pins
  // and records. Returns the number of attachments removed.
  int uninstall();
  NodeStatus status() const;
  bool installed() const;

  // Throws, with what to do, when the node is not installed or its pins are
  // of another ABI version.
  void require_installed() const;
  AttachMode attach_mode() const;
  KernelAttacher attacher() const;
  const Layout& layout() const { return layout_; }

private:
  InstallResult install_or_upgrade(const InstallOptions& options);
  // Removes every pin and pin folder of the node; returns the tcx links removed.
  int remove_pins();

  Layout layout_;
};

} // namespace weft
