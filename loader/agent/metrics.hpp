// weftd's metrics for Prometheus (prometheus-cpp): what the datapath counts,
// read from its maps at each scrape, and what the agent does.
//   weft_forward_packets_total{reason,port,network}  (and _bytes_total)
//   weft_drop_packets_total{reason,port,network}     (and _bytes_total);
//     port and network are empty for the uplink's and physnets' counters
//   weft_conntrack_entries, weft_conntrack_capacity
//   weft_agent_apply_seconds (histogram), weft_agent_reconciles_total,
//   weft_agent_writes_total, weft_agent_revision_applied,
//   weft_agent_revision_lag (revisions the source has that are not applied),
//   weft_agent_source_connected, weft_agent_ports{status}
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "loader/agent/agent.hpp"
#include "loader/model/layout.hpp"

namespace prometheus {
class Counter;
class Exposer;
class Histogram;
class Registry;
} // namespace prometheus

namespace weft {

class Metrics : public AgentObserver {
public:
  // Serves http://<bind>/metrics ("127.0.0.1:9464", ":9464"); throws when it cannot.
  Metrics(const std::string& bind, Layout layout, const Source& source);
  ~Metrics() override;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  void reconciled(const AgentReport& report, double seconds) override;
  // The port it listens on (for ":0").
  int port() const;

private:
  class State;
  std::shared_ptr<State> state_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Histogram* apply_seconds_ = nullptr; // owned by registry_
  prometheus::Counter* reconciles_ = nullptr;
  prometheus::Counter* writes_ = nullptr;
  std::uint64_t writes_seen_ = 0;
};

} // namespace weft
