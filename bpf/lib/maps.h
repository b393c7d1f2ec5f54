/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The maps, pinned by name under <bpffs>/weft/<node>/maps/. Types in the ABI. */
#pragma once

#include "lib/common.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct weft_node_config);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} config SEC(".maps");

static __always_inline struct weft_node_config* node_config(void) {
  __u32 zero = 0;

  return bpf_map_lookup_elem(&config, &zero);
}

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, WEFT_MAX_PORTS);
  __type(key, __u32);
  __type(value, struct weft_port);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} ports SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, WEFT_MAX_NETWORKS);
  __type(key, __u32);
  __type(value, struct weft_network);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} networks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, WEFT_MAX_FDB);
  __type(key, struct weft_fdb_key);
  __type(value, struct weft_fdb_entry);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} fdb SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, WEFT_MAX_ARP);
  __type(key, struct weft_arp_key);
  __type(value, struct weft_arp_entry);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} arp SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, WEFT_MAX_SPOOF);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct weft_spoof_v4_key);
  __type(value, __u8);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} spoof_v4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, WEFT_MAX_SPOOF);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct weft_spoof_v6_key);
  __type(value, __u8);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} spoof_v6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, WEFT_MAX_NETWORKS);
  __type(key, __u32);
  __type(value, struct weft_flood);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} flood SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, WEFT_MAX_STATS);
  __type(key, struct weft_stat_key);
  __type(value, struct weft_counter);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, WEFT_MAX_SPOOF);
  __type(key, struct weft_port_mac_key);
  __type(value, __u8);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} port_macs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, WEFT_MAX_SG_L4);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct weft_sg_l4_key);
  __type(value, struct weft_rule_set);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} sg_l4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, WEFT_MAX_SG_REMOTE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct weft_sg_remote_key);
  __type(value, struct weft_rule_set);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} sg_remote SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, WEFT_MAX_SG_HITS);
  __type(key, struct weft_sg_hit_key);
  __type(value, __u64);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} sg_hits SEC(".maps");

/* Established connections: never evicted. max_entries is set by the loader
 * from the node configuration (ct_max). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct weft_ct_key);
  __type(value, struct weft_ct_entry);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} ct SEC(".maps");

/* Connections waiting for their first reply: a flood evicts only these. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct weft_ct_key);
  __type(value, struct weft_ct_entry);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_new SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, WEFT_MAX_NETWORKS);
  __type(key, __u32);
  __type(value, struct weft_ct_zone);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_zones SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, WEFT_MAX_FRAGS);
  __type(key, struct weft_frag_key);
  __type(value, struct weft_frag_entry);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} frags SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, WEFT_MAX_VTEPS);
  __type(key, __be32);
  __type(value, struct weft_vtep);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} vteps SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, WEFT_MAX_NETWORKS);
  __type(key, __u32);
  __type(value, __u32);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} vnis SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, WEFT_MAX_SEGMENTS);
  __type(key, struct weft_segment_key);
  __type(value, __u32);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} segments SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, WEFT_MAX_PHYSNETS);
  __type(key, struct weft_physnet_key);
  __type(value, struct weft_physnet);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} physnets SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, WEFT_MAX_VTEPS);
  __type(key, __u32);
  __type(value, struct weft_vtep_path);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} vtep_paths SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, WEFT_MAX_PORTS);
  __type(key, __u32);
  __type(value, struct weft_port_stats);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} port_stats SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, WEFT_MAX_PORTS);
  __type(key, __u32);
  __type(value, struct weft_port_hits);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} port_hits SEC(".maps");
