/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The port program: tc ingress of a VM's tap (or the host end of its veth),
 * so it sees every frame the VM sends. Parse, check the source, answer ARP,
 * look up where the frame goes in the port's segment, deliver it through
 * both ports' security groups; one exit that counts the verdict.
 */
#include "lib/arp.h"
#include "lib/deliver.h"
#include "lib/drop.h"
#include "lib/eth.h"
#include "lib/flow.h"
#include "lib/l2.h"
#include "lib/maps.h"
#include "lib/spoof.h"

/* Enough linear bytes for Ethernet + IPv4 with options + UDP, or an ICMPv6
 * error quoting an IPv6 header and its ports. */
#define WEFT_PULL_LEN 160

static __always_inline int port_pipeline(struct __sk_buff* skb, struct verdict* v) {
  __u32 ifindex = skb->ifindex;
  struct weft_port* port = bpf_map_lookup_elem(&ports, &ifindex);
  struct flow* f = scratch_flow();
  struct packet pkt;
  struct sg_path path = {.len = skb->len, .charge = ifindex};
  struct destination dest = {};
  __u32 net_id;
  int ret;

  if (!port)
    return drop(v, WEFT_DROP_NOT_A_PORT);
  if (!f)
    return drop(v, WEFT_DROP_MALFORMED);
  v->slot = port->stat_slot;
  if (!(port->flags & WEFT_PORT_UP))
    return drop(v, WEFT_DROP_PORT_DOWN);
  net_id = port->net_id;
  path.zone = net_id;

  if ((long)skb->data_end - (long)skb->data < WEFT_PULL_LEN && skb->len > skb->data_end - skb->data)
    bpf_skb_pull_data(skb, skb->len < WEFT_PULL_LEN ? skb->len : WEFT_PULL_LEN);

  ret = parse_eth(skb, &pkt);
  if (ret == WEFT_OK && (port->flags & WEFT_PORT_SECURITY))
    ret = check_port_source(skb, &pkt, port, ifindex);
  if (ret < 0)
    return drop(v, -ret);
  flow_of(skb, f, net_id);

  if (pkt.proto == ETH_P_ARP && arp_respond(&pkt, net_id)) {
    v->reason = WEFT_ARP_REPLY;
    return bpf_redirect(ifindex, 0);
  }
  ret = l2_lookup(&pkt, ifindex, net_id, 0, &dest);
  if (ret < 0)
    return drop(v, -ret);
  sg_end_of(&path.src, ifindex, port);
  return deliver(skb, f, &path, &port->net, &dest, v);
}

SEC("tc")
int weft_port(struct __sk_buff* skb) {
  struct verdict v = {.reason = WEFT_NONE, .ifindex = skb->ifindex};
  __u32 len = skb->len;
  int action;

  build_serial();
  action = port_pipeline(skb, &v);

  count_port(v.ifindex, v.slot, v.reason, len);
  return action;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
