/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * weft_bench_wire's candidate hook: VXLAN for this node's VTEP from an
 * address no VTEP of the document has, dropped at XDP before the kernel
 * builds anything for it, on the maps the uplink program reads. Everything
 * else passes to tc. Not attached by `weft node install`: the benchmark
 * measures it against the uplink program's own drop (README, Benchmark).
 */
#include <linux/udp.h>

#include "lib/eth.h"
#include "lib/maps.h"

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} xdp_drops SEC(".maps");

SEC("xdp")
int bench_xdp_drop(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct ethhdr* eth = data;
  struct iphdr* ip = (void*)(eth + 1);
  struct udphdr* udp = (void*)(ip + 1);
  struct weft_node_config* cfg = node_config();
  __u32 zero = 0;
  __u64* drops;

  if (!cfg || (void*)(udp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 ||
      ip->protocol != IPPROTO_UDP || ip->daddr != cfg->tunnel_ip ||
      udp->dest != bpf_htons(WEFT_VXLAN_PORT) || bpf_map_lookup_elem(&vteps, &ip->saddr))
    return XDP_PASS;
  drops = bpf_map_lookup_elem(&xdp_drops, &zero);
  if (drops)
    *drops += 1;
  return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
