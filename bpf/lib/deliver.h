/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Delivery of a frame to the destination the L2 lookup gave: each local port
 * it reaches passes that port's security groups, and every delivery, failed
 * copies included, is counted on the receiving port. A frame for another
 * node passes its sender's rules here and the receiver's there; it leaves
 * VXLAN-encapsulated towards that node's VTEP, or on a provider network's
 * device, within the network's MTU.
 */
#pragma once

#include "lib/drop.h"
#include "lib/encap.h"
#include "lib/l2.h"
#include "lib/mtu.h"
#include "lib/sg.h"

static __always_inline struct weft_port* up_port(__u32 ifindex) {
  struct weft_port* port = bpf_map_lookup_elem(&ports, &ifindex);

  return port && (port->flags & WEFT_PORT_UP) ? port : 0;
}

/* Unicast to the local port on `ifindex`, along `path` (its end filled in here). */
static __always_inline int deliver_port(struct __sk_buff* skb, const struct flow* f,
                                        struct sg_path* path, __u32 ifindex, struct verdict* v) {
  struct weft_port* port = up_port(ifindex);
  int ret;

  if (!port)
    return drop(v, WEFT_DROP_PORT_DOWN);
  sg_end_of(&path->dst, ifindex, port);
  if (f->t.family) {
    ret = sg_check(f, path);
    if (ret < 0) {
      charge(v, path->charge);
      return drop(v, -ret);
    }
  }

  count_port(ifindex, port->stat_slot, WEFT_DELIVERED, skb->len);
  v->reason = WEFT_FWD_UNICAST;
  return bpf_redirect(ifindex, 0);
}

struct flood_ctx {
  struct __sk_buff* skb;
  struct weft_flood* list;
  const struct flow* flow;
  __u32 from;
  __u32 sent;
};

static long flood_one(__u32 index, void* data) {
  struct flood_ctx* ctx = data;
  struct weft_port* port;
  __u32 idx = index;
  __u32 target;

  /* clang may bounds-check one copy of the index and use another. */
  asm volatile("" : "+r"(idx));
  idx &= WEFT_FLOOD_MAX - 1;
  target = ctx->list->ifindex[idx];
  if (target == ctx->from)
    return 0;
  port = up_port(target);
  if (!port)
    return 0;
  /* Broadcast and multicast are matched against each receiver's ingress
   * rules as they are; they open no connections. */
  if (ctx->flow->t.family && (port->flags & WEFT_PORT_SECURITY) &&
      !fixed_ingress(ctx->flow, target) &&
      (ctx->flow->malformed || !sg_admits(port->policy, WEFT_DIR_INGRESS, &ctx->flow->t,
                                          ctx->flow->l4_key, ctx->flow->fragment == FRAG_LATER))) {
    count(target, WEFT_DROP_SG_INGRESS, ctx->skb->len);
    return 0;
  }
  if (bpf_clone_redirect(ctx->skb, target, 0) != 0) {
    count(target, WEFT_DROP_REDIRECT, ctx->skb->len);
    return 0;
  }
  count_port(target, port->stat_slot, WEFT_DELIVERED, ctx->skb->len);
  ctx->sent++;
  return 0;
}

/* A frame bigger than its network's MTU cannot leave the node: the underlay
 * would lose it without a word. A GSO super-packet is judged by its
 * segments (IP and TCP headers without options, at least). */
static __always_inline int over_mtu(struct __sk_buff* skb, __u8 family,
                                    const struct weft_network* net) {
  __u32 l3 = skb->len - ETH_HLEN;

  if (!net->mtu)
    return 0;
  if (skb->gso_segs > 1)
    l3 = skb->gso_size + (family == 6 ? 40 : 20) + 20;
  return l3 > net->mtu;
}

struct vtep_flood_ctx {
  struct __sk_buff* skb;
  struct weft_flood* list;
  __u32 vni;
  __u32 hash;
  __u32 sent;
};

static long flood_vtep(__u32 index, void* data) {
  struct vtep_flood_ctx* ctx = data;
  __u32 idx = index;
  long ret;

  asm volatile("" : "+r"(idx));
  idx &= WEFT_FLOOD_VTEPS_MAX - 1;
  ret = vxlan_send(ctx->skb, ctx->vni | VXLAN_SEND_CLONE, ctx->list->vteps[idx],
                   ctx->list->vtep_slots[idx], ctx->hash);
  if (ret < 0)
    count(ctx->skb->ifindex, -ret, ctx->skb->len);
  else
    ctx->sent++;
  return 0;
}

/* The copies of a flooded frame for the other nodes: one per VTEP that
 * hosts ports of a vxlan network `net`, or the frame itself on the provider
 * network's device, within the network's MTU. Returns how many went. */
