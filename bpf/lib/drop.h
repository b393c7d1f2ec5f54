/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Verdicts: what the program counts for a packet (a reason, charged to a
 * port or a device), how a drop is returned, and the per-CPU counters. What
 * a port forwards is counted in its slot of an array, one cheap lookup on
 * every packet's way; drops, and what devices that are no ports forward,
 * by device and reason in a hash. A drop without a reason is a bug.
 */
#pragma once

#include "lib/maps.h"

/* The verdict the program counts at its one exit: a reason, charged to the
 * device `ifindex`, whose port has the counter slot `slot` (0: none). */
struct verdict {
  __u32 reason;
  __u32 ifindex;
  __u32 slot;
};

static __always_inline void count(__u32 ifindex, __u32 reason, __u32 bytes) {
  struct weft_stat_key key = {.ifindex = ifindex, .reason = reason};
  struct weft_counter* c = bpf_map_lookup_elem(&stats, &key);

  if (c) {
    /* Per-CPU: no atomics needed. */
    c->packets++;
    c->bytes += bytes;
    return;
  }
  struct weft_counter init = {.packets = 1, .bytes = bytes};
  bpf_map_update_elem(&stats, &key, &init, BPF_NOEXIST);
}

/* Counts `reason` for the port on `ifindex` with counter slot `slot`. */
static __always_inline void count_port(__u32 ifindex, __u32 slot, __u32 reason, __u32 bytes) {
  struct weft_port_stats* s;
  __u64 r = reason;

  /* Compared as 64 bits: Linux 6.1's verifier does not carry a 32-bit
   * bound over to the index. */
  asm volatile("" : "+r"(r));
  if (slot && r < WEFT_REASON_FIRST_DROP) {
    s = bpf_map_lookup_elem(&port_stats, &slot);
    if (s) {
      s->reason[r].packets++;
      s->reason[r].bytes += bytes;
      return;
    }
  }
  count(ifindex, reason, bytes);
}

/* Ends the packet with `reason` (counted at the exit). */
static __always_inline int drop(struct verdict* v, __u32 reason) {
  v->reason = reason;
  return TC_ACT_SHOT;
}

/* Charges a drop to the device `ifindex` instead (drops are counted by device). */
static __always_inline void charge(struct verdict* v, __u32 ifindex) {
  v->ifindex = ifindex;
  v->slot = 0;
}
