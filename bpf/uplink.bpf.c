/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The uplink program: tc ingress of the node's underlay device (--uplink)
 * and of each provider network's device (--physical-interface-mappings).
 * What the fabric takes from the wire (DESIGN.md §3.4): VXLAN to this node's
 * VTEP from a VTEP of the document, with the VNI of a network hosted here
 * and an inner source that is a port of that network behind that VTEP;
 * 802.1Q frames with the tag of a vlan network of the device's physnet;
 * untagged frames on a flat network's own device. Each is decapsulated (or
 * untagged) and meets the same delivery and ingress security groups as
 * local traffic; anything else of the fabric's is dropped with its reason,
 * charged to the device. Everything else (the node's own SSH, etcd,
 * routing) passes to the node's stack untouched.
 */
#include "lib/deliver.h"
#include "lib/drop.h"
#include "lib/encap.h"
#include "lib/eth.h"
#include "lib/flow.h"
#include "lib/l2.h"
#include "lib/maps.h"

#define WIRE_PASS 1 /* not the fabric's: the node's own traffic */

/* Outer headers, inner Ethernet and what flow_of() reads of the inner packet. */
#define UPLINK_PULL_LEN (WEFT_VXLAN_OVERHEAD + 160)

static __always_inline int tagged(__u16 proto) {
  return proto == ETH_P_8021Q || proto == ETH_P_8021AD;
}

/* Strips the outer headers of a VXLAN frame, after checking who sent it:
 * WEFT_OK with `net_id` set, or a negative reason. */
static __always_inline int vxlan_in(struct __sk_buff* skb, struct packet* pkt, struct iphdr* ip,
                                    __u32* net_id) {
  struct weft_fdb_key key = {};
  struct weft_fdb_entry* at;
  struct weft_vtep_path* path;
  struct weft_vtep* from;
  struct vxlan_hdr* vx;
  struct ethhdr inner;
  struct ethhdr* eth;
  __be32 vtep = ip->saddr;
  __u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO;
  __u32* found;
  __u32 vni;

  if (ip->ihl != 5 || (ip->frag_off & bpf_htons(IP_OFFSET_MASK | IP_MORE_FRAGMENTS)))
    return -WEFT_DROP_MALFORMED;
  from = bpf_map_lookup_elem(&vteps, &vtep);
  if (!from)
    return -WEFT_DROP_UNKNOWN_VTEP;
  vx = (void*)(ip + 1) + sizeof(struct udphdr);
  eth = (void*)(vx + 1);
  if ((void*)(eth + 1) > pkt->data_end || !(vx->flags & bpf_htonl(VXLAN_FLAG_VNI)))
    return -WEFT_DROP_MALFORMED;
  vni = bpf_ntohl(vx->vni) >> 8;
  found = bpf_map_lookup_elem(&vnis, &vni);
  if (!found)
    return -WEFT_DROP_UNKNOWN_VNI;
  *net_id = *found;
  if (tagged(bpf_ntohs(eth->h_proto)))
    return -WEFT_DROP_TAGGED_INSIDE;
  key.net_id = *net_id;
  mac_copy(key.mac, eth->h_source);
  at = bpf_map_lookup_elem(&fdb, &key);
  if (!at || at->vtep != vtep)
    return -WEFT_DROP_VTEP_SOURCE;

  path = vtep_path(from->slot);
  if (path)
    count_path(&path->rx, skb->len);
  __builtin_memcpy(&inner, eth, sizeof(inner));
  if (inner.h_proto == bpf_htons(ETH_P_IP))
    flags |= WEFT_ADJ_ROOM_DECAP_L3_IPV4;
  else if (inner.h_proto == bpf_htons(ETH_P_IPV6))
    flags |= WEFT_ADJ_ROOM_DECAP_L3_IPV6;
  /* Room is taken after the outer Ethernet header: the inner one goes in
   * its place. Kernels before 6.3 know no DECAP flags. */
  if (bpf_skb_adjust_room(skb, -WEFT_VXLAN_OVERHEAD, BPF_ADJ_ROOM_MAC, flags) &&
      bpf_skb_adjust_room(skb, -WEFT_VXLAN_OVERHEAD, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO))
    return -WEFT_DROP_ENCAP;
  if (bpf_skb_store_bytes(skb, 0, &inner, sizeof(inner), 0))
    return -WEFT_DROP_ENCAP;
  return WEFT_OK;
}

