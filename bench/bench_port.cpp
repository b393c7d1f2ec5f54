// weft_bench: what the port program's local-switch path costs per packet, next
// to the least a switching program can do (one lookup and a redirect,
// bpf/bench_redirect.bpf.c), both timed by the kernel with BPF_PROG_TEST_RUN
// in the same run. Prints ns/packet and the ratio; asserts nothing about time.
//
// usage: weft_bench [--rounds N] [--repeat N]   (root: loads BPF programs)
#include <algorithm>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <sched.h>
#include <stdexcept>
#include <string>
#include <vector>

#include "maps/weft_abi.h"
// Skeletons after the ABI header.
#include "bench_redirect.skel.h"
#include "port.skel.h"

namespace {

constexpr std::uint32_t kSource = 1; // lo of the benchmark's own namespace
constexpr std::uint32_t kTarget = 7; // never reached: test runs do not redirect
const std::uint8_t kMacA[6] = {0xfa, 0x16, 0x3e, 0, 0, 1};
const std::uint8_t kMacB[6] = {0xfa, 0x16, 0x3e, 0, 0, 2};

void check(int err, const char* what) {
  if (err)
    throw std::runtime_error(std::string(what) + ": " + std::strerror(err < 0 ? -err : errno));
}

std::vector<std::uint8_t> udp_frame(std::size_t payload) {
  std::vector<std::uint8_t> frame(sizeof(ethhdr) + sizeof(iphdr) + sizeof(udphdr) + payload);
  auto* eth = reinterpret_cast<ethhdr*>(frame.data());
  std::memcpy(eth->h_dest, kMacB, 6);
  std::memcpy(eth->h_source, kMacA, 6);
  eth->h_proto = htons(ETH_P_IP);
  auto* ip = reinterpret_cast<iphdr*>(eth + 1);
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  ip->tot_len = htons(static_cast<std::uint16_t>(frame.size() - sizeof(ethhdr)));
  ip->saddr = inet_addr("10.0.0.1");
  ip->daddr = inet_addr("10.0.0.2");
  auto* udp = reinterpret_cast<udphdr*>(ip + 1);
  udp->source = htons(40000);
  udp->dest = htons(5201);
  udp->len = htons(static_cast<std::uint16_t>(sizeof(udphdr) + payload));
  return frame;
}

// Average ns per run of `repeat` runs, as the kernel measured it.
double time_prog(int prog_fd, std::vector<std::uint8_t>& frame, int repeat, int expect) {
  __sk_buff ctx{};
  ctx.ifindex = kSource;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
              .data_size_in = static_cast<__u32>(frame.size()), .ctx_in = &ctx,
              .ctx_size_in = sizeof(ctx), .repeat = repeat);
  check(bpf_prog_test_run_opts(prog_fd, &opts), "BPF_PROG_TEST_RUN");
  if (static_cast<int>(opts.retval) != expect)
    throw std::runtime_error("program returned " + std::to_string(opts.retval) + ", expected " +
                             std::to_string(expect));
  return opts.duration;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
  int rounds = 15, repeat = 200000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string arg = argv[i];
    if (arg == "--rounds")
      rounds = std::atoi(argv[i + 1]);
    else if (arg == "--repeat")
      repeat = std::atoi(argv[i + 1]);
  }
  try {
    // A private network namespace: lo is the source port, nothing else is touched.
    check(unshare(CLONE_NEWNET), "unshare network namespace");

    port_bpf* port = port_bpf__open();
    if (!port)
      throw std::runtime_error("open port program");
    bpf_map* map;
    bpf_object__for_each_map(map, port->obj) bpf_map__set_pin_path(map, nullptr);
    check(port_bpf__load(port), "load port program");

    weft_port src{}, dst{};
    src.net_id = dst.net_id = 1;
    src.flags = dst.flags = WEFT_PORT_SECURITY | WEFT_PORT_UP;
    std::memcpy(src.mac, kMacA, 6);
    std::memcpy(dst.mac, kMacB, 6);
    check(bpf_map__update_elem(port->maps.ports, &kSource, 4, &src, sizeof(src), 0), "ports");
    check(bpf_map__update_elem(port->maps.ports, &kTarget, 4, &dst, sizeof(dst), 0), "ports");
    weft_fdb_key fk{};
    fk.net_id = 1;
    std::memcpy(fk.mac, kMacB, 6);
    weft_fdb_entry fe{kTarget, 0};
    check(bpf_map__update_elem(port->maps.fdb, &fk, sizeof(fk), &fe, sizeof(fe), 0), "fdb");
    weft_port_mac_key mk{};
    mk.ifindex = kSource;
    std::memcpy(mk.mac, kMacA, 6);
    std::uint8_t yes = 1;
    check(bpf_map__update_elem(port->maps.port_macs, &mk, sizeof(mk), &yes, 1, 0), "port_macs");
    weft_spoof_v4_key sk{};
    sk.prefixlen = WEFT_SPOOF_V4_FULL_BITS;
    sk.ifindex = kSource;
    std::memcpy(sk.mac, kMacA, 6);
    sk.ip = inet_addr("10.0.0.1");
    check(bpf_map__update_elem(port->maps.spoof_v4, &sk, sizeof(sk), &yes, 1, 0), "spoof_v4");

    bench_redirect_bpf* base = bench_redirect_bpf__open_and_load();
    if (!base)
      throw std::runtime_error("load baseline program");
    check(bpf_map__update_elem(base->maps.next_hop, &kSource, 4, &kTarget, 4, 0), "next_hop");

    auto frame = udp_frame(64);
    int port_fd = bpf_program__fd(port->progs.weft_port);
    int base_fd = bpf_program__fd(base->progs.bench_redirect);
    constexpr int kRedirect = 7; // TC_ACT_REDIRECT
    std::vector<double> port_ns, base_ns;
    time_prog(port_fd, frame, 1000, kRedirect); // warm up
    time_prog(base_fd, frame, 1000, kRedirect);
    for (int r = 0; r < rounds; ++r) {
      // Interleaved, so both see the same machine.
      base_ns.push_back(time_prog(base_fd, frame, repeat, kRedirect));
      port_ns.push_back(time_prog(port_fd, frame, repeat, kRedirect));
    }
    double p = median(port_ns), b = median(base_ns);
    std::printf("weft_bench: %d rounds x %d packets, %zu-byte IPv4/UDP frame, median per packet\n",
                rounds, repeat, frame.size());
    std::printf("%-44s %10s %8s\n", "PATH", "NS/PACKET", "RATIO");
    std::printf("%-44s %10.1f %8.2f\n", "baseline: lookup + redirect", b, 1.0);
    std::printf("%-44s %10.1f %8.2f\n", "port: anti-spoof + L2 switch + counters", p, p / b);
    bench_redirect_bpf__destroy(base);
    port_bpf__destroy(port);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
