// weftd: the node agent. It keeps this node's datapath equal to a source of
// desired state, a file (--state, watched) or etcd (--etcd, filled by the
// Neutron driver), attaches port devices the moment they appear, and carries
// the ports' status back. Stopping or killing it leaves the datapath running.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "loader/agent/agent.hpp"
#include "loader/agent/etcd_source.hpp"
#include "loader/agent/metrics.hpp"
#include "loader/agent/state_file.hpp"
#include "loader/datapath/session.hpp"
#include "loader/model/state.hpp"
#include "loader/system/netns.hpp"

using namespace weft;

namespace {

const char* kFooter = R"(
SOURCES (one of them)
  --state FILE   a state document (the shapes `weft apply` takes), watched
                 with inotify: every save is applied, nothing else needed
  --etcd URL     etcd v3 (gRPC), the keys <prefix>/state/... that the Neutron
                 ML2 driver "weft" writes

WHAT IT DOES
  * At start, and on each new revision of the source: the same compile, diff
    and write as `weft apply`. A revision that is not valid is refused with
    the key or resource named, and nothing of it is applied.
  * A port device (tap<11 characters of the port id>, tap or veth, up or
    down) that appears is attached at once, one that goes is detached.
  * Nothing is written when nothing changed: a restarted weftd finds the
    node as it left it and touches no map.
  * Ready (sd_notify READY=1, Type=notify) after the source's first revision
    is applied. SIGTERM stops it; SIGHUP reconciles again. Neither, nor a
    SIGKILL, touches the datapath, which keeps forwarding.

METRICS (--metrics ADDRESS:PORT, Prometheus text at /metrics)
  weft_forward_packets_total{reason,port,network}, weft_drop_packets_total{...}
  (and _bytes_total), weft_conntrack_entries, weft_conntrack_capacity,
  weft_agent_apply_seconds, weft_agent_reconciles_total, weft_agent_writes_total,
  weft_agent_revision_applied, weft_agent_revision_lag,
  weft_agent_source_connected, weft_agent_ports{status}

FILES
  <state-dir>/<node>/agent.json   what `weft agent status` shows

EXAMPLES
  weftd --node node1 --state /etc/weft/state.json
  weftd --node node1 --etcd https://10.0.0.10:2379 --etcd-cacert ca.pem \
        --etcd-cert node1.pem --etcd-key node1-key.pem)";

void notify(const std::string& line) {
  ::sd_notify(0, line.c_str());
}

// What the agent tells the Neutron driver of its node (P/agents/<host>):
// where its VTEP is and which networks it can carry, from its installation.
std::string announcement(const Layout& layout) {
  Session session(layout);
  NodeStatus node = session.installation().status();
  if (!node.installed)
    throw std::runtime_error("node " + layout.node +
                             " is not installed: run weft node install first");
  nlohmann::json types = nlohmann::json::array();
  if (node.tunnel_ip)
    types.push_back("vxlan");
  nlohmann::json physnets = nlohmann::json::array();
  for (const auto& physnet : node.physnets)
    physnets.push_back(physnet.name);
  if (!node.physnets.empty()) {
    types.push_back("vlan");
    types.push_back("flat");
  }
  return nlohmann::json{{"host", layout.node},
                        {"tunnel_ip", node.tunnel_ip ? nlohmann::json(node.tunnel_ip->str())
                                                     : nlohmann::json(nullptr)},
                        {"network_types", types},
                        {"physical_networks", physnets},
                        {"abi_version", node.abi_version},
                        {"started_at", static_cast<std::int64_t>(::time(nullptr))}}
      .dump();
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"weftd: the weft node agent; keeps the node's datapath equal to its source",
               "weftd"};
  app.footer(kFooter);
  Layout layout;
  std::string netns, state_file;
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  layout.node = host;
  app.add_option("--node", layout.node, "this node's name (binding:host_id)")
      ->capture_default_str();
  app.add_option("--netns", netns, "work inside the network namespace /run/netns/NAME");
  app.add_option("--bpffs", layout.bpffs, "the bpffs the node's pins are under")
      ->capture_default_str();
  app.add_option("--state-dir", layout.state_dir, "where applied documents are recorded")
      ->capture_default_str();
  std::string metrics_bind;
  app.add_option("--metrics", metrics_bind,
                 "serve Prometheus metrics on ADDRESS:PORT (/metrics); off when not given");
  EtcdOptions etcd;
  auto* file_opt = app.add_option("--state", state_file, "the state document to follow");
  auto* etcd_opt = app.add_option("--etcd", etcd.endpoints,
                                  "etcd endpoints (http:// or https://HOST:PORT), tried in turn")
                       ->delimiter(',');
  file_opt->excludes(etcd_opt);
  app.add_option("--etcd-prefix", etcd.prefix, "the keys' prefix")->capture_default_str();
  app.add_option("--etcd-cacert", etcd.ca_file, "CA that signed etcd's certificate (PEM)");
  app.add_option("--etcd-cert", etcd.cert_file,
                 "this agent's client certificate (PEM; its CN is the etcd user)");
  app.add_option("--etcd-key", etcd.key_file, "the key of --etcd-cert (PEM)");
  app.add_option("--etcd-lease-ttl", etcd.lease_ttl, "seconds the agent's announcement outlives it")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
    if (file_opt->count() + etcd_opt->count() == 0)
      throw CLI::RequiredError("a source: --state FILE or --etcd URL");
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    // Before any thread exists: every thread started later is in it too.
    if (!netns.empty())
      enter_netns(netns);
    std::unique_ptr<Source> source;
    if (!state_file.empty()) {
      source = std::make_unique<StateFile>(state_file);
    } else {
      etcd.host = layout.node;
      etcd.announcement = announcement(layout);
      source = std::make_unique<EtcdSource>(etcd);
    }
    Agent agent(layout, *source, notify);
    std::unique_ptr<Metrics> metrics;
    if (!metrics_bind.empty()) {
      metrics = std::make_unique<Metrics>(metrics_bind, layout, *source);
      agent.observe(metrics.get());
    }
    agent.run();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "weftd: " << e.what() << "\n";
    notify("STATUS=failed: " + std::string(e.what()));
    return 1;
  }
}
