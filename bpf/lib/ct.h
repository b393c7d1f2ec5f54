/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking for stateful security groups, zoned per network: one
 * LRU entry per connection under a canonical key, so a reply finds its
 * connection with the same single lookup as the packet that opened it.
 * Like Linux conntrack in loose mode, a TCP packet of any flags but RST may
 * open an entry, so an established session is picked up again mid-stream
 * once a rule admits it.
 */
#pragma once

#include "lib/flow.h"
#include "lib/maps.h"

#define NSEC 1000000000ULL

/* Which end of the canonical key a packet's source is. */
static __always_inline int tuple_src_is_a(const struct tuple* t) {
  const __u64 *s = (const __u64*)t->saddr, *d = (const __u64*)t->daddr;

  if (s[0] != d[0])
    return s[0] < d[0];
  if (s[1] != d[1])
    return s[1] < d[1];
  return bpf_ntohs(t->sport) <= bpf_ntohs(t->dport);
}

static __always_inline void ct_key_of(const struct tuple* t, __u32 zone, struct weft_ct_key* key,
                                      int* src_is_a) {
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
  } else {
    __builtin_memcpy(key->addr_a, t->daddr, 16);
    __builtin_memcpy(key->addr_b, t->saddr, 16);
    key->port_a = t->dport;
    key->port_b = t->sport;
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

/* A new connection, opened by the packet's source. */
static __always_inline void ct_create(const struct weft_ct_key* key, int src_is_a,
                                      const struct flow* f, __u32 orig_ifindex, __u32 reply_ifindex,
                                      __u32 generation, __u32 len, __u64 now) {
  struct weft_ct_entry e = {
      .created_ns = now,
      .last_seen_ns = now,
      .packets = {1, 0},
      .bytes = {len, 0},
      .generation = generation,
      .orig_ifindex = orig_ifindex,
      .reply_ifindex = reply_ifindex,
      .state = WEFT_CT_NEW,
      .orig_is_a = src_is_a,
      .tcp_flags = {f->tcp_flags, 0},
      .l4_key = f->l4_key,
  };

  if (f->t.proto == IPPROTO_TCP && (f->tcp_flags & TCP_FLAG_ACK) && !(f->tcp_flags & TCP_FLAG_SYN))
    e.state = WEFT_CT_ESTABLISHED; /* picked up mid-stream */
  bpf_map_update_elem(&ct, key, &e, BPF_ANY);
}
