/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Anti-spoofing for frames a VM sends, as Neutron applies it to a port with
 * port security on: the source MAC must be the port's or an allowed pair's,
 * the source IPv4 (and an ARP sender) must be a fixed IP or inside an allowed
 * pair with that MAC, DHCP client discovery from 0.0.0.0 passes, and a VM may
 * not act as a DHCP server or an IPv6 router.
 */
#pragma once

#include "lib/eth.h"
#include "lib/maps.h"

static __always_inline int mac_allowed(__u32 ifindex, const __u8* mac) {
  struct weft_port_mac_key key = {.ifindex = ifindex};

  mac_copy(key.mac, mac);
  return bpf_map_lookup_elem(&port_macs, &key) != 0;
}

static __always_inline int ipv4_allowed(__u32 ifindex, const __u8* mac, __be32 ip) {
  struct weft_spoof_v4_key key = {
      .prefixlen = WEFT_SPOOF_V4_FULL_BITS,
      .ifindex = ifindex,
      .ip = ip,
  };

  mac_copy(key.mac, mac);
  return bpf_map_lookup_elem(&spoof_v4, &key) != 0;
}

/* 0.0.0.0:68 -> 255.255.255.255:67, the one packet a VM sends before it has an address. */
static __always_inline int is_dhcp_discover(struct iphdr* ip, struct udphdr* udp) {
  return ip->saddr == 0 && ip->daddr == 0xffffffff && udp &&
         udp->source == bpf_htons(DHCP_CLIENT_PORT) && udp->dest == bpf_htons(DHCP_SERVER_PORT);
}

static __always_inline int check_arp_source(struct packet* pkt, __u32 ifindex) {
  struct arp_eth_ipv4* msg = parse_arp(pkt);

  if (!msg)
    return -WEFT_DROP_MALFORMED;
  if (!mac_equal(msg->sha, pkt->eth->h_source) || !ipv4_allowed(ifindex, msg->sha, msg->spa))
    return -WEFT_DROP_SPOOF_ARP;
  return WEFT_OK;
}

static __always_inline int check_ipv4_source(struct packet* pkt, const struct weft_port* port,
                                             __u32 ifindex) {
  struct iphdr* ip = parse_ipv4(pkt);
  struct udphdr* udp;

  if (!ip)
    return -WEFT_DROP_MALFORMED;
  udp = parse_udp4(pkt, ip);
  /* The port's own MAC and first address, the common case, need no lookup. */
  if (!(port->ip4 && ip->saddr == port->ip4 && mac_equal(pkt->eth->h_source, port->mac)) &&
      !is_dhcp_discover(ip, udp) && !ipv4_allowed(ifindex, pkt->eth->h_source, ip->saddr))
    return -WEFT_DROP_SPOOF_IP;
  if (udp && udp->source == bpf_htons(DHCP_SERVER_PORT) && udp->dest == bpf_htons(DHCP_CLIENT_PORT))
    return -WEFT_DROP_DHCP_SERVER;
  return WEFT_OK;
}

static __always_inline int ipv6_allowed(__u32 ifindex, const __u8* mac, const void* ip) {
  struct weft_spoof_v6_key key = {
      .prefixlen = WEFT_SPOOF_V6_FULL_BITS,
      .ifindex = ifindex,
  };

  mac_copy(key.mac, mac);
  __builtin_memcpy(key.ip, ip, 16);
  return bpf_map_lookup_elem(&spoof_v6, &key) != 0;
}

static __always_inline int ipv6_unspecified(const struct in6_addr* a) {
  return !(a->in6_u.u6_addr32[0] | a->in6_u.u6_addr32[1] | a->in6_u.u6_addr32[2] |
           a->in6_u.u6_addr32[3]);
}

/* ff02::/16, the link-local multicast scope. */
static __always_inline int ipv6_link_multicast(const struct in6_addr* a) {
  return a->in6_u.u6_addr8[0] == 0xff && a->in6_u.u6_addr8[1] == 0x02;
}

