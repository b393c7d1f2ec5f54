/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * An IP packet reduced to what security groups and conntrack look at: the
 * 5-tuple, the key a rule's port range is matched against (destination port,
 * or ICMP type << 8 | code), TCP flags, and for an ICMP error the tuple of
 * the packet it is about.
 */
#pragma once

#include <linux/tcp.h>

#include "lib/eth.h"
#include "lib/maps.h"

struct tuple {
  __u8 saddr[16]; /* IPv4 in the first 4 bytes */
  __u8 daddr[16];
  __be16 sport; /* ICMP echo request: the identifier; reply: 0 */
  __be16 dport; /* ICMP echo request: 0; reply: the identifier */
  __u8 family;  /* 4 or 6; 0: not IP */
  __u8 proto;
  __u8 pad[2];
} __attribute__((aligned(8)));

struct flow {
  struct tuple t;
  __u32 frag_id;
  __u16 l4_key; /* host order: destination port, or ICMP type << 8 | code */
  __u8 tcp_flags;
  __u8 icmp_error; /* an ICMP error: `inner` is the packet it reports on */
  __u8 fragment;   /* FRAG_NONE, FRAG_FIRST, FRAG_LATER */
  __u8 trackable;  /* may open a conntrack entry (not an ICMP error or query) */
  __u8 malformed;  /* IP, but its transport header could not be read */
  struct tuple inner;
};

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

static __always_inline int has_ports(__u8 proto) {
  return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP ||
         proto == IPPROTO_DCCP || proto == IPPROTO_UDPLITE;
}

/* Ports of a transport header at `l4`, of which the IP header says `avail`
 * bytes are the packet's (the rest of the frame is Ethernet padding). */
static __always_inline int parse_ports(struct packet* pkt, void* l4, __u32 avail, struct tuple* t) {
  if (has_ports(t->proto)) {
    __be16* ports = l4;

    if ((void*)(ports + 2) > pkt->data_end || avail < 2 * sizeof(*ports))
      return -WEFT_DROP_MALFORMED;
    t->sport = ports[0];
    t->dport = ports[1];
  }
  return WEFT_OK;
}

/* A quoted packet is cut short by design (its lengths are the original's):
 * only the frame bounds its headers. */
#define ICMP_QUOTE_ANY 0xffff

/* An echo is keyed as request: id -> 0, reply: 0 -> id. */
static __always_inline void echo_ports(struct tuple* t, int request, __be16 id) {
  t->sport = request ? id : 0;
  t->dport = request ? 0 : id;
}

static __always_inline int icmp4_is_error(__u8 type) {
  return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETERPROB ||
         type == ICMP_SOURCE_QUENCH;
}

static __always_inline int icmp6_is_error(__u8 type) {
  return type >= 1 && type <= 4;
}

static __always_inline void copy_v4(__u8* dst, __be32 addr) {
  __builtin_memset(dst, 0, 16);
  __builtin_memcpy(dst, &addr, 4);
}

/* The IPv4 packet an ICMP error quotes (its header and first 8 bytes). */
static __always_inline int parse_inner4(struct packet* pkt, void* at, struct tuple* t) {
  struct iphdr* ip = at;
  void* l4;

  if ((void*)(ip + 1) > pkt->data_end || ip->ihl < 5)
    return -WEFT_DROP_MALFORMED;
  t->family = 4;
  t->proto = ip->protocol;
  copy_v4(t->saddr, ip->saddr);
  copy_v4(t->daddr, ip->daddr);
  l4 = at + ip->ihl * 4;
  if (t->proto == IPPROTO_ICMP) {
    struct icmphdr* icmp = l4;

    if ((void*)(icmp + 1) > pkt->data_end)
      return -WEFT_DROP_MALFORMED;
    if (icmp->type == ICMP_ECHO || icmp->type == ICMP_ECHOREPLY)
      echo_ports(t, icmp->type == ICMP_ECHO, icmp->un.echo.id);
    return WEFT_OK;
  }
  return parse_ports(pkt, l4, ICMP_QUOTE_ANY, t);
}

