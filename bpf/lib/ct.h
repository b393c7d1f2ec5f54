/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking for stateful security groups, zoned per network and
 * bound to the two ports a connection runs between: one entry per connection
 * under a canonical key, so a reply finds its connection with the same single
 * lookup as the packet that opened it.
 *
 * Two tables, as Linux conntrack keeps assured and unassured connections
 * apart: a connection is opened in WEFT_MAP_CT_NEW, an LRU where a flood of
 * new flows only ever evicts other unanswered flows, and moves to WEFT_MAP_CT,
 * which never evicts, when its first reply passes. WEFT_MAP_CT admits a
 * network at most ct_network_max connections; when it (or the table) is full,
 * expired entries are reclaimed, and failing that the reply is refused and
 * counted as drop-ct-full: established connections survive any flood.
 *
 * Like Linux conntrack in loose mode, a TCP packet of any flags but RST may
 * open an entry, so an established session is picked up again mid-stream
 * once a rule admits it; a SYN on a closing or closed entry opens a new one.
 */
#pragma once

#include <asm-generic/errno-base.h>

#include "lib/flow.h"
#include "lib/maps.h"

#define NSEC 1000000000ULL
/* At most one reclaim pass over WEFT_MAP_CT per this many nanoseconds. */
#define CT_RECLAIM_INTERVAL_NS NSEC

/* What conntrack works on for the packet being handled, off the stack for
 * the verifier's 512 bytes. Per CPU, and tc programs do not nest on a CPU. */
struct ct_work {
  struct weft_ct_key key;     /* the packet's connection */
  struct weft_ct_key related; /* the one an ICMP error quotes */
  struct weft_ct_entry opening;
  struct tuple orig; /* a connection's opening packet, to check it again */
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct ct_work);
} ct_scratch SEC(".maps");

static __always_inline struct ct_work* scratch_ct(void) {
  __u32 zero = 0;

  return bpf_map_lookup_elem(&ct_scratch, &zero);
}

/* Which end of the canonical key a packet's source is. */
static __always_inline int tuple_src_is_a(const struct tuple* t) {
  const __u64 *s = (const __u64*)t->saddr, *d = (const __u64*)t->daddr;

  if (s[0] != d[0])
    return s[0] < d[0];
  if (s[1] != d[1])
    return s[1] < d[1];
  return bpf_ntohs(t->sport) <= bpf_ntohs(t->dport);
}

/* The key of the connection of `t` from port `src_ifindex` to `dst_ifindex`. */
static __always_inline void ct_key_of(const struct tuple* t, __u32 zone, __u32 src_ifindex,
                                      __u32 dst_ifindex, struct weft_ct_key* key, int* src_is_a) {
  int a = tuple_src_is_a(t);

  __builtin_memset(key, 0, sizeof(*key));
  key->zone = zone;
  key->family = t->family;
  key->proto = t->proto;
  if (a) {
    __builtin_memcpy(key->addr_a, t->saddr, 16);
    __builtin_memcpy(key->addr_b, t->daddr, 16);
    key->port_a = t->sport;
    key->port_b = t->dport;
    key->ifindex_a = src_ifindex;
    key->ifindex_b = dst_ifindex;
  } else {
    __builtin_memcpy(key->addr_a, t->daddr, 16);
    __builtin_memcpy(key->addr_b, t->saddr, 16);
    key->port_a = t->dport;
    key->port_b = t->sport;
    key->ifindex_a = dst_ifindex;
    key->ifindex_b = src_ifindex;
  }
  *src_is_a = a;
}

static __always_inline int ct_expired(const struct weft_ct_entry* e, __u8 proto, __u64 now) {
  return now - e->last_seen_ns > weft_ct_timeout(e->state, proto) * NSEC;
}

/* The packet's direction relative to the entry: WEFT_CT_ORIG or WEFT_CT_REPLY. */
static __always_inline int ct_direction(const struct weft_ct_entry* e, int src_is_a) {
  return (src_is_a == e->orig_is_a) ? WEFT_CT_ORIG : WEFT_CT_REPLY;
}

/* A SYN on a connection that is closing or closed starts a new one (a client
 * reusing its source port), as in Linux conntrack. */
