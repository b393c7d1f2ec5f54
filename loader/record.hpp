// What the last `weft apply` on a node applied: the document (for names and
// ids the maps do not hold) and the net_id of each network, so that ids stay
// stable. Kept under <state-dir>/<node>/; the maps stay the truth for
// everything the datapath reads.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "loader/compile.hpp"

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
};

class FileRecordStore : public RecordStore {
public:
  explicit FileRecordStore(std::string path) : path_(std::move(path)) {}
  std::optional<Record> load() const override;
  void save(const Record& record) override; // atomic: write, then rename

private:
  std::string path_;
};

class MemoryRecordStore : public RecordStore {
public:
  std::optional<Record> load() const override { return record_; }
  void save(const Record& record) override { record_ = record; }

private:
  std::optional<Record> record_;
};

} // namespace weft
