/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Verdicts: what the program counts for a packet (a reason, charged to a
 * port), how a drop is returned, and the per-CPU counters by port and reason.
 * A drop without a reason is a bug.
 */
#pragma once

#include "lib/maps.h"

/* The verdict the program counts at its one exit: a reason, charged to a port. */
struct verdict {
  __u32 reason;
  __u32 ifindex;
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

/* Ends the packet with `reason` (counted at the exit). */
static __always_inline int drop(struct verdict* v, __u32 reason) {
  v->reason = reason;
  return TC_ACT_SHOT;
}
