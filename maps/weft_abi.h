/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ABI between weft's BPF programs and its C++ loader: every map's key and
 * value, every map name, every verdict reason, and the format version. Both
 * sides include this one file; no struct is written twice.
 *
 * Pinned maps are reused by libbpf when type, sizes and flags match, without
 * comparing layouts, so any change to a struct here must bump
 * WEFT_ABI_VERSION: the loader refuses to reuse pins of another version.
 */
#ifndef WEFT_ABI_H
#define WEFT_ABI_H

#include <linux/types.h>

#define WEFT_ABI_VERSION 6

/* Map names: also the pin file names under <bpffs>/weft/<node>/maps/. */
#define WEFT_MAP_CONFIG "config"
#define WEFT_MAP_PORTS "ports"
#define WEFT_MAP_NETWORKS "networks"
#define WEFT_MAP_FDB "fdb"
#define WEFT_MAP_ARP "arp"
#define WEFT_MAP_SPOOF_V4 "spoof_v4"
#define WEFT_MAP_PORT_MACS "port_macs"
#define WEFT_MAP_SPOOF_V6 "spoof_v6"
#define WEFT_MAP_FLOOD "flood"
#define WEFT_MAP_STATS "stats"
#define WEFT_MAP_SG_L4 "sg_l4"
#define WEFT_MAP_SG_REMOTE "sg_remote"
#define WEFT_MAP_CT "ct"
#define WEFT_MAP_CT_NEW "ct_new"
#define WEFT_MAP_CT_ZONES "ct_zones"
#define WEFT_MAP_FRAGS "frags"
#define WEFT_MAP_SG_HITS "sg_hits"
#define WEFT_MAP_VTEPS "vteps"
#define WEFT_MAP_VNIS "vnis"
#define WEFT_MAP_SEGMENTS "segments"
#define WEFT_MAP_PHYSNETS "physnets"
#define WEFT_MAP_VTEP_PATHS "vtep_paths"
#define WEFT_MAP_PORT_STATS "port_stats"
#define WEFT_MAP_PORT_HITS "port_hits"

/* Capacities. The loader checks a document against them before writing. */
#define WEFT_MAX_PORTS 4096
#define WEFT_MAX_NETWORKS 4096
#define WEFT_MAX_FDB 65536
#define WEFT_MAX_ARP 65536
#define WEFT_MAX_SPOOF 65536
#define WEFT_MAX_STATS 65536
/* Local ports of one network on one node, and the other nodes' VTEPs that
 * host ports of it; powers of two (index masking). */
#define WEFT_FLOOD_MAX 256
#define WEFT_FLOOD_VTEPS_MAX 256
#define WEFT_MAX_VTEPS 4096
#define WEFT_MAX_SEGMENTS 4096
#define WEFT_MAX_PHYSNETS 64

/* VXLAN (RFC 7348) over an IPv4 underlay: outer IPv4, UDP and VXLAN
 * headers and the inner Ethernet header, 50 bytes. */
#define WEFT_VXLAN_PORT 4789
#define WEFT_VXLAN_OVERHEAD 50

#define WEFT_ETH_ALEN 6

/*
 * Verdict reasons, counted per port in WEFT_MAP_STATS. One list gives the
 * enum (BPF and C++) and the names the CLI prints. Reasons below
 * WEFT_REASON_FIRST_DROP count traffic that went somewhere; the others are
 * drops.
 */
