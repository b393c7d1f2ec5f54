/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Counting every verdict by port and reason: a drop without a reason is a bug. */
#pragma once

#include "lib/maps.h"

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
