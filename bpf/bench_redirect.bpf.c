/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The benchmark's baseline: the least a switching program can do, one map
 * lookup by ifindex and a redirect. weft_bench prints the port program's cost
 * as a ratio to this one, measured in the same run.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

/* libbpf's helpers need the UAPI types above. */
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u32);
} next_hop SEC(".maps");

SEC("tc")
int bench_redirect(struct __sk_buff* skb) {
  __u32 ifindex = skb->ifindex;
  __u32* target = bpf_map_lookup_elem(&next_hop, &ifindex);

  if (!target)
    return TC_ACT_SHOT;
  return bpf_redirect(*target, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
