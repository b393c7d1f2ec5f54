// What the last `weft apply` on a node applied: the document (for names and
// ids the maps do not hold) and the net_id of each network, so that ids stay
// stable. Kept under <state-dir>/<node>/; the maps stay the truth for
// everything the datapath reads.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "loader/fabric/compile.hpp"
#include "loader/model/fd.hpp"

namespace weft {

struct Record {
  std::string document = "{}"; // the applied JSON text
  NetIds net_ids;
  PolicyIds policy_ids;
  std::vector<LocalPort> local_ports;
};

class RecordStore {
public:
  virtual ~RecordStore() = default;
  virtual std::optional<Record> load() const = 0;
  virtual void save(const Record& record) = 0;
  // Removes the record (and the agent's status beside it), and its folders
  // when nothing else is in them.
  virtual void remove() = 0;
};

// Crash-safe: a unique temporary in the same folder (made with its parents),
// fsync, rename, fsync of the folder. Readers see the old text or the new.
void write_file_atomically(const std::string& path, const std::string& text);

class FileRecordStore : public RecordStore {
public:
  explicit FileRecordStore(std::string path) : path_(std::move(path)) {}
  // A record that cannot be read (torn by a crash, edited by hand) is
  // reported on stderr and treated as absent: the pinned maps are what apply
  // reconciles against, so a damaged record never wedges the node.
  std::optional<Record> load() const override;
  // Crash-safe (write_file_atomically).
  void save(const Record& record) override;
  // The record, its node's folder and the state folder above it, when empty.
  void remove() override;

private:
  static Record record_of(const nlohmann::json& j);

  std::string path_;
};

// Serialises the commands that change a node (apply, install, uninstall):
// an exclusive flock on the node's record folder, held for the whole
// plan-and-execute and released when this object goes. A command that has to
// wait says on stderr what it waits for.
class NodeLock {
public:
  NodeLock(const std::string& record_dir, const std::string& node);

private:
  Fd folder_; // the lock goes with it
};

class MemoryRecordStore : public RecordStore {
public:
  std::optional<Record> load() const override { return record_; }
  void save(const Record& record) override { record_ = record; }
  void remove() override { record_.reset(); }

private:
  std::optional<Record> record_;
};

} // namespace weft