#define WEFT_REASONS(X)                                                                            \
  X(NONE, "none")                                                                                  \
  X(FWD_UNICAST, "forward-unicast")                                                                \
  X(FWD_FLOOD, "forward-flood")                                                                    \
  X(ARP_REPLY, "arp-reply")                                                                        \
  X(DELIVERED, "delivered")                                                                        \
  X(FWD_VTEP, "forward-vtep")                                                                      \
  X(FWD_WIRE, "forward-provider")                                                                  \
  X(MTU_ICMP, "mtu-icmp-sent")                                                                     \
  X(DROP_NOT_A_PORT, "drop-not-a-port")                                                            \
  X(DROP_MALFORMED, "drop-malformed")                                                              \
  X(DROP_VLAN_TAGGED, "drop-vlan-tagged")                                                          \
  X(DROP_SPOOF_MAC, "drop-spoofed-mac")                                                            \
  X(DROP_SPOOF_IP, "drop-spoofed-ip")                                                              \
  X(DROP_SPOOF_ARP, "drop-spoofed-arp")                                                            \
  X(DROP_DHCP_SERVER, "drop-dhcp-server")                                                          \
  X(DROP_IPV6_RA, "drop-ipv6-router-advert")                                                       \
  X(DROP_ETHERTYPE, "drop-ethertype")                                                              \
  X(DROP_UNKNOWN_UNICAST, "drop-unknown-unicast")                                                  \
  X(DROP_HAIRPIN, "drop-hairpin")                                                                  \
  X(DROP_PORT_DOWN, "drop-port-down")                                                              \
  X(DROP_NO_FLOOD_TARGET, "drop-no-flood-target")                                                  \
  X(DROP_REDIRECT, "drop-redirect-failed")                                                         \
  X(DROP_SG_EGRESS, "drop-sg-egress")                                                              \
  X(DROP_SG_INGRESS, "drop-sg-ingress")                                                            \
  X(DROP_CT_INVALID, "drop-ct-invalid")                                                            \
  X(DROP_SPOOF_ND, "drop-spoofed-nd")                                                              \
  X(DROP_CT_FULL, "drop-ct-full")                                                                  \
  X(DROP_MTU, "drop-mtu")                                                                          \
  X(DROP_UNKNOWN_VTEP, "drop-unknown-vtep")                                                        \
  X(DROP_UNKNOWN_VNI, "drop-unknown-vni")                                                          \
  X(DROP_VTEP_SOURCE, "drop-inner-source-not-at-vtep")                                             \
  X(DROP_UNKNOWN_VLAN, "drop-unknown-vlan")                                                        \
  X(DROP_TAGGED_INSIDE, "drop-tagged-inside")                                                      \
  X(DROP_ENCAP, "drop-encap-failed")                                                               \
  X(DROP_VTEP_UNRESOLVED, "drop-vtep-unresolved")                                                  \
  X(DROP_NO_PHYSNET, "drop-no-physnet")

#define WEFT_REASON_ENUM(name, text) WEFT_##name,
enum weft_reason { WEFT_REASONS(WEFT_REASON_ENUM) WEFT_REASON_COUNT };
#undef WEFT_REASON_ENUM
#define WEFT_REASON_FIRST_DROP WEFT_DROP_NOT_A_PORT

/* WEFT_MAP_CONFIG: ARRAY, one entry (key 0). */
struct weft_node_config {
  __u32 abi_version;
  __be32 tunnel_ip;     /* IPv4, network order; 0 = none */
  __u32 uplink_ifindex; /* 0 = none */
  __u32 flags;          /* WEFT_CONFIG_* */
  /*
   * Bumped by every apply that changes security-group maps: a conntrack
   * entry made under an older generation is checked against the rules again
   * before it admits another packet, so removing a rule cuts the connections
   * only it allowed (Neutron's behaviour).
   */
  __u32 sg_generation;
  __u32 ct_max; /* entries of WEFT_MAP_CT and of WEFT_MAP_CT_NEW, fixed at install */
  /* Established connections one network may hold in WEFT_MAP_CT (0: ct_max),
   * so that one tenant cannot take the table from the others. */
  __u32 ct_network_max;
  __u32 pad;
  __u64 ct_reclaimed_ns; /* the datapath's last pass over WEFT_MAP_CT for expired entries */
};
/* Ports are attached with clsact/cls_bpf rather than tcx (kernels before 6.6). */
#define WEFT_CONFIG_ATTACH_TC (1u << 0)
/* Install turned forwarding on for lo (the datapath's FIB lookups need it);
 * uninstall turns it off again. */
#define WEFT_CONFIG_LO_FORWARDING (1u << 1)

/* Network types, as Neutron's provider:network_type. */
enum weft_net_type {
  WEFT_NET_VXLAN = 1,
  WEFT_NET_VLAN = 2,
  WEFT_NET_FLAT = 3,
};

