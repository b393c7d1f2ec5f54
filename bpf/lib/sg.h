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

/* One end of a packet's path: a local port (flags 0 when there is none). */
struct sg_end {
  __u32 ifindex;
  __u32 flags; /* WEFT_PORT_* */
  __u32 policy;
};

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
}

static __always_inline int udp_ports(const struct flow* f, __u16 sport, __u16 dport) {
  return f->t.proto == IPPROTO_UDP && f->fragment != FRAG_LATER && f->t.sport == bpf_htons(sport) &&
         f->t.dport == bpf_htons(dport);
}

/* Traffic a port with port security may always send (DHCP client, ICMPv6
 * other than router advertisements, which anti-spoofing already dropped). */
static __always_inline int fixed_egress(const struct flow* f) {
  if (f->t.family == 4)
    return udp_ports(f, 68, 67);
  return udp_ports(f, 546, 547) || f->t.proto == IPPROTO_ICMPV6;
}

/* Traffic a port with port security always receives: DHCP server replies,
 * MLD queries, router advertisements, neighbour solicitations and adverts. */
static __always_inline int fixed_ingress(const struct flow* f) {
  __u8 type = f->l4_key >> 8;

  if (f->t.family == 4)
    return udp_ports(f, 67, 68);
  if (udp_ports(f, 547, 546))
    return 1;
  return f->t.proto == IPPROTO_ICMPV6 && f->fragment != FRAG_LATER &&
         (type == 130 || type == 134 || type == 135 || type == 136);
}

static __always_inline int filtered(const struct sg_end* end) {
  return end->flags & WEFT_PORT_SECURITY;
}

static __always_inline int stateful(const struct sg_end* end) {
  return end->flags & WEFT_PORT_STATEFUL;
}

static __always_inline __u32 sg_generation(void) {
  __u32 zero = 0;
  struct weft_node_config* node = bpf_map_lookup_elem(&config, &zero);

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
  struct tuple orig = {};

  if (!key || !e)
    return 0;
  orig.family = key->family;
  orig.proto = key->proto;

  if (e->orig_is_a) {
    __builtin_memcpy(orig.saddr, key->addr_a, 16);
    __builtin_memcpy(orig.daddr, key->addr_b, 16);
  } else {
    __builtin_memcpy(orig.saddr, key->addr_b, 16);
    __builtin_memcpy(orig.daddr, key->addr_a, 16);
  }
  return port_admits(e->orig_ifindex, WEFT_DIR_EGRESS, &orig, e->l4_key) &&
         port_admits(e->reply_ifindex, WEFT_DIR_INGRESS, &orig, e->l4_key);
}

/*
 * The live entry of `key` under today's rules, or 0: an expired entry is
 * ignored, and one admitted under an older generation is checked again and
 * deleted (the connection cut, as Neutron deletes its conntrack entry) when
 * no rule admits it any more.
 */
static __always_inline struct weft_ct_entry* ct_current(const struct weft_ct_key* key,
                                                        __u32 generation, __u64 now) {
  struct weft_ct_entry* e = bpf_map_lookup_elem(&ct, key);

  if (!e || ct_expired(e, key->proto, now))
    return 0;
  if (e->generation == generation)
    return e;
  if (ct_still_admitted(key, e)) {
    e->generation = generation;
    return e;
  }
  bpf_map_delete_elem(&ct, key);
  return 0;
}

/* An ICMP error about a live tracked connection is related to it. */
static __always_inline int ct_related(const struct flow* f, __u32 zone, __u32 generation,
                                      __u64 now) {
  struct weft_ct_key key;
  int src_is_a;

  if (!f->icmp_error)
    return 0;
  ct_key_of(&f->inner, zone, &key, &src_is_a);
  return ct_current(&key, generation, now) != 0;
}

/* The rules of the ends that are filtered, for a packet as it is. */
static __always_inline int sg_rules(const struct flow* f, const struct sg_end* src, int check_src,
                                    const struct sg_end* dst, int check_dst, __u32* charge) {
  int ports_unknown = f->fragment == FRAG_LATER;

  if (check_src && !sg_admits(src->policy, WEFT_DIR_EGRESS, &f->t, f->l4_key, ports_unknown)) {
    *charge = src->ifindex;
    return -WEFT_DROP_SG_EGRESS;
  }
  if (check_dst && !sg_admits(dst->policy, WEFT_DIR_INGRESS, &f->t, f->l4_key, ports_unknown)) {
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
  struct weft_ct_key key;
  struct weft_ct_entry* e;
  int check_src, check_dst;
  __u32 generation, zone, len;
  __u32* charge;
  __u64 now;
  int src_is_a, ret;

  if (!f || !path)
    return -WEFT_DROP_MALFORMED;
  src = &path->src;
  dst = &path->dst;
  zone = path->zone;
  len = path->len;
  charge = &path->charge;
  check_src = filtered(src) && !fixed_egress(f);
  check_dst = filtered(dst) && !fixed_ingress(f);
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

  now = bpf_ktime_get_ns();
  generation = sg_generation();
  if (f->fragment != FRAG_LATER) {
    ct_key_of(&f->t, zone, &key, &src_is_a);
    e = ct_current(&key, generation, now);
    if (e) {
      ct_account(e, ct_direction(e, src_is_a), f->t.proto, f->tcp_flags, len, now);
      return WEFT_OK;
    }
  }
  if (ct_related(f, zone, generation, now))
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
    ct_create(&key, src_is_a, f, check_src ? src->ifindex : 0, check_dst ? dst->ifindex : 0,
              generation, len, now);
  return WEFT_OK;
}
