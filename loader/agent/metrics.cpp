#include "loader/agent/metrics.hpp"

#include <map>
#include <mutex>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "loader/datapath/session.hpp"
#include "loader/inspect/inspect.hpp"
#include "maps/weft_abi.h"

using nlohmann::json;

namespace weft {

namespace {

prometheus::ClientMetric::Label label(const std::string& name, const std::string& value) {
  return {name, value};
}

prometheus::MetricFamily family(const std::string& name, const std::string& help,
                                prometheus::MetricType type) {
  return {name, help, type, {}};
}

} // namespace

// The datapath's counters, read from the node's maps at each scrape (on the
// exposer's thread, with a session of its own), and the agent's figures.
class Metrics::State : public prometheus::Collectable {
public:
  State(Layout layout, const Source& source) : layout_(std::move(layout)), source_(source) {}

  void set(const AgentReport& report) {
    std::lock_guard lock(mutex_);
    applied_ = report.revision.value_or(0);
    up_ = down_ = 0;
    for (const auto& port : report.ports)
      (port.up ? up_ : down_)++;
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    std::vector<prometheus::MetricFamily> out;
    auto lag =
        family("weft_agent_revision_lag",
               "Revisions of the source that the node has not applied yet", MetricType::Gauge);
    auto applied = family("weft_agent_revision_applied",
                          "The source's revision the node last applied", MetricType::Gauge);
    auto connected = family("weft_agent_source_connected", "1 while the agent reaches its source",
                            MetricType::Gauge);
    auto ports = family("weft_agent_ports", "Ports of this node by status", MetricType::Gauge);
    {
      std::lock_guard lock(mutex_);
      std::int64_t latest = source_.latest_revision();
      lag.metric.push_back({});
      lag.metric.back().gauge.value =
          static_cast<double>(latest > applied_ ? latest - applied_ : 0);
      applied.metric.push_back({});
      applied.metric.back().gauge.value = static_cast<double>(applied_);
      connected.metric.push_back({});
      connected.metric.back().gauge.value = source_.connected() ? 1 : 0;
      for (auto [status, count] : {std::pair{"ACTIVE", up_}, std::pair{"DOWN", down_}}) {
        ports.metric.push_back({});
        ports.metric.back().label = {label("status", status)};
        ports.metric.back().gauge.value = static_cast<double>(count);
      }
    }
    out.insert(out.end(), {lag, applied, connected, ports});
    try {
      collect_datapath(out);
    } catch (const std::exception&) {
      // A node being reinstalled has no maps for a moment: agent figures only.
    }
    return out;
  }

private:
  void collect_datapath(std::vector<prometheus::MetricFamily>& out) const {
    using prometheus::MetricType;
    Session session(layout_);
    std::map<std::string, std::string> network_of;
    for (const auto& port : session.applied().ports)
      network_of[port.id] = port.network_id;
    auto fwd_packets =
        family("weft_forward_packets_total",
               "Packets the datapath forwarded, by reason, port and network", MetricType::Counter);
    auto fwd_bytes = family("weft_forward_bytes_total", "Bytes of weft_forward_packets_total",
                            MetricType::Counter);
    auto drop_packets =
        family("weft_drop_packets_total",
               "Packets the datapath dropped, by reason, port and network", MetricType::Counter);
    auto drop_bytes =
        family("weft_drop_bytes_total", "Bytes of weft_drop_packets_total", MetricType::Counter);
    for (const auto& row : inspect_stats(session)) {
      std::string port = row.value("port_id", "");
      std::vector<prometheus::ClientMetric::Label> labels = {
          label("network", port.empty() ? "" : network_of[port]), label("port", port),
          label("reason", row.value("reason", "")), label("device", row.value("device", ""))};
      bool drop = row.value("drop", false);
      prometheus::ClientMetric packets, bytes;
      packets.label = bytes.label = labels;
      packets.counter.value = row.value("packets", 0.0);
      bytes.counter.value = row.value("bytes", 0.0);
      (drop ? drop_packets : fwd_packets).metric.push_back(packets);
      (drop ? drop_bytes : fwd_bytes).metric.push_back(bytes);
    }
    auto ct = family("weft_conntrack_entries", "Connections tracked now", MetricType::Gauge);
    ct.metric.push_back({});
    ct.metric.back().gauge.value = static_cast<double>(session.map(WEFT_MAP_CT).keys().size());
    auto capacity = family("weft_conntrack_capacity", "Connections the conntrack table holds",
                           MetricType::Gauge);
    capacity.metric.push_back({});
    capacity.metric.back().gauge.value = session.installation().status().ct_max;
    out.insert(out.end(), {fwd_packets, fwd_bytes, drop_packets, drop_bytes, ct, capacity});
  }

  Layout layout_;
  const Source& source_;
  mutable std::mutex mutex_;
  std::int64_t applied_ = 0;
  std::size_t up_ = 0, down_ = 0;
};

Metrics::Metrics(const std::string& bind, Layout layout, const Source& source)
    : state_(std::make_shared<State>(std::move(layout), source)),
      registry_(std::make_shared<prometheus::Registry>()),
      exposer_(std::make_unique<prometheus::Exposer>(bind)) {
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(state_);
  apply_seconds_ =
      &prometheus::BuildHistogram()
           .Name("weft_agent_apply_seconds")
           .Help("Time of one reconcile: compile, diff and the writes")
           .Register(*registry_)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                            0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  reconciles_ = &prometheus::BuildCounter()
                     .Name("weft_agent_reconciles_total")
                     .Help("Reconciles run: new revisions, device events, retries")
                     .Register(*registry_)
                     .Add({});
  writes_ = &prometheus::BuildCounter()
                 .Name("weft_agent_writes_total")
                 .Help("Map entries written and links made or removed by the agent")
                 .Register(*registry_)
                 .Add({});
}

Metrics::~Metrics() = default;

int Metrics::port() const {
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void Metrics::reconciled(const AgentReport& report, double seconds) {
  state_->set(report);
  apply_seconds_->Observe(seconds);
  reconciles_->Increment();
  if (report.writes > writes_seen_)
    writes_->Increment(static_cast<double>(report.writes - writes_seen_));
  writes_seen_ = report.writes;
}

} // namespace weft
