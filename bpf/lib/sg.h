/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Security groups as Neutron's iptables driver applies them to a packet going
 * from one port (its egress rules) to another (its ingress rules): fixed
 * infrastructure traffic first, then established and related connections,
 * then the rules; a connection admitted under an older rule generation is
 * checked again, and cut when no rule admits it any more.
 */
#pragma once

#include "lib/ct.h"
#include "lib/policy.h"
#include "lib/spoof.h"

/* One end of a packet's path: a local port (flags 0 when there is none). */
struct sg_end {
  __u32 ifindex;
  __u32 policy;
  __u16 flags;        /* WEFT_PORT_* */
  __u16 slot;         /* weft_port.stat_slot (below WEFT_MAX_PORTS) */
  __u16 allow_all[4]; /* weft_port.allow_all */
};
_Static_assert(WEFT_PORT_STATEFUL <= 0xffff && WEFT_MAX_PORTS <= 0x10000,
               "sg_end keeps port flags and stat slots in 16 bits");

/* A packet's way through the fabric: from `src` to `dst` in network `zone`. */
struct sg_path {
  struct sg_end src;
  struct sg_end dst;
  __u32 zone;
  __u32 len;
  __u32 charge; /* out: the port whose rules dropped the packet */
};

static __always_inline void sg_end_of(struct sg_end* end, __u32 ifindex,
                                      const struct weft_port* port) {
  end->ifindex = ifindex;
  end->flags = port ? port->flags : 0;
  end->policy = port ? port->policy : 0;
  end->slot = port ? port->stat_slot : 0;
  if (port)
    __builtin_memcpy(end->allow_all, port->allow_all, sizeof(end->allow_all));
  else
    __builtin_memset(end->allow_all, 0, sizeof(end->allow_all));
}

static __always_inline int udp_ports(const struct flow* f, __u16 sport, __u16 dport) {
  return f->t.proto == IPPROTO_UDP && f->fragment != FRAG_LATER && f->t.sport == bpf_htons(sport) &&
         f->t.dport == bpf_htons(dport);
}

/* Traffic a port with port security may always send (DHCP client, ICMPv6
 * other than router advertisements, which anti-spoofing already dropped). */
static __always_inline int fixed_egress(const struct flow* f) {
  if (f->t.family == 4)
    return udp_ports(f, DHCP_CLIENT_PORT, DHCP_SERVER_PORT);
  return udp_ports(f, DHCP6_CLIENT_PORT, DHCP6_SERVER_PORT) || f->t.proto == IPPROTO_ICMPV6;
}

/* fe80::/64, where DHCPv6 servers answer a client's link-local address. */
static __always_inline int ipv6_link_local64(const __u8* a) {
  return a[0] == 0xfe && a[1] == 0x80 && !(a[2] | a[3] | a[4] | a[5] | a[6] | a[7]);
}

/* A DHCP server reply is the port's only when addressed to one of its own
 * addresses or to broadcast (DHCPv6: its addresses or fe80::/64), as Neutron
 * admits them; to anyone else's address it is no infrastructure traffic. */
static __always_inline int dhcp_reply_for(const struct flow* f, __u32 ifindex) {
  struct weft_port* port = bpf_map_lookup_elem(&ports, &ifindex);
  __be32 dst;

  if (!port)
    return 0;
  if (f->t.family == 4) {
    __builtin_memcpy(&dst, f->t.daddr, sizeof(dst));
    return dst == 0xffffffff || ipv4_allowed(ifindex, port->mac, dst);
  }
  return ipv6_link_local64(f->t.daddr) || ipv6_allowed(ifindex, port->mac, f->t.daddr);
}

/* Traffic the port on `ifindex`, with port security, always receives: DHCP
 * server replies to it, MLD queries, router advertisements, neighbour
 * solicitations and adverts. */
static __always_inline int fixed_ingress(const struct flow* f, __u32 ifindex) {
  __u8 type = f->l4_key >> 8;

  if (f->t.family == 4)
    return udp_ports(f, DHCP_SERVER_PORT, DHCP_CLIENT_PORT) && dhcp_reply_for(f, ifindex);
  if (udp_ports(f, DHCP6_SERVER_PORT, DHCP6_CLIENT_PORT))
    return dhcp_reply_for(f, ifindex);
  return f->t.proto == IPPROTO_ICMPV6 && f->fragment != FRAG_LATER &&
         (type == ICMPV6_MGM_QUERY || type == ICMPV6_ROUTER_ADVERT ||
          type == ICMPV6_NEIGH_SOLICIT || type == ICMPV6_NEIGH_ADVERT);
}

static __always_inline int filtered(const struct sg_end* end) {
  return end->flags & WEFT_PORT_SECURITY;
}

static __always_inline int stateful(const struct sg_end* end) {
  return end->flags & WEFT_PORT_STATEFUL;
}