/* WEFT_MAP_NETWORKS: HASH, key __u32 net_id (node-local segment id). */
struct weft_network {
  __u32 segmentation_id; /* VNI or VLAN id; 0 for flat */
  __u32 mtu;
  __u8 type; /* enum weft_net_type */
  __u8 pad[3];
  /* vlan and flat: the device of its physnet on this node (0: not mapped
   * here, so its frames cannot leave the node) */
  __u32 wire_ifindex;
};

/* Port flags. */
#define WEFT_PORT_SECURITY (1u << 0) /* anti-spoofing (and, later, groups) */
#define WEFT_PORT_UP (1u << 1)       /* admin_state_up */
#define WEFT_PORT_STATEFUL (1u << 2) /* its groups are stateful: track connections */

/* WEFT_MAP_PORTS: HASH, key __u32 ifindex of the port's device on this node. */
struct weft_port {
  __u32 net_id;
  __u32 flags;
  __u8 mac[WEFT_ETH_ALEN];
  __u8 pad[2];
  /*
   * The port's security-group policy: ports with the same groups share one.
   * 0 = no groups, so only the fixed infrastructure traffic passes.
   */
  __u32 policy;
  /* Its first fixed IPv4 address (0: none): a frame from it with the port's
   * own MAC needs no anti-spoofing lookup. */
  __be32 ip4;
  /* Per direction and family, [direction * 2 + (family == 6)]: the policy's
   * lowest-numbered rule there plus one when it admits every packet (any
   * protocol, any remote), else 0: the rule lookups are skipped, and the
   * rule's hits counted in the port's slot of WEFT_MAP_PORT_HITS. */
  __u16 allow_all[4];
  /* Where its forwarding counters are in WEFT_MAP_PORT_STATS (1 to
   * WEFT_MAX_PORTS - 1; 0: none, so they go to WEFT_MAP_STATS). Kept by the
   * port across applies; a slot is zeroed before it is given to another. */
  __u32 stat_slot;
  /* Its network's entry in WEFT_MAP_NETWORKS, as apply wrote both: a frame
   * leaving the node needs no second lookup. */
  struct weft_network net;
};

/* WEFT_MAP_FDB: HASH. Where a MAC of a network lives. */
struct weft_fdb_key {
  __u32 net_id;
  __u8 mac[WEFT_ETH_ALEN];
  __u8 pad[2];
};
struct weft_fdb_entry {
  __u32 ifindex;   /* local port device; 0 when remote */
  __be32 vtep;     /* remote node's tunnel IPv4; 0 when local */
  __u32 vtep_slot; /* its weft_vtep.slot; 0 when local */
};

/* WEFT_MAP_ARP: HASH. The ARP responder's table (fixed IPs and pairs). */
struct weft_arp_key {
  __u32 net_id;
  __be32 ip;
};
struct weft_arp_entry {
  __u8 mac[WEFT_ETH_ALEN];
  __u8 pad[2];
};

/*
 * WEFT_MAP_SPOOF_V4: LPM_TRIE, no-prealloc. The (MAC, IPv4 prefix) pairs a
 * port may send from: its fixed IPs with its MAC (/32) and its allowed
 * address pairs. Everything before `ip` is matched exactly, so prefixlen is
 * WEFT_SPOOF_V4_FIXED_BITS + the IP prefix length; lookups use the full 128.
 */
struct weft_spoof_v4_key {
  __u32 prefixlen;
  __u32 ifindex;
  __u8 mac[WEFT_ETH_ALEN];
  __u8 pad[2];
  __be32 ip;
};
#define WEFT_SPOOF_V4_FIXED_BITS 96
#define WEFT_SPOOF_V4_FULL_BITS 128

/*
 * WEFT_MAP_SPOOF_V6: LPM_TRIE, no-prealloc. As WEFT_MAP_SPOOF_V4 for IPv6: the
 * fixed IPs, the EUI-64 link-local address of each allowed MAC, and allowed
 * pairs. Also the targets a port may claim in a neighbour advertisement.
 */
struct weft_spoof_v6_key {
  __u32 prefixlen;
  __u32 ifindex;
  __u8 mac[WEFT_ETH_ALEN];
  __u8 pad[2];
  __u8 ip[16];
};
#define WEFT_SPOOF_V6_FIXED_BITS 96
#define WEFT_SPOOF_V6_FULL_BITS 224

