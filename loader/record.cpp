#include "loader/record.hpp"

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/stat.h>

#include "loader/bpf.hpp"

namespace weft {

std::optional<Record> FileRecordStore::load() const {
  std::ifstream in(path_);
  if (!in)
    return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded())
    throw std::runtime_error("record " + path_ + " is not valid JSON; remove it and apply again");
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
                                {"net_id", lp.net_id}});
  make_parents(path_);
  std::string tmp = path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
    if (!out)
      throw SystemError("write " + tmp, errno);
  }
  if (std::rename(tmp.c_str(), path_.c_str()) != 0)
    throw SystemError("rename " + tmp, errno);
}

} // namespace weft
