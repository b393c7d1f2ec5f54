/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ARP responder (Neutron's l2pop arp_responder): a request for any IPv4
 * address of a port in the sender's network is answered by the fabric, from
 * the map, even while that port's VM is down. The reply is the request turned
 * around and sent back out of the device it came in on.
 */
#pragma once

#include "lib/eth.h"
#include "lib/maps.h"

/* 1: the frame is now a reply, to be sent back; 0: not ours to answer. */
static __always_inline int arp_respond(struct packet* pkt, __u32 net_id) {
  struct arp_eth_ipv4* msg = parse_arp(pkt);
  struct weft_arp_key key = {.net_id = net_id};
  struct weft_arp_entry* entry;
  __be32 sender_ip;

  if (!msg || msg->hdr.ar_op != bpf_htons(ARPOP_REQUEST))
    return 0;
  key.ip = msg->tpa;
  entry = bpf_map_lookup_elem(&arp, &key);
  if (!entry)
    return 0;
  /* A gratuitous request for one's own address needs no answer. */
  if (msg->spa == msg->tpa)
    return 0;

  sender_ip = msg->spa;
  mac_copy(pkt->eth->h_dest, msg->sha);
  mac_copy(pkt->eth->h_source, entry->mac);
  msg->hdr.ar_op = bpf_htons(ARPOP_REPLY);
  mac_copy(msg->tha, msg->sha);
  mac_copy(msg->sha, entry->mac);
  msg->spa = msg->tpa;
  msg->tpa = sender_ip;
  return 1;
}
