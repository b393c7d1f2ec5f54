/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Frames leaving the node and arriving from the wire: VXLAN (RFC 7348) over
 * an IPv4 underlay, and 802.1Q on a provider network's device. The outer
 * MACs and the device come from the kernel's routing and neighbour tables
 * (bpf_fib_lookup), never from the document; a VTEP whose neighbour is not
 * resolved yet takes bpf_redirect_neigh, which resolves it.
 */
#pragma once

#include <linux/ip.h>
#include <linux/udp.h>

#include "lib/drop.h"
#include "lib/eth.h"

/* Not in Debian 12's UAPI headers (kernel 6.3 and later); refused by 6.1,
 * where decapsulation falls back to keeping the GSO metadata as it is. */
#define WEFT_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define WEFT_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)

#define VXLAN_FLAG_VNI 0x08000000 /* the I flag: the VNI is valid */
#define IP_DONT_FRAGMENT 0x4000
#define OUTER_TTL 64
/* Outer UDP source ports are spread over 49152-65535 by the inner flow's
 * hash, so that the underlay's ECMP and RSS spread the flows. */
#define OUTER_PORT_BASE 49152
#define OUTER_PORT_MASK 0x3fff

struct vxlan_hdr {
  __be32 flags;
  __be32 vni; /* VNI << 8 */
};

/* Everything before the inner Ethernet header of a VXLAN frame. */
struct vxlan_outer {
  struct ethhdr eth;
  struct iphdr ip;
  struct udphdr udp;
  struct vxlan_hdr vxlan;
} __attribute__((packed));

_Static_assert(sizeof(struct vxlan_outer) == WEFT_VXLAN_OVERHEAD, "VXLAN overhead");

/* This CPU's entry for the remote VTEP in `slot`: its traffic and the way to it. */
static __always_inline struct weft_vtep_path* vtep_path(__u32 slot) {
  return slot ? bpf_map_lookup_elem(&vtep_paths, &slot) : 0;
}

static __always_inline void count_path(struct weft_counter* c, __u32 bytes) {
  /* Per-CPU: no atomics needed. */
  c->packets++;
  c->bytes += bytes;
}

/* The checksum of the option-less IPv4 header at `ip` (2-byte aligned). */
static __always_inline __u16 ipv4_checksum(const void* ip) {
  const __u16* word = ip;
  __u32 sum = 0;

#pragma unroll
  for (int i = 0; i < (int)(sizeof(struct iphdr) / 2); i++)
    sum += word[i];
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return ~sum;
}

/* The outer headers for `vtep` of a frame of `len` bytes once encapsulated:
 * IPv4 and UDP as the kernel's vxlan device writes them (DF set, since the
 * fabric enforces the network MTU; UDP checksum 0, which keeps GSO
 * super-packets whole). The MACs are left to vtep_route(). */
static __always_inline void vxlan_outer_of(struct vxlan_outer* h,
                                           const struct weft_node_config* cfg, __u32 vni,
                                           __be32 vtep, __u32 len, __u32 hash) {
  __builtin_memset(h, 0, sizeof(*h));
  h->eth.h_proto = bpf_htons(ETH_P_IP);
  h->ip.version = 4;
  h->ip.ihl = 5;
  h->ip.tot_len = bpf_htons(len - ETH_HLEN);
  h->ip.frag_off = bpf_htons(IP_DONT_FRAGMENT);
  h->ip.ttl = OUTER_TTL;
  h->ip.protocol = IPPROTO_UDP;
  h->ip.saddr = cfg->tunnel_ip;
  h->ip.daddr = vtep;
  h->ip.check = ipv4_checksum((const __u8*)h + __builtin_offsetof(struct vxlan_outer, ip));
  h->udp.source = bpf_htons(OUTER_PORT_BASE | (hash & OUTER_PORT_MASK));
  h->udp.dest = bpf_htons(WEFT_VXLAN_PORT);
  h->udp.len = bpf_htons(len - ETH_HLEN - sizeof(struct iphdr));
  h->vxlan.flags = bpf_htonl(VXLAN_FLAG_VNI);
  h->vxlan.vni = bpf_htonl(vni << 8);
}

/* Every namespace's loopback device. */
#define LOOPBACK_IFINDEX 1

/*
 * The outer MACs and device towards `vtep`, from the kernel's tables: 0, or
 * the BPF_FIB_LKUP_RET_* that says why not. The FIB is asked as for a
 * packet the node sends (in from the loopback device, as the kernel's own
 * output lookups are): bpf_fib_lookup wants forwarding on the device it is
 * asked from, and on lo that changes nothing else, where on the uplink it
 * would make the node route what the wire brings (node install turns it on
 * for lo). An answer is kept in `path` (when the VTEP has one) for
 * WEFT_VTEP_ROUTE_NS: the lookup costs more than the rest of the
 * encapsulation.
 */
static __always_inline long vtep_route(struct __sk_buff* skb, const struct weft_node_config* cfg,
                                       __be32 vtep, struct weft_vtep_path* path,
                                       struct vxlan_outer* h, __u32* ifindex) {
  struct bpf_fib_lookup fib = {
      .family = 2 /* AF_INET */,
      .l4_protocol = IPPROTO_UDP,
      .ifindex = LOOPBACK_IFINDEX,
      .ipv4_src = cfg->tunnel_ip,
      .ipv4_dst = vtep,
  };
  __u64 now = bpf_ktime_get_coarse_ns();
  long ret;

  if (path && path->route_ns && now - path->route_ns < WEFT_VTEP_ROUTE_NS) {
    mac_copy(h->eth.h_dest, path->dmac);
    mac_copy(h->eth.h_source, path->smac);
    *ifindex = path->ifindex;
    return 0;
  }
  ret = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
  if (ret != BPF_FIB_LKUP_RET_SUCCESS)
    return ret ? ret : -1;
  mac_copy(h->eth.h_dest, fib.dmac);
  mac_copy(h->eth.h_source, fib.smac);
  *ifindex = fib.ifindex;
  if (!path)
    return 0;
  mac_copy(path->dmac, fib.dmac);
  mac_copy(path->smac, fib.smac);
  path->ifindex = fib.ifindex;
  path->route_ns = now;
  return 0;
}

