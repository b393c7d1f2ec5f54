// A node's datapath in the kernel: the port program and the maps pinned under
// <bpffs>/weft/<node>/ (KernelDatapath), and the Installation that carries
// out install, upgrade and uninstall (loader/fabric/install.hpp) on them.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loader/datapath/attach.hpp"
#include "loader/fabric/install.hpp"
#include "loader/fabric/record.hpp"
#include "loader/model/layout.hpp"
#include "loader/system/bpf.hpp"
#include "loader/system/devices.hpp"

namespace weft {

class KernelDatapath : public Datapath {
public:
  explicit KernelDatapath(Layout layout) : layout_(std::move(layout)) {}

  bool exists() const override;
  void prepare() override;
  MapIo* map(const std::string& name) override;
  std::vector<std::string> pinned_maps() const override;
  std::optional<PinnedProgram> pinned_program(const std::string& name) const override;
  std::unique_ptr<LoadedProgram> load(const std::string& name, std::uint32_t ct_max) override;
  std::unique_ptr<Attacher> attacher(const std::string& name, AttachMode mode) override;
  int remove_pins() override;
  AttachMode kernel_attach_mode() const override { return default_attach_mode(); }

private:
  Layout layout_;
  std::map<std::string, std::unique_ptr<KernelMap>> maps_;
};

// The kernel's objects wired to the fabric's Installer.
class Installation {
public:
  explicit Installation(const Layout& layout)
      : layout_(layout), datapath_(layout), records_(layout.record()),
        installer_(layout.node, datapath_, devices_, records_) {}

  // The node's datapath, and with an uplink its GRO device (NetlinkDevices).
  InstallResult install(const InstallOptions& options);
  // Everything install made, the GRO device too.
  int uninstall();
  NodeStatus status() const { return installer_.status(); }
  bool installed() const { return installer_.installed(); }
  void require_installed() const { installer_.require_installed(); }
  AttachMode attach_mode() const { return installer_.attach_mode(); }
  std::unique_ptr<Attacher> attacher() const { return installer_.attacher(); }
  const Layout& layout() const { return layout_; }

private:
  Layout layout_;
  KernelDatapath datapath_;
  NetlinkDevices devices_;
  FileRecordStore records_;
  Installer installer_;
};

} // namespace weft
