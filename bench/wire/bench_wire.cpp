// weft_bench_wire: what dropping foreign tunnel traffic costs at the uplink's
// two candidate hooks, with real frames over a veth rather than test runs:
//  tc   the uplink program at tc ingress (what `weft node install` attaches),
//       which drops VXLAN from an address no VTEP of the document has;
//  xdp  bpf/bench_xdp_drop.bpf.c at XDP (native, on the veth) in front of
//       it, dropping the same frames before the kernel builds an skb's way
//       through GRO and tc.
// A sender namespace floods 64-byte datagrams to the node's tunnel IP, port
// 4789, from an address that is no VTEP; the node's counters give how many
// each hook dropped per second. The sender and the receiving end share the
// machine's CPUs, so a cheaper drop shows as a higher rate. Interleaved
// rounds, medians, the xdp/tc ratio. Prints; asserts nothing about time.
//
// usage: weft_bench_wire [--rounds N] [--seconds S] [--net-tool PATH]   (root)
// Namespaces wbw-node and wbw-peer exist only while it runs.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "maps/weft_abi.h"
#include "tests/prog/port_program.hpp"
#include "tests/prog/uplink_program.hpp"
// Skeleton after the ABI header.
#include "bench_xdp_drop.skel.h"

namespace {

const char* const kNode = "wbw-node";
const char* const kPeer = "wbw-peer";
const char* const kUplink = "wbw-n";
const char* const kTunnelIp = "172.30.0.1";
const char* const kKnownVtep = "172.30.0.9"; // a VTEP of the document; the sender is none
constexpr int kTcxIngress = 46;              // BPF_TCX_INGRESS (not in Debian 12's headers)

void sh(const std::string& command) {
  if (std::system(command.c_str()) != 0)
    throw std::runtime_error("failed: " + command);
}

// The namespaces, removed however the benchmark ends.
struct Lab {
  Lab() {
    down();
    sh(std::string("ip netns add ") + kNode + " && ip netns add " + kPeer + " && ip link add " +
       kUplink + " netns " + kNode + " type veth peer name wbw-p netns " + kPeer + " && ip -n " +
       kNode + " addr add " + kTunnelIp + "/24 dev " + kUplink + " && ip -n " + kPeer +
       " addr add 172.30.0.2/24 dev wbw-p && ip -n " + kNode + " link set " + kUplink +
       " up && ip -n " + kPeer + " link set wbw-p up");
  }
  ~Lab() { down(); }
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;
  static void down() {
    std::system((std::string("ip netns del ") + kNode + " 2>/dev/null; ip netns del " + kPeer +
                 " 2>/dev/null")
                    .c_str());
  }
};

void enter(const char* netns) {
  int fd = open((std::string("/var/run/netns/") + netns).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0)
    throw std::runtime_error(std::string("enter namespace ") + netns + ": " + std::strerror(errno));
  close(fd);
}

void check(int err, const char* what) {
  if (err)
    throw std::runtime_error(std::string(what) + ": " + std::strerror(err < 0 ? -err : err));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Runs the sender for `seconds`; returns how many datagrams it sent.
double blast(const std::string& tool, double seconds) {
  std::string command = std::string("ip netns exec ") + kPeer + " " + tool + " udp-blast " +
                        kTunnelIp + " " + std::to_string(WEFT_VXLAN_PORT) + " " +
                        std::to_string(seconds) + " 64";
  FILE* out = popen(command.c_str(), "r");
  if (!out)
    throw std::runtime_error("run " + command);
  std::array<char, 256> line{};
  std::string text;
  while (std::fgets(line.data(), line.size(), out))
    text += line.data();
  if (pclose(out) != 0)
    throw std::runtime_error("failed: " + command + ": " + text);
  long sent = 0;
  if (std::sscanf(text.c_str(), "{\"sent\": %ld", &sent) != 1)
    throw std::runtime_error("unexpected output of " + command + ": " + text);
  return static_cast<double>(sent);
}

std::uint64_t xdp_dropped(bench_xdp_drop_bpf* xdp) {
  std::vector<std::uint64_t> cpus(static_cast<std::size_t>(libbpf_num_possible_cpus()));
  std::uint32_t zero = 0;
  check(bpf_map__lookup_elem(xdp->maps.xdp_drops, &zero, sizeof zero, cpus.data(),
                             cpus.size() * sizeof(std::uint64_t), 0),
        "read xdp_drops");
  std::uint64_t total = 0;
  for (auto n : cpus)
    total += n;
  return total;
}

std::uint64_t tc_dropped(const weft::test::PortProgram& port, std::uint32_t ifindex) {
  auto all = weft::test::read_counters(port.maps());
  auto it = all.find({ifindex, WEFT_DROP_UNKNOWN_VTEP});
  return it == all.end() ? 0 : it->second.packets;
}

std::string default_net_tool(const char* argv0) {
  std::string self = argv0;
  auto slash = self.rfind('/');
  return (slash == std::string::npos ? std::string(".") : self.substr(0, slash)) + "/wbench_net";
}

} // namespace

int main(int argc, char** argv) {
  int rounds = 5;
  double seconds = 2;
  std::string tool = default_net_tool(argv[0]);
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string arg = argv[i];
    if (arg == "--rounds")
      rounds = std::max(1, std::atoi(argv[i + 1]));
    else if (arg == "--seconds")
      seconds = std::max(0.2, std::atof(argv[i + 1]));
    else if (arg == "--net-tool")
      tool = argv[i + 1];
  }
  try {
    Lab lab;
    enter(kNode);
    std::uint32_t ifindex = if_nametoindex(kUplink);
    if (!ifindex)
      throw std::runtime_error("no device wbw-n");

    weft::test::PortProgram port;
    weft::test::UplinkProgram uplink(port);
    bench_xdp_drop_bpf* xdp = bench_xdp_drop_bpf__open();
    if (!xdp)
      throw std::runtime_error("open the XDP program");
    bpf_map* map = nullptr;
    bpf_object__for_each_map(map, xdp->obj) {
      bpf_map__set_pin_path(map, nullptr);
      if (bpf_map* shared = bpf_object__find_map_by_name(port.object(), bpf_map__name(map));
          shared && !bpf_map__is_internal(map))
        check(bpf_map__reuse_fd(map, bpf_map__fd(shared)), "share a map with the XDP program");
    }
    check(bench_xdp_drop_bpf__load(xdp), "load the XDP program");

    weft_node_config config{};
    config.abi_version = WEFT_ABI_VERSION;
    config.tunnel_ip = inet_addr(kTunnelIp);
    config.uplink_ifindex = ifindex;
    config.ct_max = bpf_map__max_entries(port.maps().ct);
    std::uint32_t zero = 0;
    check(bpf_map__update_elem(port.maps().config, &zero, sizeof zero, &config, sizeof config, 0),
          "config");
    __be32 known = inet_addr(kKnownVtep);
    weft_vtep vtep{1};
    check(bpf_map__update_elem(port.maps().vteps, &known, sizeof known, &vtep, sizeof vtep, 0),
          "vteps");

    // The uplink program at tcx ingress for the whole run; the link goes
    // with its descriptor.
    int link = bpf_link_create(bpf_program__fd(uplink.program()), static_cast<int>(ifindex),
                               static_cast<bpf_attach_type>(kTcxIngress), nullptr);
    if (link < 0)
      throw std::runtime_error(std::string("attach the uplink program: ") + std::strerror(errno));
    int xdp_fd = bpf_program__fd(xdp->progs.bench_xdp_drop);

    std::vector<double> sent_tc, sent_xdp, dropped_tc, dropped_xdp;
    blast(tool, 0.3); // warm up (and resolve the neighbour)
    for (int r = 0; r < rounds; ++r) {
      std::uint64_t before = tc_dropped(port, ifindex);
      sent_tc.push_back(blast(tool, seconds) / seconds);
      std::uint64_t dropped = tc_dropped(port, ifindex) - before;
      if (!dropped)
        throw std::runtime_error("tc: no frame reached the uplink program");
      dropped_tc.push_back(static_cast<double>(dropped) / seconds);

      check(bpf_xdp_attach(static_cast<int>(ifindex), xdp_fd, XDP_FLAGS_DRV_MODE, nullptr),
            "attach the XDP program (native)");
      before = xdp_dropped(xdp);
      std::uint64_t tc_before = tc_dropped(port, ifindex);
      sent_xdp.push_back(blast(tool, seconds) / seconds);
      dropped = xdp_dropped(xdp) - before;
      std::uint64_t leaked = tc_dropped(port, ifindex) - tc_before;
      check(bpf_xdp_detach(static_cast<int>(ifindex), XDP_FLAGS_DRV_MODE, nullptr),
            "detach the XDP program");
      if (!dropped || leaked)
        throw std::runtime_error("xdp: " + std::to_string(dropped) + " dropped at XDP, " +
                                 std::to_string(leaked) + " reached tc");
      dropped_xdp.push_back(static_cast<double>(dropped) / seconds);
    }
    close(link);
    bench_xdp_drop_bpf__destroy(xdp);

    double tc = median(dropped_tc), at_xdp = median(dropped_xdp);
    std::printf("weft_bench_wire: %d rounds x %.1f s, 64-byte datagrams to %s:%d from a "
                "non-VTEP, over a veth; medians\n",
                rounds, seconds, kTunnelIp, WEFT_VXLAN_PORT);
    std::printf("%-44s %14s %14s %8s\n", "HOOK", "SENT/S", "DROPPED/S", "RATIO");
    std::printf("%-44s %14.0f %14.0f %8.2f\n", "tc: the uplink program (installed)",
                median(sent_tc), tc, 1.0);
    std::printf("%-44s %14.0f %14.0f %8.2f\n", "xdp: early drop in front of it (candidate)",
                median(sent_xdp), at_xdp, at_xdp / tc);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft_bench_wire: %s\n", e.what());
    return 1;
  }
  return 0;
}