/*
 * WEFT_MAP_PORT_MACS: HASH. The source MACs a port may send from: its own and
 * those of its allowed address pairs.
 */
struct weft_port_mac_key {
  __u32 ifindex;
  __u8 mac[WEFT_ETH_ALEN];
  __u8 pad[2];
};

/*
 * WEFT_MAP_FLOOD: HASH, key __u32 net_id. Where broadcast and multicast of a
 * network go: its local ports, and (vxlan) a copy to each other node that
 * hosts ports of it, never to the others (head-end replication).
 */
struct weft_flood {
  __u32 count;
  __u32 ifindex[WEFT_FLOOD_MAX];
  __u32 vtep_count;
  __be32 vteps[WEFT_FLOOD_VTEPS_MAX];
  __u32 vtep_slots[WEFT_FLOOD_VTEPS_MAX]; /* weft_vtep.slot of each */
};

/* WEFT_MAP_VTEPS: HASH, key __be32 tunnel IPv4 of another node of the
 * document. Only these may send this node VXLAN. */
struct weft_vtep {
  /* Its entry in WEFT_MAP_VTEP_PATHS (1 to WEFT_MAX_VTEPS - 1), kept from
   * one apply to the next; a slot is zeroed before it is given to another. */
  __u32 slot;
};

/* WEFT_MAP_VNIS: HASH, key __u32 VNI of a vxlan network with ports on this
 * node, value __u32 its net_id. */

/* WEFT_MAP_SEGMENTS: HASH, value __u32 net_id. A provider network by the
 * device its frames arrive on and their 802.1Q tag (0: untagged, flat). */
struct weft_segment_key {
  __u32 ifindex;
  __u16 vlan;
  __u8 pad[2];
};

/* WEFT_MAP_PHYSNETS: HASH, written by `weft node install`: the device in
 * this node's namespace of each physical network it maps
 * (--physical-interface-mappings), key the physnet's name, NUL-padded. */
#define WEFT_PHYSNET_NAME_LEN 64
struct weft_physnet_key {
  char name[WEFT_PHYSNET_NAME_LEN];
};
struct weft_physnet {
  __u32 ifindex;
};

/* WEFT_MAP_STATS: PERCPU_HASH. Packets and bytes by device and reason: the
 * drops of every device, and the forwarding of devices that are not ports
 * (the uplink, a physnet's device) or have no slot. */
struct weft_stat_key {
  __u32 ifindex;
  __u32 reason; /* enum weft_reason */
};
struct weft_counter {
  __u64 packets;
  __u64 bytes;
};

/* WEFT_MAP_PORT_STATS: PERCPU_ARRAY, key __u32 stat_slot of a port
 * (weft_port.stat_slot). What a port forwarded, by reason below
 * WEFT_REASON_FIRST_DROP: the counters every packet touches, one array
 * lookup instead of a hash lookup each. */
struct weft_port_stats {
  struct weft_counter reason[WEFT_REASON_FIRST_DROP];
};

/*
 * WEFT_MAP_VTEP_PATHS: PERCPU_ARRAY, key __u32 weft_vtep.slot of another node.
 * The way to it and the traffic each way, in one entry a sent frame looks
 * up once: the outer MACs and device the FIB gave (bpf_fib_lookup), reused
 * for WEFT_VTEP_ROUTE_NS before they are asked again, so that a neighbour
 * or route change is followed within that time.
 */
struct weft_vtep_path {
  struct weft_counter tx; /* encapsulated to it */
  struct weft_counter rx; /* decapsulated from it */
  __u64 route_ns;         /* when the FIB gave the route; 0: none */
  __u32 ifindex;
  __u8 smac[WEFT_ETH_ALEN];
  __u8 dmac[WEFT_ETH_ALEN];
};
#define WEFT_VTEP_ROUTE_NS 100000000ULL /* 100 ms */

/*
 * Security groups, matched at a cost that does not grow with the rules (as in
 * bpf-iptables): the loader numbers a policy's rules and stores, per field
 * value, the set of rules that field value satisfies. A packet looks up its
 * L4 key (protocol and destination port, or ICMP type and code) and its
 * remote address once each, and passes when the two rule sets intersect.
 * A summary bit per word of the set lets the intersection skip empty words.
 */
