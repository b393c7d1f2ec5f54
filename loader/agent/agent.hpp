// weftd's loop: the node follows its source. Every new snapshot, and every
// port device that appears or goes, runs the same compile → diff → write as
// `weft apply`, so a tap that a hypervisor makes after the apply is attached
// at once, and a node that has nothing to change is not written to at all.
// The datapath never depends on the agent: killed, it leaves every map,
// program and link in place, and its successor finds nothing to change.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "loader/agent/source.hpp"
#include "loader/model/fd.hpp"
#include "loader/model/layout.hpp"
#include "loader/model/state.hpp"

namespace weft {

struct LinkEvents;

// What the agent says of itself, in <state-dir>/<node>/agent.json
// (`weft agent status`); times are Unix seconds.
struct AgentReport {
  std::string node;
  int pid = 0;
  std::string source;
  bool source_connected = false;
  std::string source_problem;
  double started_at = 0;
  bool ready = false;                   // the first snapshot of the source has been applied
  std::optional<std::int64_t> revision; // the source's revision last applied
  double applied_at = 0;                // when it was
  double last_change_at = 0;            // when a map or link was last written
  nlohmann::json last_change;           // what was written then
  std::uint64_t reconciles = 0;
  std::uint64_t writes = 0; // map entries written and links made or removed, in all
  std::string last_error;   // empty: none since the last success
  std::string refused;      // the last revision refused, with why
  std::vector<PortStatus> ports;
  std::map<std::string, double> attach_ms; // port id → device seen to attached
};
nlohmann::json to_json(const AgentReport& report);
AgentReport agent_report_of(const nlohmann::json& j);

// Told after each reconcile (weftd's metrics).
class AgentObserver {
public:
  virtual ~AgentObserver() = default;
  virtual void reconciled(const AgentReport& report, double seconds) = 0;
};

class Agent {
public:
  // `notify` gets sd_notify(3) lines ("READY=1", "STATUS=…").
  using Notify = std::function<void(const std::string&)>;
  Agent(Layout layout, Source& source, Notify notify);
  // Until SIGTERM or SIGINT (SIGHUP: read the node again, reconcile).
  void run();
  void observe(AgentObserver* observer) { observer_ = observer; }

private:
  void take_snapshot();
  void refuse(std::int64_t revision, const std::string& why);
  void on_links(const LinkEvents& events);
  void reconcile(const std::string& why);
  void save_report();
  void arm_retry();

  Layout layout_;
  Source& source_;
  Notify notify_;
  AgentReport report_;
  std::string document_;        // the desired state; empty before there is one
  std::optional<State> parsed_; // document_ parsed, once: devices come and go often
  std::int64_t revision_ = 0;
  bool from_source_ = false;      // document_ came from the source (not the record)
  std::set<std::string> watched_; // devices of this node's ports
  // Devices announced since the last reconcile, and when.
  std::map<std::string, std::chrono::steady_clock::time_point> seen_;
  Fd retry_; // a timerfd, armed after a failure
  AgentObserver* observer_ = nullptr;
};

} // namespace weft
