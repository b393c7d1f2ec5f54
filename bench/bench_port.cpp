// weft_bench: what the port program costs per packet, timed by the kernel
// with BPF_PROG_TEST_RUN, against baselines measured in the same run:
//  1. the local-switch path next to the least a switching program can do (one
//     lookup and a redirect, bpf/bench_redirect.bpf.c);
//  2. security groups: the first packet of a connection (conntrack miss, rule
//     match, conntrack entry created) and an established packet, with 10 to
//     10,000 rules on the receiving port, next to the plain forwarding path.
// Prints ns/packet and ratios; asserts nothing about time.
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
#include <linux/tcp.h>
#include <linux/udp.h>
#include <net/if.h>
#include <sched.h>
#include <stdexcept>
#include <string>
#include <vector>

#include "loader/fabric/policy.hpp"
#include "loader/model/state.hpp"
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

// Ethernet (A -> B) and IPv4 (saddr -> 10.0.0.2) around `l4_len` bytes of
// protocol `proto`; returns the frame and where its transport header starts.
std::vector<std::uint8_t> ipv4_frame(std::uint8_t proto, std::uint32_t saddr_be, std::size_t l4_len,
                                     std::uint8_t** l4, const std::uint8_t* dst_mac = kMacB) {
  std::vector<std::uint8_t> frame(sizeof(ethhdr) + sizeof(iphdr) + l4_len);
  auto* eth = reinterpret_cast<ethhdr*>(frame.data());
  std::memcpy(eth->h_dest, dst_mac, 6);
  std::memcpy(eth->h_source, kMacA, 6);
  eth->h_proto = htons(ETH_P_IP);
  auto* ip = reinterpret_cast<iphdr*>(eth + 1);
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = proto;
  ip->tot_len = htons(static_cast<std::uint16_t>(frame.size() - sizeof(ethhdr)));
  ip->saddr = saddr_be;
  ip->daddr = inet_addr("10.0.0.2");
  *l4 = reinterpret_cast<std::uint8_t*>(ip + 1);
  return frame;
}

