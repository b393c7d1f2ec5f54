#include "loader/agent/agent.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "loader/datapath/session.hpp"
#include "loader/fabric/record.hpp"
#include "loader/model/error.hpp"
#include "loader/model/state.hpp"
#include "loader/system/link_watch.hpp"

using nlohmann::json;

namespace weft {

namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double ms_since(std::chrono::steady_clock::time_point then) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - then).count();
}

std::string ms_text(double ms) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f ms", ms);
  return text;
}

// sd-daemon(3) priority prefixes when stderr is the journal's, so that
// `journalctl -p err -u weftd` finds the errors.
void log(int priority, const std::string& line) {
  static const bool journal = std::getenv("JOURNAL_STREAM") != nullptr;
  if (journal)
    std::cerr << "<" << priority << ">";
  std::cerr << "weftd: " << line << std::endl;
}
constexpr int kErr = 3, kWarning = 4, kInfo = 6;

} // namespace

json to_json(const AgentReport& r) {
  json ports = json::array();
  for (const auto& p : r.ports) {
    json port = {{"id", p.port_id}, {"device", p.device}, {"status", p.up ? "ACTIVE" : "DOWN"}};
    if (auto it = r.attach_ms.find(p.port_id); it != r.attach_ms.end())
      port["attach_ms"] = it->second;
    ports.push_back(port);
  }
  return {{"node", r.node},
          {"pid", r.pid},
          {"source", r.source},
          {"source_connected", r.source_connected},
          {"source_problem", r.source_problem},
          {"started_at", r.started_at},
          {"ready", r.ready},
          {"revision", r.revision ? json(*r.revision) : json(nullptr)},
          {"applied_at", r.applied_at},
          {"last_change_at", r.last_change_at},
          {"last_change", r.last_change},
          {"reconciles", r.reconciles},
          {"writes", r.writes},
          {"last_error", r.last_error},
          {"refused", r.refused},
          {"ports", ports}};
}

AgentReport agent_report_of(const json& j) {
  AgentReport r;
  r.node = j.value("node", "");
  r.pid = j.value("pid", 0);
  r.source = j.value("source", "");
  r.source_connected = j.value("source_connected", false);
  r.source_problem = j.value("source_problem", "");
  r.started_at = j.value("started_at", 0.0);
  r.ready = j.value("ready", false);
  if (j.contains("revision") && j["revision"].is_number())
    r.revision = j["revision"].get<std::int64_t>();
  r.applied_at = j.value("applied_at", 0.0);
  r.last_change_at = j.value("last_change_at", 0.0);
  r.last_change = j.value("last_change", json::object());
  r.reconciles = j.value("reconciles", std::uint64_t{0});
  r.writes = j.value("writes", std::uint64_t{0});
  r.last_error = j.value("last_error", "");
  r.refused = j.value("refused", "");
  for (const auto& p : j.value("ports", json::array())) {
    r.ports.push_back(
        {p.value("id", ""), p.value("device", ""), p.value("status", "") == "ACTIVE"});
    if (p.contains("attach_ms"))
      r.attach_ms[p.value("id", "")] = p["attach_ms"].get<double>();
  }
  return r;
}

Agent::Agent(Layout layout, Source& source, Notify notify)
    : layout_(std::move(layout)), source_(source), notify_(std::move(notify)),
      retry_(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) {
  if (!retry_)
    throw SystemError("timerfd", errno);
  report_.node = layout_.node;
  report_.pid = static_cast<int>(::getpid());
  report_.source = source_.describe();
  report_.started_at = unix_now();
  // Until the source speaks, the node keeps what it was last given: devices
  // that come and go are still attached and detached by that document.
  // Without a record nothing is assumed: an empty document would remove
  // whatever the maps hold.
  Session session(layout_);
  session.installation().require_installed();
  if (session.records().load())
    document_ = session.record().document;
}

void Agent::arm_retry() {
  itimerspec in_a_second{};
  in_a_second.it_value.tv_sec = 1;
  ::timerfd_settime(retry_.get(), 0, &in_a_second, nullptr);
}

void Agent::refuse(std::int64_t revision, const std::string& why) {
  report_.refused = "revision " + std::to_string(revision) + ": " + why;
  log(kErr, "refused " + report_.refused + "; nothing applied, the node keeps revision " +
                (report_.revision ? std::to_string(*report_.revision) : "none"));
  save_report();
}

void Agent::take_snapshot() {
  auto started = std::chrono::steady_clock::now();
  std::optional<Snapshot> snapshot = source_.take();
  report_.source_connected = source_.connected();
  report_.source_problem = source_.problem();
  if (!snapshot) {
    save_report();
    return;
  }
  if (!snapshot->refused.empty()) {
    refuse(snapshot->revision, snapshot->refused);
    return;
  }
  // Checked whole before anything of it is used; a refused revision leaves
  // the last good one in force, for devices that come and go too.
  if (snapshot->document != document_) {
    try {
      parsed_ = parse_state(snapshot->document);
    } catch (const StateError& e) {
      refuse(snapshot->revision, e.what());
      return;
    }
  }
  report_.refused.clear();
  document_ = snapshot->document;
  revision_ = snapshot->revision;
  from_source_ = true;
  reconcile("revision " + std::to_string(revision_) + " (read and checked in " +
            ms_text(ms_since(started)) + ")");
}

