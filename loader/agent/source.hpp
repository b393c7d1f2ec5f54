// Where weftd's desired state comes from: a file it watches, or etcd, which
// the Neutron driver fills. A source hands the agent whole documents (the
// shapes `weft apply` takes) and carries the ports' status back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace weft {

struct Snapshot {
  std::string document;  // a whole state document; empty when `refused`
  std::int64_t revision; // the source's revision of it: newer is greater
  std::string refused;   // why this revision cannot be applied (the key named)
};

// A port of this node as the agent last left it.
struct PortStatus {
  std::string port_id;
  std::string device;
  bool up = false; // its device exists and runs the port program
  bool operator==(const PortStatus&) const = default;
};

class Source {
public:
  virtual ~Source() = default;
  // "file /etc/weft/state.json", "etcd https://10.0.0.1:2379 prefix /weft".
  virtual std::string describe() const = 0;
  // Readable when a new snapshot, or news of the connection, may wait.
  virtual int fd() const = 0;
  // The newest snapshot not taken yet; every older one is skipped.
  virtual std::optional<Snapshot> take() = 0;
  // Whether the source is reachable now; why not, if it is not.
  virtual bool connected() const = 0;
  virtual std::string problem() const = 0;
  // The newest revision the source knows of, applied or not (any thread).
  virtual std::int64_t latest_revision() const = 0;
  // Every port of the node with its status, after each change of one.
  virtual void report(const std::vector<PortStatus>& ports) = 0;
};

} // namespace weft
