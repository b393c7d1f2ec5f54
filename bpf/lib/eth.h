/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Header parsing with the bounds check next to each access. */
#pragma once

#include <linux/icmpv6.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>

#include "lib/common.h"
#include "lib/proto.h"

/* IPv4 fragment field: the offset bits, and "more fragments". */
#define IP_OFFSET_MASK 0x1fff
#define IP_MORE_FRAGMENTS 0x2000

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

/* The fixed part of an Ethernet ARP packet for IPv4 (RFC 826). */
struct arp_eth_ipv4 {
  struct arphdr hdr;
  __u8 sha[ETH_ALEN];
  __be32 spa;
  __u8 tha[ETH_ALEN];
  __be32 tpa;
} __attribute__((packed));

/* The IPv6 fragment header (not in the UAPI headers). */
struct frag_hdr {
  __u8 nexthdr;
  __u8 reserved;
  __be16 frag_off;
  __be32 identification;
};

struct packet {
  void* data;
  void* data_end;
  struct ethhdr* eth;
  __u16 proto; /* host order */
  void* l3;
};

static __always_inline int parse_eth(struct __sk_buff* skb, struct packet* pkt) {
  pkt->data = (void*)(long)skb->data;
  pkt->data_end = (void*)(long)skb->data_end;
  pkt->eth = pkt->data;
  if ((void*)(pkt->eth + 1) > pkt->data_end)
    return -WEFT_DROP_MALFORMED;
  pkt->proto = bpf_ntohs(pkt->eth->h_proto);
  pkt->l3 = pkt->eth + 1;
  return WEFT_OK;
}

static __always_inline struct arp_eth_ipv4* parse_arp(struct packet* pkt) {
  struct arp_eth_ipv4* arp = pkt->l3;

  if ((void*)(arp + 1) > pkt->data_end)
    return 0;
  if (arp->hdr.ar_hrd != bpf_htons(ARPHRD_ETHER) || arp->hdr.ar_pro != bpf_htons(ETH_P_IP) ||
      arp->hdr.ar_hln != ETH_ALEN || arp->hdr.ar_pln != 4)
    return 0;
  return arp;
}

static __always_inline struct iphdr* parse_ipv4(struct packet* pkt) {
  struct iphdr* ip = pkt->l3;

  if ((void*)(ip + 1) > pkt->data_end || ip->version != 4 || ip->ihl < 5)
    return 0;
  return ip;
}

/* The UDP header after an IPv4 header, or 0 (not UDP, a later fragment,
 * short: the IP total length, not the frame, says where the packet ends). */
static __always_inline struct udphdr* parse_udp4(struct packet* pkt, struct iphdr* ip) {
  struct udphdr* udp = (void*)ip + ip->ihl * 4;

  if (ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(IP_OFFSET_MASK)))
    return 0;
  if (bpf_ntohs(ip->tot_len) < ip->ihl * 4 + sizeof(*udp))
    return 0;
  if ((void*)(udp + 1) > pkt->data_end)
    return 0;
  return udp;
}

static __always_inline struct ipv6hdr* parse_ipv6(struct packet* pkt) {
  struct ipv6hdr* ip6 = pkt->l3;

  if ((void*)(ip6 + 1) > pkt->data_end || ip6->version != 6)
    return 0;
  return ip6;
}

#define IPV6_MAX_EXT_HEADERS 8

/* Where an IP packet's transport header is, and whether it is a fragment. */
struct upper {
  __u8 proto;
  __u8 fragment; /* FRAG_NONE, FRAG_FIRST or FRAG_LATER (no transport header) */
  __u8 pad[2];
  __u32 frag_id; /* the datagram's identification, for fragments */
};
#define FRAG_NONE 0
#define FRAG_FIRST 1
#define FRAG_LATER 2

/*
 * The upper-layer header after an IPv6 header and up to IPV6_MAX_EXT_HEADERS
 * extension headers (hop-by-hop, routing, destination options, fragment):
 * an RA or a DHCPv6 reply must not slip past behind one. 0 when the chain is
 * longer or truncated; for a later fragment, the end of the fragment header.
 */
static __always_inline void* ipv6_upper(struct packet* pkt, struct ipv6hdr* ip6, struct upper* up) {
  void* cursor = ip6 + 1;
  __u8 next = ip6->nexthdr;

#pragma unroll
  for (int i = 0; i < IPV6_MAX_EXT_HEADERS; i++) {
    struct ipv6_opt_hdr* ext = cursor;

    if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS &&
        next != IPPROTO_FRAGMENT)
      break;
    if ((void*)(ext + 1) > pkt->data_end)
      return 0;
    if (next == IPPROTO_FRAGMENT) {
      struct frag_hdr* frag = cursor;

      if ((void*)(frag + 1) > pkt->data_end)
        return 0;
      up->frag_id = frag->identification;
      up->fragment = (frag->frag_off & bpf_htons(0xfff8)) ? FRAG_LATER : FRAG_FIRST;
      next = frag->nexthdr;
      if (up->fragment == FRAG_LATER) {
        up->proto = next;
        return frag + 1;
      }
      cursor = frag + 1;
      continue;
    }
    next = ext->nexthdr;
    cursor += (ext->hdrlen + 1) * 8;
  }
  if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS ||
      next == IPPROTO_FRAGMENT)
    return 0;
  up->proto = next;
  return cursor;
}

static __always_inline int mac_equal(const __u8* a, const __u8* b) {
  return ((const __u16*)a)[0] == ((const __u16*)b)[0] &&
         ((const __u16*)a)[1] == ((const __u16*)b)[1] &&
         ((const __u16*)a)[2] == ((const __u16*)b)[2];
}

static __always_inline void mac_copy(__u8* dst, const __u8* src) {
  __builtin_memcpy(dst, src, ETH_ALEN);
}
