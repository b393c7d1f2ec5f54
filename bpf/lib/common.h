/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What every weft BPF program includes: kernel UAPI, libbpf helpers, the ABI. */
#pragma once

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>

/* libbpf's helpers need the UAPI types above. */
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "maps/weft_abi.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Helpers return >= 0 to go on, or -enum weft_reason to end the packet. */
#define WEFT_OK 0

/* Which build of the programs this is. Two builds of the same source are the
 * same program to the kernel (same tag), and `weft node install` replaces
 * a running program only when the tag differs; the serial, one instruction
 * of each program, tells builds apart: the upgrade test swaps a build with
 * serial 2 in under traffic (CMake's bpf-build2/). A packager may set it. */
#ifndef WEFT_BUILD_SERIAL
#define WEFT_BUILD_SERIAL 1
#endif

static __always_inline void build_serial(void) {
  __u32 serial = WEFT_BUILD_SERIAL;

  asm volatile("" : "+r"(serial));
}
