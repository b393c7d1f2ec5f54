// weft's keys in etcd (README "Control plane"), and the state document they
// make. Under a prefix P:
//   P/state/{nodes,networks,subnets,ports,security_groups}/<id>  Neutron JSON
//   P/agents/<host>          an agent's announcement, on its lease
//   P/status/<host>/<port>   a port's status, written by its host's agent
// The Neutron driver writes P/state/ and each agent reads only that.
#pragma once

#include <map>
#include <string>

#include "loader/agent/source.hpp"

namespace weft {

class Keyspace {
public:
  explicit Keyspace(std::string prefix); // "/weft"; a trailing '/' is dropped
  const std::string& prefix() const { return prefix_; }
  std::string state() const { return prefix_ + "/state/"; }
  std::string agent(const std::string& host) const { return prefix_ + "/agents/" + host; }
  std::string status(const std::string& host, const std::string& port_id) const {
    return prefix_ + "/status/" + host + "/" + port_id;
  }
  std::string status_of(const std::string& host) const { return prefix_ + "/status/" + host + "/"; }

  // The whole state document the keys under state() make, or why they make
  // none, with the key named: a value that is not a JSON object, a kind
  // weft does not know, an id that is not the key's. The document's own
  // checks (parse_state) come after, and name the resource.
  Snapshot document(const std::map<std::string, std::string>& state_keys,
                    std::int64_t revision) const;

private:
  std::string prefix_;
};

// The end of the range of every key that starts with `prefix` (etcd's
// range_end: the prefix with its last byte incremented).
std::string range_end(const std::string& prefix);

} // namespace weft
