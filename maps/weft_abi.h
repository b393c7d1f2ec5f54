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

#define WEFT_ABI_VERSION 1

/* Map names: also the pin file names under <bpffs>/weft/<node>/maps/. */
#define WEFT_MAP_CONFIG "config"
#define WEFT_MAP_PORTS "ports"
#define WEFT_MAP_NETWORKS "networks"
#define WEFT_MAP_FDB "fdb"
#define WEFT_MAP_ARP "arp"
#define WEFT_MAP_SPOOF_V4 "spoof_v4"
#define WEFT_MAP_PORT_MACS "port_macs"
#define WEFT_MAP_FLOOD "flood"
#define WEFT_MAP_STATS "stats"

/* Capacities. The loader checks a document against them before writing. */
#define WEFT_MAX_PORTS 4096
#define WEFT_MAX_NETWORKS 4096
#define WEFT_MAX_FDB 65536
#define WEFT_MAX_ARP 65536
#define WEFT_MAX_SPOOF 65536
#define WEFT_MAX_STATS 65536
/* Local ports of one network on one node; a power of two (index masking). */
#define WEFT_FLOOD_MAX 256

#define WEFT_ETH_ALEN 6

/*
 * Verdict reasons, counted per port in WEFT_MAP_STATS. One list gives the
 * enum (BPF and C++) and the names the CLI prints. Reasons below
 * WEFT_REASON_FIRST_DROP count traffic that went somewhere; the others are
 * drops.
 */
#define WEFT_REASONS(X)                                                        \
  X(NONE, "none")                                                              \
  X(FWD_UNICAST, "forward-unicast")                                            \
  X(FWD_FLOOD, "forward-flood")                                                \
  X(ARP_REPLY, "arp-reply")                                                    \
  X(DELIVERED, "delivered")                                                    \
  X(DROP_NOT_A_PORT, "drop-not-a-port")                                        \
  X(DROP_MALFORMED, "drop-malformed")                                          \
  X(DROP_VLAN_TAGGED, "drop-vlan-tagged")                                      \
  X(DROP_SPOOF_MAC, "drop-spoofed-mac")                                        \
  X(DROP_SPOOF_IP, "drop-spoofed-ip")                                          \
  X(DROP_SPOOF_ARP, "drop-spoofed-arp")                                        \
  X(DROP_DHCP_SERVER, "drop-dhcp-server")                                      \
  X(DROP_IPV6_RA, "drop-ipv6-router-advert")                                   \
  X(DROP_ETHERTYPE, "drop-ethertype")                                          \
  X(DROP_UNKNOWN_UNICAST, "drop-unknown-unicast")                              \
  X(DROP_HAIRPIN, "drop-hairpin")                                              \
  X(DROP_PORT_DOWN, "drop-port-down")                                          \
  X(DROP_NO_FLOOD_TARGET, "drop-no-flood-target")                              \
  X(DROP_REDIRECT, "drop-redirect-failed")

#define WEFT_REASON_ENUM(name, text) WEFT_##name,
enum weft_reason { WEFT_REASONS(WEFT_REASON_ENUM) WEFT_REASON_COUNT };
#undef WEFT_REASON_ENUM
#define WEFT_REASON_FIRST_DROP WEFT_DROP_NOT_A_PORT

/* WEFT_MAP_CONFIG: ARRAY, one entry (key 0). */
struct weft_node_config {
  __u32 abi_version;
  __be32 tunnel_ip;       /* IPv4, network order; 0 = none */
  __u32 uplink_ifindex;   /* 0 = none */
  __u32 flags;            /* WEFT_CONFIG_* */
};
/* Ports are attached with clsact/cls_bpf rather than tcx (kernels before 6.6). */
#define WEFT_CONFIG_ATTACH_TC (1u << 0)

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
  __u8 type;             /* enum weft_net_type */
  __u8 pad[3];
};

/* Port flags. */
#define WEFT_PORT_SECURITY (1u << 0) /* anti-spoofing (and, later, groups) */
#define WEFT_PORT_UP (1u << 1)       /* admin_state_up */

/* WEFT_MAP_PORTS: HASH, key __u32 ifindex of the port's device on this node. */
struct weft_port {
  __u32 net_id;
  __u32 flags;
  __u8 mac[WEFT_ETH_ALEN];
  __u8 pad[2];
};

/* WEFT_MAP_FDB: HASH. Where a MAC of a network lives. */
struct weft_fdb_key {
  __u32 net_id;
  __u8 mac[WEFT_ETH_ALEN];
  __u8 pad[2];
};
struct weft_fdb_entry {
  __u32 ifindex; /* local port device; 0 when remote */
  __be32 vtep;   /* remote node's tunnel IPv4; 0 when local */
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
 * WEFT_MAP_PORT_MACS: HASH. The source MACs a port may send from: its own and
 * those of its allowed address pairs.
 */
struct weft_port_mac_key {
  __u32 ifindex;
  __u8 mac[WEFT_ETH_ALEN];
  __u8 pad[2];
};

/* WEFT_MAP_FLOOD: HASH, key __u32 net_id. Local ports of a network. */
struct weft_flood {
  __u32 count;
  __u32 ifindex[WEFT_FLOOD_MAX];
};

/* WEFT_MAP_STATS: PERCPU_HASH. Packets and bytes by port and reason. */
struct weft_stat_key {
  __u32 ifindex;
  __u32 reason; /* enum weft_reason */
};
struct weft_counter {
  __u64 packets;
  __u64 bytes;
};

#endif /* WEFT_ABI_H */