static __always_inline __u32 sg_generation(void) {
  struct weft_node_config* node = node_config();

  return node ? node->sg_generation : 0;
}

static __always_inline int port_admits(__u32 ifindex, __u8 direction, const struct tuple* t,
                                       __u16 l4_key) {
  struct weft_port* port;

  if (!ifindex)
    return 1;
  port = bpf_map_lookup_elem(&ports, &ifindex);
  return !port || !(port->flags & WEFT_PORT_SECURITY) ||
         sg_admits(port->policy, direction, t, l4_key, 0);
}

/* Do the rules of today still admit the connection `e` as it was opened?
 * Global, so verified once. */
__noinline int ct_still_admitted(const struct weft_ct_key* key, const struct weft_ct_entry* e) {
  struct ct_work* work = scratch_ct();
  struct tuple* orig;

  if (!key || !e || !work)
    return 0;
  orig = &work->orig;
  __builtin_memset(orig, 0, sizeof(*orig));
  orig->family = key->family;
  orig->proto = key->proto;
  if (e->orig_is_a) {
    __builtin_memcpy(orig->saddr, key->addr_a, 16);
    __builtin_memcpy(orig->daddr, key->addr_b, 16);
  } else {
    __builtin_memcpy(orig->saddr, key->addr_b, 16);
    __builtin_memcpy(orig->daddr, key->addr_a, 16);
  }
  return port_admits(e->orig_ifindex, WEFT_DIR_EGRESS, orig, e->l4_key) &&
         port_admits(e->reply_ifindex, WEFT_DIR_INGRESS, orig, e->l4_key);
}

/*
 * The live entry of `key` in WEFT_MAP_CT (`confirmed`) or WEFT_MAP_CT_NEW
 * under today's rules, or 0: an expired entry is ignored (an expired
 * established one deleted), and one admitted under an older generation is
 * checked again and deleted (the connection cut, as Neutron deletes its
 * conntrack entry) when no rule admits it any more.
 */
static __always_inline struct weft_ct_entry*
ct_current(int confirmed, const struct weft_ct_key* key, __u32 generation, __u64 now) {
  struct weft_ct_entry* e = bpf_map_lookup_elem(confirmed ? (void*)&ct : (void*)&ct_new, key);
  int live;

  if (!e)
    return 0;
  live = !ct_expired(e, key->proto, now);
  if (live && e->generation == generation)
    return e;
  if (live && ct_still_admitted(key, e)) {
    e->generation = generation;
    return e;
  }
  if (confirmed)
    ct_forget(key);
  else if (live)
    bpf_map_delete_elem(&ct_new, key);
  return 0;
}

/* The live entry of `key` in either table; *confirmed says which. */
static __always_inline struct weft_ct_entry* ct_find(const struct weft_ct_key* key,
                                                     __u32 generation, __u64 now, int* confirmed) {
  struct weft_ct_entry* e = ct_current(1, key, generation, now);

  *confirmed = e != 0;
  return e ? e : ct_current(0, key, generation, now);
}

static __always_inline int same_addr(const __u8* a, const __u8* b) {
  const __u64 *x = (const __u64*)a, *y = (const __u64*)b;

  return x[0] == y[0] && x[1] == y[1];
}

/*
 * An ICMP error is related to a live connection when it goes back to the
 * sender of the packet it quotes, along that packet's path reversed (between
 * the connection's two ports), as Linux requires of an error's destination.
 */
static __always_inline int ct_related(const struct flow* f, const struct sg_path* path,
                                      struct weft_ct_key* key, __u32 generation, __u64 now) {
  int src_is_a, confirmed;

  if (!f->icmp_error || !same_addr(f->t.daddr, f->inner.saddr))
    return 0;
  ct_key_of(&f->inner, path->zone, path->dst.ifindex, path->src.ifindex, key, &src_is_a);
  return ct_find(key, generation, now, &confirmed) != 0;
}

/*
 * The packet's connection (work->key), if it has one: 1 when it passes as
 * part of it (counted, and confirmed at its first reply), 0 when it has none
 * (or opens a new one on a reused tuple), or a negative drop reason.
 */
static __always_inline int ct_follow(const struct flow* f, struct ct_work* work, int src_is_a,
                                     __u32 len, __u32 generation, __u64 now) {
  const struct weft_ct_key* key = &work->key;
  int confirmed, dir;
  struct weft_ct_entry* e = ct_find(key, generation, now, &confirmed);

  if (!e)
    return 0;
  if (ct_reopened(e, f)) {
    if (confirmed)
      ct_forget(key);
    else
      bpf_map_delete_elem(&ct_new, key);
    return 0;
  }
  dir = ct_direction(e, src_is_a);
  ct_account(e, dir, f->t.proto, f->tcp_flags, len, now);
  if (!confirmed && dir == WEFT_CT_REPLY) {
    __builtin_memcpy(&work->opening, e, sizeof(*e));
    if (ct_confirm(now) < 0)
      return -WEFT_DROP_CT_FULL;
  }
  return 1;
}

