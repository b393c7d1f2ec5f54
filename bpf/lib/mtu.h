/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A frame too big for its network's MTU is never silently lost (DESIGN.md
 * §3.4): besides the drop-mtu count, an IPv4 packet with DF and any IPv6
 * packet is answered, to the port that sent it, with ICMP "fragmentation
 * needed" or ICMPv6 "packet too big" carrying the network's MTU, so that
 * path MTU discovery works across the tunnel. The frame itself is turned
 * into the answer: cut to the header it quotes, the new headers put in
 * front, the MACs swapped, and sent back out of the port's device.
 */
#pragma once

#include <linux/icmpv6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

#include "lib/drop.h"
#include "lib/encap.h"
#include "lib/flow.h"

#define ICMP_FRAG_NEEDED 4
#define MTU_REPLY_TTL 64
/* What the answers quote of the packet: its IP header and 20 bytes, more
 * than the 8 RFC 792 asks for, since a checksum-offloaded packet cannot be
 * cut before its TCP checksum field. */
#define QUOTE4 (sizeof(struct iphdr) + 20)
#define QUOTE6 (sizeof(struct ipv6hdr) + 20)

struct icmp4_too_big {
  struct iphdr ip;
  struct icmphdr icmp; /* un.gateway: unused(16) | next-hop MTU(16) */
};

struct icmp6_too_big {
  struct ipv6hdr ip;
  struct icmp6hdr icmp;
};

/* The IPv6 pseudo-header of an ICMPv6 message (RFC 8200 §8.1). */
struct pseudo6 {
  __u8 saddr[16];
  __u8 daddr[16];
  __be32 len;
  __be32 next;
};

static __always_inline __u16 csum_fold(__s64 sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return ~sum;
}

static __always_inline int swap_macs(struct __sk_buff* skb, struct ethhdr* eth) {
  __u8 mac[ETH_ALEN];

  mac_copy(mac, eth->h_dest);
  mac_copy(eth->h_dest, eth->h_source);
  mac_copy(eth->h_source, mac);
  return bpf_skb_store_bytes(skb, 0, eth, sizeof(*eth), 0);
}

static __always_inline int too_big4(struct __sk_buff* skb, struct ethhdr* eth, __u32 mtu) {
  struct icmp4_too_big h = {};
  __u8 quote[QUOTE4];
  struct iphdr* orig = (struct iphdr*)quote;
  __s64 sum;

  if (bpf_skb_load_bytes(skb, ETH_HLEN, quote, sizeof(quote)) || orig->ihl != 5 ||
      !(orig->frag_off & bpf_htons(IP_DONT_FRAGMENT)))
    return -1;
  if (bpf_skb_change_tail(skb, ETH_HLEN + sizeof(quote), 0) ||
      bpf_skb_adjust_room(skb, sizeof(h), BPF_ADJ_ROOM_MAC, 0))
    return -1;
  h.ip.version = 4;
  h.ip.ihl = 5;
  h.ip.tot_len = bpf_htons(sizeof(h) + sizeof(quote));
  h.ip.ttl = MTU_REPLY_TTL;
  h.ip.protocol = IPPROTO_ICMP;
  h.ip.saddr = orig->daddr;
  h.ip.daddr = orig->saddr;
  h.ip.check = csum_fold(bpf_csum_diff(0, 0, (__be32*)&h.ip, sizeof(h.ip), 0));
  h.icmp.type = ICMP_DEST_UNREACH;
  h.icmp.code = ICMP_FRAG_NEEDED;
  h.icmp.un.gateway = bpf_htonl(mtu & 0xffff);
  sum = bpf_csum_diff(0, 0, (__be32*)&h.icmp, sizeof(h.icmp), 0);
  sum = bpf_csum_diff(0, 0, (__be32*)quote, sizeof(quote), sum);
  h.icmp.checksum = csum_fold(sum);
  if (bpf_skb_store_bytes(skb, ETH_HLEN, &h, sizeof(h), 0))
    return -1;
  return swap_macs(skb, eth);
}

static __always_inline int too_big6(struct __sk_buff* skb, struct ethhdr* eth, __u32 mtu) {
  struct icmp6_too_big h = {};
  struct pseudo6 pseudo = {};
  __u8 quote[QUOTE6];
  struct ipv6hdr* orig = (struct ipv6hdr*)quote;
  __s64 sum;

  if (bpf_skb_load_bytes(skb, ETH_HLEN, quote, sizeof(quote)))
    return -1;
  if (bpf_skb_change_tail(skb, ETH_HLEN + sizeof(quote), 0) ||
      bpf_skb_adjust_room(skb, sizeof(h), BPF_ADJ_ROOM_MAC, 0))
    return -1;
  h.ip.version = 6;
  h.ip.payload_len = bpf_htons(sizeof(h.icmp) + sizeof(quote));
  h.ip.nexthdr = IPPROTO_ICMPV6;
  h.ip.hop_limit = MTU_REPLY_TTL;
  __builtin_memcpy(&h.ip.saddr, &orig->daddr, 16);
  __builtin_memcpy(&h.ip.daddr, &orig->saddr, 16);
  h.icmp.icmp6_type = ICMPV6_PKT_TOOBIG;
  h.icmp.icmp6_mtu = bpf_htonl(mtu);
  __builtin_memcpy(pseudo.saddr, &h.ip.saddr, 16);
  __builtin_memcpy(pseudo.daddr, &h.ip.daddr, 16);
  pseudo.len = bpf_htonl(sizeof(h.icmp) + sizeof(quote));
  pseudo.next = bpf_htonl(IPPROTO_ICMPV6);
  sum = bpf_csum_diff(0, 0, (__be32*)&pseudo, sizeof(pseudo), 0);
  sum = bpf_csum_diff(0, 0, (__be32*)&h.icmp, sizeof(h.icmp), sum);
  sum = bpf_csum_diff(0, 0, (__be32*)quote, sizeof(quote), sum);
  h.icmp.icmp6_cksum = csum_fold(sum);
  if (bpf_skb_store_bytes(skb, ETH_HLEN, &h, sizeof(h), 0))
    return -1;
  return swap_macs(skb, eth);
}

/*
 * Turns the too-big frame of flow `f` into its ICMP answer and sends it
 * back to the port it came from: the tc action, or -1 when the frame gets
 * no answer (IPv4 without DF, an ICMP error, multicast). A GSO super-packet
 * is answered as its first segment would be (change_tail drops the GSO
 * state).
 * Not inlined: its buffers stay off the security groups' stack.
 */
static __noinline int mtu_answer(struct __sk_buff* skb, const struct flow* f, __u32 mtu) {
  struct ethhdr eth;
  int ret;

  if (!skb || !f || f->icmp_error || bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) ||
      (eth.h_dest[0] & 1))
    return -1;
  if (f->t.family == 4)
    ret = too_big4(skb, &eth, mtu);
  else if (f->t.family == 6)
    ret = too_big6(skb, &eth, mtu);
  else
    return -1;
  if (ret)
    return -1;
  return bpf_redirect(skb->ifindex, 0);
}
