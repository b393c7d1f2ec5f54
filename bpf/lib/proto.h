/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Protocol headers and numbers the UAPI cannot give a BPF build. <linux/if_arp.h>
 * and <linux/icmp.h> pull in glibc's <sys/socket.h> (through <linux/if.h>),
 * which in a -target bpf build asks for the 32-bit glibc stubs: the BPF code
 * includes no glibc header at all, so it builds on a machine with only
 * linux-libc-dev (as Cilium's bpf/include and xdp-tools' headers/ do).
 */
#pragma once

#include <linux/icmpv6.h>
#include <linux/types.h>

/* ARP (RFC 826), as <linux/if_arp.h> has it. */
#define ARPHRD_ETHER 1
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2

struct arphdr {
  __be16 ar_hrd;
  __be16 ar_pro;
  __u8 ar_hln;
  __u8 ar_pln;
  __be16 ar_op;
};

/* ICMP (RFC 792), as <linux/icmp.h> has it. */
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

struct icmphdr {
  __u8 type;
  __u8 code;
  __sum16 checksum;
  union {
    struct {
      __be16 id;
      __be16 sequence;
    } echo;
    __be32 gateway;
  } un;
};

/* ICMPv6 types the fabric decides on that the UAPI leaves to the kernel's
 * own headers (echo, MLD query and MLDv2 report are in <linux/icmpv6.h>). */
#define ICMPV6_MLD_REPORT ICMPV6_MGM_REPORT
#define ICMPV6_ROUTER_ADVERT 134
#define ICMPV6_NEIGH_SOLICIT 135
#define ICMPV6_NEIGH_ADVERT 136

/* DHCP (RFC 2131) and DHCPv6 (RFC 8415) ports. */
#define DHCP_SERVER_PORT 67
#define DHCP_CLIENT_PORT 68
#define DHCP6_CLIENT_PORT 546
#define DHCP6_SERVER_PORT 547