#define WEFT_SG_MAX_RULES 16384
#define WEFT_SG_WORDS (WEFT_SG_MAX_RULES / 64)
#define WEFT_SG_SUMMARY_WORDS (WEFT_SG_WORDS / 64)
#define WEFT_MAX_SG_L4 16384
#define WEFT_MAX_SG_REMOTE 65536
/* sg_l4 protocol for the rules of any protocol, looked up when no rule names
 * the packet's protocol. (255 is IANA-reserved.) */
#define WEFT_PROTO_ANY 255

enum weft_direction {
  WEFT_DIR_INGRESS = 0, /* to the VM */
  WEFT_DIR_EGRESS = 1,  /* from the VM */
};

struct weft_rule_set {
  __u64 summary[WEFT_SG_SUMMARY_WORDS]; /* bit w: words[w] != 0 */
  __u64 words[WEFT_SG_WORDS];           /* bit r: rule r of the policy */
};

/*
 * WEFT_MAP_SG_HITS: PERCPU_HASH, __u64 value. How often each rule of a policy
 * decided a packet (the lowest-numbered rule that matched): every packet of a
 * stateless port, the first packet of a connection, each re-check. Cleared
 * by the loader whenever rules change, since rules are renumbered then.
 */
struct weft_sg_hit_key {
  __u32 policy;
  __u32 rule;
};
#define WEFT_MAX_SG_HITS 65536

/*
 * WEFT_MAP_PORT_HITS: PERCPU_ARRAY, key __u32 stat_slot of a port. The hits
 * of the rules its allow_all names, as WEFT_MAP_SG_HITS counts the others
 * (by policy and rule): one array lookup on the fast path. Zeroed with the
 * rule hits whenever rules change.
 */
struct weft_port_hits {
  __u64 allow_all[4]; /* as weft_port.allow_all */
};

/*
 * WEFT_MAP_SG_L4: LPM_TRIE. Protocol and destination port range of rules,
 * split into prefix-aligned port blocks; ICMP and ICMPv6 use type << 8 | code.
 * Each entry holds every rule the block satisfies, including rules of any
 * port (and, per named protocol, rules of any protocol).
 */
struct weft_sg_l4_key {
  __u32 prefixlen; /* WEFT_SG_L4_FIXED_BITS + port prefix length (0..16) */
  __u32 policy;
  __u8 direction; /* enum weft_direction */
  __u8 family;    /* 4 or 6 */
  __u8 proto;     /* IP protocol, or WEFT_PROTO_ANY */
  __u8 pad;
  __be16 port;
  __u8 pad2[2];
};
#define WEFT_SG_L4_FIXED_BITS 64
#define WEFT_SG_L4_FULL_BITS (WEFT_SG_L4_FIXED_BITS + 16)

/*
 * WEFT_MAP_SG_REMOTE: LPM_TRIE. Remote prefixes of rules (remote_ip_prefix,
 * or each address of a remote group's members as a full-length prefix),
 * each entry holding every rule its prefix satisfies, including rules with
 * shorter prefixes that contain it and rules with no remote at all.
 */
struct weft_sg_remote_key {
  __u32 prefixlen; /* WEFT_SG_REMOTE_FIXED_BITS + IP prefix length */
  __u32 policy;
  __u8 direction;
  __u8 family;
  __u8 pad[2];
  __u8 ip[16]; /* IPv4 in the first 4 bytes, network order */
};
#define WEFT_SG_REMOTE_FIXED_BITS 64

/*
 * WEFT_MAP_CT (HASH, established connections, never evicted) and
 * WEFT_MAP_CT_NEW (LRU_HASH, connections waiting for their first reply),
 * zoned per network. One entry per connection, keyed by its two ends in a
 * canonical order (whichever end compares lower as native-endian words: an
 * order, not numeric address order), so both directions find it with one
 * lookup. Each end includes its port's device: an entry made between two
 * ports is never found for a packet between two others (Neutron's iptables
 * driver keeps a conntrack zone per port for the same reason). An ICMP echo
 * is keyed as if the request went from port <identifier> to port 0 (and the
 * reply back), so a request never passes as the reply of another.
 */
