/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The port program: tc ingress of a VM's tap (or the host end of its veth),
 * so it sees every frame the VM sends. Parse, check the source, answer ARP,
 * switch inside the port's segment; one exit that counts the verdict.
 */
#include "lib/arp.h"
#include "lib/drop.h"
#include "lib/eth.h"
#include "lib/l2.h"
#include "lib/maps.h"
#include "lib/spoof.h"

/* Enough linear bytes for Ethernet + IPv4 with options + UDP, or IPv6 + ICMPv6. */
#define WEFT_PULL_LEN 128

static __always_inline int port_pipeline(struct __sk_buff *skb, __u32 *reason)
{
  __u32 ifindex = skb->ifindex;
  struct weft_port *port = bpf_map_lookup_elem(&ports, &ifindex);
  struct packet pkt;
  __u32 net_id;
  int ret;

  if (!port) {
    *reason = WEFT_DROP_NOT_A_PORT;
    return TC_ACT_SHOT;
  }
  if (!(port->flags & WEFT_PORT_UP)) {
    *reason = WEFT_DROP_PORT_DOWN;
    return TC_ACT_SHOT;
  }
  net_id = port->net_id;

  if ((long)skb->data_end - (long)skb->data < WEFT_PULL_LEN && skb->len > skb->data_end - skb->data)
    bpf_skb_pull_data(skb, skb->len < WEFT_PULL_LEN ? skb->len : WEFT_PULL_LEN);

  ret = parse_eth(skb, &pkt);
  if (ret == WEFT_OK && (port->flags & WEFT_PORT_SECURITY))
    ret = check_port_source(skb, &pkt, port, ifindex);
  if (ret < 0) {
    *reason = -ret;
    return TC_ACT_SHOT;
  }

  if (pkt.proto == ETH_P_ARP && arp_respond(&pkt, net_id)) {
    *reason = WEFT_ARP_REPLY;
    return bpf_redirect(ifindex, 0);
  }
  if (pkt.eth->h_dest[0] & 1)
    return l2_flood(skb, net_id, reason);
  return l2_unicast(skb, &pkt, net_id, reason);
}

SEC("tc")
int weft_port(struct __sk_buff *skb)
{
  __u32 ifindex = skb->ifindex;
  __u32 len = skb->len;
  __u32 reason = WEFT_NONE;
  int action = port_pipeline(skb, &reason);

  count(ifindex, reason, len);
  return action;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