static __always_inline int ct_reopened(const struct weft_ct_entry* e, const struct flow* f) {
  return f->t.proto == IPPROTO_TCP &&
         (f->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN &&
         (e->state == WEFT_CT_CLOSING || e->state == WEFT_CT_CLOSED);
}

/* Counts the packet and moves the state machine on. */
static __always_inline void ct_account(struct weft_ct_entry* e, int dir, __u8 proto, __u8 tcp_flags,
                                       __u32 len, __u64 now) {
  int d = dir & 1;

  __sync_fetch_and_add(&e->packets[d], 1);
  __sync_fetch_and_add(&e->bytes[d], len);
  e->last_seen_ns = now;
  if (proto != IPPROTO_TCP) {
    if (d == WEFT_CT_REPLY)
      e->state = WEFT_CT_ESTABLISHED;
    return;
  }
  e->tcp_flags[d] |= tcp_flags;
  if (tcp_flags & TCP_FLAG_RST)
    e->state = WEFT_CT_CLOSED;
  else if ((e->tcp_flags[0] & TCP_FLAG_FIN) && (e->tcp_flags[1] & TCP_FLAG_FIN))
    e->state = WEFT_CT_CLOSED;
  else if (tcp_flags & TCP_FLAG_FIN)
    e->state = WEFT_CT_CLOSING;
  else if (d == WEFT_CT_REPLY && e->state == WEFT_CT_NEW)
    e->state = WEFT_CT_ESTABLISHED;
}

/* The established connections of a network, as counted in WEFT_MAP_CT_ZONES. */
static __always_inline struct weft_ct_zone* ct_zone(__u32 zone) {
  struct weft_ct_zone* z = bpf_map_lookup_elem(&ct_zones, &zone);
  struct weft_ct_zone none = {};

  if (z)
    return z;
  bpf_map_update_elem(&ct_zones, &zone, &none, BPF_NOEXIST);
  return bpf_map_lookup_elem(&ct_zones, &zone);
}

/* Removes an established connection, keeping its network's count. */
static __always_inline void ct_forget(const struct weft_ct_key* key) {
  struct weft_ct_zone* z;

  if (bpf_map_delete_elem(&ct, key) != 0)
    return; /* another CPU was first */
  z = bpf_map_lookup_elem(&ct_zones, &key->zone);
  if (z && z->established)
    __sync_fetch_and_sub(&z->established, 1);
}

struct ct_reclaim_ctx {
  __u64 now;
  __u32 reclaimed;
};

static long ct_reclaim_one(void* map, const struct weft_ct_key* key, struct weft_ct_entry* e,
                           struct ct_reclaim_ctx* ctx) {
  (void)map;
  if (ct_expired(e, key->proto, ctx->now)) {
    ct_forget(key);
    ctx->reclaimed++;
  }
  return 0;
}

/* Deletes the expired established connections, at most once per interval:
 * nothing else reclaims an entry that is never looked up again. Returns how
 * many it deleted. A global function, verified once. */
__noinline int ct_reclaim(__u64 now) {
  struct ct_reclaim_ctx ctx = {.now = now};
  struct weft_node_config* node = node_config();
  __u64 last;

  if (!node)
    return 0;
  last = node->ct_reclaimed_ns;
  if (now - last < CT_RECLAIM_INTERVAL_NS ||
      __sync_val_compare_and_swap(&node->ct_reclaimed_ns, last, now) != last)
    return 0;
  bpf_for_each_map_elem(&ct, ct_reclaim_one, &ctx, 0);
  return ctx.reclaimed;
}

/* Room for one more established connection of `zone`? */
static __always_inline int ct_room(const struct weft_node_config* node,
                                   const struct weft_ct_zone* z) {
  __u32 limit = node->ct_network_max ? node->ct_network_max : node->ct_max;

  return z->established < limit;
}

/*
 * Moves the pending connection whose first reply passes (work->key, its entry
 * copied to work->opening) to WEFT_MAP_CT. WEFT_OK, or -WEFT_DROP_CT_FULL
 * when its network (or the table) has no room even after expired entries are
 * reclaimed: the reply is refused and the pending entry dropped, so that the
 * connection is refused rather than left evictable. A global function,
 * verified once; it takes no pointers, since Linux 6.1 lets a global function
 * hand a helper only its own stack or map memory.
 */
__noinline int ct_confirm(__u64 now) {
  struct weft_node_config* node = node_config();
  struct ct_work* work = scratch_ct();
  struct weft_ct_zone* z;
  long err = -1;

  if (!work || !node)
    return -WEFT_DROP_CT_FULL;
  z = ct_zone(work->key.zone);
  if (!z)
    return -WEFT_DROP_CT_FULL;
  if (!ct_room(node, z))
    ct_reclaim(now);
  if (ct_room(node, z)) {
    err = bpf_map_update_elem(&ct, &work->key, &work->opening, BPF_NOEXIST);
    if (err && err != -EEXIST && ct_reclaim(now))
      err = bpf_map_update_elem(&ct, &work->key, &work->opening, BPF_NOEXIST);
  }
  if (err == 0)
    __sync_fetch_and_add(&z->established, 1);
  bpf_map_delete_elem(&ct_new, &work->key);
  return err == 0 || err == -EEXIST ? WEFT_OK : -WEFT_DROP_CT_FULL;
}

/* A new connection, opened by the packet's source, pending its first reply. */
static __always_inline void ct_open(struct ct_work* work, int src_is_a, const struct flow* f,
                                    __u32 orig_ifindex, __u32 reply_ifindex, __u32 generation,
                                    __u32 len, __u64 now) {
  struct weft_ct_entry* e = &work->opening;

  __builtin_memset(e, 0, sizeof(*e));
  e->created_ns = now;
  e->last_seen_ns = now;
  e->packets[WEFT_CT_ORIG] = 1;
  e->bytes[WEFT_CT_ORIG] = len;
  e->generation = generation;
  e->orig_ifindex = orig_ifindex;
  e->reply_ifindex = reply_ifindex;
  e->state = WEFT_CT_NEW;
  e->orig_is_a = src_is_a;
  e->tcp_flags[WEFT_CT_ORIG] = f->tcp_flags;
  e->l4_key = f->l4_key;
  if (f->t.proto == IPPROTO_TCP && (f->tcp_flags & TCP_FLAG_ACK) && !(f->tcp_flags & TCP_FLAG_SYN))
    e->state = WEFT_CT_ESTABLISHED; /* picked up mid-stream */
  bpf_map_update_elem(&ct_new, &work->key, e, BPF_ANY);
}