struct weft_ct_key {
  __u32 zone; /* net_id */
  __u8 family;
  __u8 proto;
  __u8 pad[2];
  __u8 addr_a[16];
  __u8 addr_b[16];
  __be16 port_a; /* ICMP echo: the identifier on both sides */
  __be16 port_b;
  __u32 ifindex_a; /* the port device of end a on this node; 0: not a local port */
  __u32 ifindex_b;
};

/* WEFT_MAP_CT_ZONES: HASH, key __u32 zone (net_id). */
struct weft_ct_zone {
  __u32 established; /* entries of the network in WEFT_MAP_CT */
  __u32 pad;
};

/*
 * WEFT_MAP_FRAGS: LRU_HASH. The ports of a fragmented datagram, recorded from
 * its first fragment, so that its later fragments (which carry none) meet the
 * same connection and rules. Linux conntrack reassembles instead.
 */
struct weft_frag_key {
  __u32 zone;
  __u8 family;
  __u8 proto;
  __u8 pad[2];
  __u8 saddr[16];
  __u8 daddr[16];
  __u32 id; /* IPv4 identification, or the IPv6 fragment header's */
};
struct weft_frag_entry {
  __be16 sport;
  __be16 dport;
  __u16 l4_key;
  __u8 pad[2];
};
#define WEFT_MAX_FRAGS 8192

enum weft_ct_state {
  WEFT_CT_NEW = 1,         /* first packet seen (TCP: SYN sent) */
  WEFT_CT_ESTABLISHED = 2, /* replies seen */
  WEFT_CT_CLOSING = 3,     /* TCP FIN seen */
  WEFT_CT_CLOSED = 4,      /* TCP RST, or FIN both ways */
};
/* How long an idle connection lives, in seconds: Linux conntrack's defaults. */
#define WEFT_CT_TCP_SYN_TIMEOUT 120
#define WEFT_CT_TCP_ESTABLISHED_TIMEOUT 432000
#define WEFT_CT_TCP_CLOSING_TIMEOUT 120
#define WEFT_CT_TCP_CLOSED_TIMEOUT 10
#define WEFT_CT_UDP_TIMEOUT 30
#define WEFT_CT_UDP_STREAM_TIMEOUT 180
#define WEFT_CT_OTHER_TIMEOUT 30

/* The idle timeout of a connection in `state` of IP protocol `proto`,
 * seconds: the datapath expires entries by it, the CLI shows it. */
static inline __u32 weft_ct_timeout(__u8 state, __u8 proto) {
  if (proto == 6 /* TCP */) {
    switch (state) {
    case WEFT_CT_NEW:
      return WEFT_CT_TCP_SYN_TIMEOUT;
    case WEFT_CT_ESTABLISHED:
      return WEFT_CT_TCP_ESTABLISHED_TIMEOUT;
    case WEFT_CT_CLOSING:
      return WEFT_CT_TCP_CLOSING_TIMEOUT;
    default:
      return WEFT_CT_TCP_CLOSED_TIMEOUT;
    }
  }
  if (proto == 17 /* UDP */ || proto == 136 /* UDP-Lite */)
    return state == WEFT_CT_ESTABLISHED ? WEFT_CT_UDP_STREAM_TIMEOUT : WEFT_CT_UDP_TIMEOUT;
  return WEFT_CT_OTHER_TIMEOUT;
}

#define WEFT_CT_ORIG 0
#define WEFT_CT_REPLY 1

struct weft_ct_entry {
  __u64 created_ns;
  __u64 last_seen_ns;
  __u64 packets[2]; /* [WEFT_CT_ORIG], [WEFT_CT_REPLY] */
  __u64 bytes[2];
  __u32 generation;    /* weft_node_config.sg_generation when last admitted */
  __u32 orig_ifindex;  /* the local port that opened it (its egress rules), or 0 */
  __u32 reply_ifindex; /* the local port it goes to (its ingress rules), or 0 */
  __u8 state;          /* enum weft_ct_state */
  __u8 orig_is_a;      /* the originator is side a of the key */
  __u8 tcp_flags[2];   /* TCP flags seen, per direction */
  __u16 l4_key;        /* the opening packet's: destination port, or ICMP type << 8 | code */
  __u8 pad[6];
};

#endif /* WEFT_ABI_H */