/*
 * The network a frame from the wire belongs to: WEFT_OK with `net_id` set
 * and the frame as its network carries it inside (decapsulated, untagged),
 * WIRE_PASS for the node's own traffic, or a negative reason.
 */
static __always_inline int wire_segment(struct __sk_buff* skb, const struct weft_node_config* cfg,
                                        struct packet* pkt, __u32* net_id) {
  struct weft_segment_key key = {.ifindex = skb->ifindex};
  struct udphdr* udp;
  struct iphdr* ip;
  __u32* found;
  int ret;

  if (skb->vlan_present) {
    /* The kernel took the outer tag off into the metadata. */
    key.vlan = skb->vlan_tci & 0x0fff;
    found = bpf_map_lookup_elem(&segments, &key);
    if (!found)
      return -WEFT_DROP_UNKNOWN_VLAN;
    *net_id = *found;
    /* Popping the tag lifts a second one from the frame into the metadata. */
    if (bpf_skb_vlan_pop(skb))
      return -WEFT_DROP_MALFORMED;
    if (skb->vlan_present)
      return -WEFT_DROP_TAGGED_INSIDE;
  } else if (skb->ifindex == cfg->uplink_ifindex && pkt->proto == ETH_P_IP &&
             (ip = parse_ipv4(pkt)) && ip->daddr == cfg->tunnel_ip && (udp = parse_udp4(pkt, ip)) &&
             udp->dest == bpf_htons(WEFT_VXLAN_PORT)) {
    ret = vxlan_in(skb, pkt, ip, net_id);
    if (ret < 0)
      return ret;
  } else {
    found = bpf_map_lookup_elem(&segments, &key);
    if (!found)
      return WIRE_PASS;
    *net_id = *found;
  }
  ret = parse_eth(skb, pkt);
  if (ret < 0)
    return ret;
  if (tagged(pkt->proto))
    return -WEFT_DROP_TAGGED_INSIDE;
  return WEFT_OK;
}

static __always_inline int uplink_pipeline(struct __sk_buff* skb, struct verdict* v) {
  struct weft_node_config* cfg = node_config();
  struct flow* f = scratch_flow();
  struct sg_path path = {}; /* from no port of this node's: no egress rules */
  struct destination dest = {};
  struct packet pkt;
  __u32 net_id = 0;
  int ret;

  if (!cfg || !f)
    return TC_ACT_OK;
  if ((long)skb->data_end - (long)skb->data < UPLINK_PULL_LEN &&
      skb->len > skb->data_end - skb->data)
    bpf_skb_pull_data(skb, skb->len < UPLINK_PULL_LEN ? skb->len : UPLINK_PULL_LEN);
  if (parse_eth(skb, &pkt) < 0)
    return TC_ACT_OK;
  ret = wire_segment(skb, cfg, &pkt, &net_id);
  if (ret == WIRE_PASS)
    return TC_ACT_OK;
  if (ret < 0)
    return drop(v, -ret);
  flow_of(skb, f, net_id);
  ret = l2_lookup(&pkt, skb->ifindex, net_id, 1, &dest);
  if (ret < 0)
    return drop(v, -ret);
  path.zone = net_id;
  path.len = skb->len;
  path.charge = skb->ifindex;
  return deliver(skb, f, &path, 0, &dest, v);
}

SEC("tc")
int weft_uplink(struct __sk_buff* skb) {
  struct verdict v = {.reason = WEFT_NONE, .ifindex = skb->ifindex};
  __u32 len = skb->len;
  int action;

  build_serial();
  action = uplink_pipeline(skb, &v);

  if (v.reason != WEFT_NONE)
    count(v.ifindex, v.reason, len);
  return action;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
