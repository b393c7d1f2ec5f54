/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Security-group rules, matched with two lookups and an intersection whose
 * cost does not depend on the number of rules: the L4 key (protocol and
 * destination port, or ICMP type and code) gives the set of rules it
 * satisfies, the remote address gives another, and the packet passes when
 * they share a rule. The summary words let the intersection visit only words
 * that are non-empty in both sets.
 */
#pragma once

#include "lib/flow.h"
#include "lib/maps.h"

/* Index of the single set bit of `low` (a de Bruijn sequence). */
static const __u8 debruijn64[64] = {
    0,  1,  48, 2,  57, 49, 28, 3,  61, 58, 50, 42, 38, 29, 17, 4,  62, 55, 59, 36, 53, 51,
    43, 22, 45, 39, 33, 30, 24, 18, 12, 5,  63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21,
    44, 32, 23, 11, 46, 26, 40, 15, 34, 20, 31, 10, 25, 14, 19, 9,  13, 8,  7,  6,
};

static __always_inline __u32 lowest_bit(__u64 low) {
  return debruijn64[(low * 0x03f79d71b4cb0a89ULL) >> 58];
}

/*
 * A global function: the verifier checks it once, not at every call site, so
 * the intersection's loops cost nothing to verify more than once.
 */
__noinline int rule_sets_intersect(const struct weft_rule_set* a, const struct weft_rule_set* b) {
  /* Returns the lowest rule in both sets plus one, or 0 when they do not meet. */
  if (!a || !b)
    return 0;
  for (__u32 s = 0; s < WEFT_SG_SUMMARY_WORDS; s++) {
    __u64 candidates = a->summary[s] & b->summary[s];

    for (int k = 0; k < 64 && candidates; k++) {
      __u32 w = (s * 64 + lowest_bit(candidates & -candidates)) & (WEFT_SG_WORDS - 1);

      __u64 both = a->words[w] & b->words[w];

      if (both)
        return (int)(w * 64 + lowest_bit(both & -both)) + 1;
      candidates &= candidates - 1;
    }
  }
  return 0;
}

/* How often each rule decided a packet; per CPU, so no atomics. */
static __always_inline void count_hit(__u32 policy, __u32 rule) {
  struct weft_sg_hit_key key = {.policy = policy, .rule = rule};
  __u64* hits = bpf_map_lookup_elem(&sg_hits, &key);
  __u64 one = 1;

  if (hits)
    *hits += 1;
  else
    bpf_map_update_elem(&sg_hits, &key, &one, BPF_NOEXIST);
}

/*
 * Does `policy` admit a packet `t` in `direction` with L4 key `l4_key`? The
 * remote end is the source for ingress and the destination for egress. A
 * packet with no transport header to see (a later fragment) matches only
 * rules that cover every port, as iptables' port matches never match one.
 * A global function, so the verifier checks it once rather than at each of
 * its call sites.
 */
__noinline int sg_admits(__u32 policy, __u32 direction, const struct tuple* t, __u32 l4_key,
                         __u32 ports_unknown) {
  struct weft_sg_l4_key l4 = {
      .prefixlen = ports_unknown ? WEFT_SG_L4_FIXED_BITS : WEFT_SG_L4_FULL_BITS,
      .policy = policy,
      .direction = direction,
      .port = bpf_htons((__u16)l4_key),
  };
  struct weft_rule_set *by_l4, *by_remote;
  int rule;

  if (!policy || !t)
    return 0;
  l4.family = t->family;
  l4.proto = t->proto;
  by_l4 = bpf_map_lookup_elem(&sg_l4, &l4);
  if (!by_l4) {
    /* No rule of this protocol covers this port: only rules of any protocol can. */
    l4.proto = WEFT_PROTO_ANY;
    l4.port = 0;
    l4.prefixlen = WEFT_SG_L4_FIXED_BITS;
    by_l4 = bpf_map_lookup_elem(&sg_l4, &l4);
    if (!by_l4)
      return 0;
  }
  /* The remote's key takes the L4 key's place on the stack (Linux 6.1
   * allows 512 bytes to the deepest chain of calls, this one's). */
  {
    struct weft_sg_remote_key rk = {
        .prefixlen = WEFT_SG_REMOTE_FIXED_BITS + (t->family == 4 ? 32 : 128),
        .policy = policy,
        .direction = direction,
        .family = t->family,
    };

    __builtin_memcpy(rk.ip, direction == WEFT_DIR_INGRESS ? t->saddr : t->daddr, 16);
    by_remote = bpf_map_lookup_elem(&sg_remote, &rk);
  }
  if (!by_remote)
    return 0;
  rule = rule_sets_intersect(by_l4, by_remote);
  if (!rule)
    return 0;
  count_hit(policy, rule - 1);
  return 1;
}
