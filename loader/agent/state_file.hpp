// The source that needs no store: one state document in a file, watched with
// inotify. An editor's save, `cp` or a rename over it are all seen; a file
// that goes away leaves the datapath as it was.
#pragma once

#include <atomic>

#include "loader/agent/source.hpp"
#include "loader/model/fd.hpp"

namespace weft {

class StateFile : public Source {
public:
  explicit StateFile(std::string path);

  std::string describe() const override { return "file " + path_; }
  int fd() const override { return inotify_.get(); }
  std::optional<Snapshot> take() override;
  bool connected() const override { return readable_; } // any thread
  std::int64_t latest_revision() const override { return revision_; }
  std::string problem() const override { return problem_; }
  void report(const std::vector<PortStatus>& /*ports*/) override {} // agent.json has them

private:
  std::string path_;
  std::string name_; // the file's name in its folder, which is what is watched
  Fd inotify_;
  std::optional<std::string> last_; // the text last handed out
  std::atomic<std::int64_t> revision_ = 0;
  std::string problem_;
  std::atomic<bool> readable_ = true;
};

} // namespace weft