static __always_inline int parse_inner6(struct packet* pkt, void* at, struct tuple* t) {
  struct ipv6hdr* ip6 = at;

  if ((void*)(ip6 + 1) > pkt->data_end)
    return -WEFT_DROP_MALFORMED;
  t->family = 6;
  t->proto = ip6->nexthdr;
  __builtin_memcpy(t->saddr, &ip6->saddr, 16);
  __builtin_memcpy(t->daddr, &ip6->daddr, 16);
  if (t->proto == IPPROTO_ICMPV6) {
    struct icmp6hdr* icmp6 = (void*)(ip6 + 1);
    __u8 type;

    if ((void*)(icmp6 + 1) > pkt->data_end)
      return -WEFT_DROP_MALFORMED;
    type = icmp6->icmp6_type;
    if (type == ICMPV6_ECHO_REQUEST || type == ICMPV6_ECHO_REPLY)
      echo_ports(t, type == ICMPV6_ECHO_REQUEST, icmp6->icmp6_dataun.u_echo.identifier);
    return WEFT_OK;
  }
  return parse_ports(pkt, ip6 + 1, ICMP_QUOTE_ANY, t);
}

/* The transport header at `l4` of a packet whose protocol is f->t.proto,
 * `avail` bytes long by the IP header's lengths. */
static __always_inline int parse_l4(struct packet* pkt, void* l4, __u32 avail, struct flow* f) {
  if (f->t.proto == IPPROTO_ICMP || f->t.proto == IPPROTO_ICMPV6) {
    struct icmphdr* icmp = l4; /* type and code sit alike in ICMPv6 */
    int v6 = f->t.proto == IPPROTO_ICMPV6;
    __u8 request = v6 ? ICMPV6_ECHO_REQUEST : ICMP_ECHO;
    __u8 reply = v6 ? ICMPV6_ECHO_REPLY : ICMP_ECHOREPLY;

    if ((void*)(icmp + 1) > pkt->data_end || avail < sizeof(*icmp))
      return -WEFT_DROP_MALFORMED;
    f->l4_key = (__u16)icmp->type << 8 | icmp->code;
    if (icmp->type == request || icmp->type == reply) {
      echo_ports(&f->t, icmp->type == request, icmp->un.echo.id);
      f->trackable = 1;
    } else if (v6 ? icmp6_is_error(icmp->type) : icmp4_is_error(icmp->type)) {
      f->icmp_error = 1;
      return v6 ? parse_inner6(pkt, icmp + 1, &f->inner) : parse_inner4(pkt, icmp + 1, &f->inner);
    }
    return WEFT_OK;
  }
  f->trackable = 1;
  if (parse_ports(pkt, l4, avail, &f->t) < 0)
    return -WEFT_DROP_MALFORMED;
  f->l4_key = bpf_ntohs(f->t.dport);
  if (f->t.proto == IPPROTO_TCP) {
    struct tcphdr* tcp = l4;

    if ((void*)(tcp + 1) > pkt->data_end || avail < sizeof(*tcp))
      return -WEFT_DROP_MALFORMED;
    f->tcp_flags = ((__u8*)tcp)[13];
  }
  return WEFT_OK;
}

static __always_inline int parse_flow4(struct packet* pkt, struct flow* f) {
  struct iphdr* ip = parse_ipv4(pkt);
  __u32 header_len, total_len;

  if (!ip)
    return -WEFT_DROP_MALFORMED;
  header_len = ip->ihl * 4;
  total_len = bpf_ntohs(ip->tot_len);
  if (total_len < header_len)
    return -WEFT_DROP_MALFORMED;
  f->t.family = 4;
  f->t.proto = ip->protocol;
  copy_v4(f->t.saddr, ip->saddr);
  copy_v4(f->t.daddr, ip->daddr);
  f->frag_id = ip->id;
  if (ip->frag_off & bpf_htons(IP_OFFSET_MASK)) {
    f->fragment = FRAG_LATER;
    f->trackable = f->t.proto != IPPROTO_ICMP;
    return WEFT_OK;
  }
  if (ip->frag_off & bpf_htons(IP_MORE_FRAGMENTS))
    f->fragment = FRAG_FIRST;
  return parse_l4(pkt, (void*)ip + header_len, total_len - header_len, f);
}

