/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Switching inside one tenant segment, keyed by the node-local net_id: where
 * a frame goes. A known unicast MAC goes to its port, here or behind another
 * node's VTEP; broadcast and multicast to every other port of the segment;
 * on a vlan or flat network, a MAC the fabric does not know is outside it
 * (a router, bare metal) and goes out of the physnet's device, unless the
 * frame came from there. Nothing ever crosses to another net_id. The lookup
 * only decides; deliver.h acts on its answer.
 */
#pragma once

#include "lib/eth.h"
#include "lib/maps.h"

enum destination_kind {
  DEST_PORT = 1,  /* a local port: `ifindex` */
  DEST_FLOOD = 2, /* every other port of the segment, local and remote */
  DEST_VTEP = 3,  /* a port on the node whose tunnel endpoint is `vtep` */
  DEST_WIRE = 4,  /* out of the provider network's device, `ifindex` */
};

struct destination {
  __u32 kind; /* enum destination_kind */
  __u32 ifindex;
  __be32 vtep;
  __u32 vtep_slot; /* weft_vtep.slot of `vtep` */
};

/* Where the frame in `pkt`, sent from `from` (a port, or the device of the
 * wire when `from_wire`), goes in segment `net_id`: WEFT_OK with `dest`
 * set, or a negative drop reason. */
static __always_inline int l2_lookup(const struct packet* pkt, __u32 from, __u32 net_id,
                                     int from_wire, struct destination* dest) {
  struct weft_fdb_key key = {.net_id = net_id};
  struct weft_fdb_entry* entry;
  struct weft_network* net;

  if (pkt->eth->h_dest[0] & 1) {
    dest->kind = DEST_FLOOD;
    return WEFT_OK;
  }
  mac_copy(key.mac, pkt->eth->h_dest);
  entry = bpf_map_lookup_elem(&fdb, &key);
  if (entry && entry->ifindex) {
    if (entry->ifindex == from)
      return -WEFT_DROP_HAIRPIN;
    dest->kind = DEST_PORT;
    dest->ifindex = entry->ifindex;
    return WEFT_OK;
  }
  /* The fabric knows its own ports: from the wire only a local one. */
  if (from_wire)
    return -WEFT_DROP_UNKNOWN_UNICAST;
  if (entry && entry->vtep) {
    dest->kind = DEST_VTEP;
    dest->vtep = entry->vtep;
    dest->vtep_slot = entry->vtep_slot;
    return WEFT_OK;
  }
  net = bpf_map_lookup_elem(&networks, &net_id);
  if (!net || net->type == WEFT_NET_VXLAN)
    return -WEFT_DROP_UNKNOWN_UNICAST; /* l2pop: a vxlan network knows every MAC */
  if (!net->wire_ifindex)
    return -WEFT_DROP_NO_PHYSNET;
  dest->kind = DEST_WIRE;
  dest->ifindex = net->wire_ifindex;
  return WEFT_OK;
}