void Agent::on_links(const LinkEvents& events) {
  bool ours = events.overflow;
  for (const auto& device : events.devices)
    if (watched_.count(device)) {
      seen_.emplace(device, events.first);
      ours = true;
    }
  if (ours)
    reconcile(events.overflow ? "device events lost" : "devices changed");
}

void Agent::reconcile(const std::string& why) {
  if (document_.empty())
    return;
  auto started = std::chrono::steady_clock::now();
  ++report_.reconciles;
  bool now_ready = false;
  try {
    Session session(layout_);
    NodeLock lock(layout_.record_dir(), layout_.node);
    if (!parsed_)
      parsed_ = parse_state(document_);
    Plan plan = session.apply(*parsed_, document_, false);
    std::uint64_t writes = plan.changes.size() + plan.attach.size() + plan.detach.size();
    std::size_t added = 0, changed = 0, removed = 0;
    for (const auto& change : plan.changes)
      (change.kind == MapChange::Kind::Add      ? added
       : change.kind == MapChange::Kind::Change ? changed
                                                : removed)++;
    watched_.clear();
    report_.ports.clear();
    for (const auto& port : plan.desired.local_ports) {
      watched_.insert(port.device);
      report_.ports.push_back({port.id, port.device, port.ifindex.has_value()});
    }
    for (const auto& port : plan.attach)
      if (auto it = seen_.find(port.device); it != seen_.end()) {
        double ms = ms_since(it->second);
        report_.attach_ms[port.port_id] = ms;
        log(kInfo, "port " + port.port_id + " attached on " + port.device + " " + ms_text(ms) +
                       " after the device appeared");
      }
    seen_.clear();
    if (from_source_)
      report_.revision = revision_;
    report_.applied_at = unix_now();
    report_.last_error.clear();
    if (writes) {
      report_.writes += writes;
      report_.last_change_at = report_.applied_at;
      report_.last_change = {{"why", why},
                             {"entries_added", added},
                             {"entries_changed", changed},
                             {"entries_removed", removed},
                             {"attached", plan.attach.size()},
                             {"detached", plan.detach.size()},
                             {"ms", ms_since(started)}};
      log(kInfo, why + ": " + std::to_string(added) + " entries added, " + std::to_string(changed) +
                     " changed, " + std::to_string(removed) + " removed; " +
                     std::to_string(plan.attach.size()) + " ports attached, " +
                     std::to_string(plan.detach.size()) + " detached (" +
                     ms_text(ms_since(started)) + ")");
    }
    source_.report(report_.ports);
    now_ready = from_source_ && !report_.ready;
    report_.ready |= now_ready;
  } catch (const StateError& e) {
    // Only the record's document is parsed here: it no longer passes.
    report_.last_error = std::string("the document applied last is not valid now: ") + e.what();
    log(kErr, report_.last_error);
  } catch (const std::exception& e) {
    report_.last_error = e.what();
    log(kErr, std::string("reconcile failed (") + why + "), again in 1 s: " + e.what());
    arm_retry();
  }
  save_report();
  if (observer_)
    observer_->reconciled(report_, ms_since(started) / 1000.0);
  // After the report, so that whoever waited sees the node as it is.
  if (now_ready) {
    notify_("READY=1\nSTATUS=revision " + std::to_string(revision_) + " applied");
    log(kInfo, "ready: " + source_.describe() + ", revision " + std::to_string(revision_) +
                   " applied (" + std::to_string(report_.ports.size()) + " ports here)");
  }
}

void Agent::save_report() {
  try {
    write_file_atomically(layout_.agent_status(), to_json(report_).dump(1) + "\n");
  } catch (const std::exception& e) {
    log(kWarning, std::string("cannot write the agent's status: ") + e.what());
  }
}

void Agent::run() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  if (::pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0)
    throw SystemError("block signals", errno);
  Fd signal_fd(::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd)
    throw SystemError("signalfd", errno);
  LinkWatch links;

  log(kInfo, "node " + layout_.node + ", source " + source_.describe());
  // Devices made or removed while no agent ran, against what was applied
  // last; an unchanged node is not written to.
  reconcile("start, the document applied last");
  take_snapshot();
  for (;;) {
    pollfd fds[] = {{signal_fd.get(), POLLIN, 0},
                    {links.fd(), POLLIN, 0},
                    {source_.fd(), POLLIN, 0},
                    {retry_.get(), POLLIN, 0}};
    if (::poll(fds, 4, -1) < 0) {
      if (errno == EINTR)
        continue;
      throw SystemError("poll", errno);
    }
    if (fds[0].revents) {
      signalfd_siginfo info{};
      while (::read(signal_fd.get(), &info, sizeof(info)) == sizeof(info)) {
        if (info.ssi_signo == SIGHUP) {
          log(kInfo, "SIGHUP: reconciling again");
          reconcile("SIGHUP");
          continue;
        }
        log(kInfo, "stopping; the datapath keeps running as it is");
        notify_("STOPPING=1");
        return;
      }
    }
    if (fds[1].revents)
      on_links(links.read());
    if (fds[2].revents)
      take_snapshot();
    if (fds[3].revents) {
      std::uint64_t expirations = 0;
      (void)!::read(retry_.get(), &expirations, sizeof(expirations));
      reconcile("retry");
    }
  }
}

} // namespace weft