/* A hit of the rule `end`'s allow_all[index] names, in the port's slot. */
static __always_inline void count_fast_hit(const struct sg_end* end, __u32 index, __u16 rule) {
  struct weft_port_hits* hits;
  __u32 slot = end->slot;

  if (slot) {
    hits = bpf_map_lookup_elem(&port_hits, &slot);
    if (hits) {
      hits->allow_all[index & 3]++;
      return;
    }
  }
  count_hit(end->policy, rule - 1);
}

/* Does the policy of `end` admit the packet in `direction`? A rule that
 * admits every packet of the family, when it is the lowest-numbered there,
 * decides without a lookup (and has its hit counted all the same). */
static __always_inline int end_admits(const struct sg_end* end, __u8 direction,
                                      const struct flow* f, int ports_unknown) {
  __u32 index = (direction * 2 + (f->t.family == 6)) & 3;
  __u16 rule = end->allow_all[index];

  if (end->policy && rule) {
    count_fast_hit(end, index, rule);
    return 1;
  }
  return sg_admits(end->policy, direction, &f->t, f->l4_key, ports_unknown);
}

static __always_inline int sg_rules(const struct flow* f, const struct sg_end* src, int check_src,
                                    const struct sg_end* dst, int check_dst, __u32* charge) {
  int ports_unknown = f->fragment == FRAG_LATER;

  if (check_src && !end_admits(src, WEFT_DIR_EGRESS, f, ports_unknown)) {
    *charge = src->ifindex;
    return -WEFT_DROP_SG_EGRESS;
  }
  if (check_dst && !end_admits(dst, WEFT_DIR_INGRESS, f, ports_unknown)) {
    *charge = dst->ifindex;
    return -WEFT_DROP_SG_INGRESS;
  }
  return WEFT_OK;
}

/*
 * The security-group verdict for an IP packet along `path`: WEFT_OK or a
 * negative drop reason, with path->charge set to the port whose rules dropped
 * it. Global, so verified once.
 */
__noinline int sg_check(const struct flow* f, struct sg_path* path) {
  const struct sg_end *src, *dst;
  struct ct_work* work;
  int check_src, check_dst;
  __u32 generation, zone, len;
  __u32* charge;
  __u64 now;
  int src_is_a = 0, ret;

  if (!f || !path)
    return -WEFT_DROP_MALFORMED;
  src = &path->src;
  dst = &path->dst;
  zone = path->zone;
  len = path->len;
  charge = &path->charge;
  check_src = filtered(src) && !fixed_egress(f);
  check_dst = filtered(dst) && !fixed_ingress(f, dst->ifindex);
  if (!check_src && !check_dst)
    return WEFT_OK;
  if (f->malformed) {
    *charge = check_src ? src->ifindex : dst->ifindex;
    return -WEFT_DROP_MALFORMED;
  }

  /* Stateless ports are matched packet by packet, both ways. */
  if (check_src && !stateful(src)) {
    ret = sg_rules(f, src, 1, dst, 0, charge);
    if (ret < 0)
      return ret;
    check_src = 0;
  }
  if (check_dst && !stateful(dst)) {
    ret = sg_rules(f, src, 0, dst, 1, charge);
    if (ret < 0)
      return ret;
    check_dst = 0;
  }
  if (!check_src && !check_dst)
    return WEFT_OK;

  work = scratch_ct();
  if (!work)
    return -WEFT_DROP_MALFORMED;
  now = bpf_ktime_get_ns();
  generation = sg_generation();
  if (f->fragment != FRAG_LATER) {
    ct_key_of(&f->t, zone, src->ifindex, dst->ifindex, &work->key, &src_is_a);
    ret = ct_follow(f, work, src_is_a, len, generation, now);
    if (ret) {
      *charge = src->ifindex;
      return ret > 0 ? WEFT_OK : ret;
    }
  }
  if (ct_related(f, path, &work->related, generation, now))
    return WEFT_OK;
  if (f->t.proto == IPPROTO_TCP && (f->tcp_flags & TCP_FLAG_RST)) {
    *charge = check_src ? src->ifindex : dst->ifindex;
    return -WEFT_DROP_CT_INVALID;
  }

  /* Not part of a connection: the rules decide; a new connection is tracked. */
  ret = sg_rules(f, src, check_src, dst, check_dst, charge);
  if (ret < 0)
    return ret;
  if (f->trackable && !f->icmp_error && f->fragment != FRAG_LATER)
    ct_open(work, src_is_a, f, check_src ? src->ifindex : 0, check_dst ? dst->ifindex : 0,
            generation, len, now);
  return WEFT_OK;
}