static __noinline int flood_remote(struct __sk_buff* skb, struct weft_flood* list,
                                   const struct weft_network* net, __u32 family, __u32 hash) {
  struct vtep_flood_ctx ctx = {.skb = skb, .list = list, .hash = hash};
  __u32 n;

  if (!skb || !list || !net)
    return 0;
  if ((list->vtep_count || net->type != WEFT_NET_VXLAN) && over_mtu(skb, family, net)) {
    count(skb->ifindex, WEFT_DROP_MTU, skb->len);
    return 0;
  }
  if (net->type != WEFT_NET_VXLAN) {
    if (!net->wire_ifindex || wire_tag(skb, net) < 0 ||
        bpf_clone_redirect(skb, net->wire_ifindex, 0) != 0)
      return 0;
    return 1;
  }
  n = list->vtep_count;
  if (!n)
    return 0;
  if (vxlan_make_room(skb) < 0)
    return 0;
  ctx.vni = net->segmentation_id;
  if (n > WEFT_FLOOD_VTEPS_MAX)
    n = WEFT_FLOOD_VTEPS_MAX;
  bpf_loop(n, flood_vtep, &ctx, 0);
  return ctx.sent;
}

/* A copy to every other up port of the segment, and (when the sending port
 * gave its network's entry `net`, 0 from the wire) to the other nodes; the
 * original is consumed. */
static __always_inline int deliver_flood(struct __sk_buff* skb, const struct flow* f,
                                         const struct sg_end* src, __u32 net_id,
                                         const struct weft_network* net, struct verdict* v) {
  struct flood_ctx ctx = {.skb = skb, .flow = f, .from = skb->ifindex};
  __u32 n;

  if (f->t.family && filtered(src) && !fixed_egress(f)) {
    if (f->malformed)
      return drop(v, WEFT_DROP_MALFORMED);
    if (!sg_admits(src->policy, WEFT_DIR_EGRESS, &f->t, f->l4_key, f->fragment == FRAG_LATER))
      return drop(v, WEFT_DROP_SG_EGRESS);
  }
  ctx.list = bpf_map_lookup_elem(&flood, &net_id);
  if (!ctx.list)
    return drop(v, WEFT_DROP_NO_FLOOD_TARGET);
  n = ctx.list->count;
  if (n > WEFT_FLOOD_MAX)
    n = WEFT_FLOOD_MAX;
  bpf_loop(n, flood_one, &ctx, 0);
  /* Last: the remote copies change the frame. */
  if (net)
    ctx.sent += flood_remote(skb, ctx.list, net, f->t.family, flow_hash(f));
  v->reason = ctx.sent ? WEFT_FWD_FLOOD : WEFT_DROP_NO_FLOOD_TARGET;
  return TC_ACT_SHOT;
}

/* Unicast to a port on another node of network `net`, through the sender's
 * rules only. */
static __always_inline int deliver_remote(struct __sk_buff* skb, const struct flow* f,
                                          struct sg_path* path, const struct weft_network* net,
                                          const struct destination* dest, struct verdict* v) {
  long ret;

  if (!net)
    return drop(v, WEFT_DROP_NO_PHYSNET);
  /* The destination end is no port of this node's (path->dst stays empty):
   * its node applies its rules. */
  if (f->t.family) {
    ret = sg_check(f, path);
    if (ret < 0)
      return drop(v, -ret);
  }
  if (over_mtu(skb, f->t.family, net)) {
    /* Dropped, and where it can be, answered so the sender learns the MTU. */
    __u32 len = skb->len;

    ret = mtu_answer(skb, f, net->mtu);
    if (ret < 0)
      return drop(v, WEFT_DROP_MTU);
    count(v->ifindex, WEFT_DROP_MTU, len);
    v->reason = WEFT_MTU_ICMP;
    return ret;
  }
  if (dest->kind == DEST_WIRE) {
    ret = wire_tag(skb, net);
    if (ret < 0)
      return drop(v, -ret);
    v->reason = WEFT_FWD_WIRE;
    return bpf_redirect(dest->ifindex, 0);
  }
  ret = vxlan_make_room(skb);
  if (ret < 0)
    return drop(v, -ret);
  ret = vxlan_send(skb, net->segmentation_id, dest->vtep, dest->vtep_slot, flow_hash(f));
  if (ret < 0)
    return drop(v, -ret);
  v->reason = WEFT_FWD_VTEP;
  return ret;
}

/* The frame to where the lookup said along `path`: from path->src (a local
 * port, or none when the frame came from the wire, path->dst empty) in
 * network path->zone, whose entry `net` the sending port carries (0 from the
 * wire, which sends nothing off the node). One path on the caller's stack,
 * for Linux 6.1's 512 bytes. */
static __always_inline int deliver(struct __sk_buff* skb, const struct flow* f,
                                   struct sg_path* path, const struct weft_network* net,
                                   const struct destination* dest, struct verdict* v) {
  if (dest->kind == DEST_FLOOD)
    return deliver_flood(skb, f, &path->src, path->zone, net, v);
  if (dest->kind == DEST_PORT)
    return deliver_port(skb, f, path, dest->ifindex, v);
  return deliver_remote(skb, f, path, net, dest, v);
}
