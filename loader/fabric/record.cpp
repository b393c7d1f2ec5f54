#include "loader/fabric/record.hpp"

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader/model/error.hpp"
#include "loader/model/fd.hpp"
#include "loader/model/layout.hpp"

namespace weft {

std::optional<Record> FileRecordStore::load() const {
  std::ifstream in(path_);
  if (!in)
    return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    std::cerr << "weft: warning: record " << path_
              << " is damaged; ignoring it and reconciling against the pinned maps\n";
    return std::nullopt;
  }
  try {
    return record_of(j);
  } catch (const nlohmann::json::exception& e) {
    std::cerr << "weft: warning: record " << path_ << " is damaged (" << e.what()
              << "); ignoring it and reconciling against the pinned maps\n";
    return std::nullopt;
  }
}

Record FileRecordStore::record_of(const nlohmann::json& j) {
  Record r;
  r.document = j.value("document", std::string("{}"));
  const auto net_ids = j.value("net_ids", nlohmann::json::object());
  for (const auto& [id, net_id] : net_ids.items())
    r.net_ids[id] = net_id.get<std::uint32_t>();
  const auto policy_ids = j.value("policy_ids", nlohmann::json::object());
  for (const auto& [groups, id] : policy_ids.items())
    r.policy_ids[groups] = id.get<std::uint32_t>();
  const auto local_ports = j.value("local_ports", nlohmann::json::array());
  for (const auto& p : local_ports) {
    LocalPort lp;
    lp.id = p.at("id").get<std::string>();
    lp.device = p.at("device").get<std::string>();
    if (p.contains("ifindex") && !p["ifindex"].is_null())
      lp.ifindex = p["ifindex"].get<int>();
    lp.net_id = p.at("net_id").get<std::uint32_t>();
    lp.stat_slot = p.value("stat_slot", 0u);
    r.local_ports.push_back(lp);
  }
  return r;
}

static void make_parents(const std::string& path) {
  for (std::size_t pos = 1; (pos = path.find('/', pos)) != std::string::npos; ++pos) {
    std::string dir = path.substr(0, pos);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      throw SystemError("create " + dir, errno);
  }
}

void write_file_atomically(const std::string& path, const std::string& text) {
  make_parents(path);
  std::string dir = path.substr(0, path.rfind('/'));
  std::string tmp = path + ".XXXXXX";
  Fd fd(::mkstemp(tmp.data()));
  if (!fd)
    throw SystemError("create a temporary file in " + dir, errno);
  bool written = true;
  for (std::size_t done = 0; written && done < text.size();) {
    ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    written = n > 0;
    done += n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  if (!written || ::fsync(fd.get()) != 0 || fd.close() != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw SystemError("write " + tmp, err);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw SystemError("rename " + tmp + " to " + path, err);
  }
  if (Fd folder(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); folder)
    ::fsync(folder.get());
}

void FileRecordStore::remove() {
  ::unlink(path_.c_str());
  std::string node_dir = path_.substr(0, path_.rfind('/'));
  ::unlink((node_dir + "/" + Layout::kAgentStatusFile).c_str());
  ::rmdir(node_dir.c_str());
  ::rmdir(node_dir.substr(0, node_dir.rfind('/')).c_str());
}

void FileRecordStore::save(const Record& record) {
  nlohmann::json j;
  j["document"] = record.document;
  j["net_ids"] = record.net_ids;
  j["policy_ids"] = record.policy_ids;
  j["local_ports"] = nlohmann::json::array();
  for (const auto& lp : record.local_ports)
    j["local_ports"].push_back({{"id", lp.id},
                                {"device", lp.device},
                                {"ifindex", lp.ifindex ? nlohmann::json(*lp.ifindex) : nullptr},
                                {"net_id", lp.net_id},
                                {"stat_slot", lp.stat_slot}});
  write_file_atomically(path_, j.dump(2) + "\n");
}

NodeLock::NodeLock(const std::string& record_dir, const std::string& node) {
  make_parents(record_dir + "/");
  folder_ = Fd(::open(record_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!folder_)
    throw SystemError("open " + record_dir + " to lock node " + node, errno);
  if (::flock(folder_.get(), LOCK_EX | LOCK_NB) == 0)
    return;
  if (errno != EWOULDBLOCK)
    throw SystemError("lock " + record_dir, errno);
  std::cerr << "weft: waiting for another weft command to finish with node " << node
            << " (it holds the lock on " << record_dir << ")\n";
  if (::flock(folder_.get(), LOCK_EX) != 0)
    throw SystemError("lock " + record_dir, errno);
}

} // namespace weft