/*
 * Makes room for the outer headers in front of the frame. A GSO super-packet
 * is kept whole (FIXED_GSO: the inner MSS stays, and the kernel knows it for
 * a UDP tunnel to segment), and an IPv6 frame has skb->protocol set to the
 * outer IPv4 with it. Any other frame needs nothing but the room, at its
 * head, where the outer headers go: the cheaper helper by far. Returns
 * WEFT_OK or a negative reason.
 */
static __always_inline int vxlan_make_room(struct __sk_buff* skb) {
  struct ethhdr inner;
  __u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 |
                BPF_F_ADJ_ROOM_ENCAP_L4_UDP | BPF_F_ADJ_ROOM_ENCAP_L2_ETH |
                BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN);

  if ((skb->protocol == bpf_htons(ETH_P_IP) && !skb->gso_size) ||
      (skb->protocol != bpf_htons(ETH_P_IP) && skb->protocol != bpf_htons(ETH_P_IPV6)))
    return bpf_skb_change_head(skb, WEFT_VXLAN_OVERHEAD, 0) ? -WEFT_DROP_ENCAP : WEFT_OK;
  /* adjust_room opens the room after the Ethernet header: the frame's own
   * header moves behind it, as the inner one. */
  if (bpf_skb_load_bytes(skb, 0, &inner, sizeof(inner)) ||
      bpf_skb_adjust_room(skb, WEFT_VXLAN_OVERHEAD, BPF_ADJ_ROOM_MAC, flags) ||
      bpf_skb_store_bytes(skb, WEFT_VXLAN_OVERHEAD, &inner, sizeof(inner), 0))
    return -WEFT_DROP_ENCAP;
  return WEFT_OK;
}

/*
 * Puts the outer headers `h` at the head of the frame: straight into packet
 * memory when the frame is the program's own (the helper's copy costs as
 * much as the rest of the encapsulation), through the helper when clones of
 * it may share its data (the helper copies the data first).
 */
static __always_inline long vxlan_write(struct __sk_buff* skb, const struct vxlan_outer* h,
                                        int shared) {
  void* data = (void*)(long)skb->data;
  void* end = (void*)(long)skb->data_end;
  const __u64* from = (const void*)h;
  __u64* to = data;

  if (shared || data + sizeof(*h) > end)
    return bpf_skb_store_bytes(skb, 0, h, sizeof(*h), 0);
#pragma unroll
  for (int i = 0; i < (int)(sizeof(*h) / 8); i++)
    to[i] = from[i];
  ((__u16*)data)[sizeof(*h) / 2 - 1] = ((const __u16*)h)[sizeof(*h) / 2 - 1];
  return 0;
}

/* vxlan_send()'s `vni` with this bit: send a clone, keep the frame. */
#define VXLAN_SEND_CLONE (1u << 31)

/* Writes the outer headers for `vtep` (in `slot` of WEFT_MAP_VTEP_PATHS)
 * and sends the frame, or a clone of it when `vni` has VXLAN_SEND_CLONE;
 * returns the tc action (for a clone, TC_ACT_OK when sent) or a negative
 * reason. Not inlined: its headers stay off the stack of the security-group
 * checks (Debian 12's 6.1 verifier allows 512 bytes in all, and a flood's
 * copies reach it through two more frames). */
static __noinline long vxlan_send(struct __sk_buff* skb, __u32 vni, __be32 vtep, __u32 slot,
                                  __u32 hash) {
  struct weft_node_config* cfg = node_config();
  struct weft_vtep_path* path = vtep_path(slot);
  struct vxlan_outer h __attribute__((aligned(8)));
  int clone = (vni & VXLAN_SEND_CLONE) != 0;
  __u32 ifindex = 0;
  long route;

  vni &= ~VXLAN_SEND_CLONE;
  if (!skb || !cfg)
    return -WEFT_DROP_ENCAP;
  vxlan_outer_of(&h, cfg, vni, vtep, skb->len, hash);
  route = vtep_route(skb, cfg, vtep, path, &h, &ifindex);
  if (vxlan_write(skb, &h, clone))
    return -WEFT_DROP_ENCAP;
  if (route == 0) {
    if (path)
      count_path(&path->tx, skb->len);
    if (clone)
      return bpf_clone_redirect(skb, ifindex, 0) ? -WEFT_DROP_REDIRECT : TC_ACT_OK;
    return bpf_redirect(ifindex, 0);
  }
  /* No neighbour yet (or no forwarding on the uplink): the kernel resolves
   * it, for IP frames; a clone or an ARP frame cannot wait for it. */
  if (clone || skb->protocol != bpf_htons(ETH_P_IP))
    return -WEFT_DROP_VTEP_UNRESOLVED;
  if (path)
    count_path(&path->tx, skb->len);
  return bpf_redirect_neigh(cfg->uplink_ifindex, 0, 0, 0);
}

/* An 802.1Q tag for a vlan network (none for flat) on a frame about to go
 * out of its physnet's device. */
static __always_inline int wire_tag(struct __sk_buff* skb, const struct weft_network* net) {
  if (net->type != WEFT_NET_VLAN)
    return WEFT_OK;
  return bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), net->segmentation_id) ? -WEFT_DROP_ENCAP
                                                                              : WEFT_OK;
}