/*
 * Neutron's order for IPv6 from a VM: MLD reports and neighbour
 * solicitations from :: to ff02::/16 (duplicate address detection) pass;
 * otherwise the source must be a fixed IP, the EUI-64 link-local address or
 * an allowed pair with the frame's MAC, and a neighbour advertisement may only
 * claim such an address. Router advertisements and DHCPv6 server replies are
 * dropped.
 */
static __always_inline int check_ipv6_source(struct packet* pkt, __u32 ifindex) {
  struct ipv6hdr* ip6 = parse_ipv6(pkt);
  struct icmp6hdr* icmp6 = 0;
  struct upper up = {};
  __u8 nexthdr;
  void* l4;

  if (!ip6)
    return -WEFT_DROP_MALFORMED;
  /* An extension chain we cannot see through may hide an RA: refuse it. */
  l4 = ipv6_upper(pkt, ip6, &up);
  if (!l4)
    return -WEFT_DROP_MALFORMED;
  /* A later fragment has no transport header to look at. */
  nexthdr = up.fragment == FRAG_LATER ? IPPROTO_FRAGMENT : up.proto;
  if (nexthdr == IPPROTO_ICMPV6) {
    icmp6 = l4;
    if ((void*)(icmp6 + 1) > pkt->data_end)
      return -WEFT_DROP_MALFORMED;
    if (icmp6->icmp6_type == ICMPV6_ROUTER_ADVERT)
      return -WEFT_DROP_IPV6_RA;
  }
  if (ipv6_unspecified(&ip6->saddr)) {
    if (icmp6 && ipv6_link_multicast(&ip6->daddr) &&
        (icmp6->icmp6_type == ICMPV6_MLD_REPORT || icmp6->icmp6_type == ICMPV6_MLD2_REPORT ||
         icmp6->icmp6_type == ICMPV6_NEIGH_SOLICIT))
      return WEFT_OK;
    return -WEFT_DROP_SPOOF_IP;
  }
  if (!ipv6_allowed(ifindex, pkt->eth->h_source, &ip6->saddr))
    return -WEFT_DROP_SPOOF_IP;
  if (icmp6 && icmp6->icmp6_type == ICMPV6_NEIGH_ADVERT) {
    struct in6_addr* target = (void*)(icmp6 + 1);

    if ((void*)(target + 1) > pkt->data_end)
      return -WEFT_DROP_MALFORMED;
    if (!ipv6_allowed(ifindex, pkt->eth->h_source, target))
      return -WEFT_DROP_SPOOF_ND;
  }
  if (nexthdr == IPPROTO_UDP) {
    struct udphdr* udp = l4;

    if ((void*)(udp + 1) > pkt->data_end)
      return -WEFT_DROP_MALFORMED;
    if (udp->source == bpf_htons(DHCP6_SERVER_PORT) && udp->dest == bpf_htons(DHCP6_CLIENT_PORT))
      return -WEFT_DROP_DHCP_SERVER;
  }
  return WEFT_OK;
}

/* Every check for a frame sent by a VM whose port has port security on. */
static __always_inline int check_port_source(struct __sk_buff* skb, struct packet* pkt,
                                             const struct weft_port* port, __u32 ifindex) {
  /* The kernel lifts the outer 802.1Q tag into metadata before tc runs. */
  if (skb->vlan_present)
    return -WEFT_DROP_VLAN_TAGGED;
  switch (pkt->proto) {
  case ETH_P_8021Q:
  case ETH_P_8021AD:
    return -WEFT_DROP_VLAN_TAGGED;
  }
  /* The port's own MAC needs no lookup; pairs' MACs do. */
  if (!mac_equal(pkt->eth->h_source, port->mac) && !mac_allowed(ifindex, pkt->eth->h_source))
    return -WEFT_DROP_SPOOF_MAC;
  switch (pkt->proto) {
  case ETH_P_ARP:
    return check_arp_source(pkt, ifindex);
  case ETH_P_IP:
    return check_ipv4_source(pkt, port, ifindex);
  case ETH_P_IPV6:
    return check_ipv6_source(pkt, ifindex);
  }
  /* Neutron's firewall is not neutral to other ethertypes: they are dropped. */
  return -WEFT_DROP_ETHERTYPE;
}
