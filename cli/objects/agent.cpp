// `weft agent status`: what the node's weftd last said of itself, and
// whether it still runs.
#include <cerrno>
#include <csignal>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/agent/agent.hpp"

using nlohmann::json;

namespace weft::cli {

namespace {

// The pid runs weftd (and not a process that got the pid since).
bool weftd_runs(int pid) {
  if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM))
    return false;
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  std::getline(comm, name);
  return name == "weftd";
}

std::string ago(double then) {
  if (then <= 0)
    return "never";
  double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::ostringstream out;
  out.precision(1);
  out << std::fixed << (now - then) << " s ago";
  return out.str();
}

void agent_status(const Globals& g) {
  Layout layout = layout_of(g);
  std::ifstream in(layout.agent_status());
  if (!in)
    throw std::runtime_error("node " + layout.node + ": no agent has run here (no " +
                             layout.agent_status() + ")");
  json saved = json::parse(in, nullptr, false);
  if (saved.is_discarded())
    throw std::runtime_error(layout.agent_status() + ": not JSON");
  AgentReport r = agent_report_of(saved);
  bool running = weftd_runs(r.pid);
  json out = to_json(r);
  out["running"] = running;
  if (g.format.json) {
    print_json(out, g.format);
    return;
  }
  std::size_t up = 0;
  for (const auto& p : r.ports)
    up += p.up;
  std::cout << "agent of node " << r.node << ": "
            << (running ? "running (pid " + std::to_string(r.pid) + ")" : "not running")
            << (r.ready ? ", ready" : ", not ready yet") << "\n";
  std::cout << "source:      " << r.source
            << (r.source_connected ? " (connected)" : " (" + r.source_problem + ")") << "\n";
  std::cout << "revision:    "
            << (r.revision ? std::to_string(*r.revision) + ", applied " + ago(r.applied_at)
                           : std::string("none applied yet"))
            << "\n";
  std::cout << "last change: " << ago(r.last_change_at);
  if (!r.last_change.empty())
    std::cout << " (" << r.last_change.value("why", "") << ": "
              << r.last_change.value("entries_added", 0) << " added, "
              << r.last_change.value("entries_changed", 0) << " changed, "
              << r.last_change.value("entries_removed", 0) << " removed; "
              << r.last_change.value("attached", 0) << " attached, "
              << r.last_change.value("detached", 0) << " detached)";
  std::cout << "\n";
  std::cout << "reconciles:  " << r.reconciles << ", " << r.writes << " writes in all\n";
  std::cout << "ports:       " << up << " up, " << r.ports.size() - up
            << " waiting for their device\n";
  std::cout << "errors:      " << (r.last_error.empty() ? "none" : r.last_error) << "\n";
  if (!r.refused.empty())
    std::cout << "refused:     " << r.refused << "\n";
}

} // namespace

void register_agent(Command& cmd) {
  const Globals& g = cmd.globals;
  CLI::App* agent = cmd.object("agent", "the node agent, weftd");
  cmd.verb(agent, "status", "the agent: source, revision applied, last change, errors",
           [&g] { agent_status(g); });
}

} // namespace weft::cli