static __always_inline int parse_flow6(struct packet* pkt, struct flow* f) {
  struct ipv6hdr* ip6 = parse_ipv6(pkt);
  struct upper up = {};
  __u32 extensions;
  void* l4;

  if (!ip6)
    return -WEFT_DROP_MALFORMED;
  f->t.family = 6;
  __builtin_memcpy(f->t.saddr, &ip6->saddr, 16);
  __builtin_memcpy(f->t.daddr, &ip6->daddr, 16);
  l4 = ipv6_upper(pkt, ip6, &up);
  if (!l4)
    return -WEFT_DROP_MALFORMED;
  f->t.proto = up.proto;
  f->fragment = up.fragment;
  f->frag_id = up.frag_id;
  if (up.fragment == FRAG_LATER) {
    f->trackable = f->t.proto != IPPROTO_ICMPV6;
    return WEFT_OK;
  }
  extensions = l4 - (void*)(ip6 + 1);
  if (extensions > bpf_ntohs(ip6->payload_len))
    return -WEFT_DROP_MALFORMED;
  return parse_l4(pkt, l4, bpf_ntohs(ip6->payload_len) - extensions, f);
}

/*
 * Parses an IP packet into `f` (f->t.family stays 0 for other frames). A
 * transport header that cannot be read marks the flow malformed rather than
 * failing: it only matters where a port's security groups must look at it.
 */
static __always_inline void parse_flow(struct packet* pkt, struct flow* f) {
  int ret = WEFT_OK;

  if (pkt->proto == ETH_P_IP)
    ret = parse_flow4(pkt, f);
  else if (pkt->proto == ETH_P_IPV6)
    ret = parse_flow6(pkt, f);
  if (ret < 0)
    f->malformed = 1;
}

/*
 * Fragments: the first one records its ports, the later ones take them back,
 * so a fragmented datagram meets the same connection and rules throughout. A
 * later fragment whose first one was not seen keeps no ports.
 */
static __always_inline void flow_fragments(struct flow* f, __u32 zone) {
  struct weft_frag_key key = {
      .zone = zone, .family = f->t.family, .proto = f->t.proto, .id = f->frag_id};
  struct weft_frag_entry* seen;

  if (f->fragment == FRAG_NONE || f->malformed)
    return;
  __builtin_memcpy(key.saddr, f->t.saddr, 16);
  __builtin_memcpy(key.daddr, f->t.daddr, 16);
  if (f->fragment == FRAG_FIRST) {
    struct weft_frag_entry entry = {.sport = f->t.sport, .dport = f->t.dport, .l4_key = f->l4_key};

    bpf_map_update_elem(&frags, &key, &entry, BPF_ANY);
    return;
  }
  seen = bpf_map_lookup_elem(&frags, &key);
  if (!seen)
    return;
  f->t.sport = seen->sport;
  f->t.dport = seen->dport;
  f->l4_key = seen->l4_key;
  f->fragment = FRAG_FIRST; /* as good as: its ports are known */
  f->trackable = 1;
}

/*
 * The flow of the packet being handled lives here rather than on the stack:
 * the call chain port -> sg_check -> ct_still_admitted -> sg_admits must fit
 * in the verifier's 512 bytes. Per CPU, and tc programs do not nest on a CPU.
 */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct flow);
} flow_scratch SEC(".maps");

static __always_inline struct flow* scratch_flow(void) {
  __u32 zero = 0;

  return bpf_map_lookup_elem(&flow_scratch, &zero);
}

/* A hash of the flow's addresses, ports and protocol (0 for a frame that
 * is not IP): the same for every packet of a flow and spread across flows,
 * for the outer source port of its VXLAN copies. Taken from the flow already
 * parsed, where the kernel's flow dissector would parse the frame again. */
static __always_inline __u32 flow_hash(const struct flow* f) {
  const __u32 *s = (const __u32*)f->t.saddr, *d = (const __u32*)f->t.daddr;
  __u32 h;

  if (!f->t.family)
    return 0;
  h = (s[0] ^ s[1] ^ s[2] ^ s[3]) * 0x9e3779b1;
  h ^= (d[0] ^ d[1] ^ d[2] ^ d[3]) + f->t.proto;
  h = h * 0x85ebca6b ^ (((__u32)f->t.sport << 16) | f->t.dport);
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  return h ^ (h >> 16);
}

/*
 * The flow of the frame in `skb` (seen in network `zone`). A global function:
 * the verifier checks it once, and its caller sees the result as data rather
 * than one path per kind of packet, which keeps the port program verifiable.
 */
__noinline int flow_of(struct __sk_buff* skb, struct flow* f, __u32 zone) {
  struct packet pkt;

  if (!f)
    return 0;
  __builtin_memset(f, 0, sizeof(*f));
  if (parse_eth(skb, &pkt) < 0)
    return 0;
  parse_flow(&pkt, f);
  flow_fragments(f, zone);
  return 0;
}
