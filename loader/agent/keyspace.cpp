#include "loader/agent/keyspace.hpp"

#include <nlohmann/json.hpp>

using nlohmann::json;

namespace weft {

Keyspace::Keyspace(std::string prefix) : prefix_(std::move(prefix)) {
  while (!prefix_.empty() && prefix_.back() == '/')
    prefix_.pop_back();
}

std::string range_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0'); // every key
}

Snapshot Keyspace::document(const std::map<std::string, std::string>& state_keys,
                            std::int64_t revision) const {
  // The id field of each kind: nodes are known by their name.
  static const std::map<std::string, std::string> kinds = {{"nodes", "name"},
                                                           {"networks", "id"},
                                                           {"subnets", "id"},
                                                           {"ports", "id"},
                                                           {"security_groups", "id"}};
  json doc = json::object();
  for (const auto& [kind, id_field] : kinds)
    doc[kind] = json::array();
  const std::string base = state();
  for (const auto& entry : state_keys) {
    const std::string& key = entry.first;
    const std::string& value = entry.second;
    auto refuse = [&](const std::string& why) {
      std::string refused = "etcd key ";
      refused += key;
      refused += ": ";
      refused += why;
      return Snapshot{"", revision, refused};
    };
    if (key.compare(0, base.size(), base) != 0)
      return refuse("not under " + base);
    std::string rest = key.substr(base.size());
    auto slash = rest.find('/');
    std::string kind = rest.substr(0, slash);
    auto known = kinds.find(kind);
    if (slash == std::string::npos || known == kinds.end())
      return refuse("not a key of weft's (" + base + "{nodes,networks,subnets,ports," +
                    "security_groups}/<id>)");
    std::string id = rest.substr(slash + 1);
    json resource = json::parse(value, nullptr, false);
    if (resource.is_discarded() || !resource.is_object())
      return refuse("the value is not a JSON object");
    auto own = resource.find(known->second);
    if (own == resource.end() || !own->is_string() || own->get<std::string>() != id)
      return refuse("its " + known->second + " is not the key's '" + id + "'");
    doc[kind].push_back(std::move(resource));
  }
  return Snapshot{doc.dump(), revision, ""};
}

} // namespace weft