std::vector<std::uint8_t> udp_frame(std::size_t payload) {
  std::uint8_t* l4;
  auto frame = ipv4_frame(IPPROTO_UDP, inet_addr("10.0.0.1"), sizeof(udphdr) + payload, &l4);
  auto* udp = reinterpret_cast<udphdr*>(l4);
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

// A TCP SYN from 172.16.x.y to 10.0.0.2:port, as the first packet of a connection.
std::vector<std::uint8_t> tcp_syn(std::uint32_t src_ip_be, std::uint16_t dport,
                                  const std::uint8_t* dst_mac) {
  std::uint8_t* l4;
  auto frame = ipv4_frame(IPPROTO_TCP, src_ip_be, sizeof(tcphdr), &l4, dst_mac);
  auto* tcp = reinterpret_cast<tcphdr*>(l4);
  tcp->source = htons(40000);
  tcp->dest = htons(dport);
  tcp->doff = 5;
  tcp->syn = 1;
  return frame;
}

// Group "g<n>" with n rules, rule i: ingress TCP to port 1000 + i from
// 172.16.0.0 + i (a /32), used by port "p<n>"; a packet matching the last
// rule is the first packet measured.
void add_group_with_rules(weft::State& state, std::size_t n) {
  weft::SecurityGroup group;
  group.id = "g" + std::to_string(n);
  group.stateful = true;
  for (std::size_t i = 0; i < n; ++i) {
    weft::SecurityGroupRule rule;
    rule.direction = weft::Direction::Ingress;
    rule.protocol = 6;
    rule.port_range_min = rule.port_range_max = static_cast<std::uint16_t>(1000 + i);
    rule.remote_ip_prefix = weft::IpPrefix::parse("172.16." + std::to_string(i / 256) + "." +
                                                  std::to_string(i % 256) + "/32");
    group.rules.push_back(rule);
  }
  state.security_groups.push_back(group);
  weft::Port port;
  port.id = "p" + std::to_string(n);
  port.host_id = "bench";
  port.security_groups = {group.id};
  state.ports.push_back(port);
}

void clear_map(bpf_map* map) {
  std::vector<std::uint8_t> key(bpf_map__key_size(map)), next(key.size());
  while (bpf_map__get_next_key(map, nullptr, next.data(), next.size()) == 0)
    bpf_map__delete_elem(map, next.data(), next.size(), 0);
}

void clear_connections(port_bpf* port) {
  clear_map(port->maps.ct);
  clear_map(port->maps.ct_new);
  clear_map(port->maps.ct_zones);
}

std::size_t entries_of(bpf_map* map) {
  std::vector<std::uint8_t> key(bpf_map__key_size(map)), next(key.size());
  std::size_t n = 0;
  for (const void* prev = nullptr; bpf_map__get_next_key(map, prev, next.data(), next.size()) == 0;
       prev = key.data()) {
    key = next;
    ++n;
  }
  return n;
}

// What the datapath does at a connection's first reply: the pending entries
// become established ones, so that "established" is timed on the table an
// established connection lives in.
void confirm_connections(port_bpf* port) {
  std::vector<std::uint8_t> key(bpf_map__key_size(port->maps.ct_new)), next(key.size());
  std::vector<std::uint8_t> entry(bpf_map__value_size(port->maps.ct_new));
  while (bpf_map__get_next_key(port->maps.ct_new, nullptr, next.data(), next.size()) == 0) {
    check(bpf_map__lookup_elem(port->maps.ct_new, next.data(), next.size(), entry.data(),
                               entry.size(), 0),
          "ct_new");
    check(bpf_map__update_elem(port->maps.ct, next.data(), next.size(), entry.data(), entry.size(),
                               0),
          "ct");
    bpf_map__delete_elem(port->maps.ct_new, next.data(), next.size(), 0);
  }
}

weft::Policies load_rules(port_bpf* port, const weft::State& state) {
  clear_map(port->maps.sg_l4);
  clear_map(port->maps.sg_remote);
  clear_connections(port);
  auto policies = weft::assign_policies(state, "bench");
  auto maps = weft::compile_sg_maps(state, policies);
  for (const auto& [k, v] : maps.l4)
    check(bpf_map__update_elem(port->maps.sg_l4, k.data(), k.size(), v.data(), v.size(), 0),
          "sg_l4");
  for (const auto& [k, v] : maps.remote)
    check(bpf_map__update_elem(port->maps.sg_remote, k.data(), k.size(), v.data(), v.size(), 0),
          "sg_remote");
  return policies;
}

// Single runs, each the first packet of its connection, appended to `ns`.
// With `tracked`, each run must have opened its connection: the timed path
// is the new-connection path (rules matched, entry created) every time.
void time_first_packets(port_bpf* port, std::vector<std::uint8_t>& frame, int runs, bool tracked,
                        std::vector<double>& ns) {
  for (int i = 0; i < runs; ++i) {
    clear_connections(port);
    ns.push_back(time_prog(bpf_program__fd(port->progs.weft_port), frame, 1, 7));
    std::size_t opened = entries_of(port->maps.ct_new);
    if (opened != (tracked ? 1u : 0u))
      throw std::runtime_error("a first packet opened " + std::to_string(opened) +
                               " connections, not " + (tracked ? "1" : "0") +
                               ": it did not take the new-connection path");
  }
}

// One receiving port of the security-group benchmark.
struct Case {
  std::size_t rules; // 0: the forwarding path, no groups
  std::uint32_t ifindex;
  std::uint8_t mac[6];
  std::vector<std::uint8_t> syn;
  std::vector<double> first, established;
};

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
    // The sender has port security and one stateless rule, egress to anyone;
    // the receiver has none: anti-spoofing, one rule match, switching.
    src.flags = WEFT_PORT_SECURITY | WEFT_PORT_UP;
    src.policy = 2;
    dst.flags = WEFT_PORT_UP;
    std::memcpy(src.mac, kMacA, 6);
    std::memcpy(dst.mac, kMacB, 6);
    src.stat_slot = 1; // as apply writes ports: counters in slots of their own
    dst.stat_slot = 2;
    src.ip4 = inet_addr("10.0.0.1"); // as apply writes it: the port's first fixed IP
    check(bpf_map__update_elem(port->maps.ports, &kSource, 4, &src, sizeof(src), 0), "ports");
    check(bpf_map__update_elem(port->maps.ports, &kTarget, 4, &dst, sizeof(dst), 0), "ports");
    weft_fdb_key fk{};
    fk.net_id = 1;
    std::memcpy(fk.mac, kMacB, 6);
    weft_fdb_entry fe{kTarget, 0, 0};
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

    {
      weft::State egress_any;
      weft::SecurityGroup group;
      group.id = "egress-any";
      group.stateful = false;
      weft::SecurityGroupRule rule;
      rule.direction = weft::Direction::Egress;
      group.rules.push_back(rule);
      egress_any.security_groups.push_back(group);
      weft::Port sender;
      sender.id = "sender";
      sender.host_id = "bench";
      sender.security_groups = {"egress-any"};
      egress_any.ports.push_back(sender);
      // Policy 1 of this document is written as policy 2 of the benchmark.
      auto policies = weft::assign_policies(egress_any, "bench");
      auto maps = weft::compile_sg_maps(egress_any, policies);
      // As apply writes the port: its "egress, any" rule decides without lookups.
      auto fast = weft::allow_all_rules(policies.list.at(0));
      std::copy(fast.begin(), fast.end(), src.allow_all);
      check(bpf_map__update_elem(port->maps.ports, &kSource, 4, &src, sizeof(src), 0), "ports");
      for (const auto& [key, v] : maps.l4) {
        auto k = key;
        reinterpret_cast<weft_sg_l4_key*>(k.data())->policy = 2;
        check(bpf_map__update_elem(port->maps.sg_l4, k.data(), k.size(), v.data(), v.size(), 0),
              "sg_l4");
      }
      for (const auto& [key, v] : maps.remote) {
        auto k = key;
        reinterpret_cast<weft_sg_remote_key*>(k.data())->policy = 2;
        check(bpf_map__update_elem(port->maps.sg_remote, k.data(), k.size(), v.data(), v.size(), 0),
              "sg_remote");
      }
    }

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
    std::printf("%-44s %10.1f %8.2f\n", "port: anti-spoof + 1 rule + L2 switch", p, p / b);

    // --- the remote path ---------------------------------------------------
    // The same frame to a port behind another node's VTEP: egress rule,
    // MTU, VXLAN encapsulation, outer MACs from the kernel's tables (a
    // static neighbour on a veth of the benchmark's own namespace).
    // Encapsulation changes the frame and the kernel refuses a second
    // repeat of it, so both sides are timed as single runs.
    {
      if (std::system("ip link add wbench0 type veth peer name wbench1 && "
                      "ip addr add 172.31.0.1/24 dev wbench0 && ip link set wbench0 up && "
                      "ip link set wbench1 up && sysctl -qw net.ipv4.conf.wbench0.forwarding=1 && "
                      "ip neigh replace 172.31.0.2 lladdr 02:00:00:00:00:02 dev wbench0 "
                      "nud permanent") != 0)
        throw std::runtime_error("set up the benchmark's underlay veth");
      std::uint32_t uplink = if_nametoindex("wbench0");
      weft_node_config cfg{};
      cfg.abi_version = WEFT_ABI_VERSION;
      cfg.tunnel_ip = inet_addr("172.31.0.1");
      cfg.uplink_ifindex = uplink;
      std::uint32_t zero = 0;
      check(bpf_map__update_elem(port->maps.config, &zero, 4, &cfg, sizeof(cfg), 0), "config");
      weft_network net{};
      net.type = WEFT_NET_VXLAN;
      net.segmentation_id = 1001;
      net.mtu = 1450;
      std::uint32_t net_id = 1;
      check(bpf_map__update_elem(port->maps.networks, &net_id, 4, &net, sizeof(net), 0),
            "networks");
      src.net = net; // as apply writes it: the port carries its network's entry
      check(bpf_map__update_elem(port->maps.ports, &kSource, 4, &src, sizeof(src), 0), "ports");
      weft_fdb_entry remote{0, inet_addr("172.31.0.2"), 1}; // the VTEP's slot, as apply gives it
      check(bpf_map__update_elem(port->maps.fdb, &fk, sizeof(fk), &remote, sizeof(remote), 0),
            "fdb");
      std::vector<double> remote_ns, single_base_ns;
      constexpr int kSingleRuns = 2000;
      for (int r = 0; r < rounds; ++r)
        for (int i = 0; i < kSingleRuns / rounds + 1; ++i) {
          auto copy = frame;
          single_base_ns.push_back(time_prog(base_fd, copy, 1, kRedirect));
          copy = frame;
          remote_ns.push_back(time_prog(port_fd, copy, 1, kRedirect));
        }
      double rn = median(remote_ns), sb = median(single_base_ns);
      std::printf("%-44s %10.1f %8.2f\n", "baseline, single runs", sb, 1.0);
      std::printf("%-44s %10.1f %8.2f\n", "remote: anti-spoof + 1 rule + VXLAN encap", rn, rn / sb);
      // Back to the local path for what follows.
      check(bpf_map__update_elem(port->maps.fdb, &fk, sizeof(fk), &fe, sizeof(fe), 0), "fdb");
    }

    // --- security groups -------------------------------------------------
    // One receiving port per rule count, each with its own stateful policy,
    // all loaded at once and measured in turns, so that every count sees the
    // same machine; a port with no groups gives the forwarding path. The
    // sender has port security off: its own checks stay out of the figures.
    src.flags = WEFT_PORT_UP;
    src.policy = 0;
    check(bpf_map__update_elem(port->maps.ports, &kSource, 4, &src, sizeof(src), 0), "ports");
    std::vector<Case> cases;
    weft::State state;
    for (std::size_t rules : {0u, 10u, 100u, 1000u, 10000u}) {
      Case c{
          rules, static_cast<std::uint32_t>(20 + cases.size()), {0xfa, 0x16, 0x3e, 1, 0, 0}, {}, {},
          {}};
      c.mac[5] = static_cast<std::uint8_t>(cases.size());
      if (rules)
        add_group_with_rules(state, rules);
      cases.push_back(std::move(c));
    }
    auto policies = load_rules(port, state);
    for (auto& c : cases) {
      weft_port receiver{};
      receiver.net_id = 1;
      receiver.flags = WEFT_PORT_UP;
      receiver.stat_slot = c.ifindex;
      std::memcpy(receiver.mac, c.mac, 6);
      if (c.rules) {
        receiver.flags |= WEFT_PORT_SECURITY | WEFT_PORT_STATEFUL;
        receiver.policy = policies.policy_of("p" + std::to_string(c.rules));
      }
      check(bpf_map__update_elem(port->maps.ports, &c.ifindex, 4, &receiver, sizeof(receiver), 0),
            "ports");
      weft_fdb_key key{};
      key.net_id = 1;
      std::memcpy(key.mac, c.mac, 6);
      weft_fdb_entry entry{c.ifindex, 0, 0};
      check(bpf_map__update_elem(port->maps.fdb, &key, sizeof(key), &entry, sizeof(entry), 0),
            "fdb");
      std::uint32_t last = c.rules ? static_cast<std::uint32_t>(c.rules - 1) : 0;
      c.syn = tcp_syn(htonl((172u << 24) | (16u << 16) | last),
                      static_cast<std::uint16_t>(1000 + last), c.mac);
      // A packet no rule admits is dropped, whatever the count.
      if (c.rules) {
        auto refused =
            tcp_syn(inet_addr("192.0.2.1"), static_cast<std::uint16_t>(1000 + last), c.mac);
        clear_connections(port);
        time_prog(port_fd, refused, 1, 2 /* TC_ACT_SHOT */);
      }
    }
    int single_runs = std::max(20, repeat / 2000);
    for (int r = 0; r < rounds; ++r)
      for (auto& c : cases) {
        time_first_packets(port, c.syn, single_runs, c.rules != 0, c.first);
        time_prog(port_fd, c.syn, 1, kRedirect); // leaves the entry: established from here
        confirm_connections(port);
        c.established.push_back(time_prog(port_fd, c.syn, repeat / 10, kRedirect));
      }

    std::printf("\nsecurity groups: TCP SYN to a port whose ingress rules number N, matching\n"
                "the last rule; the counts are loaded together and measured in turns.\n"
                "first = conntrack miss + match + entry created (median of %d single runs);\n"
                "established = conntrack hit (median of %d runs of %d packets).\n",
                rounds * single_runs, rounds, repeat / 10);
    std::printf("%-12s %14s %9s %9s %16s %9s\n", "RULES", "FIRST NS/PKT", "VS FWD", "VS 10",
                "ESTABLISHED NS", "VS FWD");
    double fwd_first = median(cases[0].first), fwd_est = median(cases[0].established);
    double first_10 = median(cases[1].first);
    for (const auto& c : cases) {
      double first = median(c.first), est = median(c.established);
      std::string label = c.rules ? std::to_string(c.rules) : "none (fwd)";
      char vs10[16] = "-";
      if (c.rules)
        std::snprintf(vs10, sizeof(vs10), "%.2f", first / first_10);
      std::printf("%-12s %14.1f %9.2f %9s %16.1f %9.2f\n", label.c_str(), first, first / fwd_first,
                  vs10, est, est / fwd_est);
    }

    bench_redirect_bpf__destroy(base);
    port_bpf__destroy(port);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
