/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Delivery of a frame to the destination the L2 lookup gave: each port it
 * reaches passes that port's security groups, and every delivery, failed
 * copies included, is counted on the receiving port.
 */
#pragma once

#include "lib/drop.h"
#include "lib/l2.h"
#include "lib/sg.h"

static __always_inline struct weft_port* up_port(__u32 ifindex) {
  struct weft_port* port = bpf_map_lookup_elem(&ports, &ifindex);

  return port && (port->flags & WEFT_PORT_UP) ? port : 0;
}

/* Unicast to the local port on `ifindex`. */
static __always_inline int deliver_port(struct __sk_buff* skb, const struct flow* f,
                                        const struct sg_end* src, __u32 net_id, __u32 ifindex,
                                        struct verdict* v) {
  struct sg_path path = {.src = *src, .zone = net_id, .len = skb->len, .charge = skb->ifindex};
  struct weft_port* port = up_port(ifindex);
  int ret;

  if (!port)
    return drop(v, WEFT_DROP_PORT_DOWN);
  sg_end_of(&path.dst, ifindex, port);
  if (f->t.family) {
    ret = sg_check(f, &path);
    if (ret < 0) {
      v->ifindex = path.charge;
      return drop(v, -ret);
    }
  }

  count(path.dst.ifindex, WEFT_DELIVERED, skb->len);
  v->reason = WEFT_FWD_UNICAST;
  return bpf_redirect(path.dst.ifindex, 0);
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
  count(target, WEFT_DELIVERED, ctx->skb->len);
  ctx->sent++;
  return 0;
}

/* A copy to every other up port of the segment; the original is consumed. */
static __always_inline int deliver_flood(struct __sk_buff* skb, const struct flow* f,
                                         const struct sg_end* src, __u32 net_id,
                                         struct verdict* v) {
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
  v->reason = ctx.sent ? WEFT_FWD_FLOOD : WEFT_DROP_NO_FLOOD_TARGET;
  return TC_ACT_SHOT;
}

/* The frame to where the lookup said, from the port `src` in `net_id`. */
static __always_inline int deliver(struct __sk_buff* skb, const struct flow* f,
                                   const struct sg_end* src, __u32 net_id,
                                   const struct destination* dest, struct verdict* v) {
  if (dest->kind == DEST_FLOOD)
    return deliver_flood(skb, f, src, net_id, v);
  return deliver_port(skb, f, src, net_id, dest->ifindex, v);
}
