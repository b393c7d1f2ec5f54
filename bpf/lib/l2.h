/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Switching inside one tenant segment, keyed by the node-local net_id: a
 * known unicast MAC goes to its port, broadcast and multicast to every other
 * port of the segment, and nothing ever crosses to another net_id.
 */
#pragma once

#include "lib/drop.h"
#include "lib/eth.h"
#include "lib/maps.h"

static __always_inline int port_is_up(__u32 ifindex)
{
  struct weft_port *port = bpf_map_lookup_elem(&ports, &ifindex);

  return port && (port->flags & WEFT_PORT_UP);
}

/* Unicast to the port that owns dst MAC in this segment. */
static __always_inline int l2_unicast(struct __sk_buff *skb, struct packet *pkt, __u32 net_id,
                                      __u32 *reason)
{
  struct weft_fdb_key key = {.net_id = net_id};
  struct weft_fdb_entry *entry;

  mac_copy(key.mac, pkt->eth->h_dest);
  entry = bpf_map_lookup_elem(&fdb, &key);
  if (!entry || !entry->ifindex) {
    *reason = WEFT_DROP_UNKNOWN_UNICAST;
    return TC_ACT_SHOT;
  }
  if (entry->ifindex == skb->ifindex) {
    *reason = WEFT_DROP_HAIRPIN;
    return TC_ACT_SHOT;
  }
  if (!port_is_up(entry->ifindex)) {
    *reason = WEFT_DROP_PORT_DOWN;
    return TC_ACT_SHOT;
  }
  count(entry->ifindex, WEFT_DELIVERED, skb->len);
  *reason = WEFT_FWD_UNICAST;
  return bpf_redirect(entry->ifindex, 0);
}

struct flood_ctx {
  struct __sk_buff *skb;
  struct weft_flood *list;
  __u32 from;
  __u32 sent;
};

static long flood_one(__u32 index, void *data)
{
  struct flood_ctx *ctx = data;
  __u32 idx = index;
  __u32 target;

  /* clang may bounds-check one copy of the index and use another. */
  asm volatile("" : "+r"(idx));
  idx &= WEFT_FLOOD_MAX - 1;
  target = ctx->list->ifindex[idx];
  if (target == ctx->from || !port_is_up(target))
    return 0;
  if (bpf_clone_redirect(ctx->skb, target, 0) == 0) {
    count(target, WEFT_DELIVERED, ctx->skb->len);
    ctx->sent++;
  }
  return 0;
}

/* A copy to every other up port of the segment; the original is consumed. */
static __always_inline int l2_flood(struct __sk_buff *skb, __u32 net_id, __u32 *reason)
{
  struct flood_ctx ctx = {.skb = skb, .from = skb->ifindex};
  __u32 n;

  ctx.list = bpf_map_lookup_elem(&flood, &net_id);
  if (!ctx.list) {
    *reason = WEFT_DROP_NO_FLOOD_TARGET;
    return TC_ACT_SHOT;
  }
  n = ctx.list->count;
  if (n > WEFT_FLOOD_MAX)
    n = WEFT_FLOOD_MAX;
  bpf_loop(n, flood_one, &ctx, 0);
  *reason = ctx.sent ? WEFT_FWD_FLOOD : WEFT_DROP_NO_FLOOD_TARGET;
  return TC_ACT_SHOT;
}
