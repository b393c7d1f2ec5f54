/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Switching inside one tenant segment, keyed by the node-local net_id: where
 * a frame goes. A known unicast MAC goes to its port, broadcast and
 * multicast to every other port of the segment, and nothing ever crosses to
 * another net_id. The lookup only decides; deliver.h acts on its answer
 * (security groups, redirect, and later encapsulation).
 */
#pragma once

#include "lib/eth.h"
#include "lib/maps.h"

enum destination_kind {
  DEST_PORT = 1,  /* a local port: `ifindex` */
  DEST_FLOOD = 2, /* every other local port of the segment */
};

struct destination {
  __u32 kind; /* enum destination_kind */
  __u32 ifindex;
};

/* Where the frame in `pkt`, sent from `from`, goes in segment `net_id`:
 * WEFT_OK with `dest` set, or a negative drop reason. */
static __always_inline int l2_lookup(const struct packet* pkt, __u32 from, __u32 net_id,
                                     struct destination* dest) {
  struct weft_fdb_key key = {.net_id = net_id};
  struct weft_fdb_entry* entry;

  if (pkt->eth->h_dest[0] & 1) {
    dest->kind = DEST_FLOOD;
    return WEFT_OK;
  }
  mac_copy(key.mac, pkt->eth->h_dest);
  entry = bpf_map_lookup_elem(&fdb, &key);
  if (!entry || !entry->ifindex)
    return -WEFT_DROP_UNKNOWN_UNICAST;
  if (entry->ifindex == from)
    return -WEFT_DROP_HAIRPIN;
  dest->kind = DEST_PORT;
  dest->ifindex = entry->ifindex;
  return WEFT_OK;
}
