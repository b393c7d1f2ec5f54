// The source a cloud runs: etcd, filled by the Neutron driver. One thread
// reads P/state/ and then watches it (a lost connection resumes the watch
// where it stopped, or reads everything again if etcd compacted that far);
// another keeps the agent's lease, announces it under P/agents/<host> and
// writes the ports' status under P/status/<host>/. While etcd is away the
// node keeps what it has: nothing is applied, nothing is removed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "loader/agent/keyspace.hpp"
#include "loader/agent/source.hpp"
#include "loader/model/fd.hpp"

namespace grpc {
class Channel;
class ClientContext;
} // namespace grpc

namespace weft {

struct EtcdOptions {
  std::vector<std::string> endpoints; // http://host:port or https://host:port, tried in turn
  std::string prefix = "/weft";
  std::string ca_file, cert_file, key_file; // TLS; the certificate's CN is the etcd user
  std::string host;                         // this node (binding:host_id)
  std::string announcement;                 // the JSON of P/agents/<host>
  int lease_ttl = 10;                       // seconds
};

class EtcdSource : public Source {
public:
  explicit EtcdSource(EtcdOptions options);
  ~EtcdSource() override;
  EtcdSource(const EtcdSource&) = delete;
  EtcdSource& operator=(const EtcdSource&) = delete;

  std::string describe() const override;
  int fd() const override { return wake_.get(); }
  std::optional<Snapshot> take() override;
  bool connected() const override;
  std::int64_t latest_revision() const override;
  std::string problem() const override;
  void report(const std::vector<PortStatus>& ports) override;

private:
  void watch_loop();
  void lease_loop();
  bool sync(std::int64_t& revision, bool resume); // one connection's worth
  std::shared_ptr<grpc::Channel> channel();
  void set_problem(const std::string& problem);
  void wake();
  bool sleep_for(int ms); // false once stopping

  EtcdOptions options_;
  Keyspace keys_;
  Fd wake_; // an eventfd: a revision (or news of the connection) waits

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::string> state_; // P/state/... key → value
  std::int64_t revision_ = 0;                // of state_
  bool fresh_ = false;                       // state_ changed since take()
  bool connected_ = false;
  std::string problem_ = "connecting";
  std::size_t endpoint_ = 0;
  bool have_state_ = false;       // the watcher's: state_ was read whole once
  std::vector<PortStatus> ports_; // what report() was last told
  bool ports_dirty_ = false;
  std::atomic<bool> stopping_{false};
  grpc::ClientContext* watch_call_ = nullptr; // to cancel on stop
  grpc::ClientContext* lease_call_ = nullptr;

  std::thread watcher_, leaser_;
};

} // namespace weft
